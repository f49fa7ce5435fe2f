"""`PrefectIntegration`: what Sentry needs to know about Prefect, as a Sentry SDK integration.

`init_sentry()` passes it to `sentry_sdk.init`. Its `setup_once` registers the event
processors of `events` (before the SDK's defaults, so that a duplicate is dropped before
the DedupeIntegration could keep it instead of the state handler's event) and the budget
of error log lines (`state_handlers.count_log_event`), and
`ignore_runner_loggers()` stops Prefect's own error log lines from becoming events while
the state handlers report the failures themselves; `report_runner_loggers()` lets them
through again for a plain `Flow` with `init_base_flow` upstream, where those lines are
the only report of a failure.
"""

from __future__ import annotations

from sentry_sdk.integrations import Integration
from sentry_sdk.scope import add_global_event_processor

from .events import (
    DASK_LOGGERS,
    PREFECT_RUNNER_LOGGERS,
    add_flow_run_data,
    drop_duplicate_log_events,
)
from .sdk import ignore_logger_for_events, unignore_logger_for_events


class PrefectIntegration(Integration):
    """Tags every event with its flow run and task; drops Prefect's duplicate error logs."""

    identifier = "prefect"

    @staticmethod
    def setup_once() -> None:
        from .state_handlers import count_log_event  # which imports this module

        add_global_event_processor(drop_duplicate_log_events)
        add_global_event_processor(count_log_event)
        add_global_event_processor(add_flow_run_data)


def ignore_runner_loggers() -> None:
    """Prefect's runners log every task failure at ERROR, with its traceback, and Dask's
    scheduler the tasks of a worker that died: once the state handlers report failures,
    those lines would only be built into events to be dropped, or repeat a failure."""
    for name in (*PREFECT_RUNNER_LOGGERS, *DASK_LOGGERS):
        ignore_logger_for_events(name)


def report_runner_loggers() -> None:
    """Prefect's and Dask's error log lines become events again (a flow without state
    handlers)."""
    for name in (*PREFECT_RUNNER_LOGGERS, *DASK_LOGGERS):
        unignore_logger_for_events(name)
