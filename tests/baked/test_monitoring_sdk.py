"""What must hold on every sentry-sdk release the project runs on (2.x and 3.x, see
monitoring/sdk.py): no frame locals or source lines leave, no log line leaves as a
Sentry Log, and a logging integration of unknown meaning leaves Sentry off.

tests/test_sentry_sdk3.py runs these checks, and every other test_monitoring*.py, with
sentry-sdk 3 installed in the baked project.
"""

from __future__ import annotations

import logging

import prefect
import pytest
import sentry_sdk
from prefect import Flow, task
from prefect.engine.state import State
from prefect.executors import LocalDaskExecutor, LocalExecutor
from sentry_sdk import logger as sentry_logger

from .fixtures import monitoring_warnings, outcome
from .project import SentryEndpoint, module
from .sample_tasks import add_one, invert

MonitoredFlow = module("monitoring").MonitoredFlow
init_base_flow = module("monitoring").init_base_flow
sdk = module("monitoring.sdk")
transport = module("monitoring.transport")

# A customer's row in a local variable under a harmless name: no scrubber would catch it.
CUSTOMER = "Ada Lovelace, 12 Analytical Street, 5521"
EXECUTORS = {
    "local": LocalExecutor,
    "processes": lambda: LocalDaskExecutor(scheduler="processes", num_workers=2),
}
SOURCE_LINES = {"pre_context", "context_line", "post_context"}


@task
def load_rows() -> None:
    row = {"customer": CUSTOMER, "amount": 12}
    logger = logging.getLogger("sales.load")
    try:
        row["amount"] / 0
    except ZeroDivisionError:
        logger.error("could not total a row", exc_info=True)  # an event with a traceback
    logger.error("rows left unchecked", stack_info=True)  # an event with the current stack
    raise KeyError("total")  # the task's own failure


def frames(event: dict) -> list:
    """Every stack frame of an event: of its exceptions and of its threads."""
    stacks = [value.get("stacktrace") for value in event.get("exception", {}).get("values", [])]
    stacks += [thread.get("stacktrace") for thread in event.get("threads", {}).get("values", [])]
    return [frame for stack in stacks if stack for frame in stack.get("frames", [])]


def assert_frames_only_say_where(events: list, endpoint: SentryEndpoint) -> None:
    """Each frame of `load_rows`'s events has its file, function and line, and nothing
    else: no local variables, no lines of code."""
    sent = [frame for event in events for frame in frames(event)]
    assert {frame["function"] for frame in sent} >= {"load_rows"}
    assert all(frame["filename"] and frame["lineno"] > 0 for frame in sent)
    assert [frame for frame in sent if "vars" in frame or SOURCE_LINES & set(frame)] == []
    assert CUSTOMER.encode() not in b"".join(endpoint.bodies)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_no_frame_locals_nor_source_lines_leave(
    monitoring_env: SentryEndpoint, executor: str
) -> None:
    """Stack traces from a task's failure, an error logged with its traceback and one
    logged with the stack: the file, function and line of each frame, nothing more."""
    with MonitoredFlow("Frame locals", executor=EXECUTORS[executor]()) as flow:
        load_rows()

    state = flow.run()
    transport.flush()

    assert state.is_failed()
    events = monitoring_env.events(expected=3)
    assert sorted(e.get("logentry", {}).get("formatted", "failure") for e in events) == [
        "could not total a row",
        "failure",
        "rows left unchecked",
    ]
    assert_frames_only_say_where(events, monitoring_env)


def test_a_plain_flow_s_error_log_sends_no_frame_locals(monitoring_env: SentryEndpoint) -> None:
    """A plain Flow reports through Prefect's own error log line, with its traceback."""
    with Flow("Plain frame locals") as flow:
        load_rows(upstream_tasks=[init_base_flow])

    assert flow.run().is_failed()
    transport.flush()

    events = monitoring_env.events(expected=3)
    [prefect_s] = [e for e in events if e["logger"].startswith("prefect.")]
    assert prefect_s["exception"]["values"][-1]["type"] == "KeyError"
    assert_frames_only_say_where(events, monitoring_env)


@task
def log_at_every_level() -> None:
    prefect.context.logger.info("prefect info line")
    prefect.context.logger.warning("prefect warning line")
    logging.getLogger("sales.report").warning("team warning line")
    sentry_logger.warning("a Sentry Log written on purpose")  # the SDK's own log API
    logging.getLogger("sales.report").error("team error line")
    raise ValueError("report failed")


def warn_on_start(flow: Flow, old_state: State, new_state: State) -> State:
    if new_state.is_running():
        logging.getLogger("sales.flow").warning("flow warning line")
    return new_state


def test_no_log_line_leaves_as_a_sentry_log(monitoring_env: SentryEndpoint) -> None:
    """Warnings go as breadcrumbs of events, errors as events: never as Sentry Logs,
    which the scrubber does not see. Not even what the SDK's log API is given."""
    with MonitoredFlow("Sentry Logs", state_handlers=[warn_on_start]) as flow:
        log_at_every_level()

    assert flow.run().is_failed()
    transport.flush()

    events = monitoring_env.events(expected=2)
    messages = [e.get("logentry", {}).get("formatted") for e in events]
    assert "team error line" in messages
    [failure] = [e for e in events if e.get("exception", {}).get("values")]
    crumbs = [crumb["message"] for crumb in failure["breadcrumbs"]["values"]]
    assert {"prefect warning line", "team warning line"} <= set(crumbs)
    assert "prefect info line" not in crumbs
    assert monitoring_env.items("log") == []
    assert b"a Sentry Log written on purpose" not in b"".join(monitoring_env.bodies)


def test_log_lines_are_not_even_made_into_sentry_logs(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logging integration makes no Sentry Log of a log line: dropping them all before
    they are sent (sdk.drop_sentry_log) is only the second safeguard."""
    given = []
    monkeypatch.setattr(sdk, "drop_sentry_log", lambda log, hint: given.append(log["body"]))
    with MonitoredFlow("Sentry Logs", state_handlers=[warn_on_start]) as flow:
        log_at_every_level()

    assert flow.run().is_failed()
    transport.flush()

    assert len(monitoring_env.events(expected=2)) == 2
    assert set(given) <= {"a Sentry Log written on purpose"}  # by the SDK's log API, on 3.x
    assert monitoring_env.items("log") == []


class Connection:
    """Its clean-up raises: Python prints the error and goes on (sys.unraisablehook)."""

    def __del__(self) -> None:
        raise OSError("connection already closed")


@task
def open_and_drop_a_connection() -> int:
    Connection()  # dropped at once: its __del__ raises
    return 1


def test_an_error_in_a_clean_up_is_no_event(monitoring_env: SentryEndpoint) -> None:
    """Python ignores an exception raised in __del__, and so does monitoring: no task
    failed, and such errors would come outside the per-task budget of events."""
    with MonitoredFlow("Clean-up errors") as flow:
        add_one(invert(0), upstream_tasks=[open_and_drop_a_connection])

    assert flow.run().is_failed()
    transport.flush()

    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert b"connection already closed" not in b"".join(monitoring_env.bodies)


class UnknownLoggingIntegration(sdk.LoggingIntegration):
    """A LoggingIntegration whose levels no known release has: one that may mean Sentry Logs."""

    def __init__(self, level: int = logging.INFO, event_level: int = logging.ERROR) -> None:
        super().__init__()


def test_a_logging_integration_of_unknown_meaning_leaves_sentry_off(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sdk, "LoggingIntegration", UnknownLoggingIntegration)
    with MonitoredFlow("Unknown SDK") as flow:
        add_one(invert(0))
    with Flow("Unknown SDK") as plain:
        add_one(invert(0))

    state = flow.run()
    sentry_sdk.flush()

    assert outcome(flow, state) == outcome(plain, plain.run())
    [warning] = monitoring_warnings(caplog, "Sentry is off")
    assert "neither breadcrumb_level nor sentry_logs_level" in warning
    assert "pin sentry-sdk" in warning
    assert not sentry_sdk.is_initialized()
    assert monitoring_env.bodies == []
