"""Getting events to Sentry without ever holding the flow up.

The SDK queues events and sends them from a background thread, so a slow or broken
Sentry never blocks a task. What this module adds: one warning, the first time Sentry
does not take an event, that says why; and a wait bounded by SENTRY_SHUTDOWN_TIMEOUT
when a process ends with events still queued. Nothing waits for Sentry while a task or
the flow runs:

- worker processes the flow's process starts (a process pool's, however it starts them:
  fork, spawn or forkserver) hand each event to the flow's process over a local socket,
  and it sends them (`ForwardingTransport`): they end at once, and only the flow's
  process waits for Sentry when it ends;
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
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Dict, List, Optional, Set

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
_forwarding_pid: Optional[int] = None  # the process that takes its workers' events
_workers: Set[Connection] = set()  # in that process: one connection per worker that handed over
_in_hand = 0  # events read from a worker and not yet with the SDK
_counting = threading.Lock()
_to_flow: Optional[Connection] = None  # in a worker process: where its events go
_sending = threading.Lock()


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
    """In a worker process of the flow's: each event goes to the flow's process to send."""

    def capture_envelope(self, envelope: Envelope) -> None:
        if _to_flow is None:
            return
        try:
            with _sending:
                _to_flow.send_bytes(envelope.serialize())  # a local socket: no waiting for Sentry
        except OSError as exc:  # the flow's process is gone
            warn_undelivered(f"an event could not be handed to the flow's process: {exc}")

    def flush(self, timeout: float, callback: Optional[Any] = None) -> None:
        pass  # nothing is queued here


def _forwarding_address(pid: int) -> str:
    """Where the process `pid` takes its workers' events: a socket in Linux's abstract
    namespace, which needs no file (a read-only root) and goes with the process."""
    return f"\0sentry-forwarding-{pid}"


def forward_from_forked_workers() -> None:
    """In the flow's process: send what the worker processes it starts hand over
    (ForwardingTransport), whether they were forked, spawned or forkserver-started.

    Only those workers get in: they share this process's `multiprocessing` authentication
    key, which the socket checks. Where there is no abstract namespace (not Linux), the
    workers send their events themselves.
    """
    global _forwarding_pid
    if _forwarding_pid == os.getpid() or _to_flow is not None:
        return  # forwarding already, or a worker that hands its own events over
    try:
        listener = Listener(_forwarding_address(os.getpid()), family="AF_UNIX")
    except OSError:
        return
    _forwarding_pid = os.getpid()
    _workers.clear()  # a forked child's copies of its parent's connections
    threading.Thread(
        target=_accept_workers, args=(listener,), name="sentry-forwarded", daemon=True
    ).start()


def forwarding_options() -> Dict[str, Any]:
    """SDK options for a worker process of a flow's process that forwards: hand events to it."""
    global _to_flow
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None or _dask_worker():
        return {}
    try:
        _to_flow = Client(_forwarding_address(parent.pid), family="AF_UNIX")
    except (OSError, EOFError, multiprocessing.AuthenticationError):
        return {}  # its parent does not forward: it sends its own events
    return {"transport": ForwardingTransport}


def _dask_worker() -> bool:
    """A Dask worker that a LocalCluster's nanny started: it sends its own events and
    flushes them when it is retired (deployment/worker_monitoring.py), as any Dask worker."""
    return multiprocessing.current_process().name.startswith("Dask Worker process")


def _accept_workers(listener: Listener) -> None:
    while True:
        try:
            worker = listener.accept()
        except (EOFError, multiprocessing.AuthenticationError):
            continue  # not one of this process's workers
        except OSError:
            time.sleep(0.1)  # e.g. out of file descriptors for a moment
            continue
        _workers.add(worker)
        threading.Thread(
            target=_send_forwarded, args=(worker,), name="sentry-forwarded", daemon=True
        ).start()


def _send_forwarded(worker: Connection) -> None:
    """Send each event `worker` hands over, until it ends and its end of the socket closes."""
    global _in_hand
    try:
        while worker.poll(None):
            with _counting:
                _in_hand += 1  # before reading: _wait_for_forwarded sees it unread, or in hand
            try:
                data = worker.recv_bytes()
                transport = sentry_sdk.get_client().transport
                if transport is not None:
                    transport.capture_envelope(Envelope.deserialize(data))
            except (EOFError, OSError):
                break  # the worker ended
            except Exception as exc:  # the thread must go on for the next event
                warn_undelivered(f"an event from a worker process could not be sent: {exc}")
            finally:
                with _counting:
                    _in_hand -= 1
    finally:
        _workers.discard(worker)
        worker.close()


def _unread(worker: Connection) -> bool:
    try:
        return worker.poll(0)
    except (OSError, ValueError):  # closed by its thread meanwhile
        return False


def _wait_for_forwarded(timeout: float) -> None:
    """Until every event the workers handed over is with the SDK, at most `timeout`."""
    deadline = time.monotonic() + timeout
    while _forwarding_pid == os.getpid() and time.monotonic() < deadline:
        if _in_hand == 0 and not any(_unread(worker) for worker in list(_workers)):
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
