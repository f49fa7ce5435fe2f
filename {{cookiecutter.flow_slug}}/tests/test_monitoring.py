"""Monitoring, end to end: real flow runs, the real Sentry SDK and transport, moto's SSM.

The template owns this file.
"""

from __future__ import annotations

import datetime
import logging
from typing import List

import boto3
import pytest
import sentry_sdk
from moto import mock_aws
from prefect import Flow, Parameter, task

from {{ cookiecutter.__package }} import monitoring
from {{ cookiecutter.__package }}.monitoring import MonitoredFlow, init_base_flow

from .conftest import DSN_PARAMETER, REGION
from .sentry_endpoint import SentryEndpoint

FOUR_VARIABLES = (
    monitoring.SENTRY_DSN_SSM_PARAMETER_NAME,
    monitoring.SENTRY_REGION_ENV_NAME,
    monitoring.SENTRY_ENVIRONMENT_ENV_NAME,
    monitoring.SENTRY_RELEASE_ENV_NAME,
)


@task(name="Divide by zero")
def divide_by_zero() -> float:
    return 1 / 0


@task
def invert(x: int) -> float:
    return 1 / x


@task
def add_one(x: float) -> float:
    return x + 1


def warnings_naming(caplog: pytest.LogCaptureFixture, text: str) -> List[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


def failing_flow(flow_class: type = MonitoredFlow) -> Flow:
    with flow_class("Failing flow") as flow:
        token = Parameter("api_token", default="not-for-sentry")
        day = Parameter("day", default="2024-01-31")
        add_one(invert(0), upstream_tasks=[token, day])
    return flow


@pytest.mark.parametrize("missing", FOUR_VARIABLES)
def test_each_missing_variable_warns_once_and_the_flow_still_succeeds(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    missing: str,
) -> None:
    monkeypatch.delenv(missing)
    with MonitoredFlow("Succeeding flow") as flow:
        add_one.map(invert.map([1, 2, 4]))

    state = flow.run()

    assert state.is_successful()
    assert len(warnings_naming(caplog, missing)) == 1
    others = [name for name in FOUR_VARIABLES if name != missing]
    assert all(not warnings_naming(caplog, name) for name in others)


def test_without_any_variable_monitoring_stays_off_and_the_flow_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with MonitoredFlow("Succeeding flow") as flow:
        add_one(1)

    state = flow.run()

    assert state.is_successful()
    assert not sentry_sdk.is_initialized()
    assert all(len(warnings_naming(caplog, name)) == 1 for name in FOUR_VARIABLES)


def test_a_failure_is_reported_once_with_the_flow_run_data(monitoring_env: SentryEndpoint) -> None:
    state = failing_flow().run()
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert event["environment"] == "test"
    assert event["release"] == "0123abc"
    tags = event["tags"]
    assert tags["region"] == REGION
    assert tags["flow_name"] == "Failing flow"
    assert tags["flow_run_name"] and tags["flow_run_id"]
    assert tags["task_name"] == "invert"
    assert "flow_run_version" not in tags  # absent from local runs
    assert event["contexts"]["flow_parameters"] == {"api_token": "[Filtered]", "day": "2024-01-31"}
    assert b"not-for-sentry" not in b"".join(monitoring_env.bodies)


def test_the_seed_usage_reports_a_failure_once(monitoring_env: SentryEndpoint) -> None:
    """A plain Flow with init_base_flow upstream, exactly as the original design used it."""
    with Flow("Divide by zero") as flow:
        divide_by_zero(upstream_tasks=[init_base_flow])

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert (event["environment"], event["release"]) == ("test", "0123abc")
    assert event["tags"]["region"] == REGION
    assert event["tags"]["flow_name"] == "Divide by zero"


def test_init_base_flow_upstream_of_a_mapped_task_is_not_mapped_over(
    monitoring_env: SentryEndpoint,
) -> None:
    with MonitoredFlow("Mapped") as flow:
        inverted = invert.map([1, 0, 2, 0], upstream_tasks=[init_base_flow])

    state = flow.run()
    sentry_sdk.flush()

    children = state.result[inverted].map_states
    assert [child.is_successful() for child in children] == [True, False, True, False]
    events = monitoring_env.events(expected=2)
    assert sorted(event["tags"]["map_index"] for event in events) == ["1", "3"]


def test_a_retried_task_is_reported_once_for_its_last_attempt(
    monitoring_env: SentryEndpoint,
) -> None:
    attempts = []

    @task(max_retries=2, retry_delay=datetime.timedelta(seconds=0))
    def flaky() -> None:
        attempts.append(1)
        raise RuntimeError("still broken")

    with MonitoredFlow("Retries") as flow:
        add_one(flaky())

    flow.run()
    sentry_sdk.flush()

    assert len(attempts) == 3
    [event] = monitoring_env.events(expected=1)
    assert event["tags"]["task_run_count"] == "3"
    assert event["tags"]["task_name"] == "flaky"


def test_the_dsn_variable_wins_over_ssm(
    sentry: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(monitoring.SENTRY_DSN_ENV_NAME, sentry.dsn)
    monkeypatch.setenv(monitoring.SENTRY_DSN_SSM_PARAMETER_NAME, "/not/in/ssm")
    with mock_aws():
        failing_flow().run()
    sentry_sdk.flush()

    assert len(sentry.events(expected=1)) == 1


@pytest.mark.parametrize("store_dsn", [False, True], ids=["parameter-missing", "access-denied"])
def test_an_ssm_failure_warns_once_and_changes_nothing_in_the_flow(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, store_dsn: bool
) -> None:
    baseline = failing_flow().run()
    monkeypatch.setattr(monitoring, "_started", False)
    caplog.clear()
    monkeypatch.setenv(monitoring.SENTRY_DSN_SSM_PARAMETER_NAME, DSN_PARAMETER)
    with mock_aws():
        if store_dsn:
            boto3.client("ssm").put_parameter(
                Name=DSN_PARAMETER, Value="https://k@o1.ingest.sentry.io/1", Type="SecureString"
            )
            monkeypatch.setattr(monitoring, "get_ssm_parameter", _denied)
        state = failing_flow().run()

    assert type(state) is type(baseline)
    assert state.message == baseline.message
    assert not sentry_sdk.is_initialized()
    [warning] = warnings_naming(caplog, "Sentry is off")
    assert DSN_PARAMETER in warning


def _denied(ssm_client: object, name: str, with_decryption: bool = True) -> str:
    raise ValueError(f"Failed to get SSM parameter {name!r}") from PermissionError(
        "AccessDeniedException"
    )


def test_a_failing_sentry_call_never_fails_the_flow(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sentry is broken")

    monkeypatch.setattr(sentry_sdk, "capture_exception", broken)
    with MonitoredFlow("Succeeding despite Sentry") as flow:
        result = add_one(invert(0))

    state = flow.run()

    assert state.result[result].is_failed()  # from its own upstream failure, not from Sentry
    assert state.message == "Some reference tasks failed."


def test_secret_looking_parameters_are_filtered() -> None:
    assert monitoring.filter_secrets({"db_password": "x", "API_KEY": "y", "day": "z"}) == {
        "db_password": "[Filtered]",
        "API_KEY": "[Filtered]",
        "day": "z",
    }
