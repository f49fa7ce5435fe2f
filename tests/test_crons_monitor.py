"""The Sentry Crons monitor Terraform creates is the one the flow's check-ins name.

Both sides read one file, `deployment/sentry_crons.json`: the flow through
`deployment.SENTRY_CRONS` (tests/baked/test_monitoring_crons.py checks that its check-ins
send exactly the file), Terraform through `jsondecode(file(...))` in crons.tf. Here the
Terraform of every answer combination is parsed, and the expressions of its monitor
are evaluated by `terraform console` (offline: only the locals they need, no provider).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import baking
from tests.answers import COMBINATIONS, HOSTILE
from tests.deploy_tools import blocks, hcl_literal, load_terraform, locals_of, tool

# Beyond tests/answers.py: each half of "a schedule and Sentry Crons" alone, and free text.
EXTRA = [
    pytest.param({"sentry_crons": False}, id="scheduled-no-crons"),
    pytest.param({"schedule": ""}, id="crons-unscheduled"),
    pytest.param({**HOSTILE, "schedule": " 15  4 * *   1-5 "}, id="hostile-spaced-schedule"),
]
# The monitor's attributes in crons.tf, and the key of the settings file each one is.
ALL = COMBINATIONS + EXTRA
# The answer sets whose flow has a schedule and Sentry Crons (the defaults have both).
WITH_MONITOR = [
    param
    for param in ALL
    if param.values[0].get("schedule", "0 6 * * *").strip()
    and param.values[0].get("sentry_crons", True)
]
MONITOR_SETTINGS = {
    "name": "slug",
    "timezone": "timezone",
    "checkin_margin_minutes": "checkin_margin",
    "max_runtime_minutes": "max_runtime",
    "failure_issue_threshold": "failure_issue_threshold",
    "recovery_threshold": "recovery_threshold",
}


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict], Path]:
    """Bake each answer set once for this module; `baked(answers)` gives its folder."""
    projects: dict[str, Path] = {}

    def get(answers: dict) -> Path:
        key = json.dumps(answers, sort_keys=True)
        if key not in projects:
            folder = tmp_path_factory.mktemp("crons")
            projects[key] = baking.bake(answers, folder).path
        return projects[key]

    return get


def answer(project: Path, name: str) -> Any:
    return json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))[name]


def hcl(value: Any) -> str:
    """An attribute's value as python-hcl2 parsed it, written back as an HCL expression."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {hcl(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)  # a quoted string stays quoted, a number is its digits


def evaluate(project: Path, expressions: dict[str, Any]) -> dict[str, Any]:
    """What Terraform makes of these attribute values, with crons.tf's locals.

    They are evaluated in a folder beside terraform/, so that `path.module` reaches the
    same files; crons.tf's resources are left out, since they need the Sentry provider.
    """
    crons_locals = locals_of({"crons.tf": load_terraform(project / "terraform")["crons.tf"]})
    folder = project / "terraform-console"
    folder.mkdir(exist_ok=True)
    lines = [f"  {name} = {hcl(value)}\n" for name, value in crons_locals.items()]
    (folder / "main.tf").write_text("locals {\n" + "".join(lines) + "}\n", encoding="utf-8")
    result = subprocess.run(
        [tool("terraform"), "console"],
        input=f"jsonencode({hcl(expressions)})\n",
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout))


def settings_file(project: Path) -> Path:
    [package] = [path for path in (project / "src").iterdir() if (path / "__init__.py").exists()]
    return package / "deployment" / "sentry_crons.json"


@pytest.mark.parametrize("answers", ALL)
def test_the_monitor_exists_exactly_when_the_flow_has_a_schedule_and_sentry_crons(
    baked: Callable[[dict], Path], answers: dict
) -> None:
    project = baked(answers)
    terraform = load_terraform(project / "terraform")
    monitor = blocks(terraform, "resource")[("sentry_cron_monitor", "flow")]
    owner = blocks(terraform, "data")[("sentry_team", "owner")]

    expected = bool(answer(project, "schedule").strip()) and answer(project, "sentry_crons")
    counts = evaluate(project, {"monitor": monitor["count"], "owner": owner["count"]})
    assert counts == {"monitor": int(expected), "owner": int(expected)}
    assert settings_file(project).exists() is expected
    if answer(project, "orchestrator") == "none":
        # Nothing else notices a run that never started: no agent, no Prefect UI.
        assert counts["monitor"] == 1


@pytest.mark.parametrize("answers", WITH_MONITOR)
def test_the_monitor_has_the_settings_the_check_ins_send(
    baked: Callable[[dict], Path], answers: dict
) -> None:
    project = baked(answers)
    settings = json.loads(settings_file(project).read_text(encoding="utf-8"))
    monitor = blocks(load_terraform(project / "terraform"), "resource")[
        ("sentry_cron_monitor", "flow")
    ]

    created = evaluate(project, {name: monitor[name] for name in [*MONITOR_SETTINGS, "schedule"]})
    assert created == {
        **{name: settings[key] for name, key in MONITOR_SETTINGS.items()},
        "schedule": {"crontab": settings["schedule"]["value"]},
    }
    assert settings["schedule"]["type"] == "crontab"
    # The answers the file holds: one slug per repository, the cron Prefect runs.
    assert settings["slug"] == answer(project, "flow_slug").replace("_", "-")
    assert settings["schedule"]["value"] == " ".join(answer(project, "schedule").split())
    assert settings["timezone"] == "UTC"


def test_the_monitor_describes_the_flow_in_its_own_words(baked: Callable[[dict], Path]) -> None:
    project = baked({**HOSTILE})
    monitor = blocks(load_terraform(project / "terraform"), "resource")[
        ("sentry_cron_monitor", "flow")
    ]

    assert HOSTILE["flow_name"] in hcl_literal(monitor["description"])


@pytest.mark.parametrize("answers", ALL)
def test_the_slack_alert_covers_the_crons_monitor_too(
    baked: Callable[[dict], Path], answers: dict
) -> None:
    alert = blocks(load_terraform(baked(answers) / "terraform"), "resource")[
        ("sentry_alert", "slack")
    ]

    assert alert["monitor_ids"] == (
        "${concat([data.sentry_project_error_monitor.flow.id], sentry_cron_monitor.flow[*].id)}"
    )
