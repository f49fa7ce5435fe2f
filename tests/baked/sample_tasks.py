"""Small tasks that the monitoring checks build their flows from."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.triggers import all_finished


@task
def invert(x: int) -> float:
    """Fails with ZeroDivisionError for 0: the failure the tests watch for."""
    return 1 / x


@task
def log_and_invert(x: int) -> float:
    """Logs two errors first, as many tasks do before they fail: then as invert."""
    import prefect

    prefect.context.get("logger").error("about to invert %s", x)
    prefect.context.get("logger").error("still about to invert %s", x)
    return 1 / x


@task
def add_one(x: float) -> float:
    return x + 1


@task
def process_id(x: int) -> int:
    """The process the task ran in (a Dask worker's, or the flow's own)."""
    import os

    return os.getpid()


@task
def workers_now(x: int) -> int:
    """How many workers the task's Dask cluster had while it ran, a fifth of a second long."""
    import time

    from distributed import get_client

    time.sleep(0.2)
    return len(get_client().scheduler_info()["workers"])


def capture_errors(count: int) -> int:
    """Start Sentry in this process as a task's state handler does; queue `count` errors."""
    import os

    import sentry_sdk

    from tests.baked.project import module

    assert module("monitoring").init_sentry()
    for number in range(count):
        sentry_sdk.capture_message(f"captured on a worker, {number}", level="error")
    return os.getpid()


@task(trigger=all_finished)
def end_worker(upstream: Any) -> None:
    """Ends its Dask worker's process at once, as a crash does, once its upstream finished.

    What the worker's Sentry queued is sent first: a crash may lose it, and the check
    that uses this task counts events.
    """
    import os

    import sentry_sdk

    sentry_sdk.flush(timeout=10)
    os._exit(1)
