"""Answer sets the template's tests bake with."""

from __future__ import annotations

import pytest

# Together these cover every choice value at least once.
COMBINATIONS = [
    pytest.param({}, id="defaults-ecs-local-py3.10"),
    pytest.param(
        {"run_config": "kubernetes", "executor": "local_dask", "python_version": "3.9"},
        id="kubernetes-local_dask-py3.9",
    ),
    pytest.param(
        {"run_config": "docker", "executor": "dask_cluster", "python_version": "3.10"},
        id="docker-dask_cluster-py3.10",
    ),
    pytest.param(
        {
            "run_config": "local",
            "executor": "local",
            "python_version": "3.9",
            "schedule": "",
            "sentry_crons": False,
        },
        id="local-local-py3.9-unscheduled-no-crons",
    ),
]

# Free text that breaks naive quoting in every format the template writes.
HOSTILE_TEXT = "Ünïcødé \"quoted\" 'single' \\back\\slash ${HOME} %{x} <b>&"
HOSTILE = {
    "project_name": HOSTILE_TEXT,
    "flow_name": HOSTILE_TEXT,
    "description": HOSTILE_TEXT,
    "team": HOSTILE_TEXT,
    "prefect_project": HOSTILE_TEXT,
    "flow_slug": "hostile_flow",
    "sentry_team": "data-platform",
}
