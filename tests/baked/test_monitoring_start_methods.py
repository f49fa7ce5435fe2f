"""Worker processes hand their events to the flow's process however they were started.

Python 3.14 starts process pools with `forkserver`, macOS with `spawn`: neither inherits
anything from the flow's process. Each run forces one start method in a fresh
interpreter, and gives the workers a DSN where nothing listens: an event reaches the
loopback Sentry only if the flow's process sent it.
"""

from __future__ import annotations

import json
import os

import pytest

from .fixtures import REGION, run_python
from .project import PACKAGE, SentryEndpoint, module

sentry_setup = module("monitoring.sentry_setup")

FLOW_WITH_A_PROCESS_POOL = """
import json
import multiprocessing
import os

from prefect import task
from prefect.executors import LocalDaskExecutor

from BAKED_PACKAGE.monitoring import MonitoredFlow, sentry_setup


@task
def invert(x: int) -> float:
    return 1 / x


@task
def started_by(x: int) -> list:
    return [os.getpid(), multiprocessing.get_start_method()]


if __name__ == "__main__":
    multiprocessing.set_start_method(os.environ["START_METHOD"])
    assert sentry_setup.init_sentry()
    # What the workers will read: a Sentry that refuses every connection.
    os.environ[sentry_setup.SENTRY_DSN_ENV_NAME] = "http://public@127.0.0.1:9/1"
    pool = LocalDaskExecutor("processes", num_workers=1)
    with MonitoredFlow("Start methods", executor=pool) as flow:
        workers = started_by.map([0])
        invert.map([1, 0])
    state = flow.run()
    print(json.dumps({"flow": os.getpid(), "workers": state.result[workers].result}))
""".replace("BAKED_PACKAGE", PACKAGE)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_failing_task_in_a_worker_is_reported_once_whatever_started_the_worker(
    sentry: SentryEndpoint, method: str
) -> None:
    env = {
        **os.environ,
        sentry_setup.SENTRY_DSN_ENV_NAME: sentry.dsn,
        sentry_setup.SENTRY_REGION_ENV_NAME: REGION,
        sentry_setup.SENTRY_ENVIRONMENT_ENV_NAME: "test",
        sentry_setup.SENTRY_RELEASE_ENV_NAME: "0123abc",
        "START_METHOD": method,
    }

    stdout, stderr, _ = run_python(FLOW_WITH_A_PROCESS_POOL, env)

    ran = json.loads(stdout.splitlines()[-1])
    [[worker, started]] = ran["workers"]
    assert (worker != ran["flow"], started) == (True, method)
    [event] = sentry.events(expected=1, timeout=0)  # the flow's process has ended: all sent
    tags = event["tags"]
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert (tags["task_name"], tags["map_index"], tags["flow_name"]) == (
        "invert",
        "1",
        "Start methods",
    )
    assert (tags["region"], event["environment"], event["release"]) == (REGION, "test", "0123abc")
    assert "Sentry events are not delivered" not in stderr
