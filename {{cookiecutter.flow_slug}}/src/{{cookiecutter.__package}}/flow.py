"""The flow: which tasks run, and in what order. This file is yours.

Run it once on this machine with `make run`. How Prefect stores, schedules and runs it
in production lives in `deployment/`, which the template owns.
"""

from __future__ import annotations

from prefect import Parameter

from .deployment import EXECUTOR, RUN_CONFIG, SCHEDULE, SENTRY_CRONS, STORAGE
from .monitoring import MonitoredFlow
from .tasks import extract, load, transform

FLOW_NAME = {{ cookiecutter.flow_name | python_string }}

with MonitoredFlow(
    FLOW_NAME,
    executor=EXECUTOR,
    run_config=RUN_CONFIG,
    schedule=SCHEDULE,
    storage=STORAGE,
    sentry_crons=SENTRY_CRONS,
) as flow:
    day = Parameter("day", default="today")
    rows = extract(day)
    load(transform.map(rows))
