"""The wiring: state handlers that report failures, attached to every task of a MonitoredFlow,
and Prefect's runners, which run each flow run and task run in a Sentry scope of its own."""

from __future__ import annotations

import functools
import multiprocessing
from typing import Any, Callable, Dict, Optional, Union

import prefect
import sentry_sdk
from prefect import Flow, Task, task
from prefect.engine import signals
from prefect.engine.flow_runner import FlowRunner
from prefect.engine.runner import ENDRUN
from prefect.engine.state import Failed, State, TriggerFailed
from prefect.engine.task_runner import TaskRunner
from sentry_sdk.utils import event_from_exception

from . import crons, tracing
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
    In a MonitoredFlow, the state handler of each task that runs next takes that back.
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
            tracing.trace_task_run(task, new_state)
    except Exception as exc:  # a raising handler would fail the task
        logger.warning("Sentry could not report task %r: %s", task.name, describe(exc))
    return new_state


def report_flow_failure(flow: Flow, old_state: State, new_state: State) -> State:
    """Flow state handler: start Sentry; report a failure that no task explains."""
    try:
        if init_sentry():
            handlers_report_failures()
            if new_state.is_failed() and isinstance(new_state.result, BaseException):
                report(new_state)
            if new_state.is_finished():
                budget.report_overflow(str(prefect.context.get("flow_run_id", "")))
            tracing.trace_flow_run(flow, new_state)
    except Exception as exc:  # a raising handler would fail the flow
        logger.warning("Sentry could not report flow %r: %s", flow.name, describe(exc))
    return new_state


FlowStateHandler = Callable[[Flow, State, State], Optional[State]]


def reported_when_raising(handler: FlowStateHandler) -> FlowStateHandler:
    """The team's flow state handler, whose error still reaches Sentry.

    Prefect fails the run when a flow state handler raises, and calls no other handler:
    this one reports the error and closes the run's Crons check-in, then raises it again.
    """

    @functools.wraps(handler)
    def guarded(flow: Flow, old_state: State, new_state: State) -> Optional[State]:
        try:
            return handler(flow, old_state, new_state)
        except Exception as exc:
            report_run_end(flow, state_after_raising(exc))
            raise

    return guarded


def state_after_raising(exc: Exception) -> State:
    """The state Prefect's Runner.handle_state_change gives a run whose handler raised."""
    if isinstance(exc, (ENDRUN, signals.PrefectStateSignal)):
        return exc.state
    return Failed(f"Unexpected error while calling state handlers: {exc!r}", result=exc)


def report_run_end(flow: Flow, state: State, warn: bool = False) -> None:
    """Report a run that ends in `state` without passing the flow's other handlers."""
    try:
        if init_sentry():
            handlers_report_failures()
            if state.is_failed() and isinstance(state.result, BaseException):
                report(state)
            if state.is_finished():
                crons.send_check_in(flow, state, warn=warn)
    except Exception as exc:  # never hide the error that ended the run
        logger.warning("Sentry could not report flow %r: %s", flow.name, describe(exc))


def report_failed_start(flow: Flow, exc: Exception) -> None:
    """Report a run that `Flow.run` refused to start, e.g. for a missing parameter."""
    with prefect.context(flow_name=flow.name):
        report_run_end(flow, Failed(f"The flow run could not start: {exc}", result=exc), warn=True)


def report_state_handler_error(task: Task, error: Exception) -> None:
    """One of the task's own state handlers raised: the task fails with `error`, a state
    that Prefect passes to no handler, report_task_failure included. Report it here."""
    try:
        if report_task_failure in task.state_handlers and init_sentry():
            handlers_report_failures()
            if budget.allows(task.name):
                report(Failed(f"A state handler of task {task.name!r} raised", result=error))
    except Exception as exc:  # the task's own error goes on to fail it, not this one
        logger.warning("Sentry could not report task %r: %s", task.name, describe(exc))


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
        # The SDK reads its own settings (sdk.py: 3.x takes no client_options).
        event, hint = event_from_exception(error, mechanism={"type": "prefect", "handled": False})
        sentry_sdk.capture_event(event, hint=hint)
    else:
        sentry_sdk.capture_message(state.message or repr(state), level="error")
    if multiprocessing.parent_process() is not None:
        # A pool's worker process ends without running exit handlers.
        deliver_before_exit()


class MonitoredFlow(Flow):
    """A `prefect.Flow` whose every task reports its final failure to Sentry.

    Tasks need no wiring: each task added to the flow gets `report_task_failure`.
    `sentry_crons` says which Sentry Crons monitor a scheduled flow's runs check in with
    (monitoring/crons.py): a `crons.CronsMonitor`, True for one made from the flow's own
    schedule, or False for none. The flow's own `state_handlers` run before the check-in,
    so that it reports the state they leave.
    """

    def __init__(
        self,
        name: str,
        *args: Any,
        state_handlers: Optional[list] = None,
        sentry_crons: Union[bool, crons.CronsMonitor] = True,
        **kwargs: Any,
    ):
        team_handlers = [reported_when_raising(handler) for handler in state_handlers or []]
        handlers = [report_flow_failure, *team_handlers, crons.check_in]
        self.sentry_crons = sentry_crons
        super().__init__(name, *args, state_handlers=handlers, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """`Flow.run`; a run it refuses to start is reported, and checks in `error`."""
        try:
            return super().run(*args, **kwargs)
        except Exception as exc:
            report_failed_start(self, exc)
            raise

    def add_task(self, task: Task) -> Task:
        # init_base_flow is one object that every flow of the process shares, and it never
        # fails: with this handler, it would stop a plain Flow's failures being reported.
        if task is not init_base_flow and report_task_failure not in task.state_handlers:
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


def in_a_scope_of_its_own(run: Callable[..., State]) -> Callable[..., State]:
    """`run`, in a Sentry scope that starts with no breadcrumbs and is dropped when it ends.

    As Sentry's celery and rq integrations do for each job: the warnings one task run logs
    never reach another one's events, nor those of a later flow run in the same process,
    whose scrubber would not know the earlier run's secret parameters.
    """

    @functools.wraps(run)
    def run_in_its_own_scope(*args: Any, **kwargs: Any) -> State:
        with sentry_sdk.isolation_scope() as scope:
            scope.clear_breadcrumbs()
            return run(*args, **kwargs)

    run_in_its_own_scope.in_its_own_scope = True  # type: ignore[attr-defined]
    return run_in_its_own_scope


def reporting_state_handler_errors(call_handlers: Callable[..., State]) -> Callable[..., State]:
    """TaskRunner's call of a task's state handlers, reporting an error one of them raises."""

    @functools.wraps(call_handlers)
    def call_handlers_reporting_errors(runner: TaskRunner, old: State, new: State) -> State:
        try:
            return call_handlers(runner, old, new)
        except (signals.PrefectStateSignal, ENDRUN) as signal:  # the state a handler chose
            if signal.state.is_failed():
                report_state_handler_error(runner.task, signal)
            raise
        except Exception as exc:
            report_state_handler_error(runner.task, exc)
            raise

    return call_handlers_reporting_errors


def instrument_prefect_runners() -> None:
    """Every flow run and task run of this process in its own scope; handler errors reported.

    Runs when this module is imported: before the first flow run of the flow's process, and
    before the first task of a Dask worker, which imports it to unpickle the task's handlers.
    CloudFlowRunner and CloudTaskRunner call these methods of their base classes.
    """
    if getattr(TaskRunner.run, "in_its_own_scope", False):
        return
    FlowRunner.run = in_a_scope_of_its_own(FlowRunner.run)
    TaskRunner.run = in_a_scope_of_its_own(TaskRunner.run)
    TaskRunner.call_runner_target_handlers = reporting_state_handler_errors(
        TaskRunner.call_runner_target_handlers
    )


instrument_prefect_runners()
