"""Every answer the hooks reject, rejected with its own message and nothing written."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from tests.conftest import TEMPLATE_DIR, Bake


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")

# (answers, the field named in the error): one line per rule.
REJECTED = [
    pytest.param({"flow_slug": "Sales-Report"}, "flow_slug", id="flow_slug-not-identifier"),
    pytest.param({"flow_slug": "2024_report"}, "flow_slug", id="flow_slug-leading-digit"),
    pytest.param({"flow_slug": "café"}, "flow_slug", id="flow_slug-non-ascii"),
    pytest.param({"flow_slug": ""}, "flow_slug", id="flow_slug-empty"),
    pytest.param({"flow_slug": "class"}, "flow_slug", id="flow_slug-keyword"),
    pytest.param({"flow_slug": "match"}, "flow_slug", id="flow_slug-soft-keyword"),
    pytest.param({"flow_slug": "logging"}, "flow_slug", id="flow_slug-stdlib"),
    pytest.param({"flow_slug": "prefect"}, "flow_slug", id="flow_slug-dependency"),
    pytest.param({"flow_slug": "sentry_sdk"}, "flow_slug", id="flow_slug-dependency-sentry"),
    pytest.param(
        {"project_name": " ", "flow_slug": "sales"}, "project_name", id="project_name-empty"
    ),
    pytest.param({"flow_name": ""}, "flow_name", id="flow_name-empty"),
    pytest.param({"prefect_project": ""}, "prefect_project", id="prefect_project-empty"),
    pytest.param(
        {"sentry_organization": "My Org"}, "sentry_organization", id="sentry_organization"
    ),
    pytest.param(
        {"sentry_organization": "12345"}, "sentry_organization", id="sentry_organization-digits"
    ),
    pytest.param({"sentry_team": "Data_Platform!"}, "sentry_team", id="sentry_team"),
    pytest.param({"aws_region": "Europe"}, "aws_region", id="aws_region"),
    pytest.param({"environment": "Prod Env"}, "environment", id="environment"),
    pytest.param({"slack_channel": "alerts"}, "slack_channel", id="slack_channel-no-hash"),
    pytest.param({"schedule": "every day"}, "schedule", id="schedule-not-cron"),
    pytest.param({"schedule": "0 6 * *"}, "schedule", id="schedule-four-fields"),
    pytest.param(
        {"orchestrator": "none", "run_config": "docker"}, "orchestrator", id="none-docker"
    ),
    pytest.param(
        {"orchestrator": "none", "run_config": "kubernetes"}, "orchestrator", id="none-kubernetes"
    ),
    pytest.param({"orchestrator": "none", "run_config": "local"}, "orchestrator", id="none-local"),
    pytest.param({"orchestrator": "none", "schedule": ""}, "schedule", id="none-unscheduled"),
    pytest.param(
        {"orchestrator": "none", "sentry_crons": False}, "sentry_crons", id="none-without-crons"
    ),
    pytest.param(
        {"orchestrator": "none", "schedule": "0 6 1 * 1"}, "schedule", id="none-dom-and-dow"
    ),
    pytest.param({"orchestrator": "none", "schedule": "0 6 L * *"}, "schedule", id="none-last-day"),
    pytest.param({"orchestrator": "none", "schedule": "0 24 * * *"}, "schedule", id="none-hour-24"),
    pytest.param(
        {"orchestrator": "none", "executor": "dask_cluster"}, "executor", id="none-dask_cluster"
    ),
]

# Choice values that cookiecutter itself rejects when given on the command line.
REJECTED_CHOICES = [
    pytest.param({"python_version": "3.12"}, "python_version", id="python_version"),
    pytest.param({"orchestrator": "airflow"}, "orchestrator", id="orchestrator"),
    pytest.param({"run_config": "lambda"}, "run_config", id="run_config"),
    pytest.param({"executor": "ray"}, "executor", id="executor"),
]

DEFAULTS = {
    "project_name": "Daily Sales Report",
    "flow_slug": "daily_sales_report",
    "flow_name": "Daily Sales Report",
    "prefect_project": "Data Platform",
    "sentry_organization": "my-org",
    "sentry_team": "data-platform",
    "aws_region": "us-east-1",
    "environment": "production",
    "slack_channel": "#data-platform-alerts",
    "schedule": "0 6 * * *",
    "python_version": "3.10",
    "orchestrator": "prefect_server",
    "run_config": "ecs",
    "executor": "local",
}


def test_the_default_answers_pass_every_rule() -> None:
    assert pre_gen.errors(DEFAULTS) == []


@pytest.mark.parametrize("orchestrator", ["prefect_server", "prefect_cloud"])
def test_a_prefect_backend_takes_any_run_config_and_no_schedule(orchestrator: str) -> None:
    for run_config in pre_gen.RUN_CONFIGS:
        answers = {**DEFAULTS, "orchestrator": orchestrator, "run_config": run_config}
        assert pre_gen.errors({**answers, "schedule": "", "sentry_crons": False}) == []
        assert pre_gen.errors({**answers, "schedule": "0 6 1 * 1"}) == []  # not EventBridge's
        assert pre_gen.errors({**answers, "executor": "dask_cluster"}) == []


# Standard cron -> EventBridge Scheduler, one line per thing the conversion does.
EVENTBRIDGE = [
    pytest.param("0 6 * * *", "cron(0 6 * * ? *)", id="daily: day-of-week becomes ?"),
    pytest.param("*/15 * * * *", "cron(0,15,30,45 * * * ? *)", id="minute step"),
    pytest.param("5-20/5 1 * * *", "cron(5,10,15,20 1 * * ? *)", id="minute range with step"),
    pytest.param("0 */6 * * *", "cron(0 0,6,12,18 * * ? *)", id="hour step"),
    pytest.param("0 8-10,14 * * *", "cron(0 8,9,10,14 * * ? *)", id="hour range and list"),
    pytest.param("30 2 1,15 * *", "cron(30 2 1,15 * ? *)", id="day-of-month list"),
    pytest.param("0 12 */10 * *", "cron(0 12 1,11,21,31 * ? *)", id="day-of-month step from 1"),
    pytest.param("0 0 1 1-3 *", "cron(0 0 1 JAN,FEB,MAR ? *)", id="month range as names"),
    pytest.param("0 0 1 jul,dec *", "cron(0 0 1 JUL,DEC ? *)", id="month names"),
    pytest.param("0 0 1 */3 *", "cron(0 0 1 JAN,APR,JUL,OCT ? *)", id="month step"),
    pytest.param("0 6 * * 1-5", "cron(0 6 ? * MON,TUE,WED,THU,FRI *)", id="weekdays"),
    pytest.param("0 6 * * 0", "cron(0 6 ? * SUN *)", id="sunday is 0"),
    pytest.param("0 6 * * 7", "cron(0 6 ? * SUN *)", id="sunday is 7 too"),
    pytest.param("0 6 * * 5-7", "cron(0 6 ? * SUN,FRI,SAT *)", id="range through sunday"),
    pytest.param("0 6 * * sat,sun", "cron(0 6 ? * SUN,SAT *)", id="day names"),
    pytest.param("0 6 * * */2", "cron(0 6 ? * SUN,TUE,THU,SAT *)", id="day-of-week step"),
    pytest.param("* * * * *", "cron(* * * * ? *)", id="every minute"),
    pytest.param("*/1 0-23 1-31 1-12 *", "cron(* * * * ? *)", id="full ranges are *"),
]
NOT_EVENTBRIDGE = [
    pytest.param("0 6 1 * 1", "both set", id="day-of-month and day-of-week"),
    pytest.param("60 6 * * *", "minute '60'", id="minute 60"),
    pytest.param("0 24 * * *", "hour '24'", id="hour 24"),
    pytest.param("0 6 0 * *", "day-of-month '0'", id="day 0"),
    pytest.param("0 6 32 * *", "day-of-month '32'", id="day 32"),
    pytest.param("0 6 * 13 *", "month '13'", id="month 13"),
    pytest.param("0 6 * * 8", "day-of-week '8'", id="weekday 8"),
    pytest.param("0 6 L * *", "day-of-month 'L'", id="last day"),
    pytest.param("0 6 * * 1#2", "character", id="nth weekday"),
    pytest.param("0 6 ? * 1", "character", id="question mark"),
    pytest.param("0 6 * * 5-1", "backwards", id="backwards range"),
    pytest.param("*/0 6 * * *", "step '0'", id="step 0"),
    pytest.param("0 6 * *", "4 fields", id="four fields"),
]


@pytest.mark.parametrize(("cron", "expected"), EVENTBRIDGE)
def test_cron_converts_to_eventbridge_field_by_field(cron: str, expected: str) -> None:
    assert pre_gen.eventbridge_cron(cron) == expected


@pytest.mark.parametrize(("cron", "problem"), NOT_EVENTBRIDGE)
def test_cron_that_eventbridge_cannot_run_is_refused_naming_the_field(
    cron: str, problem: str
) -> None:
    with pytest.raises(pre_gen.CronError, match=re.escape(problem)):
        pre_gen.eventbridge_cron(cron)


@pytest.mark.parametrize(("answers", "field"), REJECTED + REJECTED_CHOICES)
def test_each_rule_names_the_field_and_the_fix(answers: dict, field: str) -> None:
    [message] = pre_gen.errors({**DEFAULTS, **answers})

    assert message.startswith(f"ERROR: {field}: ")
    assert " - " in message  # what is wrong - how to fix it


@pytest.mark.parametrize(("answers", "field"), REJECTED)
def test_a_bake_with_a_rejected_answer_fails_and_writes_nothing(
    bake: Bake, baked_files, capfd: pytest.CaptureFixture, answers: dict, field: str
) -> None:
    result = bake(**answers)

    assert isinstance(result.exception, FailedHookException), result.exception
    # The hook prints to stderr; a flow_slug too bad to name a folder fails earlier,
    # while cookiecutter renders the answers, with the same message in the exception.
    assert f"ERROR: {field}: " in str(result.exception) + capfd.readouterr().err
    assert baked_files() == []


@pytest.mark.parametrize(("answers", "field"), REJECTED_CHOICES)
def test_a_bake_with_an_unknown_choice_fails_and_writes_nothing(
    bake: Bake, baked_files, answers: dict, field: str
) -> None:
    result = bake(**answers)

    assert result.exception is not None
    assert field in str(result.exception)
    assert baked_files() == []


@pytest.mark.parametrize("slug", ["class", ""])
def test_the_cli_prints_the_error_and_exits_1(tmp_path: Path, slug: str) -> None:
    output = tmp_path / "output"
    output.mkdir()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(output),
            str(TEMPLATE_DIR),
            f"flow_slug={slug}",
        ],
        capture_output=True,
        text=True,
    )

    assert completed.returncode == 1
    assert f"ERROR: flow_slug: {slug!r} is " in completed.stderr + completed.stdout
    assert list(output.iterdir()) == []


def test_the_hook_script_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    rendered = (
        (TEMPLATE_DIR / "hooks" / "pre_gen_project.py")
        .read_text()
        .replace("{{ cookiecutter | tojson }}", '{"flow_slug": "class", "aws_region": "moon"}')
    )
    script = tmp_path / "pre_gen_project.py"
    script.write_text(rendered)

    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)

    assert completed.returncode == 1
    lines = completed.stderr.splitlines()
    assert any(line.startswith("ERROR: flow_slug: ") for line in lines)
    assert any(line.startswith("ERROR: aws_region: ") for line in lines)
    assert all(line.startswith("ERROR: ") for line in lines)
