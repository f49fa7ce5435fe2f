"""Every answer the hooks reject, rejected with its own message and nothing written."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from croniter import croniter

import baking
from tests.conftest import TEMPLATE_DIR, Bake


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")

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
    pytest.param({"flow_slug": "tests"}, "flow_slug", id="flow_slug-tests-package"),
    pytest.param({"flow_slug": "_sales"}, "flow_slug", id="flow_slug-leading-underscore"),
    pytest.param({"flow_slug": "sales_"}, "flow_slug", id="flow_slug-trailing-underscore"),
    pytest.param({"flow_slug": "sales__report"}, "flow_slug", id="flow_slug-doubled-underscore"),
    pytest.param({"flow_slug": "s" * 51}, "flow_slug", id="flow_slug-longer-than-sentry-slugs"),
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
    *(
        pytest.param({"kubernetes_namespace": name}, "kubernetes_namespace", id=f"namespace-{why}")
        for name, why in [
            ("Flows", "uppercase"),
            ("data_flows", "underscore"),
            ("data.flows", "dot"),
            ("-flows", "leading-dash"),
            ("flows-", "trailing-dash"),
            ("n" * 64, "longer-than-63"),
            ("", "empty"),
        ]
    ),
    pytest.param({"schedule": "every day"}, "schedule", id="schedule-not-cron"),
    pytest.param({"schedule": "0 6 * *"}, "schedule", id="schedule-four-fields"),
    pytest.param({"schedule": "0 0 6 * * *"}, "schedule", id="schedule-six-fields"),
    pytest.param({"schedule": "61 * * * *"}, "schedule", id="schedule-minute-61"),
    pytest.param({"schedule": "0 25 * * *"}, "schedule", id="schedule-hour-25"),
    pytest.param({"schedule": "0 6 32 * *"}, "schedule", id="schedule-day-of-month-32"),
    pytest.param({"schedule": "0 6 * 13 *"}, "schedule", id="schedule-month-13"),
    pytest.param({"schedule": "0 6 * * 8"}, "schedule", id="schedule-day-of-week-8"),
    pytest.param({"schedule": "0 0 30 2 *"}, "schedule", id="schedule-never-runs"),
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
    pytest.param({"python": "3.10"}, "python", id="python"),
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
    "python": "3.13",
    "orchestrator": "prefect_server",
    "run_config": "ecs",
    "executor": "local",
    "kubernetes_namespace": "default",
}


def test_the_default_answers_pass_every_rule() -> None:
    assert pre_gen.errors(DEFAULTS) == []


@pytest.mark.parametrize("namespace", ["flows", "0", "team-7-flows", "n" * 63])
def test_any_kubernetes_namespace_name_is_accepted(namespace: str) -> None:
    assert pre_gen.errors({**DEFAULTS, "kubernetes_namespace": namespace}) == []


def test_a_flow_slug_as_long_as_sentry_slugs_go_is_taken() -> None:
    assert pre_gen.errors({**DEFAULTS, "flow_slug": "sales_" + "s" * 44}) == []  # 50 characters


@pytest.mark.parametrize("orchestrator", ["prefect_server", "prefect_cloud"])
def test_a_prefect_backend_takes_any_run_config_and_no_schedule(orchestrator: str) -> None:
    for run_config in pre_gen.choices()["run_config"]:
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
    pytest.param("0 6 * * 1-7", "cron(0 6 ? * * *)", id="every weekday through 7 is *"),
    pytest.param("0 6 * * 1/2", "cron(0 6 ? * MON,WED,FRI *)", id="day-of-week step from 1"),
    # Every value but one is a list, never `*`: the last, the first, and the middle 7.
    pytest.param("0-58 0 * * *", f"cron({','.join(map(str, range(59)))} 0 * * ? *)", id="0-58"),
    pytest.param("0 1-23 * * *", f"cron(0 {','.join(map(str, range(1, 24)))} * * ? *)", id="1-23"),
    pytest.param("0 0 2-31 * *", f"cron(0 0 {','.join(map(str, range(2, 32)))} * ? *)", id="2-31"),
    pytest.param(
        "0 0 1 1-11 *", "cron(0 0 1 JAN,FEB,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,NOV ? *)", id="1-11"
    ),
    pytest.param("0 6 * * 0-5", "cron(0 6 ? * SUN,MON,TUE,WED,THU,FRI *)", id="SUN-FRI"),
    pytest.param("0 6 * * 1-6", "cron(0 6 ? * MON,TUE,WED,THU,FRI,SAT *)", id="MON-SAT"),
    pytest.param(
        "0-6,8-59 0-6,8-23 1 1-6,8-12 *",
        "cron({} {} 1 {} ? *)".format(
            ",".join(str(m) for m in range(60) if m != 7),
            ",".join(str(h) for h in range(24) if h != 7),
            "JAN,FEB,MAR,APR,MAY,JUN,AUG,SEP,OCT,NOV,DEC",
        ),
        id="all but 7",
    ),
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


def test_a_run_config_with_a_prefect_agent_is_not_checked_against_eventbridge() -> None:
    for run_config in ("docker", "kubernetes", "local"):
        answers = {**DEFAULTS, "orchestrator": "none", "run_config": run_config}
        [message] = pre_gen.errors({**answers, "schedule": "0 6 1 * 1"})
        assert message.startswith("ERROR: orchestrator: ")


def test_a_replayed_orchestrator_that_is_not_a_choice_gets_the_choice_message_only() -> None:
    for orchestrator in ("airflow", "prefect_2"):  # one sorts before "none", one after
        answers = {**DEFAULTS, "orchestrator": orchestrator, "schedule": "0 6 1 * 1"}
        [message] = pre_gen.errors({**answers, "sentry_crons": False, "executor": "dask_cluster"})
        assert message.startswith(f"ERROR: orchestrator: '{orchestrator}' is not a choice")


def test_a_replayed_sentry_crons_that_is_not_a_boolean_gets_one_message() -> None:
    answers = {**DEFAULTS, "orchestrator": "none", "sentry_crons": 0}

    assert pre_gen.errors(answers) == [
        "ERROR: sentry_crons: 0 is not true or false - use sentry_crons=true or sentry_crons=false"
    ]


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


def test_every_choice_answer_has_a_rule_that_takes_exactly_what_cookiecutter_json_offers() -> None:
    offered = {
        name: value
        for name, value in cookiecutter_json().items()
        if isinstance(value, list) and not name.startswith("_")
    }
    assert pre_gen.choices() == {name: tuple(value) for name, value in offered.items()}
    rules = {rule.__name__: rule for rule in pre_gen.RULES}
    for field, values in offered.items():
        rule = rules[f"check_{field}_choice"]
        assert rule.fields == (field,)
        for value in values:
            assert rule({**DEFAULTS, field: value}) is None, (field, value)
        for value in ("", "other", values[0].upper() + "x", f" {values[0]}"):
            message = rule({**DEFAULTS, field: value})
            assert message == (
                f"ERROR: {field}: {value!r} is not a choice - pick one of " + ", ".join(values)
            )


def test_a_replayed_bake_with_a_choice_cookiecutter_json_does_not_offer_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """Cookiecutter checks a choice given on the command line, not one in a replay file:
    the hook does, with the choices of cookiecutter.json rendered into it."""
    baking.bake({}, tmp_path / "first")
    [replay] = (tmp_path / "first" / "replay").glob("*.json")
    context = json.loads(replay.read_text())
    context["cookiecutter"]["run_config"] = "lambda"
    replay.write_text(json.dumps(context))
    capfd.readouterr()

    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE_DIR), replay=str(replay), output_dir=str(tmp_path / "second"))

    expected = "ERROR: run_config: 'lambda' is not a choice - pick one of ecs, kubernetes, "
    assert expected in capfd.readouterr().err
    assert not (tmp_path / "second").exists() or not list((tmp_path / "second").iterdir())


def cookiecutter_cli(output: Path, *args: str, stdin: str | None = None):
    """The cookiecutter CLI on the template, baking into `output`."""
    output.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(output), str(TEMPLATE_DIR), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param(["flow_slug=class"], "ERROR: flow_slug: 'class' is ", id="keyword"),
        pytest.param(["flow_slug="], "ERROR: flow_slug: '' is ", id="empty-slug"),
        pytest.param(["schedule=61 * * * *"], "ERROR: schedule: minute '61' ", id="minute-61"),
        pytest.param(["aws_region=moon"], "ERROR: aws_region: 'moon' ", id="region"),
        pytest.param(
            ["orchestrator=none", "run_config=docker"], "ERROR: orchestrator: ", id="none-docker"
        ),
    ],
)
def test_the_cli_prints_only_the_error_and_exits_1(
    tmp_path: Path, answers: list[str], expected: str
) -> None:
    completed = cookiecutter_cli(tmp_path / "output", "--no-input", *answers)

    assert completed.returncode == 1
    lines = (completed.stdout + completed.stderr).splitlines()
    assert len(lines) == 1, lines  # no traceback, no "Stopping generation"
    assert lines[0].startswith(expected)
    assert list((tmp_path / "output").iterdir()) == []


def test_a_bad_answer_stops_the_prompts_at_once(tmp_path: Path) -> None:
    """Typed at the schedule prompt, the 12th: the 13th is never asked."""
    visible = [key for key in cookiecutter_json() if not key.startswith("_")]
    asked_before = visible.index("schedule")

    completed = cookiecutter_cli(tmp_path / "output", stdin="\n" * asked_before + "0 25 * * *\n")

    assert completed.returncode == 1
    output = completed.stdout + completed.stderr
    assert f"[{asked_before + 1}/{len(visible)}]" in output
    assert f"[{asked_before + 2}/{len(visible)}]" not in output
    [error_line] = [line for line in output.splitlines() if "ERROR" in line]
    assert "ERROR: schedule: hour '25' is not a number from 0 to 23 - " in error_line
    assert "Traceback" not in output
    assert list((tmp_path / "output").iterdir()) == []


def cookiecutter_json() -> dict:
    return json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())


def test_each_rule_is_checked_once_right_after_the_last_answer_it_reads() -> None:
    """cookiecutter.json has a `__check_<answer>` after each answer a rule reads: cookiecutter
    renders it right after asking, and `checked` runs the rules that answer decides."""
    keys = list(cookiecutter_json())
    answered: list[str] = []
    checked: list = []
    for key, following in zip(keys, [*keys[1:], None], strict=True):
        if key.startswith("_"):
            continue
        decided = pre_gen.rules_decided_by(key, answered)
        answered.append(key)
        if any(key in rule.fields for rule in pre_gen.RULES):
            assert following == f"__check_{key}", key
            assert cookiecutter_json()[following] == f"{{{{ cookiecutter | checked('{key}') }}}}"
        checked += decided
    assert sorted(rule.__name__ for rule in checked) == sorted(
        rule.__name__ for rule in pre_gen.RULES
    )
    assert len(checked) == len(pre_gen.RULES)


def test_the_hook_script_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    rendered = (
        (TEMPLATE_DIR / "hooks" / "pre_gen_project.py")
        .read_text()
        .replace("{{ cookiecutter | tojson }}", '{"flow_slug": "class", "aws_region": "moon"}')
        .replace("{{ template_choices | tojson }}", json.dumps(pre_gen.choices()))
    )
    script = tmp_path / "pre_gen_project.py"
    script.write_text(rendered)

    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)

    assert completed.returncode == 1
    lines = completed.stderr.splitlines()
    assert any(line.startswith("ERROR: flow_slug: ") for line in lines)
    assert any(line.startswith("ERROR: aws_region: ") for line in lines)
    assert all(line.startswith("ERROR: ") for line in lines)


# Prefect 1's CronSchedule refuses what `croniter.is_valid` refuses ("Invalid cron
# string", prefect/schedules/clocks.py at 1.4.1) and runs what croniter expands.
# (schedule, the cron field the hook's message names): croniter refuses them too.
CRONITER_REFUSES = [
    pytest.param("61 * * * *", "minute", id="minute 61"),
    pytest.param("-1 * * * *", "minute", id="minute -1"),
    pytest.param("1- * * * *", "minute", id="open range"),
    pytest.param("0,,5 6 * * *", "minute", id="empty list item"),
    pytest.param("*/0 * * * *", "minute", id="step 0"),
    pytest.param("0x1 * * * *", "minute", id="hex"),
    pytest.param("\u0663 * * * *", "minute", id="arabic-indic digit"),
    pytest.param("0 25 * * *", "hour", id="hour 25"),
    pytest.param("0 24 * * *", "hour", id="hour 24"),
    pytest.param("0 6 0 * *", "day-of-month", id="day 0"),
    pytest.param("0 6 32 * *", "day-of-month", id="day 32"),
    pytest.param("0 6 * 0 *", "month", id="month 0"),
    pytest.param("0 6 * 13 *", "month", id="month 13"),
    pytest.param("0 6 * mon *", "month", id="weekday name as month"),
    pytest.param("0 6 * * 8", "day-of-week", id="weekday 8"),
    pytest.param("0 6 * * jan", "day-of-week", id="month name as weekday"),
    pytest.param("0 6 * * SUNDAY", "day-of-week", id="long day name"),
    pytest.param("0 6 * * -", "day-of-week", id="bare dash"),
    pytest.param("0 6 * * ,", "day-of-week", id="bare comma"),
]
# What croniter runs but the hook refuses on purpose, with the field it names.
ONLY_THE_HOOK_REFUSES = [
    pytest.param("0 0 6 * * *", "five-field", id="six fields: croniter reads seconds"),
    pytest.param("0 6 L * *", "day-of-month 'L'", id="L: not standard cron"),
    pytest.param("0 6 ? * 1", "day-of-month '?'", id="?: not standard cron"),
    pytest.param("0 6 * * 1#2", "day-of-week '1#2'", id="#: not standard cron"),
    pytest.param("3-3 * * * *", "one value", id="a one-value range: croniter runs every minute"),
    pytest.param("0 6 * * 7-7", "one value", id="sunday range: croniter runs daily"),
    pytest.param("0 6 * * 7/2", "steps from 7", id="step from 7: croniter steps from 0"),
    pytest.param("59-0 * * * *", "backwards", id="backwards range: croniter wraps"),
    pytest.param("0 0 30 2 *", "never", id="february 30: croniter finds no next run"),
    pytest.param("0 0 30 2 0-6", "never", id="february 30 on any weekday is no weekday rule"),
]
CRONITER_ACCEPTS = [
    "0 6 * * *",
    "*/15 * * * *",
    "5/15 * * * *",
    "5-20/5 1 * * *",
    "0 8-10,14 * * *",
    "00 06 01 01 *",
    "0 12 */10 * *",
    "0 0 1 jul,DEC *",
    "0 0 1 JAN-DEC/3 *",
    "0 6 * * 7",
    "0 6 * * 5-7",
    "0 6 * * 0-7",
    "0 6 * * sat,sun",
    "0 6 * * MON-FRI",
    "0 6 * * */8",
    "0 6 1 * 1",
    "0 0 29 2 *",
    "0 0 30 2 1",  # cron runs on February's Mondays: either day field matches
    "0 6 * * 1/2",
    "*/90 * * * *",
    "* * * * *",
]


def full(values: list, low: int, high: int, weekday: bool = False) -> set[int]:
    """A croniter or hook expansion as a set of values; Sunday is 0."""
    found = set(range(low, high + 1)) if "*" in values else set(values)
    return {value % 7 for value in found} if weekday else found


def assert_croniter_runs_it_as_the_hook_reads_it(cron: str) -> None:
    assert croniter.is_valid(cron), cron
    croniter(cron).get_next()  # the first run is found
    expanded = croniter(cron).expanded
    for index, (field, (name, low, high)) in enumerate(
        zip(cron.split(), pre_gen.CRON_FIELDS, strict=True)
    ):
        weekday = name == "day-of-week"
        hook = full(pre_gen.cron_values(field, name, low, high), low, high, weekday)
        assert full(expanded[index], low, high, weekday) == hook, (cron, name)


@pytest.mark.parametrize(("cron", "field"), CRONITER_REFUSES)
def test_a_cron_croniter_refuses_is_refused_naming_its_field(cron: str, field: str) -> None:
    assert not croniter.is_valid(cron)

    [message] = pre_gen.errors({**DEFAULTS, "schedule": cron})

    assert message.startswith(f"ERROR: schedule: {field} ")
    assert " - " in message


@pytest.mark.parametrize(("cron", "problem"), ONLY_THE_HOOK_REFUSES)
def test_a_cron_croniter_misreads_or_cannot_run_is_refused(cron: str, problem: str) -> None:
    assert croniter.is_valid(cron)  # so the hook is the one saying no

    [message] = pre_gen.errors({**DEFAULTS, "schedule": cron})

    assert message.startswith("ERROR: schedule: ")
    assert problem in message


# The length of each month (a leap year's), spelled out here, not read from the hook.
MONTH_LENGTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@pytest.mark.parametrize(("month", "length"), enumerate(MONTH_LENGTHS, start=1))
def test_each_month_runs_on_its_last_day_and_never_on_the_day_after(
    month: int, length: int
) -> None:
    assert pre_gen.errors({**DEFAULTS, "schedule": f"0 0 {length} {month} *"}) == []
    if length < 31:
        day_after = f"0 0 {length + 1} {month} *"
        [message] = pre_gen.errors({**DEFAULTS, "schedule": day_after})
        assert message.startswith(f"ERROR: schedule: day-of-month '{length + 1}' never comes")
        # Some other chosen month, or any weekday, and it runs.
        assert pre_gen.errors({**DEFAULTS, "schedule": f"0 0 {length + 1} {month},1 *"}) == []


@pytest.mark.parametrize("cron", CRONITER_ACCEPTS)
def test_a_cron_the_hook_accepts_runs_in_croniter_as_the_hook_reads_it(cron: str) -> None:
    assert pre_gen.errors({**DEFAULTS, "schedule": cron}) == []
    assert_croniter_runs_it_as_the_hook_reads_it(cron)


def random_cron(rng: random.Random) -> str:
    """Five fields built from each field's values, its edges and a few words cron lacks."""
    wrong = ["", "-1", "L", "?", "x"]

    def part(name: str, low: int, high: int) -> str:
        words = [str(value) for value in (low, low + 1, high // 2, high - 1, high, high + 1)]
        words += {"month": ["jan", "DEC"], "day-of-week": ["sun", "SAT", "07"]}.get(name, [])
        words += ["00", "*"] + ([rng.choice(wrong)] if rng.random() < 0.1 else [])
        start, end = rng.choice(words), rng.choice(words)
        text = rng.choice([start, start, f"{start}-{end}", "*"])
        if rng.random() < 0.3:
            text += "/" + rng.choice(["0", "1", "2", "3", "7", "15", "40"])
        return text

    return " ".join(
        ",".join(part(*field) for _ in range(rng.choice([1, 1, 1, 2, 3])))
        for field in pre_gen.CRON_FIELDS
    )


def test_every_random_cron_the_hook_accepts_runs_in_croniter_as_the_hook_reads_it() -> None:
    rng = random.Random(13)
    accepted = 0
    for _ in range(10_000):
        cron = random_cron(rng)
        if pre_gen.errors({**DEFAULTS, "schedule": cron}):
            continue
        accepted += 1
        assert_croniter_runs_it_as_the_hook_reads_it(cron)
    assert accepted > 400  # the generator makes enough good ones to mean something


def git(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True)


def test_the_baked_project_is_a_git_repository_on_main_with_nothing_committed(
    bake: Bake, capfd: pytest.CaptureFixture
) -> None:
    project = bake().project_path

    assert git(project, "rev-parse", "--show-toplevel").stdout.strip() == str(project)
    assert git(project, "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"
    assert git(project, "rev-parse", "--verify", "-q", "HEAD").returncode != 0  # no commit
    untracked = git(project, "status", "--porcelain", "--untracked-files=all").stdout
    assert "?? pyproject.toml" in untracked.splitlines()
    assert "Git: initialised a repository on branch main" in capfd.readouterr().out


def test_the_readme_pre_commit_install_works_in_a_fresh_bake(bake: Bake, tmp_path: Path) -> None:
    project = bake().project_path
    assert "uv run pre-commit install" in (project / "README.md").read_text()

    installed = subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "install"],
        cwd=project,
        env={**post_gen.git_environment(), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")},
        capture_output=True,
        text=True,
    )

    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (project / ".git/hooks/pre-commit").is_file()


def test_without_git_the_bake_succeeds_with_a_one_line_note(
    bake: Bake, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "no-git").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "no-git"))  # the hook runs on sys.executable

    result = bake()

    assert result.exception is None, result.exception
    assert not (result.project_path / ".git").exists()
    [note] = [line for line in capfd.readouterr().out.splitlines() if line.startswith("Git:")]
    assert "git was not found" in note
    assert "git init -b main" in note


@pytest.mark.parametrize(
    ("init", "reason"),
    [
        pytest.param("echo 'fatal: disk full' >&2; exit 1", "fatal: disk full", id="exit 1"),
        pytest.param("kill -KILL $$", "", id="killed by a signal"),
    ],
)
def test_a_failing_git_init_is_reported_not_claimed(
    init: str, reason: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_git = tools / "git"
    fake_git.write_text(f'#!/bin/sh\nif [ "$1" = init ]; then {init}; fi\nexit 128\n')
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    project = tmp_path / "project"
    project.mkdir()

    note = post_gen.init_repository(project)

    assert note == f"Git: `git init` failed ({reason}); run it yourself."


def test_a_folder_that_is_a_repository_already_is_left_as_it_was(tmp_path: Path) -> None:
    """A bake over an existing project (cookiecutter -f, or cruft's own bakes)."""
    git(tmp_path, "init", "-q")
    git(tmp_path, "symbolic-ref", "HEAD", "refs/heads/trunk")

    note = post_gen.init_repository(tmp_path)

    assert "left as it was" in note
    assert git(tmp_path, "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/trunk"


def test_inside_another_repository_the_note_says_so(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    project = tmp_path / "flows" / "sales"
    project.mkdir(parents=True)

    note = post_gen.init_repository(project)

    assert (project / ".git").is_dir()
    assert f"inside the repository {tmp_path}" in note


def test_git_variables_of_a_calling_git_do_not_move_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    project = tmp_path / "project"
    project.mkdir()

    post_gen.init_repository(project)

    assert (project / ".git").is_dir()
    assert not (tmp_path / "elsewhere.git").exists()


def test_the_next_steps_enter_the_project_from_where_the_bake_started(
    bake: Bake, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`cd <slug>` was wrong for a bake with `-o DIR`: the path is the baked folder's."""
    monkeypatch.setenv("PWD", str(tmp_path))  # the hook runs inside the project

    project = bake().project_path

    steps = capfd.readouterr().out
    assert f"    cd {project.relative_to(tmp_path)}\n" in steps
    assert (tmp_path / project.relative_to(tmp_path) / "pyproject.toml").is_file()


def test_a_project_outside_the_starting_folder_is_entered_by_its_absolute_path(
    tmp_path: Path,
) -> None:
    project = tmp_path / "out" / "daily_sales_report"

    assert post_gen.folder_to_enter(project, str(tmp_path / "elsewhere")) == str(project)
    assert post_gen.folder_to_enter(project, None) == str(project)
    assert post_gen.folder_to_enter(project, str(tmp_path)) == "out/daily_sales_report"
