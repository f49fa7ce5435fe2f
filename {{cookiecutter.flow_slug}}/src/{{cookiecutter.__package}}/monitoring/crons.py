"""Sentry Crons for a scheduled flow: a check-in when a run starts, and one when it ends.

No error event can say that a run never started (the agent was down) or never finished
(its container was killed): Sentry Crons can, from the check-ins it did not get.

Which monitor a run checks in with, from `MonitoredFlow(..., sentry_crons=...)`:

- a `CronsMonitor`, e.g. `deployment.SENTRY_CRONS` read from `deployment/sentry_crons.json`:
  that monitor, with exactly the settings of the file, which Terraform provisions too;
- `True`: a monitor made from the flow's own schedule, its slug from the flow's name;
- `False`: no check-ins.

Every run closes the check-in it opened, from whichever process or runner attempt ends
it: the check-in's ID is derived from the flow run (its ID and scheduled start), not
kept in memory. A retried task (Prefect runs the flow again, already Running, until its
tasks finish) therefore ends with `ok` or `error` like any other run. The closing
check-in is sent by the flow's last state handler, after the team's own handlers; a
team's handler that raises, and a run that cannot start (a required parameter is
missing), check in `error` too.

Sentry Crons knows a single cron expression in one time zone, or an interval of whole
minutes, hours, days or weeks. A schedule it cannot express (filters, adjustments, more
than one clock, dates, seconds, cron's day_or=False, an end date) is not monitored: each
run's log says so in a warning.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import prefect
import sentry_sdk
from prefect import Flow
from prefect.engine.state import State
from prefect.schedules import Schedule
from prefect.schedules.clocks import CronClock, IntervalClock
from sentry_sdk.crons import MonitorStatus, capture_checkin

from .sentry_setup import describe, init_sentry, logger

# Minutes a run may start late before Sentry calls it missed, and may run before Sentry
# calls it timed out (crashed): for a flow made without a settings file.
CHECKIN_MARGIN_MINUTES = 10
MAX_RUNTIME_MINUTES = 120
# What Sentry accepts as a monitor slug, and keeps as it is.
SENTRY_SLUG = re.compile(r"(?![0-9]+$)[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_LENGTH = 50
# Sentry's interval units, largest first, and the settings a file must give.
INTERVAL_UNITS = (("week", 7 * 24 * 60), ("day", 24 * 60), ("hour", 60), ("minute", 1))
SETTINGS = ("checkin_margin", "max_runtime", "failure_issue_threshold", "recovery_threshold")
# Derives every check-in ID from its monitor and flow run.
CHECK_IN_NAMESPACE = uuid.UUID("5d0c5a52-2b55-4f52-9c1e-6b1b2c9e0c4f")

# When this process saw each open check-in start, for its duration.
_started: Dict[str, float] = {}


@dataclass(frozen=True)
class CronsMonitor:
    """A Sentry Crons monitor: its slug, and the settings each check-in sends (Sentry's
    `monitor_config`: schedule, timezone, checkin_margin, max_runtime and thresholds)."""

    slug: str
    config: Dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> CronsMonitor:
        """The monitor of a settings file; a ValueError names what is wrong in it."""
        settings = json.loads(path.read_text(encoding="utf-8"))
        config = {key: value for key, value in settings.items() if key != "slug"}
        slug = settings.get("slug")
        if not isinstance(slug, str) or not is_sentry_slug(slug):
            raise _bad(path, "slug", slug, "lowercase letters, digits and dashes, at most 50")
        schedule = config.get("schedule")
        if not isinstance(schedule, dict) or schedule.get("type") != "crontab":
            raise _bad(path, "schedule", schedule, '{"type": "crontab", "value": "0 6 * * *"}')
        if not isinstance(schedule.get("value"), str) or len(schedule["value"].split()) != 5:
            raise _bad(path, "schedule.value", schedule.get("value"), "a five-field cron")
        if not isinstance(config.get("timezone"), str) or not config["timezone"]:
            raise _bad(path, "timezone", config.get("timezone"), 'a time zone, e.g. "UTC"')
        for name in SETTINGS:
            value = config.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _bad(path, name, value, "a whole number of at least 1")
        return cls(slug=slug, config=config)


def _bad(path: Path, field: str, value: object, expected: str) -> ValueError:
    return ValueError(f"{path}: {field} is {value!r} - write {expected}")


def check_in(flow: Flow, old_state: State, new_state: State) -> State:
    """Flow state handler, after every other: `in_progress` when a run starts, `ok` or
    `error` when it ends."""
    try:
        if init_sentry() and (new_state.is_running() or new_state.is_finished()):
            send_check_in(flow, new_state, warn=new_state.is_running())
    except Exception as exc:  # a raising handler would fail the flow
        logger.warning("Sentry Crons could not check in for %r: %s", flow.name, describe(exc))
    return new_state


def send_check_in(flow: Flow, state: State, warn: bool) -> None:
    """Check in for this run of `flow`, now in `state`, if its monitor is known; with
    `warn`, say why when its schedule is not what Sentry Crons monitors."""
    monitor, problem = monitor_of(flow)
    if problem and warn:
        logger.warning("Sentry Crons does not monitor flow %r: %s", flow.name, problem)
    if monitor is None or not sentry_sdk.is_initialized():
        return
    check_in_id = run_check_in_id(monitor.slug)
    if state.is_running():
        _started[check_in_id] = time.monotonic()
        status, duration = MonitorStatus.IN_PROGRESS, None
    else:
        started = _started.pop(check_in_id, None)
        status = MonitorStatus.OK if state.is_successful() else MonitorStatus.ERROR
        duration = None if started is None else time.monotonic() - started
    capture_checkin(
        monitor_slug=monitor.slug,
        check_in_id=check_in_id,
        status=status,
        duration=duration,
        monitor_config=monitor.config,
    )


def run_check_in_id(slug: str) -> str:
    """The check-in ID of the flow run in prefect.context: the same in every process and
    runner attempt of that run, another for each run (a new one outside any run)."""
    flow_run_id = prefect.context.get("flow_run_id")
    if not flow_run_id:
        return uuid.uuid4().hex
    run = f"{slug}/{flow_run_id}/{prefect.context.get('scheduled_start_time', '')}"
    return uuid.uuid5(CHECK_IN_NAMESPACE, run).hex


def monitor_of(flow: Flow) -> Tuple[Optional[CronsMonitor], Optional[str]]:
    """The flow's monitor, or None; and why its schedule is not what Sentry monitors."""
    setting: Union[bool, CronsMonitor] = getattr(flow, "sentry_crons", True)
    if setting is False or (setting is True and flow.schedule is None):
        return None, None
    config, problem = monitor_config(flow.schedule)
    if isinstance(setting, CronsMonitor):
        if config is not None and not _same_schedule(config, setting.config):
            problem = (
                f"its schedule {describe_schedule(config)} is not the monitor's "
                f"{describe_schedule(setting.config)}: Sentry expects runs at the monitor's "
                "times (update the project from the template to change both)"
            )
        elif problem:
            problem += f"; Sentry expects runs at {describe_schedule(setting.config)}"
        return setting, problem
    if config is None:
        return None, problem
    return CronsMonitor(slug=monitor_slug(flow.name), config=config), None


def _same_schedule(config: Dict[str, Any], other: Dict[str, Any]) -> bool:
    return all(config[key] == other.get(key) for key in ("schedule", "timezone"))


def describe_schedule(config: Dict[str, Any]) -> str:
    schedule = config["schedule"]
    if schedule["type"] == "interval":
        return f"every {schedule['value']} {schedule['unit']}(s)"
    return f"{schedule['value']!r} in {config.get('timezone', 'UTC')}"


def monitor_config(
    schedule: Optional[Schedule],
) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """Sentry's monitor settings for a schedule, or None and why Sentry cannot express it."""
    if schedule is None:
        return None, "the flow has no schedule"
    clocks = schedule.clocks
    if len(clocks) != 1:
        return None, f"its schedule has {len(clocks)} clocks, Sentry Crons follows one"
    rules = ("filters", "or_filters", "not_filters", "adjustments")
    if any(getattr(schedule, rule, None) for rule in rules):
        return None, "its schedule has filters or adjustments, which Sentry Crons cannot follow"
    clock = clocks[0]
    if clock.end_date is not None:
        return None, "its schedule ends, and Sentry Crons would expect runs after it"
    if isinstance(clock, CronClock):
        if len(clock.cron.split()) != 5:
            return None, f"its cron {clock.cron!r} does not have the five fields Sentry reads"
        if not clock.day_or:
            return None, "its cron has day_or=False, which Sentry Crons cannot follow"
        # Prefect reads the cron in its start date's time zone, else in UTC.
        timezone = getattr(clock.start_date, "timezone_name", None) or "UTC"
        return _config({"type": "crontab", "value": clock.cron}, timezone), None
    if isinstance(clock, IntervalClock):
        interval = interval_schedule(clock.interval)
        if interval is None:
            return None, f"its interval {clock.interval} is not a whole number of minutes"
        return _config(interval, "UTC"), None
    return None, f"its {type(clock).__name__} is neither a cron nor an interval"


def _config(schedule: Dict[str, Any], timezone: str) -> Dict[str, Any]:
    return {
        "schedule": schedule,
        "timezone": timezone,
        "checkin_margin": CHECKIN_MARGIN_MINUTES,
        "max_runtime": MAX_RUNTIME_MINUTES,
        "failure_issue_threshold": 1,
        "recovery_threshold": 1,
    }


def interval_schedule(interval: timedelta) -> Optional[Dict[str, Any]]:
    """An interval as Sentry's schedule in its largest whole unit; None below a minute."""
    minutes, seconds = divmod(interval.total_seconds(), 60)
    if seconds or minutes < 1:
        return None
    for unit, length in INTERVAL_UNITS:
        if minutes % length == 0:
            return {"type": "interval", "value": int(minutes // length), "unit": unit}
    return None  # unreachable: every whole number of minutes divides by 1


def monitor_slug(flow_name: str) -> str:
    """A monitor slug for a flow name, different for every name.

    A name that is a slug already stays as it is; any other gets its readable part (ASCII
    words joined by dashes) and the first 8 hex digits of the SHA-256 of the exact name.
    """
    if is_sentry_slug(flow_name):
        return flow_name
    ascii_name = unicodedata.normalize("NFKD", flow_name).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    digest = hashlib.sha256(flow_name.encode("utf-8")).hexdigest()[:8]
    return f"{words[: SLUG_LENGTH - 9].rstrip('-') or 'flow'}-{digest}"


def is_sentry_slug(text: str) -> bool:
    """Whether Sentry takes `text` as a monitor slug unchanged."""
    return len(text) <= SLUG_LENGTH and SENTRY_SLUG.fullmatch(text) is not None
