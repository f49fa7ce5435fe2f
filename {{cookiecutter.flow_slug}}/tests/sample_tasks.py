"""Small tasks that the monitoring tests build their flows from. The template owns this file."""

from __future__ import annotations

from prefect import task


@task
def invert(x: int) -> float:
    """Fails with ZeroDivisionError for 0: the failure the tests watch for."""
    return 1 / x


@task
def add_one(x: float) -> float:
    return x + 1
