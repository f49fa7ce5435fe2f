"""How Prefect stores, schedules and runs the flow. The template owns this package."""

from __future__ import annotations

import os
from typing import Optional

from prefect.schedules import CronSchedule, Schedule
from prefect.storage import Module

from .executor import EXECUTOR, RUN_CONFIG_ENV
from .run_config import RUN_CONFIG

__all__ = ["EXECUTOR", "RUN_CONFIG", "SCHEDULE", "SENTRY_CRONS", "STORAGE"]

# The Prefect Server UI's address, which Sentry events link to (monitoring/events.py).
# The deploy workflow sets it at registration; the run config passes it to every run.
SERVER_UI_ENV_NAME = "PREFECT__SERVER__UI__ENDPOINT"
if os.environ.get(SERVER_UI_ENV_NAME):
    RUN_CONFIG.env = {**(RUN_CONFIG.env or {}), SERVER_UI_ENV_NAME: os.environ[SERVER_UI_ENV_NAME]}
# Settings an executor reads when the flow run starts, given at registration.
if RUN_CONFIG_ENV:
    RUN_CONFIG.env = {**(RUN_CONFIG.env or {}), **RUN_CONFIG_ENV}

# The flow is imported from the installed package inside the image: nothing is pickled.
STORAGE = Module({{ (cookiecutter.__package ~ ".flow") | tojson }})

# Cron expression in UTC; empty for a flow that only runs when asked to. With no Prefect
# backend, EventBridge Scheduler starts the runs instead, and Sentry Crons reads it.
SCHEDULE_CRON = {{ cookiecutter.schedule | trim | tojson }}


def schedule_from_cron(cron: str) -> Optional[Schedule]:
    return CronSchedule(cron) if cron else None


SCHEDULE = schedule_from_cron(SCHEDULE_CRON)

# Sentry Crons check-ins at the start and end of each run, so that Sentry reports runs
# that were missed or crashed (monitoring/crons.py). Set by the answer `sentry_crons`.
SENTRY_CRONS = {{ cookiecutter.sentry_crons is sameas true }}
