"""How events leave a process, in detail: the flush's wait for events that worker processes
handed over, and the one warning that says why events were not delivered."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any, List, Optional

import pytest
import sentry_sdk

from .fixtures import monitoring_warnings
from .project import SentryEndpoint, module

init_sentry = module("monitoring").init_sentry
transport = module("monitoring.transport")


class Clock:
    """A clock that moves only when the code under test sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


@pytest.mark.parametrize(
    ("unread", "in_hand", "closed", "waits"),
    [
        (True, 0, False, True),  # handed over, not read yet
        (False, 1, False, True),  # read, not yet with the SDK
        (False, 0, False, False),  # every event with the SDK
        (False, 0, True, False),  # the worker's connection closed meanwhile
    ],
    ids=["unread", "in-hand", "all-sent", "closed"],
)
def test_the_flush_waits_while_a_worker_s_event_is_unread_or_in_hand(
    monkeypatch: pytest.MonkeyPatch, unread: bool, in_hand: int, closed: bool, waits: bool
) -> None:
    clock = Clock()
    monkeypatch.setattr(transport, "time", clock)
    monkeypatch.setattr(transport, "_forwarding_pid", os.getpid())
    monkeypatch.setattr(transport, "_in_hand", in_hand)
    worker, handed_over = multiprocessing.Pipe(duplex=False)
    monkeypatch.setattr(transport, "_workers", {worker})
    if unread:
        handed_over.send_bytes(b"an event")
    if closed:
        worker.close()

    transport._wait_for_forwarded(1.0)

    if waits:
        assert clock.now >= 1001.0  # slept on the clock until the deadline
    else:
        assert clock.sleeps == 0
    handed_over.close()


def caught(raise_chain: Any) -> BaseException:
    try:
        raise_chain()
    except Exception as error:  # noqa: BLE001 - the error is what the test looks at
        return error
    raise AssertionError("nothing raised")


def raised_while_handling() -> None:
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except OSError:
        raise RuntimeError("the request failed")  # noqa: B904 - only a __context__, no cause


class MaxRetryError(Exception):
    """As urllib3's: the error it gave up on is its `reason`."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__("Max retries exceeded")
        self.reason = reason


def retried_after_a_refusal() -> None:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError as refused:
        raise MaxRetryError(OSError("Failed to establish a new connection")) from refused


def a_loop() -> None:
    first, second = ValueError("first"), ValueError("second")
    first.__context__, second.__context__ = second, first
    raise first


@pytest.mark.parametrize(
    ("chain", "root"),
    [
        (raised_while_handling, "ConnectionResetError: [Errno 104] Connection reset by peer"),
        (retried_after_a_refusal, "OSError: Failed to establish a new connection"),
        (a_loop, "ValueError: first"),  # ten steps round a loop of two
    ],
    ids=["context", "reason", "loop"],
)
def test_a_network_warning_names_the_innermost_error(chain: Any, root: str) -> None:
    assert transport._root_cause(caught(chain)) == root


@pytest.mark.parametrize(
    ("reason", "explained"),
    [
        ("status_429", "Sentry at sentry.test is rate-limiting this project (HTTP 429)"),
        ("self_rate_limits", "Sentry at sentry.test is rate-limiting this project (HTTP 429)"),
        ("status_413", "Sentry at sentry.test answered HTTP 413"),
        ("full_queue", "more events at once than the SDK queues (100): the rest were dropped"),
        ("backpressure", "the SDK dropped an event (backpressure)"),
        ("network", "the SDK dropped an event (network)"),
    ],
)
def test_each_reason_the_sdk_drops_an_event_for_is_explained(reason: str, explained: str) -> None:
    assert transport._explain(reason, None, "sentry.test") == explained


def test_a_full_queue_is_not_taken_for_the_error_being_handled(
    monitoring_env: SentryEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK drops an event for a full queue in the thread that captures it: often
    inside the `except` block of a task that logs its own error."""
    assert init_sentry()
    try:
        raise ValueError("the task's own error")
    except ValueError:
        sentry_sdk.get_client().transport.on_dropped_event("full_queue")

    [warning] = monitoring_warnings(caplog, "not delivered")
    assert "more events at once than the SDK queues (100)" in warning
    assert "ValueError" not in warning


@pytest.mark.parametrize(
    ("timeout", "left"), [(None, 1.25), (1.0, 0.25)], ids=["the-setting", "given"]
)
def test_the_sdk_s_flush_gets_only_the_time_the_forwarded_events_left(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    timeout: Optional[float],
    left: float,
) -> None:
    """The flush's timeout (SENTRY_SHUTDOWN_TIMEOUT, 2 s, unless given) bounds the whole
    flush: what waiting for the workers' events took (0.75 s, on a clock the test moves)
    is taken off what the SDK may wait."""
    assert init_sentry()
    clock = Clock()
    monkeypatch.setattr(transport, "time", clock)
    monkeypatch.setattr(transport, "_wait_for_forwarded", lambda timeout: clock.sleep(0.75))
    given: List[float] = []
    monkeypatch.setattr(
        sentry_sdk.get_client(), "flush", lambda timeout, callback: given.append(timeout)
    )

    assert transport.flush(timeout=timeout)

    assert given == [left]


def test_the_warning_of_a_flush_that_ran_out_names_its_timeout(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert init_sentry()

    def three_left(timeout: float, callback: Any = None) -> None:
        if callback is not None:  # not when the test's clean-up closes the client
            callback(3, timeout)

    monkeypatch.setattr(sentry_sdk.get_client(), "flush", three_left)
    clock = Clock()
    monkeypatch.setattr(transport, "time", clock)
    monkeypatch.setattr(transport, "_wait_for_forwarded", lambda timeout: clock.sleep(timeout))

    assert not transport.flush(timeout=0.5)

    [warning] = monitoring_warnings(caplog, "not delivered")
    assert "within 0.5 s (SENTRY_SHUTDOWN_TIMEOUT): about 3 left unsent" in warning
