"""The wiring: state handlers that report failures, attached to every task of a MonitoredFlow."""

from __future__ import annotations

import multiprocessing
from typing import Any, Optional

import prefect
import sentry_sdk
from prefect import Flow, Task, task
from prefect.engine.state import State, TriggerFailed

from . import crons
from .delivery import flush
from .events import REPORTED_BY_HANDLERS
from .startup import describe, init_sentry, logger


@task(name="Base flow initialization")
def init_base_flow() -> None:
    """Start Sentry before the tasks listed downstream of this one (the original design)."""
    init_sentry()


def report_task_failure(task: Task, old_state: State, new_state: State) -> State:
    """Task state handler: start Sentry in this process; report the run's final failure once."""
    try:
        init_sentry()
        prefect.context[REPORTED_BY_HANDLERS] = True
        if is_final_failure(task, new_state):
            report(new_state)
    except Exception as exc:  # a raising handler would fail the task
        logger.warning("Sentry could not report task %r: %s", task.name, describe(exc))
    return new_state


def report_flow_failure(flow: Flow, old_state: State, new_state: State) -> State:
    """Flow state handler: start Sentry; check in; report a failure that no task explains."""
    try:
        init_sentry()
        prefect.context[REPORTED_BY_HANDLERS] = True
        if new_state.is_failed() and isinstance(new_state.result, BaseException):
            report(new_state)
        crons.check_in(flow, new_state)
    except Exception as exc:  # a raising handler would fail the flow
        logger.warning("Sentry could not report flow %r: %s", flow.name, describe(exc))
    return new_state


def is_final_failure(task: Task, state: State) -> bool:
    """Failed from its own error, and Prefect will not retry it (as TaskRunner.check_for_retry)."""
    if not state.is_failed() or isinstance(state, TriggerFailed):
        return False
    error = state.result
    if task.retry_on and error is not None and not isinstance(error, tuple(task.retry_on)):
        return True
    return prefect.context.get("task_run_count", 1) > task.max_retries


def report(state: State) -> None:
    """Send the state's error to Sentry; in a worker process, before the process can end."""
    error = state.result
    if isinstance(error, BaseException):
        sentry_sdk.capture_exception(error)
    else:
        sentry_sdk.capture_message(state.message or repr(state), level="error")
    if multiprocessing.parent_process() is not None:
        # A pool can end its worker processes without running their exit handlers.
        flush()


class MonitoredFlow(Flow):
    """A `prefect.Flow` whose every task reports its final failure to Sentry.

    Tasks need no wiring: each task added to the flow gets `report_task_failure`.
    """

    def __init__(self, name: str, *args: Any, state_handlers: Optional[list] = None, **kwargs: Any):
        handlers = [report_flow_failure, *(state_handlers or [])]
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
