"""Sentry Crons for a scheduled flow: a check-in when a run starts, and one when it ends.

No error event can say that a run never started (the agent was down) or never finished
(its container was killed): Sentry Crons can, from the check-ins it did not get. The
monitor is created, or updated, from the flow's own schedule at every check-in. Every
monitored run of a flow with a cron schedule checks in, unless the flow was made with
`MonitoredFlow(..., sentry_crons=False)` (the template answer `sentry_crons`).
"""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Any, Dict, Optional

import prefect
import sentry_sdk
from prefect import Flow
from prefect.engine.state import State
from prefect.schedules import Schedule
from prefect.schedules.clocks import CronClock
from sentry_sdk.crons import MonitorStatus, capture_checkin

# Minutes a run may start late before Sentry calls it missed, and may run before
# Sentry calls it timed out (crashed).
CHECKIN_MARGIN_MINUTES = 10
MAX_RUNTIME_MINUTES = 120
# Keys of the run's prefect.context, between the start and the end check-in.
CHECK_IN_ID = "sentry_check_in_id"
CHECK_IN_STARTED = "sentry_check_in_started"


def check_in(flow: Flow, state: State, enabled: bool = True) -> None:
    """Check in for a run of a scheduled flow: in progress when it runs, then ok or error."""
    config = monitor_config(flow.schedule)
    if not enabled or config is None or not sentry_sdk.is_initialized():
        return
    slug = monitor_slug(flow.name)
    if state.is_running():
        prefect.context[CHECK_IN_ID] = capture_checkin(
            monitor_slug=slug, status=MonitorStatus.IN_PROGRESS, monitor_config=config
        )
        prefect.context[CHECK_IN_STARTED] = time.monotonic()
    elif state.is_finished() and prefect.context.get(CHECK_IN_ID):
        capture_checkin(
            monitor_slug=slug,
            check_in_id=prefect.context[CHECK_IN_ID],
            status=MonitorStatus.OK if state.is_successful() else MonitorStatus.ERROR,
            duration=time.monotonic() - prefect.context[CHECK_IN_STARTED],
            monitor_config=config,
        )


def monitor_slug(flow_name: str) -> str:
    """The flow's name as a Sentry monitor slug: lowercase ASCII words joined by dashes."""
    ascii_name = unicodedata.normalize("NFKD", flow_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:50].rstrip("-") or "flow"


def monitor_config(schedule: Optional[Schedule]) -> Optional[Dict[str, Any]]:
    """Sentry's monitor settings for a schedule of one cron clock; None for any other."""
    clocks = schedule.clocks if schedule is not None else []
    if len(clocks) != 1 or not isinstance(clocks[0], CronClock):
        return None
    clock = clocks[0]
    return {
        "schedule": {"type": "crontab", "value": clock.cron},
        # Prefect reads the cron in its start date's time zone, else in UTC.
        "timezone": getattr(clock.start_date, "timezone_name", None) or "UTC",
        "checkin_margin": CHECKIN_MARGIN_MINUTES,
        "max_runtime": MAX_RUNTIME_MINUTES,
        "failure_issue_threshold": 1,
        "recovery_threshold": 1,
    }
