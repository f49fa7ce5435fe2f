"""Sentry monitoring for this flow. The template owns this file: see README, "Updates".

How a flow run is monitored:

1. `init_sentry()` reads the SENTRY_* environment variables (one warning for each
   one missing), takes the DSN from SENTRY_DSN or else from the AWS SSM parameter
   named by SENTRY_DSN_SSM_PARAMETER_NAME, and starts the Sentry SDK once per process.
   It never raises: when anything is missing or fails, monitoring is off and the flow
   runs exactly as it would without it.
2. Every event is tagged with the flow run and the task it comes from, read from
   `prefect.context` when the event is captured, so one task's data never lands on
   another task's event. Flow parameters go along as context, secret-looking ones
   filtered.
3. `MonitoredFlow` attaches `report_flow_failure` to the flow and `report_task_failure`
   to every task: each task run that finally fails is reported once, in whatever
   process runs it.
4. `init_base_flow` is the upstream task of the original design, for plain
   `prefect.Flow`s: it starts Sentry, and Prefect's own error log becomes the event.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from typing import Any, Dict, Mapping, Optional

import boto3
import prefect
import sentry_sdk
from prefect import Flow, Task, task
from prefect.engine.state import State, TriggerFailed
from prefect.utilities.logging import get_logger
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scope import add_global_event_processor

SENTRY_DSN_SSM_PARAMETER_NAME = "SENTRY_DSN_SSM_PARAMETER_NAME"
SENTRY_REGION_ENV_NAME = "SENTRY_REGION"
SENTRY_ENVIRONMENT_ENV_NAME = "SENTRY_ENVIRONMENT"
SENTRY_RELEASE_ENV_NAME = "SENTRY_RELEASE"
# For local runs: a DSN given directly wins over the SSM parameter.
SENTRY_DSN_ENV_NAME = "SENTRY_DSN"
SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME = "SENTRY_SHUTDOWN_TIMEOUT"
DEFAULT_SHUTDOWN_TIMEOUT = 2.0

# Prefect context values that become tags on every event, when present.
TAGGED_CONTEXT = (
    "flow_name",
    "flow_run_id",
    "flow_run_name",
    "flow_run_version",
    "task_name",
    "task_slug",
    "map_index",
    "task_run_count",
)
SECRET_NAME = re.compile(
    r"pass|secret|token|key|credential|auth|dsn|private|session|cookie", re.IGNORECASE
)
FILTERED = "[Filtered]"
# Set in a run's prefect.context by the state handlers: they report its failures, so
# Prefect's own error log line for the same failure must not become a second event.
REPORTED_BY_HANDLERS = "sentry_reported_by_state_handlers"
PREFECT_RUNNER_LOGGERS = frozenset(
    {
        "prefect.TaskRunner",
        "prefect.CloudTaskRunner",
        "prefect.FlowRunner",
        "prefect.CloudFlowRunner",
    }
)

# A Prefect logger, so that monitoring's warnings show in the Prefect UI too.
logger = get_logger("monitoring")
_started = False


def init_sentry() -> bool:
    """Start Sentry for this process, once. Return whether events will be sent.

    Never raises: a missing variable or a failed SSM lookup logs one warning and
    leaves monitoring off.
    """
    global _started
    if _started:
        return sentry_sdk.is_initialized()
    _started = True
    try:
        return _start_sentry()
    except Exception as exc:  # monitoring must never break the flow
        logger.warning("Sentry is off: it failed to start: %s", _describe(exc))
        return False


def get_ssm_parameter(ssm_client: Any, name: str, with_decryption: bool = True) -> str:
    """The value of an SSM parameter, decrypted; ValueError naming it on failure."""
    try:
        response = ssm_client.get_parameter(Name=name, WithDecryption=with_decryption)
        return response["Parameter"]["Value"]
    except Exception as exc:
        raise ValueError(f"Failed to get SSM parameter {name!r}") from exc


@task(name="Base flow initialization")
def init_base_flow() -> None:
    """Start Sentry before the tasks listed downstream of this one."""
    init_sentry()


def report_task_failure(task: Task, old_state: State, new_state: State) -> State:
    """Task state handler: start Sentry in this process; report a final failure once."""
    try:
        if new_state.is_running():
            init_sentry()
            prefect.context[REPORTED_BY_HANDLERS] = True
        elif _is_final_failure(task, new_state):
            _report(new_state)
    except Exception as exc:  # a raising handler would fail the task
        logger.warning("Sentry could not report task %r: %s", task.name, _describe(exc))
    return new_state


def report_flow_failure(flow: Flow, old_state: State, new_state: State) -> State:
    """Flow state handler: start Sentry; report a flow failure that no task explains."""
    try:
        if new_state.is_running():
            init_sentry()
            prefect.context[REPORTED_BY_HANDLERS] = True
        elif new_state.is_failed() and isinstance(new_state.result, BaseException):
            _report(new_state)
    except Exception as exc:  # a raising handler would fail the flow
        logger.warning("Sentry could not report flow %r: %s", flow.name, _describe(exc))
    return new_state


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


def filter_secrets(values: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of `values` with the values of secret-looking keys replaced."""
    return {
        key: FILTERED if SECRET_NAME.search(str(key)) else value for key, value in values.items()
    }


def _start_sentry() -> bool:
    region = _read_variable(SENTRY_REGION_ENV_NAME, "events will have no region tag")
    environment = _read_variable(SENTRY_ENVIRONMENT_ENV_NAME, "events will have no environment")
    release = _read_variable(SENTRY_RELEASE_ENV_NAME, "events will have no release")
    dsn = os.environ.get(SENTRY_DSN_ENV_NAME)
    if not dsn:
        parameter = _read_variable(
            SENTRY_DSN_SSM_PARAMETER_NAME,
            f"Sentry is off (set it, or {SENTRY_DSN_ENV_NAME} for a local run)",
        )
        if not parameter:
            return False
        ssm = boto3.client("ssm", region_name=boto3.session.Session().region_name or region)
        dsn = get_ssm_parameter(ssm, parameter)

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        shutdown_timeout=_shutdown_timeout(),
        max_value_length=8192,
        # Frame locals of data tasks hold rows of customer data: keep them home.
        include_local_variables=False,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )
    if region:
        sentry_sdk.get_global_scope().set_tag("region", region)
    logger.info("Sentry is on: environment %r, release %r.", environment, release)
    return True


def _read_variable(name: str, consequence: str) -> Optional[str]:
    value = os.environ.get(name)
    if not value:
        logger.warning("%s is not set: %s.", name, consequence)
    return value or None


def _shutdown_timeout() -> float:
    raw = os.environ.get(SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, "")
    try:
        return float(raw) if raw else DEFAULT_SHUTDOWN_TIMEOUT
    except ValueError:
        logger.warning(
            "%s=%r is not a number of seconds: using %s.",
            SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME,
            raw,
            DEFAULT_SHUTDOWN_TIMEOUT,
        )
        return DEFAULT_SHUTDOWN_TIMEOUT


def _is_final_failure(task: Task, state: State) -> bool:
    """Failed from its own error, and Prefect will not retry it."""
    return (
        state.is_failed()
        and not isinstance(state, TriggerFailed)
        and prefect.context.get("task_run_count", 1) > task.max_retries
    )


def _report(state: State) -> None:
    error = state.result
    if isinstance(error, BaseException):
        sentry_sdk.capture_exception(error)
    else:
        sentry_sdk.capture_message(state.message or repr(state), level="error")
    if multiprocessing.parent_process() is not None:
        # A worker process can end before the SDK's sending thread gets its turn.
        sentry_sdk.flush()


def _drop_runner_log_reported_by_handlers(
    event: Dict[str, Any], hint: Dict[str, Any]
) -> Optional[Dict[str, Any]]:
    record = hint.get("log_record")
    if (
        record is not None
        and record.name in PREFECT_RUNNER_LOGGERS
        and prefect.context.get(REPORTED_BY_HANDLERS)
    ):
        return None
    return event


def _add_flow_run_data(event: Dict[str, Any], hint: Dict[str, Any]) -> Dict[str, Any]:
    tags = event.setdefault("tags", {})
    for name in TAGGED_CONTEXT:
        value = prefect.context.get(name)
        if value is not None:
            tags.setdefault(name, str(value))
    parameters = prefect.context.get("parameters")
    if parameters:
        event.setdefault("contexts", {})["flow_parameters"] = filter_secrets(parameters)
    return event


def _describe(exc: BaseException) -> str:
    """`exc` and what caused it, on one line."""
    cause = exc.__cause__
    return f"{exc} ({type(cause).__name__}: {cause})" if cause else f"{type(exc).__name__}: {exc}"


# Registered at import, before the SDK's own processors: a dropped duplicate then
# never reaches the DedupeIntegration, where it would hide the handler's event.
add_global_event_processor(_drop_runner_log_reported_by_handlers)
add_global_event_processor(_add_flow_run_data)
