"""Edges that a mutation tool found untested (docs/mutation.md): failures of other kinds
than an exception, a chain of tasks, the Prefect Server link, the flush of events still on
their way from a worker process, and the documented defaults, written out as numbers."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, List

import prefect
import pytest
import sentry_sdk
from prefect import task
from prefect.engine import signals

from .fixtures import monitoring_warnings, use_monitoring
from .project import SentryEndpoint, module
from .sample_tasks import capture_errors

MonitoredFlow = module("monitoring").MonitoredFlow
init_sentry = module("monitoring").init_sentry
budget = module("monitoring.budget")
events = module("monitoring.events")
transport = module("monitoring.transport")


@task(timeout=1)
def hang() -> None:
    for _ in range(200):  # ten seconds, in steps Prefect's timeout can interrupt
        time.sleep(0.05)


@task
def reject_rows() -> None:
    raise signals.VALIDATIONFAIL("3 rows have no customer id")


@task
def rows() -> List[int]:
    return [1, 2, 3]


@task
def after_rows() -> str:
    return "ran once"


@pytest.mark.parametrize(
    ("body", "state", "error"),
    [(hang, "TimedOut", "TaskTimeoutSignal"), (reject_rows, "ValidationFailed", "VALIDATIONFAIL")],
    ids=["timed-out", "validation-failed"],
)
def test_a_task_that_times_out_or_fails_validation_is_reported_once(
    monitoring_env: SentryEndpoint, body: Any, state: str, error: str
) -> None:
    with MonitoredFlow("Other failures") as flow:
        failing = body()

    result = flow.run()
    sentry_sdk.flush()

    assert type(result.result[failing]).__name__ == state
    [event] = monitoring_env.events(expected=2, timeout=1)  # one more than expected: none may come
    assert event["exception"]["values"][-1]["type"] == error
    assert event["tags"]["task_name"] == body.name


def test_a_chain_of_tasks_in_a_monitored_flow_runs_each_task_once() -> None:
    """`flow.chain` orders tasks: the second runs once, not once per item of the first's list."""
    with MonitoredFlow("Chained") as flow:
        first, second = rows(), after_rows()
    flow.chain(first, second)

    state = flow.run()

    assert state.is_successful()
    assert not state.result[second].is_mapped()
    assert state.result[second].result == "ran once"


@pytest.mark.parametrize(
    ("backend", "api", "link"),
    [
        (
            "server",
            "http://prefect-server:4200",
            "http://localhost:8080/default/flow-run/1234-abcd",
        ),
        ("cloud", "https://api.prefect.io", None),  # Prefect Cloud has no default tenant
    ],
)
def test_without_a_tenant_slug_only_prefect_server_runs_link_to_the_ui(
    monkeypatch: pytest.MonkeyPatch, backend: str, api: str, link: Any
) -> None:
    monkeypatch.delenv(events.PREFECT_TENANT_SLUG_ENV_NAME, raising=False)
    monkeypatch.setitem(prefect.config, "backend", backend)
    monkeypatch.setitem(prefect.config.cloud, "api", api)
    monkeypatch.setitem(prefect.config.server.ui, "endpoint", "http://localhost:8080/")

    with prefect.context(running_with_backend=True, flow_run_id="1234-abcd"):
        assert events.flow_run_url() == link
    with prefect.context(flow_run_id="1234-abcd"):  # a local run of the same flow
        assert events.flow_run_url() is None


@pytest.mark.parametrize(
    ("api", "ui"),
    [
        ("https://api.prefect.io/", "https://cloud.prefect.io"),
        ("https://api-beta.prefect.io", "https://beta.prefect.io"),
    ],
)
def test_the_prefect_cloud_ui_is_found_from_its_api_address(
    monkeypatch: pytest.MonkeyPatch, api: str, ui: str
) -> None:
    monkeypatch.setitem(prefect.config.cloud, "api", api)

    assert events.prefect_ui_url() == ui


def test_the_flush_waits_for_events_a_worker_process_handed_over(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process-pool worker hands its events to the flow's process, which takes 50 ms for
    each here: when the flow's process flushes, they are still on their way."""
    assert init_sentry()  # the flow's process: it takes and sends its workers' events
    sdk_transport = sentry_sdk.get_client().transport
    take = sdk_transport.capture_envelope

    def take_slowly(envelope: Any) -> None:
        time.sleep(0.05)
        take(envelope)

    monkeypatch.setattr(sdk_transport, "capture_envelope", take_slowly)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        pool.submit(capture_errors, 20).result()  # handed over, not yet sent

    assert transport.flush(timeout=30)

    assert len(monitoring_env.events(timeout=0)) == 20


def test_a_worker_process_sets_up_its_exit_flush_once(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flow state change of a worker asks for the flush at its exit: one is set up."""
    assert init_sentry()  # sends itself: not a pool worker handing its events over
    finalizers: List[Any] = []
    monkeypatch.setattr(transport, "_exit_flush_pid", None)
    monkeypatch.setattr(
        transport.multiprocessing.util, "Finalize", lambda *args, **kwargs: finalizers.append(args)
    )

    for _ in range(3):
        transport.deliver_before_exit()

    assert finalizers == [(None, transport.flush_at_exit)]


def test_a_limit_of_one_event_per_task_is_taken(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, "1")

    assert budget.FailureBudget().limit() == 1
    assert not monitoring_warnings(caplog, "SENTRY_MAX_EVENTS_PER_TASK")


def test_the_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbers the README and the variables' docs promise, written out here: a test that
    read them from the code would pass whatever they became."""
    monkeypatch.delenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, raising=False)
    monkeypatch.delenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, raising=False)

    assert budget.FailureBudget().limit() == 10
    assert transport.shutdown_timeout() == 2.0


def test_the_shutdown_timeout_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, "0.5")

    assert transport.shutdown_timeout() == 0.5


def test_more_events_at_once_than_the_sdk_queues_is_explained_once(
    monkeypatch: pytest.MonkeyPatch, aws: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Sentry takes an event each 50 ms here: of 150 captured at once, the SDK's queue
    (100) drops the rest, and the warning says so."""
    slow = SentryEndpoint(delay=0.05).start()
    use_monitoring(monkeypatch, slow.dsn, aws)
    assert init_sentry()

    for number in range(150):
        sentry_sdk.capture_message(f"one of many, {number}", level="error")

    [warning] = monitoring_warnings(caplog, "not delivered")
    assert "more events at once than the SDK queues (100)" in warning
    slow.stop()


def test_a_list_parameter_is_summarised_from_its_65th_item(
    monitoring_env: SentryEndpoint,
) -> None:
    """Up to 64 short items, a parameter is on the event whole; from 65, as a summary."""
    assert init_sentry()
    for rows in (list(range(64)), list(range(65))):
        with prefect.context(parameters={"rows": rows}):
            sentry_sdk.capture_message(f"{len(rows)} rows")
    sentry_sdk.flush()

    whole, summarised = monitoring_env.events(expected=2)
    assert whole["contexts"]["flow_parameters"]["rows"] == list(range(64))
    assert summarised["contexts"]["flow_parameters"]["rows"] == {
        "type": "list",
        "length": 65,
        "starts_with": "[0, 1, 2]",
    }


def test_numbers_and_strings_up_to_1024_characters_are_parameters_as_they_are(
    monitoring_env: SentryEndpoint,
) -> None:
    """Only the items of lists and dicts are counted: a string's characters are not items."""
    assert init_sentry()
    parameters = {"days": 7, "ratio": 0.5, "note": "x" * 1020, "long_note": "y" * 1100}
    with prefect.context(parameters=parameters):
        sentry_sdk.capture_message("parameters of every kind")
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    assert event["contexts"]["flow_parameters"] == {
        "days": 7,
        "ratio": 0.5,
        "note": "x" * 1020,
        "long_note": {"type": "str", "length": 1100, "starts_with": '"' + "y" * 199},
    }


def test_a_broken_sentry_never_changes_the_error_of_a_raising_state_handler(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task fails with its handler's error, whatever Sentry's SDK raises meanwhile."""

    def raising_handler(task: Any, old: Any, new: Any) -> Any:
        if new.is_running():
            raise ValueError("the team's handler broke")
        return new

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the SDK broke")

    guarded = task(lambda: 1, name="guarded", state_handlers=[raising_handler])
    with MonitoredFlow("Raising handler") as flow:
        ran = guarded()
    monkeypatch.setattr(sentry_sdk, "capture_event", broken)
    monkeypatch.setattr(sentry_sdk, "capture_message", broken)

    state = flow.run().result[ran]

    assert state.is_failed()
    assert "the team's handler broke" in repr(state.result)
    assert "the SDK broke" not in repr(state.result)
