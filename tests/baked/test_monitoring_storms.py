"""A task that fails thousands of times in one run: a few events, and one that counts them.

Without a limit, every failure would be an event until the
SDK's queue (100) overflows and the rest are dropped, with no event saying how many.
"""

from __future__ import annotations

from typing import Dict, List

import pytest
import sentry_sdk
from prefect import task
from prefect.executors import LocalDaskExecutor, LocalExecutor
from prefect.triggers import all_finished

from .fixtures import monitoring_warnings
from .project import SentryEndpoint, module
from .sample_tasks import capture_errors, invert, log_and_invert

MonitoredFlow = module("monitoring").MonitoredFlow
budget = module("monitoring.budget")
sentry_setup = module("monitoring.sentry_setup")
transport = module("monitoring.transport")

FAILURES = 400
LIMIT = 5


def failures_reported(events: List[Dict]) -> Dict[str, int]:
    """Events of single failures and of error log lines, and what the summary events say
    was not sent."""
    single = [e for e in events if e.get("exception")]
    summaries = [e for e in events if e.get("fingerprint", [""])[0] == "failures-not-sent"]
    log_lines = [e for e in events if e.get("logger") and not e.get("exception")]
    return {
        "sent": len(single),
        "not_sent": sum(e["contexts"]["failures"]["not_sent"] for e in summaries),
        "total_in_summaries": sum(e["contexts"]["failures"]["total"] for e in summaries),
        "summaries": len(summaries),
        "log_lines_sent": len(log_lines),
        "log_lines_not_sent": sum(
            e["contexts"].get("error_logs", {}).get("not_sent", 0) for e in summaries
        ),
    }


EXECUTORS = {
    "local": LocalExecutor,
    "threads": lambda: LocalDaskExecutor(scheduler="threads", num_workers=2),
    "processes": lambda: LocalDaskExecutor(scheduler="processes", num_workers=2),
}


@pytest.mark.parametrize(
    "executor",
    [LocalExecutor, lambda: LocalDaskExecutor(scheduler="processes", num_workers=2)],
    ids=["local", "processes"],
)
def test_a_storm_of_failures_sends_a_few_events_and_counts_the_rest(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    executor: object,
) -> None:
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, str(LIMIT))
    with MonitoredFlow("Storm", executor=executor()) as flow:
        invert.map([0] * FAILURES)

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    events = monitoring_env.events(expected=LIMIT + 1)
    counts = failures_reported(events)
    # Each process counts its own failures: one summary per process that went over.
    assert counts["sent"] + counts["not_sent"] == FAILURES
    assert counts["sent"] == LIMIT * counts["summaries"]
    summary = next(e for e in events if not e.get("exception"))
    assert summary["tags"]["task_name"] == "invert"
    assert summary["tags"]["flow_name"] == "Storm"
    assert summary["level"] == "error"
    assert (
        "failed" in summary["message"]
        and f"SENTRY_MAX_EVENTS_PER_TASK={LIMIT}" in summary["message"]
    )
    assert monitoring_warnings(caplog, "more events at once than the SDK queues") == []


@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_error_log_lines_count_against_the_budget_and_the_summary_always_arrives(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    executor: str,
) -> None:
    """Each failing task logs two errors first: the log lines are bounded as the failures are,
    and the summary that counts both arrives, however full the SDK's queue was."""
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, str(LIMIT))
    with MonitoredFlow("Logging storm", executor=EXECUTORS[executor]()) as flow:
        log_and_invert.map([0] * FAILURES)

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    events = monitoring_env.events(expected=2 * LIMIT + 1)
    counts = failures_reported(events)
    # One summary per process that went over, each counting its own failures and lines.
    assert counts["summaries"] >= 1
    assert counts["sent"] + counts["not_sent"] == FAILURES
    assert counts["log_lines_sent"] + counts["log_lines_not_sent"] == 2 * FAILURES
    assert counts["sent"] == counts["log_lines_sent"] == LIMIT * counts["summaries"]
    assert len(events) == (2 * LIMIT + 1) * counts["summaries"]
    summary = next(e for e in events if e.get("fingerprint", [""])[0] == "failures-not-sent")
    assert "logged" in summary["message"] and summary["tags"]["task_name"] == "log_and_invert"
    assert monitoring_warnings(caplog, "more events at once than the SDK queues") == []


def test_the_summary_arrives_when_the_sdks_queue_is_full_at_the_end_of_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the storm, the flow's last task captures 150 events at once (the queue holds
    100), and Sentry takes each in 50 ms: at the run's end the queue is still full."""
    slow = SentryEndpoint(delay=0.05).start()
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_ENV_NAME, slow.dsn)
    monkeypatch.setenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, "60")
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, str(LIMIT))
    with MonitoredFlow("Full queue") as flow:
        inverted = invert.map([0] * 20)
        task(capture_errors, name="fill the queue", trigger=all_finished)(
            150, upstream_tasks=[inverted]
        )

    flow.run()
    sentry_sdk.flush(timeout=60)

    [summary] = [e for e in slow.events() if e.get("fingerprint", [""])[0] == "failures-not-sent"]
    assert summary["contexts"]["failures"]["total"] == 20
    slow.stop()


def test_the_limit_is_per_task_and_per_flow_run(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, "2")
    with MonitoredFlow("Two storms") as flow:
        invert.map([0, 0, 0])
        invert.copy(name="invert again").map([0, 0])

    flow.run()
    flow.run()
    sentry_sdk.flush()

    events = monitoring_env.events(expected=10, timeout=2)
    per_run_and_task: Dict[tuple, int] = {}
    for event in events:
        tags = event["tags"]
        key = (tags["flow_run_id"], tags["task_name"], bool(event.get("exception")))
        per_run_and_task[key] = per_run_and_task.get(key, 0) + 1
    assert sorted(per_run_and_task.values()) == [1, 1, 2, 2, 2, 2]
    assert len(events) == 10


def test_a_malformed_limit_falls_back_to_the_default(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, "0")
    with MonitoredFlow("Malformed limit") as flow:
        invert.map([0] * (budget.DEFAULT_MAX_EVENTS_PER_TASK + 3))

    flow.run()
    sentry_sdk.flush()

    events = monitoring_env.events(expected=budget.DEFAULT_MAX_EVENTS_PER_TASK + 1)
    assert failures_reported(events)["sent"] == budget.DEFAULT_MAX_EVENTS_PER_TASK
    assert len(monitoring_warnings(caplog, "SENTRY_MAX_EVENTS_PER_TASK='0'")) == 1


def test_the_summary_says_what_was_sent_and_what_was_not(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """7 failures, each after 2 error log lines, with a limit of 3 events of each kind."""
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, "3")
    with MonitoredFlow("Counted storm") as flow:
        log_and_invert.map([0] * 7)

    flow.run()
    sentry_sdk.flush()

    events = monitoring_env.events(expected=3 + 3 + 1)
    [summary] = [e for e in events if e.get("fingerprint", [""])[0] == "failures-not-sent"]
    assert summary["message"] == (
        "Task 'log_and_invert' failed 7 times in one flow run: 3 sent as events, 4 more not "
        "sent; logged 14 errors: 3 sent as events, 11 more not sent "
        "(SENTRY_MAX_EVENTS_PER_TASK=3)"
    )
    assert summary["contexts"]["failures"] == {"total": 7, "sent": 3, "not_sent": 4}
    assert summary["contexts"]["error_logs"] == {"total": 14, "sent": 3, "not_sent": 11}
