"""The same events, with the same tags, whichever executor runs the tasks.

Worker processes start without Sentry: each one starts it
from the same settings (SSM over real HTTP, from moto's server) and sends its events
before it can end. One Dask cluster of two worker processes serves the whole module.
"""

from __future__ import annotations

import logging
from typing import Iterator

import pytest
import sentry_sdk
from distributed import LocalCluster
from prefect import Parameter, Task, task, unmapped
from prefect.engine.state import State
from prefect.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor

from .fixtures import REGION, use_monitoring
from .project import SentryEndpoint, module
from .sample_tasks import add_one, invert

MonitoredFlow = module("monitoring").MonitoredFlow
tracing = module("monitoring.tracing")
TRACES_SAMPLE_RATE = tracing.SENTRY_TRACES_SAMPLE_RATE_ENV_NAME

CLUSTER_DSN_PARAMETER = "/test/executors/sentry-dsn"
EXECUTORS = ["local", "local-dask-threads", "local-dask-processes", "dask-cluster"]


@task
def explode() -> None:
    raise RuntimeError("exploded")


@pytest.fixture(scope="module")
def cluster(endpoint: SentryEndpoint, aws: str) -> Iterator[LocalCluster]:
    """Two Dask worker processes, started with the flow's SENTRY_* variables and nothing else.

    Their SENTRY_TRACES_SAMPLE_RATE lets them trace: a flow run decides whether it is traced.
    """
    # Only while the workers start: in this process, each test chooses whether it traces.
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_monitoring(monkeypatch, endpoint.dsn, aws, parameter=CLUSTER_DSN_PARAMETER)
        monkeypatch.setenv(TRACES_SAMPLE_RATE, "1")
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    with cluster:
        yield cluster


@pytest.fixture(params=EXECUTORS)
def executor(
    request: pytest.FixtureRequest,
    endpoint: SentryEndpoint,
    cluster: LocalCluster,
    aws: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Executor:
    """Each executor in turn, monitoring on, the module's endpoint emptied."""
    use_monitoring(monkeypatch, endpoint.dsn, aws, parameter=CLUSTER_DSN_PARAMETER)
    endpoint.clear()
    return make_executor(request.param, cluster)


def make_executor(name: str, cluster: LocalCluster) -> Executor:
    if name == "dask-cluster":
        return DaskExecutor(address=cluster.scheduler_address)
    if name == "local-dask-processes":
        return LocalDaskExecutor(scheduler="processes", num_workers=2)
    if name == "local-dask-threads":
        return LocalDaskExecutor(scheduler="threads", num_workers=2)
    return LocalExecutor()


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
def test_every_executor_reports_the_same_events_with_the_same_tags(
    endpoint: SentryEndpoint, executor: Executor
) -> None:
    with MonitoredFlow("Every executor", executor=executor) as flow:
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


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
def test_every_executor_traces_a_flow_run_as_one_trace(
    endpoint: SentryEndpoint, executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow run's span is the root; every task span, from whatever thread or process,
    is in its trace with it as parent (in another process, as a segment of its own). Each
    map costs its summary and SAMPLED_CHILDREN children's spans, however many it runs."""
    monkeypatch.setenv(TRACES_SAMPLE_RATE, "1")
    with MonitoredFlow("Traced everywhere", executor=executor) as flow:
        add_one.map(invert.map([1, 0, 2, 0, 4]))
        add_one(explode())

    assert flow.run().is_failed()
    sentry_sdk.flush()

    expected = 3 + 2 * (1 + tracing.SAMPLED_CHILDREN)
    spans = endpoint.spans(expected=expected)
    assert len(spans) == expected
    [root] = [span for span in spans if "parent_span_id" not in span]
    assert root["name"] == "Traced everywhere"
    assert {span["trace_id"] for span in spans} == {root["trace_id"]}
    assert {span.get("parent_span_id") for span in spans if span is not root} == {root["span_id"]}
    names = sorted(span["name"] for span in spans if span is not root)
    assert names == sorted(["explode", "add_one", *["invert", "add_one"] * 4])
    assert len(endpoint.events(expected=3)) == 3


@task
def warn_then_fail(number: int, api_token: str) -> None:
    logging.getLogger("sales.api").warning("call %s refused %s", number, api_token)
    raise ValueError(f"call {number} failed")


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
def test_an_event_carries_the_log_lines_of_its_own_task_run_only(
    endpoint: SentryEndpoint, executor: Executor
) -> None:
    """Four task runs per flow run on at most two threads or processes, two flow runs in one
    process: each event has its own task run's warning, none of another's, and no token of
    either run (the second run's scrubber does not know the first run's token)."""
    tokens = ["first-run-token-1402", "second-run-token-2513"]
    with MonitoredFlow("Own lines", executor=executor) as flow:
        warn_then_fail.map([0, 1, 2, 3], unmapped(Parameter("api_token")))

    for token in tokens:
        assert flow.run(parameters={"api_token": token}).is_failed()
    sentry_sdk.flush()

    events = endpoint.events(expected=8)
    for event in events:
        lines = [
            crumb["message"]
            for crumb in event.get("breadcrumbs", {}).get("values", [])
            if crumb.get("category") == "sales.api"
        ]
        assert lines == [f"call {event['tags']['map_index']} refused [Filtered]"]
    sent = b"".join(endpoint.bodies)
    assert [token for token in tokens if token.encode() in sent] == []


def break_on_success(task: Task, old_state: State, new_state: State) -> State:
    """The team's own state handler, with a bug."""
    if new_state.is_successful():
        raise RuntimeError(f"the handler of {task.name} broke")
    return new_state


@task(state_handlers=[break_on_success])
def succeed(x: int) -> int:
    return x


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
def test_a_task_failed_by_its_own_state_handler_is_reported(
    endpoint: SentryEndpoint, executor: Executor
) -> None:
    with MonitoredFlow("Broken handler", executor=executor) as flow:
        succeed(1)
        succeed(2)

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    events = endpoint.events(expected=2)
    reported = sorted(
        (
            event["exception"]["values"][-1]["type"],
            event["exception"]["values"][-1]["value"],
            event["exception"]["values"][-1]["mechanism"]["handled"],
            event["tags"]["task_slug"],
        )
        for event in events
    )
    assert reported == [
        ("RuntimeError", "the handler of succeed broke", False, "succeed-1"),
        ("RuntimeError", "the handler of succeed broke", False, "succeed-2"),
    ]


LONG_NAME = "load " + "the sales of every region and every day " * 6  # 245 characters


@task(name=LONG_NAME)
def long_named(x: int) -> float:
    return 1 / x


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
def test_tags_stay_within_sentry_s_limits(endpoint: SentryEndpoint, executor: Executor) -> None:
    """Sentry drops a tag value over 200 characters and a tag key over 32: cut them."""
    with MonitoredFlow("Long names", executor=executor) as flow:
        long_named(0)

    assert flow.run().is_failed()
    sentry_sdk.flush()

    [event] = endpoint.events(expected=1)
    assert event["tags"]["task_name"] == LONG_NAME[:197] + "..."
    assert event["tags"]["task_slug"].startswith(LONG_NAME[:100])
    assert [key for key in event["tags"] if len(key) > 32] == []
    assert [value for value in event["tags"].values() if len(value) > 200] == []
