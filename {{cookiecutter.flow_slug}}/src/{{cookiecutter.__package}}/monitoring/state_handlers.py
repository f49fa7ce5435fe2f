"""The wiring: state handlers that report failures, attached to every task of a MonitoredFlow."""

from __future__ import annotations

import multiprocessing
from typing import Any, Dict, Optional

import prefect
import sentry_sdk
from prefect import Flow, Task, task
from prefect.engine.state import State, TriggerFailed
from sentry_sdk.utils import event_from_exception

from . import crons
from .budget import FailureBudget
from .integration import ignore_runner_loggers, report_runner_loggers
from .sentry_setup import describe, init_sentry, logger
from .transport import deliver_before_exit

# Prefect's message for a mapped task whose upstream failed: not the task's own failure.
NOTHING_TO_MAP = "No upstream states can be mapped over."

budget = FailureBudget()


def first_report() -> bool:
    """Whether no process reported the failure of this task run (prefect.context's) yet.

    One process runs a task run once, except on a Dask cluster, which runs again what a
    dead worker held: there, the worker plugin asks the scheduler instead (see deployment).
    """
    return True


def count_log_event(event: Dict[str, Any], hint: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Event processor: an error log line counts against its task's budget, as a failure does."""
    return budget.allows_log_event(event, hint)


@task(name="Base flow initialization")
def init_base_flow() -> None:
    """Start Sentry before the tasks listed downstream of this one, in any Flow.

    In a plain `Flow`, no state handler reports failures: Prefect's error log lines do.
    In a MonitoredFlow, this task's own state handler takes that back at once.
    """
    if init_sentry():
        report_runner_loggers()


def report_task_failure(task: Task, old_state: State, new_state: State) -> State:
    """Task state handler: start Sentry in this process; report the run's final failure once."""
    try:
        if init_sentry():
            handlers_report_failures()
            if is_final_failure(task, new_state) and first_report() and budget.allows(task.name):
                report(new_state)
    except Exception as exc:  # a raising handler would fail the task
        logger.warning("Sentry could not report task %r: %s", task.name, describe(exc))
    return new_state


def report_flow_failure(flow: Flow, old_state: State, new_state: State) -> State:
    """Flow state handler: start Sentry; check in; report a failure that no task explains."""
    try:
        if init_sentry():
            handlers_report_failures()
            if new_state.is_failed() and isinstance(new_state.result, BaseException):
                report(new_state)
            if new_state.is_finished():
                budget.report_overflow(str(prefect.context.get("flow_run_id", "")))
            crons.check_in(flow, new_state, enabled=getattr(flow, "sentry_crons", True))
    except Exception as exc:  # a raising handler would fail the flow
        logger.warning("Sentry could not report flow %r: %s", flow.name, describe(exc))
    return new_state


def handlers_report_failures() -> None:
    """From now on, Prefect's own error log lines are not reported too."""
    ignore_runner_loggers()


def is_final_failure(task: Task, state: State) -> bool:
    """Failed from its own error, and Prefect will not retry it (as TaskRunner.check_for_retry)."""
    if not state.is_failed() or isinstance(state, TriggerFailed):
        return False
    if state.message == NOTHING_TO_MAP:  # its upstream failed, and was reported
        return False
    error = state.result
    if task.retry_on and error is not None and not isinstance(error, tuple(task.retry_on)):
        return True
    return prefect.context.get("task_run_count", 1) > task.max_retries


def report(state: State) -> None:
    """Send the state's error to Sentry, as an unhandled error of Prefect's."""
    error = state.result
    if isinstance(error, BaseException):
        event, hint = event_from_exception(
            error,
            client_options=sentry_sdk.get_client().options,
            mechanism={"type": "prefect", "handled": False},
        )
        sentry_sdk.capture_event(event, hint=hint)
    else:
        sentry_sdk.capture_message(state.message or repr(state), level="error")
    if multiprocessing.parent_process() is not None:
        # A pool's worker process ends without running exit handlers.
        deliver_before_exit()


class MonitoredFlow(Flow):
    """A `prefect.Flow` whose every task reports its final failure to Sentry.

    Tasks need no wiring: each task added to the flow gets `report_task_failure`.
    `sentry_crons=False` turns off the Sentry Crons check-ins of a scheduled flow.
    """

    def __init__(
        self,
        name: str,
        *args: Any,
        state_handlers: Optional[list] = None,
        sentry_crons: bool = True,
        **kwargs: Any,
    ):
        handlers = [report_flow_failure, *(state_handlers or [])]
        self.sentry_crons = sentry_crons
        super().__init__(name, *args, state_handlers=handlers, **kwargs)

    def add_task(self, task: Task) -> Task:
        if report_task_failure not in task.state_handlers:
            # A new list: a task copy shares the list with the task it was copied from.
            task.state_handlers = [*task.state_handlers, report_task_failure]
        return super().add_task(task)

    def add_edge(
        self,
        upstream_task: Any,
        downstream_task: Any,
        key: Optional[str] = None,
        mapped: bool = False,
        **kwargs: Any,
    ):
        # init_base_flow only orders tasks: `x.map(..., upstream_tasks=[init_base_flow])`
        # must not try to map over its empty result.
        if upstream_task is init_base_flow and key is None:
            mapped = False
        return super().add_edge(upstream_task, downstream_task, key=key, mapped=mapped, **kwargs)
