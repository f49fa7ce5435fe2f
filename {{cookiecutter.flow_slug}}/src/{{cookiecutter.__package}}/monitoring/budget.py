"""A bounded number of events per task and flow run, then one event that counts the rest.

A task mapped over thousands of items that all fail the same way would otherwise send
thousands of events: the SDK's queue (100) overflows, the rest are dropped, and no event
says how many failed. Here the first SENTRY_MAX_EVENTS_PER_TASK final failures of a task
in a flow run are events; the rest are counted, and one more event says how many failed
and how many were not sent: at the end of the flow run, or when a worker process ends.
"""

from __future__ import annotations

import multiprocessing.util
import os
import threading
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import prefect
import sentry_sdk
from prefect.utilities.logging import get_logger

SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME = "SENTRY_MAX_EVENTS_PER_TASK"
DEFAULT_MAX_EVENTS_PER_TASK = 10

logger = get_logger("monitoring")
Key = Tuple[str, str]  # (flow run id, task name)


@dataclass
class Count:
    failures: int = 0
    reported: int = 0
    tags: Dict[str, str] = field(default_factory=dict)


class FailureBudget:
    """Counts final failures per flow run and task, in this process."""

    def __init__(self) -> None:
        self._counts: Dict[Key, Count] = {}
        self._lock = threading.Lock()  # threads of a LocalDaskExecutor share it
        self._limit: Optional[int] = None
        self._exit_report_pid: Optional[int] = None

    def allows(self, task_name: str) -> bool:
        """Count one final failure of `task_name`; whether it may still be an event."""
        key = (str(prefect.context.get("flow_run_id", "")), task_name)
        with self._lock:
            count = self._counts.setdefault(key, Count())
            count.failures += 1
            if count.reported < self.limit():
                count.reported += 1
                return True
            if not count.tags:
                count.tags = {
                    name: str(prefect.context[name])
                    for name in ("flow_name", "flow_run_id", "flow_run_name")
                    if prefect.context.get(name) is not None
                }
        if multiprocessing.parent_process() is not None:
            self._report_at_exit()
        return False

    def report_overflow(self, flow_run_id: Optional[str] = None) -> None:
        """One event per task of the flow run (all runs: None) whose failures were not all sent."""
        with self._lock:
            keys = [key for key in self._counts if flow_run_id in (None, key[0])]
            counts = [(key[1], self._counts.pop(key)) for key in keys]
        for task_name, count in counts:
            if count.failures > count.reported:
                send_overflow(task_name, count, self.limit())

    def limit(self) -> int:
        if self._limit is None:
            self._limit = read_limit()
        return self._limit

    def _report_at_exit(self) -> None:
        # A worker process's counts end with it: report them before its events are flushed
        # (finalizers of higher priority run first; transport's flush has 100).
        if self._exit_report_pid != os.getpid():
            self._exit_report_pid = os.getpid()
            multiprocessing.util.Finalize(None, self.report_overflow, exitpriority=200)


def send_overflow(task_name: str, count: Count, limit: int) -> None:
    unsent = count.failures - count.reported
    message = (
        f"Task {task_name!r} failed {count.failures} times in one flow run: "
        f"{count.reported} sent as events, {unsent} more not sent "
        f"({SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME}={limit})"
    )
    with sentry_sdk.new_scope() as scope:
        for name, value in count.tags.items():
            scope.set_tag(name, value)
        scope.set_tag("task_name", task_name)
        scope.set_context(
            "failures", {"total": count.failures, "sent": count.reported, "not_sent": unsent}
        )
        scope.fingerprint = ["failures-not-sent", task_name]
        sentry_sdk.capture_message(message, level="error")
    logger.warning("%s.", message)


def read_limit() -> int:
    """SENTRY_MAX_EVENTS_PER_TASK: how many failures of one task in one flow run are events."""
    raw = os.environ.get(SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, "")
    try:
        limit = int(raw) if raw else DEFAULT_MAX_EVENTS_PER_TASK
        if limit < 1:
            raise ValueError(raw)
        return limit
    except ValueError:
        logger.warning(
            "%s=%r is not a whole number from 1 up: using %s.",
            SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME,
            raw,
            DEFAULT_MAX_EVENTS_PER_TASK,
        )
        return DEFAULT_MAX_EVENTS_PER_TASK
