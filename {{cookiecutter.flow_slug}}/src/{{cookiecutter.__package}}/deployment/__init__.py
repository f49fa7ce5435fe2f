"""How Prefect stores, schedules and runs the flow. The template owns this package."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from prefect.schedules import CronSchedule, Schedule
from prefect.storage import Module

from ..monitoring.crons import CronsMonitor
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
SCHEDULE_CRON = {{ cookiecutter.__cron | tojson }}


def schedule_from_cron(cron: str) -> Optional[Schedule]:
    return CronSchedule(cron) if cron else None


SCHEDULE = schedule_from_cron(SCHEDULE_CRON)

# The Sentry Crons monitor each run checks in with when it starts and ends, so that
# Sentry reports the runs that were missed, failed or crashed (monitoring/crons.py). Its
# settings file, baked for a scheduled flow with the answer `sentry_crons`, is also what
# terraform/crons.tf creates the monitor from. Without it, the answer alone decides.
SENTRY_CRONS_SETTINGS = Path(__file__).with_name("sentry_crons.json")
SENTRY_CRONS: Union[CronsMonitor, bool] = {{ cookiecutter.sentry_crons is sameas true }}
if SENTRY_CRONS_SETTINGS.exists():
    SENTRY_CRONS = CronsMonitor.read(SENTRY_CRONS_SETTINGS)
