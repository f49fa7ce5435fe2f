"""A task that fails thousands of times in one run: a few events, and one that counts them.

Without a limit, every failure would be an event until the
SDK's queue (100) overflows and the rest are dropped, with no event saying how many.
"""

from __future__ import annotations

from typing import Dict, List

import pytest
import sentry_sdk
from prefect.executors import LocalDaskExecutor, LocalExecutor

from .fixtures import monitoring_warnings
from .project import SentryEndpoint, module
from .sample_tasks import invert

MonitoredFlow = module("monitoring").MonitoredFlow
budget = module("monitoring.budget")

FAILURES = 400
LIMIT = 5


def failures_reported(events: List[Dict]) -> Dict[str, int]:
    """Events of single failures, and what the summary events say was not sent."""
    single = [e for e in events if e.get("exception")]
    summaries = [e for e in events if not e.get("exception")]
    return {
        "sent": len(single),
        "not_sent": sum(e["contexts"]["failures"]["not_sent"] for e in summaries),
        "total_in_summaries": sum(e["contexts"]["failures"]["total"] for e in summaries),
        "summaries": len(summaries),
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
