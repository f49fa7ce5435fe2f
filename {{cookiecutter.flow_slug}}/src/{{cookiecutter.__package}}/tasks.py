"""The flow's tasks: plain Python functions that Prefect runs. This file is yours.

Replace these examples with your own work. A task that raises is reported to Sentry
with no extra code: the flow is a `MonitoredFlow` (see the monitoring package).
"""

from __future__ import annotations

from typing import Any, Dict, List

from prefect import task

Row = Dict[str, Any]


@task
def extract(day: str) -> List[Row]:
    """The rows to process for `day` (an example: read them from your source)."""
    return [{"day": day, "amount": amount} for amount in (12, 7, 30)]


@task
def transform(row: Row) -> Row:
    """One row, enriched (runs once per row: see `transform.map` in flow.py)."""
    return {**row, "amount_with_tax": round(row["amount"] * 1.15, 2)}


@task
def load(rows: List[Row]) -> int:
    """Write the rows to your destination; return how many were written."""
    return len(rows)
