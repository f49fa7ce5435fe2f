"""Sentry Crons: check-ins for each run of a scheduled flow."""

from __future__ import annotations

import datetime

import pendulum
import pytest
import sentry_sdk
from prefect import task
from prefect.schedules import CronSchedule, IntervalSchedule

from .project import SentryEndpoint, module

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
    assert started["monitor_slug"] == ended["monitor_slug"] == "daily-sales-report"
    assert ended["duration"] >= 0
    assert started["environment"] == "test"
    assert started["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "0 6 * * *"},
        "timezone": "UTC",
        "checkin_margin": crons.CHECKIN_MARGIN_MINUTES,
        "max_runtime": crons.MAX_RUNTIME_MINUTES,
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


def test_the_monitor_slug_is_the_flow_name_in_lowercase_ascii_words() -> None:
    assert crons.monitor_slug("Daily Sales Report") == "daily-sales-report"
    assert crons.monitor_slug('Ventes "été" ${HOME}/x') == "ventes-ete-home-x"
    assert crons.monitor_slug("x" * 80) == "x" * 50
    assert crons.monitor_slug("!!!") == "flow"


def test_only_a_single_cron_schedule_becomes_a_monitor() -> None:
    every_hour = IntervalSchedule(interval=datetime.timedelta(hours=1))

    assert crons.monitor_config(None) is None
    assert crons.monitor_config(every_hour) is None
    assert crons.monitor_config(DAILY)["schedule"]["value"] == "0 6 * * *"


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
