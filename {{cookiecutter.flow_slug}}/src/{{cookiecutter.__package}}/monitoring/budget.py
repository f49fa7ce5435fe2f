"""A bounded number of events per task and flow run, then one event that counts the rest.

A task mapped over thousands of items that all fail the same way would otherwise send
thousands of events: the SDK's queue (100) overflows, the rest are dropped, and no event
says how many failed. Here the first SENTRY_MAX_EVENTS_PER_TASK final failures of a task
in a flow run are events, and so are its first SENTRY_MAX_EVENTS_PER_TASK error log
lines (each a count of its own); the rest are counted, and one more event says how many
there were and how many were not sent: at the end of the flow run, or when a worker
process ends. The queue is emptied first (at most SENTRY_SHUTDOWN_TIMEOUT), so that this
event always finds room in it.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import prefect
import sentry_sdk
from prefect.utilities.logging import get_logger

from .transport import flush

SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME = "SENTRY_MAX_EVENTS_PER_TASK"
DEFAULT_MAX_EVENTS_PER_TASK = 10

logger = get_logger("monitoring")
Key = Tuple[str, str]  # (flow run id, task name; "" for the flow itself)
Event = Dict[str, Any]


@dataclass
class Count:
    failures: int = 0
    reported: int = 0
    log_lines: int = 0  # error log lines, each an event of the logging integration
    logs_reported: int = 0
    tags: Dict[str, str] = field(default_factory=dict)

    def over(self) -> bool:
        return self.failures > self.reported or self.log_lines > self.logs_reported


class FailureBudget:
    """Counts final failures per flow run and task, in this process."""

    def __init__(self) -> None:
        self._counts: Dict[Key, Count] = {}
        self._lock = threading.Lock()  # threads of a LocalDaskExecutor share it
        self._limit: Optional[int] = None
        self._exit_report_pid: Optional[int] = None

    def allows(self, task_name: str) -> bool:
        """Count one final failure of `task_name`; whether it may still be an event."""
        return self._allows(task_name, log_line=False)

    def allows_log_event(self, event: Event, hint: Dict[str, Any]) -> Optional[Event]:
        """Event processor: an error log line is an event only within its task's budget."""
        if hint.get("log_record") is None:
            return event
        allowed = self._allows(str(prefect.context.get("task_name") or ""), log_line=True)
        return event if allowed else None

    def _allows(self, task_name: str, log_line: bool) -> bool:
        key = (str(prefect.context.get("flow_run_id", "")), task_name)
        with self._lock:
            count = self._counts.setdefault(key, Count())
            if log_line:
                count.log_lines += 1
                if count.logs_reported < self.limit():
                    count.logs_reported += 1
                    return True
            else:
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
        self._report_at_exit()
        return False

    def report_overflow(self, flow_run_id: Optional[str] = None) -> None:
        """One event per task of the flow run (all runs: None) whose events were not all sent."""
        with self._lock:
            keys = [key for key in self._counts if flow_run_id in (None, key[0])]
            counts = [(key[1], self._counts.pop(key)) for key in keys]
        over = [(task_name, count) for task_name, count in counts if count.over()]
        if over:
            flush()  # the queue may be full: the summaries must not be dropped
        for task_name, count in over:
            send_overflow(task_name, count, self.limit())

    def limit(self) -> int:
        if self._limit is None:
            self._limit = read_limit()
        return self._limit

    def _report_at_exit(self) -> None:
        # The counts of a process end with it: report them before its events are flushed.
        # A worker process runs multiprocessing's finalizers, not atexit (higher priority
        # runs first; transport's flush has 100); any process runs atexit handlers in the
        # reverse order of registration, and transport registered its flush at import.
        if self._exit_report_pid != os.getpid():
            self._exit_report_pid = os.getpid()
            if multiprocessing.parent_process() is not None:
                multiprocessing.util.Finalize(None, self.report_overflow, exitpriority=200)
            else:
                atexit.register(self.report_overflow)


def send_overflow(task_name: str, count: Count, limit: int) -> None:
    """The event that says how many failures and error log lines of a task were not sent."""
    subject = f"Task {task_name!r}" if task_name else "The flow run"
    parts = []
    if count.failures:
        parts.append(
            f"failed {count.failures} times in one flow run: {count.reported} sent as events, "
            f"{count.failures - count.reported} more not sent"
        )
    if count.log_lines > count.logs_reported:
        parts.append(
            f"logged {count.log_lines} errors: {count.logs_reported} sent as events, "
            f"{count.log_lines - count.logs_reported} more not sent"
        )
    message = f"{subject} {'; '.join(parts)} ({SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME}={limit})"
    with sentry_sdk.new_scope() as scope:
        for name, value in count.tags.items():
            scope.set_tag(name, value)
        if task_name:
            scope.set_tag("task_name", task_name)
        scope.set_context(
            "failures",
            {
                "total": count.failures,
                "sent": count.reported,
                "not_sent": count.failures - count.reported,
            },
        )
        scope.set_context(
            "error_logs",
            {
                "total": count.log_lines,
                "sent": count.logs_reported,
                "not_sent": count.log_lines - count.logs_reported,
            },
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
