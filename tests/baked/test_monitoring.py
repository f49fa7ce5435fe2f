"""What gets reported, once, with which context: real flow runs, the real SDK and transport.

The other test_monitoring_*.py files cover executors,
secrets, faults, delivery and Sentry Crons.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Iterator

import prefect
import pytest
import sentry_sdk
from prefect import Flow, Parameter, task
from prefect.executors import LocalExecutor

from .fixtures import REGION, monitoring_warnings, outcome
from .project import SentryEndpoint, module
from .sample_tasks import add_one, invert

MonitoredFlow = module("monitoring").MonitoredFlow
init_base_flow = module("monitoring").init_base_flow
sentry_setup = module("monitoring.sentry_setup")
SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME = module("monitoring.transport").SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME
PREFECT_TENANT_SLUG_ENV_NAME = module("monitoring.events").PREFECT_TENANT_SLUG_ENV_NAME

FOUR_VARIABLES = (
    sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME,
    sentry_setup.SENTRY_REGION_ENV_NAME,
    sentry_setup.SENTRY_ENVIRONMENT_ENV_NAME,
    sentry_setup.SENTRY_RELEASE_ENV_NAME,
)


@task(name="Divide by zero")
def divide_by_zero() -> float:
    return 1 / 0


@task
def explode(name: str) -> None:
    raise RuntimeError(f"{name} exploded")


class UnavailableExecutor(LocalExecutor):
    """An executor that cannot start, as a Dask cluster that cannot be reached."""

    @contextlib.contextmanager
    def start(self) -> Iterator[None]:
        raise RuntimeError("the cluster is unavailable")
        yield


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
    assert len(monitoring_warnings(caplog, missing)) == 1
    assert len(monitoring_warnings(caplog)) == 1


def test_without_any_variable_monitoring_stays_off_and_the_flow_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with MonitoredFlow("Succeeding flow") as flow:
        add_one(1)

    state = flow.run()

    assert state.is_successful()
    assert not sentry_sdk.is_initialized()
    assert all(len(monitoring_warnings(caplog, name)) == 1 for name in FOUR_VARIABLES)


def test_a_failure_is_reported_once_with_the_flow_run_data(monitoring_env: SentryEndpoint) -> None:
    state = failing_flow().run()
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert (event["environment"], event["release"]) == ("test", "0123abc")
    tags = event["tags"]
    assert tags["region"] == REGION
    assert tags["flow_name"] == "Failing flow"
    assert tags["flow_run_name"] and tags["flow_run_id"]
    assert (tags["task_name"], tags["task_slug"]) == ("invert", "invert-1")
    assert tags["task_run_count"] == "1"
    assert "map_index" not in tags  # not a mapped task
    assert "flow_run_version" not in tags  # absent from local runs
    assert "flow_run_url" not in tags  # no backend, no Prefect UI
    assert event["contexts"]["flow_parameters"] == {"api_token": "[Filtered]", "day": "2024-01-31"}


def test_only_the_failing_task_runs_are_reported_not_their_downstream_tasks(
    monitoring_env: SentryEndpoint,
) -> None:
    with MonitoredFlow("Mapped failures") as flow:
        inverted = invert.map([1, 0, 2, 0])
        added = add_one.map(inverted)  # children 1 and 3: TriggerFailed, not reported
        after = add_one(explode("alone"))  # TriggerFailed, not reported

    state = flow.run()
    sentry_sdk.flush()

    assert [type(s).__name__ for s in state.result[added].map_states].count("TriggerFailed") == 2
    assert type(state.result[after]).__name__ == "TriggerFailed"
    events = monitoring_env.events(expected=3)
    reported = sorted((e["tags"]["task_name"], e["tags"].get("map_index", "-")) for e in events)
    assert reported == [("explode", "-"), ("invert", "1"), ("invert", "3")]


def test_each_event_carries_only_its_own_task_data(monitoring_env: SentryEndpoint) -> None:
    with MonitoredFlow("Several failures") as flow:
        explode.map(["first", "second"])
        explode("third")
        add_one(1)

    flow.run()
    sentry_sdk.flush()

    events = monitoring_env.events(expected=3)
    assert len(events) == 3
    for event in events:
        message = event["exception"]["values"][-1]["value"]
        tags = event["tags"]
        expected_index = {"first exploded": "0", "second exploded": "1"}.get(message)
        assert tags.get("map_index") == expected_index, message
        assert tags["task_name"] == "explode"
        assert tags["task_slug"] in ("explode-1", "explode-2")
    assert len({event["tags"]["task_slug"] for event in events}) == 2


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


def test_a_task_that_prefect_does_not_retry_for_its_error_is_reported_at_once(
    monitoring_env: SentryEndpoint,
) -> None:
    @task(max_retries=2, retry_delay=datetime.timedelta(seconds=0), retry_on={ConnectionError})
    def wrong_input() -> None:
        raise ValueError("not retried: only connection errors are")

    with MonitoredFlow("Retry on") as flow:
        wrong_input()

    flow.run()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    assert event["tags"]["task_run_count"] == "1"


@task
def skip_rows_then_fail() -> None:
    logger = prefect.context.get("logger")
    logger.info("loaded 7 rows")
    logger.warning("skipped 3 rows without a date")
    raise ValueError("no rows left")


def test_warnings_and_errors_come_along_as_breadcrumbs_info_lines_do_not(
    monitoring_env: SentryEndpoint,
) -> None:
    with MonitoredFlow("Logging flow") as flow:
        skip_rows_then_fail()
    flow.run()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    crumbs = [crumb.get("message", "") for crumb in event["breadcrumbs"]["values"]]
    assert "skipped 3 rows without a date" in crumbs
    assert "loaded 7 rows" not in crumbs
    assert not any("Starting task run" in message for message in crumbs)
    assert "modules" not in event  # the installed packages: the release pins them


def test_a_flow_that_fails_by_itself_is_reported_once(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, "1")
    with MonitoredFlow("No executor", executor=UnavailableExecutor()) as flow:
        add_one(1)

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["value"] == "the cluster is unavailable"
    assert event["tags"]["flow_name"] == "No executor"
    assert "task_name" not in event["tags"]


@pytest.mark.parametrize("monitored_run_before", [False, True], ids=["first", "after-a-run"])
def test_a_plain_flow_with_init_base_flow_upstream_reports_a_failure_once(
    monitoring_env: SentryEndpoint, monitored_run_before: bool
) -> None:
    """A plain Flow, not a MonitoredFlow, with init_base_flow upstream of its task; also
    after a MonitoredFlow ran in the process, whose handlers report failures instead."""
    if monitored_run_before:
        with MonitoredFlow("Ran before") as before:
            invert(1)
        assert before.run().is_successful()
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
    assert event["tags"]["task_name"] == "Divide by zero"


def test_a_plain_flow_reports_its_failure_after_a_monitored_flow_used_init_base_flow(
    monitoring_env: SentryEndpoint,
) -> None:
    """init_base_flow is one task object, shared by every flow of the process: a
    MonitoredFlow built first leaves it as it was, so the plain Flow's failure is reported."""
    with MonitoredFlow("Monitored first") as monitored:
        invert(1, upstream_tasks=[init_base_flow])
    with Flow("Plain after") as plain:
        divide_by_zero(upstream_tasks=[init_base_flow])

    assert monitored.run().is_successful()
    assert plain.run().is_failed()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert event["tags"]["flow_name"] == "Plain after"


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


@pytest.mark.parametrize(
    ("api", "ui"),
    [
        ("https://api.prefect.io", "https://cloud.prefect.io"),
        ("http://prefect-server:4200", "http://localhost:8080"),
    ],
    ids=["prefect-cloud", "prefect-server"],
)
def test_events_of_a_run_with_a_backend_link_to_it_in_the_prefect_ui(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, api: str, ui: str
) -> None:
    monkeypatch.setenv(PREFECT_TENANT_SLUG_ENV_NAME, "my-team")
    monkeypatch.setitem(prefect.config.cloud, "api", api)
    sentry_setup.init_sentry()

    with prefect.context(running_with_backend=True, flow_run_id="1234-abcd"):
        sentry_sdk.capture_message("in a backend run")
    sentry_sdk.capture_message("outside any run")
    sentry_sdk.flush()

    inside, outside = monitoring_env.events(expected=2)
    assert inside["tags"]["flow_run_url"] == f"{ui}/my-team/flow-run/1234-abcd"
    assert "flow_run_url" not in outside["tags"]


def test_the_dsn_variable_wins_over_ssm(
    sentry: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_ENV_NAME, sentry.dsn)
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME, "/not/in/ssm")

    failing_flow().run()
    sentry_sdk.flush()

    assert len(sentry.events(expected=1)) == 1


def test_monitoring_changes_nothing_in_the_outcome_of_a_run(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = failing_flow()
    with_monitoring = outcome(flow, flow.run())
    for name in FOUR_VARIABLES:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sentry_setup, "_started_pid", None)
    sentry_sdk.get_global_scope().set_client(None)

    assert outcome(flow, flow.run()) == with_monitoring


def test_a_task_mapped_over_a_failed_upstream_is_not_reported(
    monitoring_env: SentryEndpoint,
) -> None:
    """Prefect fails the mapped task with "No upstream states can be mapped over"."""
    with MonitoredFlow("Validate, then transform") as flow:
        transformed = add_one.map(explode("validate"))

    state = flow.run()
    sentry_sdk.flush()

    assert state.result[transformed].message == "No upstream states can be mapped over."
    [event] = monitoring_env.events(expected=1, timeout=1)
    assert event["exception"]["values"][-1]["value"] == "validate exploded"


def test_a_task_added_after_the_with_block_is_monitored_too(
    monitoring_env: SentryEndpoint,
) -> None:
    with MonitoredFlow("Added later") as flow:
        add_one(1)
    flow.add_task(divide_by_zero)

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    assert event["tags"]["task_name"] == "Divide by zero"


def test_failures_are_unhandled_errors_of_the_prefect_integration(
    monitoring_env: SentryEndpoint,
) -> None:
    failing_flow().run()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    mechanism = event["exception"]["values"][-1]["mechanism"]
    assert (mechanism["type"], mechanism["handled"]) == ("prefect", False)
    assert "prefect" in event["sdk"]["integrations"]


def test_without_sentry_environment_events_are_local_and_the_log_says_so(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv(sentry_setup.SENTRY_ENVIRONMENT_ENV_NAME)
    caplog.set_level("INFO")

    failing_flow().run()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    assert event["environment"] == "local"
    messages = [record.getMessage() for record in caplog.records]
    [started] = [message for message in messages if message.startswith("Sentry is on")]
    assert started == "Sentry is on: environment 'local', release '0123abc'."
    [warning] = monitoring_warnings(caplog, sentry_setup.SENTRY_ENVIRONMENT_ENV_NAME)
    assert "'local'" in warning


@pytest.mark.parametrize(
    "rows",
    [
        [{"order": n, "customer": f"customer-{n}", "amount": n * 1.5} for n in range(20_000)],
        {f"key-{n}": "x" * 50 for n in range(20_000)},
        "y" * 3_000_000,
        [["z" * 200_000] * 5],
    ],
    ids=["list-of-rows", "dict", "long-string", "few-big-items"],
)
def test_an_event_stays_small_whatever_the_parameters(
    monitoring_env: SentryEndpoint, rows: object
) -> None:
    with MonitoredFlow("Big parameters") as flow:
        add_one(invert(0), upstream_tasks=[Parameter("rows", default=rows)])

    flow.run()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    [body] = monitoring_env.bodies
    assert len(body) < 100_000
    summary = event["contexts"]["flow_parameters"]["rows"]
    assert summary["type"] == type(rows).__name__
    assert summary["length"] == len(rows)
    assert 0 < len(summary["starts_with"]) <= 200
