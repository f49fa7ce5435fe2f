"""Answer sets the template's tests bake with, and the hostile free text, defined once."""

from __future__ import annotations

import pytest

# Together these cover every choice value at least once, and every orchestrator with
# every run config it supports (orchestrator=none: ecs only, the hook refuses the rest).
COMBINATIONS = [
    pytest.param({}, id="defaults-server-ecs-local-py3.13"),
    pytest.param(
        {"orchestrator": "none", "run_config": "ecs", "schedule": "30 5 * * 1-5"},
        id="none-ecs-local-py3.13-weekdays",
    ),
    pytest.param(
        {"orchestrator": "prefect_cloud", "run_config": "ecs", "executor": "local_dask"},
        id="cloud-ecs-local_dask-py3.13",
    ),
    pytest.param(
        {"run_config": "kubernetes", "executor": "local_dask", "python": "3.12"},
        id="server-kubernetes-local_dask-py3.12",
    ),
    pytest.param(
        {"run_config": "docker", "executor": "dask_cluster", "python": "3.13"},
        id="server-docker-dask_cluster-py3.13",
    ),
    pytest.param(
        {"run_config": "ecs", "executor": "dask_cluster", "python": "3.12"},
        id="server-ecs-dask_cluster-py3.12",
    ),
    pytest.param(
        {"orchestrator": "prefect_cloud", "run_config": "kubernetes", "executor": "dask_cluster"},
        id="cloud-kubernetes-dask_cluster-py3.13",
    ),
    pytest.param(
        {
            "run_config": "local",
            "executor": "local",
            "python": "3.12",
            "schedule": "",
            "sentry_crons": False,
        },
        id="server-local-local-py3.12-unscheduled-no-crons",
    ),
    pytest.param(
        {"orchestrator": "prefect_cloud", "run_config": "kubernetes", "python": "3.12"},
        id="cloud-kubernetes-local-py3.12",
    ),
    pytest.param(
        {"orchestrator": "prefect_cloud", "run_config": "docker", "executor": "dask_cluster"},
        id="cloud-docker-dask_cluster-py3.13",
    ),
    pytest.param(
        {"orchestrator": "prefect_cloud", "run_config": "local", "python": "3.12"},
        id="cloud-local-local-py3.12",
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

# The deploy artefacts' bake (tests/test_deploy_artifacts.py): a different text in each
# field, so a test sees which answer landed where. `{{ '${{' }}` is Jinja that renders
# to a GitHub expression opener: the baked prefect_project holds a live-looking `${{`.
HOSTILE_PREFECT_PROJECT = HOSTILE_TEXT + " ${{ github.token }}"
HOSTILE_DEPLOY = {
    **HOSTILE,
    "description": HOSTILE_TEXT + " description",
    "team": HOSTILE_TEXT + " team",
    "prefect_project": HOSTILE_TEXT + " {{ '${{' }} github.token }}",
}
