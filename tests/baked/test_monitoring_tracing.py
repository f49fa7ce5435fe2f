"""Opt-in tracing (monitoring/tracing.py): off by default, one trace per flow run when on,
bounded for wide maps, scrubbed like events. Other executors: test_monitoring_executors."""

from __future__ import annotations

import time
import urllib.request
from typing import Any, Dict, List

import pytest
import sentry_sdk
from prefect import Parameter, task
from prefect.engine.state import State
from sentry_sdk._span_batcher import SpanBatcher

from .fixtures import REGION, monitoring_warnings
from .project import SentryEndpoint, module
from .sample_tasks import add_one, invert

MonitoredFlow = module("monitoring").MonitoredFlow
tracing = module("monitoring.tracing")

RATE = tracing.SENTRY_TRACES_SAMPLE_RATE_ENV_NAME
SECRET_TOKEN = "tok-7f3a9c2e51d4"  # noqa: S105 - a made-up secret that must not leave
SECRET_TASK_NAME = f"call the API with {SECRET_TOKEN}"


def attribute(span: Dict[str, Any], name: str) -> Any:
    """A span attribute's value, as Sentry receives it ({"value": ..., "type": ...})."""
    return span["attributes"].get(name, {}).get("value")


def run_and_flush(flow: Any, **parameters: Any) -> State:
    state = flow.run(parameters=parameters)
    sentry_sdk.flush()
    return state


def trace_of(spans: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The trace's root span (the flow run's), checking every span is in its trace."""
    [root] = [span for span in spans if "parent_span_id" not in span]
    assert {span["trace_id"] for span in spans} == {root["trace_id"]}
    return root


def test_tracing_is_off_by_default_and_sends_no_span(monitoring_env: SentryEndpoint) -> None:
    with MonitoredFlow("Untraced") as flow:
        invert(0)

    assert run_and_flush(flow).is_failed()

    assert len(monitoring_env.events(expected=1)) == 1
    assert monitoring_env.items("span") == []
    options = sentry_sdk.get_client().options
    assert (options["traces_sample_rate"], options["trace_lifecycle"]) == (None, None)


@pytest.mark.parametrize("rate", ["0", "0.0", ""])
def test_a_rate_of_zero_sends_no_span(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, rate: str
) -> None:
    monkeypatch.setenv(RATE, rate)
    with MonitoredFlow("Rate zero") as flow:
        add_one(1)

    assert run_and_flush(flow).is_successful()

    assert monitoring_env.items("span") == []
    assert sentry_sdk.get_client().options["traces_sample_rate"] is None


@pytest.mark.parametrize("rate", ["1.5", "-0.1", "ten percent", "nan"])
def test_an_invalid_rate_warns_once_and_the_flow_runs_untraced(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    rate: str,
) -> None:
    monkeypatch.setenv(RATE, rate)
    with MonitoredFlow("Bad rate") as flow:
        add_one(1)

    assert run_and_flush(flow).is_successful()
    assert run_and_flush(flow).is_successful()

    [warning] = monitoring_warnings(caplog, RATE)
    assert repr(rate) in warning
    assert "from 0 to 1" in warning and "tracing is off" in warning
    assert monitoring_env.items("span") == []
    assert sentry_sdk.is_initialized()  # events still go out


def test_a_traced_flow_run_is_one_trace_of_flow_and_task_spans(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RATE, "1")
    with MonitoredFlow("Traced") as flow:
        add_one(invert(0))
        add_one(2)

    state = run_and_flush(flow)

    assert state.is_failed()
    spans = monitoring_env.spans(expected=4)
    root = trace_of(spans)
    assert root["name"] == "Traced" and root["is_segment"] is True
    assert (root["status"], attribute(root, "state")) == ("error", "Failed")
    for name in ("region", "flow_name", "flow_run_id", "flow_run_name"):
        assert attribute(root, name) is not None, name
    assert attribute(root, "region") == REGION
    tasks = sorted(
        (span["name"], attribute(span, "task_slug"), attribute(span, "state"), span["status"])
        for span in spans
        if span is not root
    )
    assert tasks == [
        ("add_one", "add_one-1", "TriggerFailed", "error"),
        ("add_one", "add_one-2", "Success", "ok"),
        ("invert", "invert-1", "Failed", "error"),
    ]
    for span in spans:
        if span is not root:
            assert span["parent_span_id"] == root["span_id"]
            assert span["is_segment"] is False
            assert attribute(span, "flow_name") == "Traced"
            assert span["end_timestamp"] >= span["start_timestamp"]
    # The error event of the same run names the same flow run.
    [event] = monitoring_env.events(expected=1)
    assert event["tags"]["flow_run_id"] == attribute(root, "flow_run_id")


def test_two_flow_runs_in_one_process_are_two_traces(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RATE, "1")
    # As in a new process (the fixtures cleared it): one trace for the process's scope.
    sentry_sdk.get_isolation_scope().set_new_propagation_context()
    with MonitoredFlow("Twice") as flow:
        add_one(1)

    run_and_flush(flow)
    run_and_flush(flow)

    spans = monitoring_env.spans(expected=4)
    roots = [span for span in spans if "parent_span_id" not in span]
    assert len(roots) == 2
    assert len({span["trace_id"] for span in spans}) == 2
    for root in roots:
        [child] = [span for span in spans if span.get("parent_span_id") == root["span_id"]]
        assert child["trace_id"] == root["trace_id"]


def mapped_trace(endpoint: SentryEndpoint, width: int) -> List[Dict[str, Any]]:
    endpoint.clear()
    with MonitoredFlow("Wide map") as flow:
        add_one.map(invert.map([0, *range(1, width)]))

    assert run_and_flush(flow).is_failed()
    return endpoint.spans(expected=1 + 2 * (1 + tracing.SAMPLED_CHILDREN))


def test_a_wide_map_costs_the_same_few_spans_as_a_narrow_one(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One summary span per mapped task, with its children counted by state, and spans for
    its first SAMPLED_CHILDREN children: 9 spans for 2 x 100 children as for 2 x 10."""
    monkeypatch.setenv(RATE, "1")

    narrow = mapped_trace(monitoring_env, 10)
    wide = mapped_trace(monitoring_env, 100)

    bound = 1 + 2 * (1 + tracing.SAMPLED_CHILDREN)
    assert len(narrow) == len(wide) == bound
    root = trace_of(wide)
    summaries = {span["name"]: span for span in wide if attribute(span, "map.size") is not None}
    assert set(summaries) == {"invert", "add_one"}
    assert attribute(summaries["invert"], "map.size") == 100
    assert attribute(summaries["invert"], "map.Success") == 99
    assert attribute(summaries["invert"], "map.Failed") == 1
    assert summaries["invert"]["status"] == "error"
    assert attribute(summaries["add_one"], "map.TriggerFailed") == 1
    assert attribute(summaries["add_one"], "map.Success") == 99
    children = sorted(
        (span["name"], attribute(span, "map_index"))
        for span in wide
        if attribute(span, "map_index") is not None
    )
    assert children == sorted(
        (name, str(index)) for name in ("add_one", "invert") for index in range(3)
    )
    assert all(span.get("parent_span_id", root["span_id"]) == root["span_id"] for span in wide)


@task
def post_to(url: str) -> int:
    with urllib.request.urlopen(url, data=b"{}", timeout=5) as response:
        return response.status


def test_only_flow_and_task_runs_are_spans(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's HTTP call is no span of its own: the SDK's integrations find no current span."""
    monkeypatch.setenv(RATE, "1")
    other_service = SentryEndpoint().start()
    try:
        with MonitoredFlow("Calls a service") as flow:
            post_to(other_service.url)

        assert run_and_flush(flow).is_successful()
    finally:
        other_service.stop()

    # One batch: the spans of a trace go out together when its root span ends.
    spans = monitoring_env.spans(expected=2)
    assert sorted(span["name"] for span in spans) == ["Calls a service", "post_to"]


@task(name=SECRET_TASK_NAME)
def call_api(api_token: str) -> str:
    time.sleep(0.3)  # past the span batcher's flush interval (shortened below)
    return api_token[:3]


def test_no_secret_reaches_a_span(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret parameter, and the same secret in a task's name and in the process's
    arguments (sys.argv is a segment attribute), never leave the process. Also not in
    an envelope's header, which names the trace's root span: spans sent while the flow
    runs (the SDK sends them every 5 s, here every 50 ms) go out before the root span's
    own name passes the scrubber."""
    monkeypatch.setenv(RATE, "1")
    monkeypatch.setattr(SpanBatcher, "FLUSH_WAIT_TIME", 0.05)
    monkeypatch.setattr("sys.argv", ["flow", f"--api-token={SECRET_TOKEN}"])
    with MonitoredFlow(f"Flow of {SECRET_TOKEN}") as flow:
        call_api(Parameter("api_token"))

    assert run_and_flush(flow, api_token=SECRET_TOKEN).is_successful()

    spans = monitoring_env.spans(expected=3)
    assert len(spans) == 3
    assert sorted(span["name"] for span in spans) == [
        "Flow of [Filtered]",
        "api_token",
        "call the API with [Filtered]",
    ]
    sent = b"".join(monitoring_env.bodies)
    assert SECRET_TOKEN.encode() not in sent
    assert b"[Filtered]" in sent
