"""The same events, with the same tags, whichever executor runs the tasks.

Worker processes start without Sentry: each one starts it
from the same settings (SSM over real HTTP, from moto's server) and sends its events
before it can end. One Dask cluster of two worker processes serves the whole module.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import sentry_sdk
from distributed import LocalCluster
from prefect import task
from prefect.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor

from .fixtures import REGION, use_monitoring
from .project import SentryEndpoint, module
from .sample_tasks import add_one, invert

MonitoredFlow = module("monitoring").MonitoredFlow

CLUSTER_DSN_PARAMETER = "/test/executors/sentry-dsn"


@task
def explode() -> None:
    raise RuntimeError("exploded")


@pytest.fixture(scope="module")
def cluster(endpoint: SentryEndpoint, aws: str) -> Iterator[LocalCluster]:
    """Two Dask worker processes, started with the flow's SENTRY_* variables and nothing else."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_monitoring(monkeypatch, endpoint.dsn, aws, parameter=CLUSTER_DSN_PARAMETER)
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            yield cluster


def make_executor(name: str, cluster: LocalCluster) -> Executor:
    if name == "dask-cluster":
        return DaskExecutor(address=cluster.scheduler_address)
    if name == "local-dask-processes":
        return LocalDaskExecutor(scheduler="processes", num_workers=2)
    if name == "local-dask-threads":
        return LocalDaskExecutor(scheduler="threads", num_workers=2)
    return LocalExecutor()


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
@pytest.mark.parametrize(
    "executor", ["local", "local-dask-threads", "local-dask-processes", "dask-cluster"]
)
def test_every_executor_reports_the_same_events_with_the_same_tags(
    endpoint: SentryEndpoint,
    cluster: LocalCluster,
    aws: str,
    monkeypatch: pytest.MonkeyPatch,
    executor: str,
) -> None:
    use_monitoring(monkeypatch, endpoint.dsn, aws, parameter=CLUSTER_DSN_PARAMETER)
    endpoint.clear()
    with MonitoredFlow("Every executor", executor=make_executor(executor, cluster)) as flow:
        add_one.map(invert.map([1, 0, 2, 0]))
        add_one(explode())

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    events = endpoint.events(expected=3)
    reported = sorted(
        (
            event["exception"]["values"][-1]["type"],
            event["tags"]["task_name"],
            event["tags"].get("map_index"),
            event["tags"]["task_run_count"],
            event["tags"]["flow_name"],
            event["tags"]["region"],
            event["environment"],
            event["release"],
        )
        for event in events
    )
    assert reported == [
        ("RuntimeError", "explode", None, "1", "Every executor", REGION, "test", "0123abc"),
        ("ZeroDivisionError", "invert", "1", "1", "Every executor", REGION, "test", "0123abc"),
        ("ZeroDivisionError", "invert", "3", "1", "Every executor", REGION, "test", "0123abc"),
    ]
    assert len({event["tags"]["flow_run_id"] for event in events}) == 1
