"""Getting events to Sentry without ever holding the flow up.

The SDK queues events and sends them from a background thread, so a slow or broken
Sentry never blocks a task. What this module adds: one warning, the first time Sentry
does not take an event, that says why; and a wait bounded by SENTRY_SHUTDOWN_TIMEOUT
when a process ends with events still queued. Nothing waits for Sentry while a task or
the flow runs:

- worker processes forked from the flow's process (a process pool's) hand each event to
  the flow's process, which sends it (`ForwardingTransport`): they end at once, and only
  the flow's process waits for Sentry when it ends;
- any other process that may end without running exit handlers (a Dask worker started
  apart from the flow) sends its events itself and waits for them, bounded, when it ends
  (`deliver_before_exit`).
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import sentry_sdk
from prefect.utilities.logging import get_logger
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import HttpTransport, Transport

SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME = "SENTRY_SHUTDOWN_TIMEOUT"
DEFAULT_SHUTDOWN_TIMEOUT = 2.0

logger = get_logger("monitoring")
_problem: Optional[str] = None  # why Sentry did not take an event, once it has happened
_gave_up = False  # a flush timed out: later ones in this process would wait for nothing
_exit_flush_pid: Optional[int] = None  # the worker process that deliver_before_exit set up
_forwarded: Optional[Any] = None  # events from forked workers, to send from the flow's process
_forwarding_pid: Optional[int] = None  # the process that sends them
_forwarding_idle = threading.Event()  # set while no forwarded event is between queue and SDK
_forwarding_idle.set()


class WarningTransport(HttpTransport):
    """The SDK's HTTP transport, warning once when Sentry does not take an event."""

    def on_dropped_event(self, reason: str) -> None:
        if sentry_sdk.get_client().transport is not self:
            return  # a closed client's last request: not news any more
        # The SDK calls this hook from its sending thread; for a network error, from
        # inside the `except` block that caught it.
        error = sys.exc_info()[1] if reason == "network" else None
        warn_undelivered(_explain(reason, error, self.parsed_dsn.netloc))


class ForwardingTransport(Transport):
    """In a process forked from the flow's: each event goes to the flow's process to send."""

    def capture_envelope(self, envelope: Envelope) -> None:
        if _forwarded is not None:
            _forwarded.put(envelope.serialize())  # a local pipe: no waiting for Sentry

    def flush(self, timeout: float, callback: Optional[Any] = None) -> None:
        pass  # nothing is queued here


def forward_from_forked_workers() -> None:
    """In the flow's process: send what the workers it forks hand over (ForwardingTransport)."""
    global _forwarded, _forwarding_pid
    # allow_none: asking without it would fix the start method for the whole program.
    method = multiprocessing.get_start_method(allow_none=True)
    if _forwarded is not None or (method or multiprocessing.get_all_start_methods()[0]) != "fork":
        return
    _forwarded = multiprocessing.get_context("fork").SimpleQueue()
    _forwarding_pid = os.getpid()
    threading.Thread(
        target=_send_forwarded, args=(_forwarded,), name="sentry-forwarded", daemon=True
    ).start()


def forwarding_options() -> Dict[str, Any]:
    """SDK options for a worker forked from the flow's process: hand events to it."""
    return {"transport": ForwardingTransport} if _forwarded is not None else {}


def _send_forwarded(queue: Any) -> None:
    while True:
        data = queue.get()
        _forwarding_idle.clear()
        try:
            transport = sentry_sdk.get_client().transport
            if transport is not None:
                transport.capture_envelope(Envelope.deserialize(data))
        except Exception as exc:  # the thread must go on for the next event
            warn_undelivered(f"an event from a worker process could not be sent: {exc}")
        finally:
            _forwarding_idle.set()


def _wait_for_forwarded(timeout: float) -> None:
    """Until every event the workers handed over is with the SDK, at most `timeout`."""
    deadline = time.monotonic() + timeout
    while _forwarding_pid == os.getpid() and time.monotonic() < deadline:
        if _forwarding_idle.is_set() and _forwarded.empty():
            return
        time.sleep(0.005)


def warn_undelivered(cause: str) -> None:
    """Log the first reason why events do not reach Sentry; later ones add nothing new."""
    global _problem
    if _problem is None:
        _problem = cause
        logger.warning("Sentry events are not delivered: %s. The flow run is not affected.", cause)


def delivered() -> bool:
    """Whether every event so far reached Sentry, as far as this process knows."""
    return _problem is None


def flush(timeout: Optional[float] = None) -> bool:
    """Wait up to `timeout` seconds (default SENTRY_SHUTDOWN_TIMEOUT) for queued events.

    Return whether every event so far was delivered; warn once when the time ran out.
    """
    global _gave_up
    client = sentry_sdk.get_client()
    if not client.is_active() or _gave_up:
        return delivered()
    timeout = client.options["shutdown_timeout"] if timeout is None else timeout
    pending: List[int] = []
    started = time.monotonic()
    _wait_for_forwarded(timeout)
    left = max(0.0, timeout - (time.monotonic() - started))
    client.flush(left, callback=lambda count, _: pending.append(count))
    if pending and time.monotonic() - started >= timeout:
        _gave_up = True
        warn_undelivered(
            f"Sentry did not take the queued events within {timeout:g} s "
            f"({SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME}): about {pending[0]} left unsent"
        )
    return delivered()


def shutdown_timeout() -> float:
    """SENTRY_SHUTDOWN_TIMEOUT in seconds: the longest a process waits for Sentry."""
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


def deliver_before_exit() -> None:
    """Send this process's queued events when it ends, even where exit handlers do not run.

    Worker processes of a process pool (and of a Dask cluster) end through
    `multiprocessing`, which skips `atexit` but runs its own finalizers: the flush waits
    there, once, at most SENTRY_SHUTDOWN_TIMEOUT, and never while a task runs.
    """
    global _exit_flush_pid
    if isinstance(sentry_sdk.get_client().transport, ForwardingTransport):
        return  # its events are sent by the flow's process
    if _exit_flush_pid != os.getpid():
        _exit_flush_pid = os.getpid()
        multiprocessing.util.Finalize(None, flush_at_exit, exitpriority=100)


@atexit.register
def flush_at_exit() -> None:
    """Send what is still queued when the interpreter ends, waiting a bounded time."""
    client = sentry_sdk.get_client()
    if client.is_active():
        flush()
        client.close(timeout=0)


def _explain(reason: str, error: Optional[BaseException], netloc: str) -> str:
    if error is not None:
        return f"cannot reach Sentry at {netloc}: {_root_cause(error)}"
    if reason in ("status_429", "self_rate_limits"):
        return f"Sentry at {netloc} is rate-limiting this project (HTTP 429)"
    if reason.startswith("status_"):
        return f"Sentry at {netloc} answered HTTP {reason[len('status_') :]}"
    if reason == "full_queue":
        return "more events at once than the SDK queues (100): the rest were dropped"
    return f"the SDK dropped an event ({reason})"


def _root_cause(error: BaseException) -> str:
    """The innermost error: `[Errno 111] Connection refused` rather than urllib3's wrappers."""
    for _ in range(10):  # a chain of causes can loop
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return f"{type(error).__name__}: {error}"
