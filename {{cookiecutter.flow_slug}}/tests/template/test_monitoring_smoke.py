"""Monitoring works end to end in this project. The template owns this folder.

A flow run with a failing task reports it once, with its tags, to a Sentry endpoint on
127.0.0.1, and `make check-monitoring` gets its test event there. The template's own
suite proves the rest against every baked project: what is reported and when, secrets,
faults, executors, Crons and deployment (README, "Where to write your code").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from .sentry_endpoint import SentryEndpoint

PROJECT = Path(__file__).resolve().parents[2]

FAILING_RUN = """
from prefect import task

from {{ cookiecutter.__package }}.monitoring import MonitoredFlow


@task
def divide(x: int) -> float:
    return 1 / x


with MonitoredFlow("Monitoring smoke test") as flow:
    divide(0)
assert flow.run().is_failed()
"""


class Run:
    """A command started against a Sentry endpoint of its own, as a flow run's image starts."""

    def __init__(self, command: List[str]) -> None:
        self.sentry = SentryEndpoint().start()
        env = {name: value for name, value in os.environ.items() if not name.startswith("SENTRY_")}
        env.update(
            SENTRY_DSN=self.sentry.dsn,
            SENTRY_REGION="eu-west-1",
            SENTRY_ENVIRONMENT="test",
            SENTRY_RELEASE="0123abc",
        )
        self._process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait(self) -> Tuple[int, str]:
        """Its exit status and output, once it has ended."""
        stdout, stderr = self._process.communicate(timeout=120)
        return self._process.returncode, stdout + stderr


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    """Both commands, started at once: each waits mostly for its imports."""
    started = {
        "flow": Run([sys.executable, "-c", FAILING_RUN]),
        "check": Run(["make", "check-monitoring"]),
    }
    yield started
    for run in started.values():
        run.sentry.stop()


def test_a_failing_task_is_reported_once_with_its_tags(runs: Dict[str, Run]) -> None:
    status, output = runs["flow"].wait()

    assert status == 0, output[-3000:]
    # The process has ended: its event must be here already, and only one.
    [event] = runs["flow"].sentry.events(timeout=0)
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert (event["environment"], event["release"]) == ("test", "0123abc")
    tags = event["tags"]
    assert (tags["flow_name"], tags["task_name"], tags["task_slug"]) == (
        "Monitoring smoke test",
        "divide",
        "divide-1",
    )
    assert (tags["region"], tags["task_run_count"]) == ("eu-west-1", "1")
    assert tags["flow_run_id"] and tags["flow_run_name"]


def test_make_check_monitoring_sends_its_test_event(runs: Dict[str, Run]) -> None:
    status, output = runs["check"].wait()

    assert status == 0, output[-3000:]
    [event_id] = re.findall(r"Sentry took test event ([0-9a-f]{32})\.", output)
    [event] = runs["check"].sentry.events(timeout=0)
    assert (event["event_id"], event["level"]) == (event_id, "info")
