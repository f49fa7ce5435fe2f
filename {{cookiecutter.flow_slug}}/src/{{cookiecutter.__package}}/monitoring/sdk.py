"""What differs between the sentry-sdk releases this package runs on: 2.x (2.75 on) and 3.x.

Each difference is found by asking the installed SDK what it offers (a parameter, a
function), never by reading its version; the rest of the package uses only what both
have in common. When a difference is not one of these, `logging_integration` refuses
to guess, and Sentry stays off with a warning (sentry_setup.init_sentry).

- Frame locals and source lines. 2.x took `include_local_variables` and
  `include_source_context`; 3.x has only `data_collection`, which sends every frame's
  local variables and five lines of code around it unless told otherwise. Both take
  `data_collection` (2.x from 2.75): `frame_data` says what it must say. On 2.x, setting
  it also turns the SDK's own EventScrubber off, which 3.x no longer has at all:
  scrubbing.scrub_event is the scrubber on both.
- The logging integration. On 2.x, `level` is the level of breadcrumbs and
  `sentry_logs_level` that of Sentry Logs; on 3.x, `level` is the level of Sentry Logs,
  `breadcrumb_level` that of breadcrumbs, and Sentry Logs are sent whenever the
  integration has a level for them. `logging_integration` never gives it one, and
  `drop_sentry_log` drops any log that would still be sent: nothing scrubs them.
- Which loggers make no events. 2.x's `ignore_logger` is 3.x's
  `ignore_logger_for_events` (3.x's `ignore_logger` only stops Sentry Logs).
- `event_from_exception` no longer takes `client_options` on 3.x. 2.x needs none either
  once `data_collection` is set: it then reads the frame settings from the client.
- Integrations on by default: 3.x adds the UnraisablehookIntegration, and no longer
  includes the LoggingIntegration (sentry_setup passes both choices explicitly).
"""

from __future__ import annotations

import inspect
from typing import Any, Dict

from sentry_sdk.integrations import logging as sentry_logging
from sentry_sdk.integrations.logging import LoggingIntegration

# Lines of code that `data_collection` sends around each frame when source context is on.
CONTEXT_LINES = 5


def frame_data(local_variables: bool, source_context: bool) -> Dict[str, Any]:
    """The `data_collection` option that sends frame locals and source lines, or not."""
    return {
        "stack_frame_variables": local_variables,
        "frame_context_lines": CONTEXT_LINES if source_context else 0,
    }


def logging_integration(breadcrumb_level: int, event_level: int) -> LoggingIntegration:
    """Log lines from `breadcrumb_level` as breadcrumbs, from `event_level` as events, and
    none as Sentry Logs. ValueError for a LoggingIntegration whose levels are unknown."""
    parameters = inspect.signature(LoggingIntegration.__init__).parameters
    if "breadcrumb_level" in parameters:  # 3.x: `level` is for Sentry Logs
        return LoggingIntegration(
            level=None, event_level=event_level, breadcrumb_level=breadcrumb_level
        )
    if "sentry_logs_level" in parameters:  # 2.x: `level` is for breadcrumbs
        return LoggingIntegration(
            level=breadcrumb_level, event_level=event_level, sentry_logs_level=None
        )
    raise ValueError(
        "this sentry-sdk's LoggingIntegration takes neither breadcrumb_level nor "
        "sentry_logs_level, so which of its levels means Sentry Logs is unknown: "
        "pin sentry-sdk 2.76 or 3.0 in pyproject.toml"
    )


def drop_sentry_log(log: Dict[str, Any], hint: Dict[str, Any]) -> None:
    """`before_send_log`: no log line leaves as a Sentry Log, which scrub_event never sees."""
    return None


def ignore_logger_for_events(name: str) -> None:
    """Log lines of the logger `name` (a pattern) no longer become events or breadcrumbs."""
    getattr(sentry_logging, "ignore_logger_for_events", sentry_logging.ignore_logger)(name)


def unignore_logger_for_events(name: str) -> None:
    """Undo `ignore_logger_for_events(name)`."""
    getattr(sentry_logging, "unignore_logger_for_events", sentry_logging.unignore_logger)(name)
