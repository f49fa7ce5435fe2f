"""Sentry Crons: check-ins for each run of a scheduled flow."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from pathlib import Path

import pendulum
import prefect
import pytest
import sentry_sdk
from prefect import Parameter, task
from prefect.engine import signals
from prefect.engine.state import Failed, State
from prefect.executors import LocalDaskExecutor, LocalExecutor
from prefect.schedules import CronSchedule, IntervalSchedule, Schedule, adjustments, filters
from prefect.schedules.clocks import CronClock, DatesClock, IntervalClock

from .fixtures import monitoring_warnings
from .project import ANSWERS, SentryEndpoint, module

deployment = module("deployment")
project_flow = module("flow")
MonitoredFlow = module("monitoring").MonitoredFlow
crons = module("monitoring.crons")

DAILY = CronSchedule("0 6 * * *")


@task
def succeed() -> int:
    return 1


@task
def fail() -> None:
    raise RuntimeError("broken")


@pytest.mark.parametrize(("body", "status"), [(succeed, "ok"), (fail, "error")])
def test_a_scheduled_run_checks_in_when_it_starts_and_when_it_ends(
    monitoring_env: SentryEndpoint, body: object, status: str
) -> None:
    with MonitoredFlow("Daily Sales Report", schedule=DAILY) as flow:
        body()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    started, ended = monitoring_env.check_ins(expected=2)
    assert (started["status"], ended["status"]) == ("in_progress", status)
    assert started["check_in_id"] == ended["check_in_id"]
    assert started["monitor_slug"] == ended["monitor_slug"]
    assert started["monitor_slug"] == crons.monitor_slug("Daily Sales Report")
    assert ended["duration"] >= 0
    assert started["environment"] == "test"
    assert started["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "0 6 * * *"},
        "timezone": "UTC",
        "checkin_margin": 10,
        "max_runtime": 120,
        "failure_issue_threshold": 1,
        "recovery_threshold": 1,
    }
    assert len(monitoring_env.events()) == (status == "error")


def test_an_unscheduled_flow_does_not_check_in(monitoring_env: SentryEndpoint) -> None:
    with MonitoredFlow("On demand") as flow:
        succeed()

    flow.run()
    sentry_sdk.flush()

    assert monitoring_env.check_ins() == []


def test_the_project_flow_checks_in_as_the_answer_sentry_crons_says() -> None:
    assert project_flow.flow.sentry_crons is deployment.SENTRY_CRONS


def test_sentry_crons_false_turns_check_ins_off(monitoring_env: SentryEndpoint) -> None:
    with MonitoredFlow("Daily Sales Report", schedule=DAILY, sentry_crons=False) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    assert monitoring_env.check_ins() == []


def test_a_flow_without_a_schedule_has_no_monitor() -> None:
    config, problem = crons.monitor_config(None)

    assert config is None and problem == "the flow has no schedule"
    assert crons.monitor_config(DAILY)[0]["schedule"] == {"type": "crontab", "value": "0 6 * * *"}


def test_a_schedule_in_another_time_zone_keeps_its_time_zone_on_the_monitor(
    monitoring_env: SentryEndpoint,
) -> None:
    start = pendulum.datetime(2026, 1, 1, tz="Europe/Paris")
    paris = CronSchedule("30 7 * * 1-5", start_date=start)
    with MonitoredFlow("Paris mornings", schedule=paris) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    started, ended = monitoring_env.check_ins(expected=2)
    assert started["monitor_config"]["timezone"] == ended["monitor_config"]["timezone"]
    assert started["monitor_config"]["timezone"] == "Europe/Paris"
    assert started["monitor_config"]["schedule"]["value"] == "30 7 * * 1-5"


# Issue 21, defect 5: runs the check-ins got wrong.


@task(max_retries=2, retry_delay=datetime.timedelta(seconds=0))
def fails_once() -> int:
    if prefect.context.get("task_run_count", 1) < 2:
        raise RuntimeError("flaky")
    return 1


@task(max_retries=1, retry_delay=datetime.timedelta(seconds=0))
def always_fails() -> None:
    raise RuntimeError("still broken")


@task
def asks_for_a_retry() -> int:
    if prefect.context.get("task_run_count", 1) < 2:
        raise signals.RETRY("not yet", start_time=pendulum.now("utc"))
    return 1


@pytest.mark.parametrize(
    ("body", "status"),
    [(fails_once, "ok"), (asks_for_a_retry, "ok"), (always_fails, "error")],
    ids=["max_retries-then-success", "RETRY-signal-then-success", "max_retries-final-failure"],
)
@pytest.mark.parametrize("executor", [LocalExecutor, LocalDaskExecutor], ids=["local", "threads"])
def test_a_run_whose_tasks_were_retried_closes_its_check_in(
    monitoring_env: SentryEndpoint, body: object, status: str, executor: type
) -> None:
    with MonitoredFlow("Retried", schedule=DAILY, executor=executor()) as flow:
        body()

    state = flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    assert state.is_successful() is (status == "ok")
    started, ended = monitoring_env.check_ins(expected=2)
    assert (started["status"], ended["status"]) == ("in_progress", status)
    assert started["check_in_id"] == ended["check_in_id"]
    assert ended["duration"] >= 0
    assert len(monitoring_env.check_ins(expected=3, timeout=0.2)) == 2


def test_two_runs_of_one_process_open_two_check_ins(monitoring_env: SentryEndpoint) -> None:
    with MonitoredFlow("Twice", schedule=DAILY) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    check_ins = monitoring_env.check_ins(expected=4)
    assert [check_in["status"] for check_in in check_ins] == ["in_progress", "ok"] * 2
    assert len({check_in["check_in_id"] for check_in in check_ins}) == 2


def raise_on_success(flow: object, old_state: State, new_state: State) -> State:
    if new_state.is_successful():
        raise RuntimeError("the team's handler broke")
    return new_state


def test_a_run_failed_by_the_team_s_own_flow_state_handler_checks_in_error(
    monitoring_env: SentryEndpoint,
) -> None:
    with MonitoredFlow("Own handler", schedule=DAILY, state_handlers=[raise_on_success]) as flow:
        succeed()

    state = flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    assert state.is_failed()
    started, ended = monitoring_env.check_ins(expected=2)
    assert (started["status"], ended["status"]) == ("in_progress", "error")
    assert started["check_in_id"] == ended["check_in_id"]
    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["value"] == "the team's handler broke"
    assert len(monitoring_env.check_ins(expected=3, timeout=0.2)) == 2


def test_a_team_s_flow_state_handler_still_sees_and_changes_the_states(
    monitoring_env: SentryEndpoint,
) -> None:
    seen = []

    def count_then_fail(flow: object, old_state: State, new_state: State) -> State:
        seen.append(type(new_state).__name__)
        if new_state.is_successful():
            return Failed("failed by the team", result=new_state.result)
        return new_state

    with MonitoredFlow("Own handler", schedule=DAILY, state_handlers=[count_then_fail]) as flow:
        succeed()

    state = flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    assert seen == ["Running", "Success"]
    assert state.is_failed() and state.message == "failed by the team"
    _, ended = monitoring_env.check_ins(expected=2)
    assert ended["status"] == "error"


def test_a_run_missing_a_required_parameter_checks_in_error_and_is_reported(
    monitoring_env: SentryEndpoint,
) -> None:
    with MonitoredFlow("Needs a day", schedule=DAILY) as flow:
        succeed(upstream_tasks=[Parameter("day")])

    with pytest.raises(ValueError, match="required parameters: day"):
        flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    [check_in] = monitoring_env.check_ins(expected=1)
    assert check_in["status"] == "error"
    assert check_in["monitor_slug"] == crons.monitor_slug("Needs a day")
    [event] = monitoring_env.events(expected=1)
    assert "required parameters: day" in event["exception"]["values"][-1]["value"]


def test_the_project_entry_point_reports_a_missing_parameter(
    monitoring_env: SentryEndpoint,
) -> None:
    run = module("deployment.run")
    with MonitoredFlow("Needs a day", schedule=DAILY) as flow:
        succeed(upstream_tasks=[Parameter("day")])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(project_flow, "flow", flow)
        with pytest.raises(ValueError):
            run.main([])
    sentry_sdk.flush()

    assert [check_in["status"] for check_in in monitoring_env.check_ins(expected=1)] == ["error"]
    assert len(monitoring_env.events(expected=1)) == 1


SENTRY_SLUG = re.compile(r"^(?![0-9]+$)[a-z0-9]+(?:-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    "names",
    [
        ["Отчёт о продажах", "売上レポート", "تقرير المبيعات", "!!!"],
        ["Daily Sales Report", "daily-sales-report", "Daily sales report!", "daily_sales_report"],
        ["x" * 50 + " eu", "x" * 50 + " us", "x" * 80],
    ],
    ids=["non-ascii", "punctuation", "long"],
)
def test_different_flow_names_get_different_valid_monitor_slugs(names: list) -> None:
    slugs = [crons.monitor_slug(name) for name in names]

    assert len(set(slugs)) == len(names)
    assert all(SENTRY_SLUG.fullmatch(slug) and len(slug) <= 50 for slug in slugs), slugs
    assert [crons.monitor_slug(name) for name in names] == slugs  # stable


def test_a_monitor_slug_reads_as_the_flow_name() -> None:
    assert crons.monitor_slug("daily-sales-report") == "daily-sales-report"
    assert crons.monitor_slug("Daily Sales Report").startswith("daily-sales-report-")
    assert crons.monitor_slug("Ventes été").startswith("ventes-ete-")
    # Sentry's longest slug, 50 characters: the name's start, a dash, 8 hex digits of its hash.
    digest = hashlib.sha256(b"x" * 80).hexdigest()[:8]
    assert crons.monitor_slug("x" * 80) == "x" * 41 + "-" + digest


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(clocks=[CronClock("0 6 * * *")], filters=[filters.is_weekday]),
        Schedule(clocks=[CronClock("0 6 * * *")], adjustments=[adjustments.next_weekday]),
        Schedule(clocks=[CronClock("0 6 * * *"), CronClock("0 18 * * *")]),
        Schedule(clocks=[IntervalClock(datetime.timedelta(seconds=90))]),
        Schedule(clocks=[DatesClock([pendulum.datetime(2030, 1, 1)])]),
        Schedule(clocks=[CronClock("0 6 1 * 1", day_or=False)]),
        Schedule(clocks=[CronClock("0 6 * * *", end_date=pendulum.datetime(2030, 1, 1))]),
    ],
    ids=["filters", "adjustments", "two-clocks", "seconds-interval", "dates", "day_and", "ends"],
)
def test_a_schedule_sentry_crons_cannot_express_warns_and_does_not_check_in(
    monitoring_env: SentryEndpoint, caplog: pytest.LogCaptureFixture, schedule: Schedule
) -> None:
    with MonitoredFlow("Odd schedule", schedule=schedule) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    [warning] = monitoring_warnings(caplog, "Sentry Crons")
    assert "Odd schedule" in warning
    assert monitoring_env.check_ins(timeout=0.2) == []


@pytest.mark.parametrize(
    ("interval", "value", "unit"),
    [
        (datetime.timedelta(hours=2), 2, "hour"),
        (datetime.timedelta(days=1), 1, "day"),
        (datetime.timedelta(weeks=2), 2, "week"),
        (datetime.timedelta(minutes=90), 90, "minute"),
    ],
    ids=["2-hours", "1-day", "2-weeks", "90-minutes"],
)
def test_an_interval_schedule_is_monitored_as_an_interval(
    monitoring_env: SentryEndpoint, interval: datetime.timedelta, value: int, unit: str
) -> None:
    with MonitoredFlow("Every so often", schedule=IntervalSchedule(interval=interval)) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    started, _ = monitoring_env.check_ins(expected=2)
    assert started["monitor_config"]["schedule"] == {
        "type": "interval",
        "value": value,
        "unit": unit,
    }


# One source of truth: deployment/sentry_crons.json, which terraform/crons.tf reads too.


def test_the_project_checks_in_with_exactly_the_monitor_of_its_settings_file(
    monitoring_env: SentryEndpoint,
) -> None:
    settings_file = deployment.SENTRY_CRONS_SETTINGS
    with MonitoredFlow(
        "Any name", schedule=deployment.SCHEDULE, sentry_crons=deployment.SENTRY_CRONS
    ) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    monitored = bool(ANSWERS["schedule"].strip()) and ANSWERS["sentry_crons"]
    assert settings_file.exists() is monitored
    if not monitored:  # terraform/crons.tf creates no monitor either
        assert deployment.SENTRY_CRONS is ANSWERS["sentry_crons"]
        assert monitoring_env.check_ins(timeout=0.2) == []
        return
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    started, ended = monitoring_env.check_ins(expected=2)
    slug = settings.pop("slug")
    for check_in in (started, ended):
        assert (check_in["monitor_slug"], check_in["monitor_config"]) == (slug, settings)
    assert settings["schedule"] == {"type": "crontab", "value": deployment.SCHEDULE_CRON}


def test_a_flow_whose_schedule_is_not_its_monitor_s_says_so_and_still_checks_in(
    monitoring_env: SentryEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = crons.CronsMonitor(slug="nightly", config=crons.monitor_config(DAILY)[0])
    every_hour = CronSchedule("0 * * * *")
    with MonitoredFlow("Moved", schedule=every_hour, sentry_crons=monitor) as flow:
        succeed()

    flow.run(run_on_schedule=False)
    sentry_sdk.flush()

    [warning] = monitoring_warnings(caplog, "Sentry Crons")
    assert "'0 * * * *' in UTC is not the monitor's '0 6 * * *' in UTC" in warning
    started, ended = monitoring_env.check_ins(expected=2)
    assert started["monitor_slug"] == ended["monitor_slug"] == "nightly"
    assert started["monitor_config"]["schedule"]["value"] == "0 6 * * *"


GOOD_SETTINGS = {
    "slug": "daily-sales-report",
    "schedule": {"type": "crontab", "value": "0 6 * * *"},
    "timezone": "UTC",
    "checkin_margin": 10,
    "max_runtime": 120,
    "failure_issue_threshold": 1,
    "recovery_threshold": 1,
}


def test_a_settings_file_becomes_the_monitor_the_check_ins_send(tmp_path: Path) -> None:
    path = tmp_path / "sentry_crons.json"
    path.write_text(json.dumps(GOOD_SETTINGS), encoding="utf-8")

    monitor = crons.CronsMonitor.read(path)

    assert monitor.slug == "daily-sales-report"
    assert monitor.config == {key: GOOD_SETTINGS[key] for key in GOOD_SETTINGS if key != "slug"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "Daily Sales"),
        ("slug", "x" * 51),
        ("schedule", {"type": "interval", "value": 1, "unit": "day"}),
        ("schedule", {"type": "crontab", "value": "0 6 * *"}),
        ("timezone", ""),
        ("checkin_margin", 0),
        ("max_runtime", "120"),
        ("failure_issue_threshold", True),
        ("recovery_threshold", None),
    ],
)
def test_a_wrong_settings_file_names_the_field_and_the_fix(
    tmp_path: Path, field: str, value: object
) -> None:
    path = tmp_path / "sentry_crons.json"
    path.write_text(json.dumps({**GOOD_SETTINGS, field: value}), encoding="utf-8")

    with pytest.raises(ValueError, match=rf"sentry_crons.json: {field}(\.value)? is .* - write "):
        crons.CronsMonitor.read(path)


def test_each_scheduled_run_of_one_flow_run_context_has_its_own_check_in() -> None:
    """`flow.run()` on its schedule keeps one flow_run_id for every scheduled run it
    starts: the scheduled start tells them apart, and stays the same while tasks retry."""
    six, seven = pendulum.datetime(2026, 1, 1, 6), pendulum.datetime(2026, 1, 1, 7)
    with prefect.context(flow_run_id="run", scheduled_start_time=six):
        first = crons.run_check_in_id("daily")
        again = crons.run_check_in_id("daily")
    with prefect.context(flow_run_id="run", scheduled_start_time=seven):
        second = crons.run_check_in_id("daily")

    assert first == again != second
    assert len({first, second, crons.run_check_in_id("daily")}) == 3  # outside any run
