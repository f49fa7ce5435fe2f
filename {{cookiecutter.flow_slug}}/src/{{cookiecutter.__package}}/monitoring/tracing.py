"""Opt-in tracing: one trace per flow run, with SENTRY_TRACES_SAMPLE_RATE (default 0: off).

Off (unset, empty or 0), no span is ever made or sent: the state handlers' only cost is
one test of a flag. A value that is not a number from 0 to 1 logs one warning and leaves
tracing off; the flow runs as it would. On, the given share of flow runs is traced, on
the SDK's span streaming (`sentry_sdk.traces.start_span`, the span API of sentry-sdk
2.x's `trace_lifecycle="stream"` and of 3.x), so that a trace is made of:

- one span for the flow run, the trace's root: named after the flow, ended with its state;
- one span per task run, the flow run's child: named after the task, from Running to
  its state (a run that never ran, e.g. TriggerFailed, is a span of no length). Each
  attempt of a retried task is a span of its own (`task_run_count`);
- for a mapped task: spans for its first SAMPLED_CHILDREN children only (map_index 0, 1,
  2), and one summary span when the flow run ends, with the number of children in each
  final state (`map.Success`, `map.Failed`, ...). However wide the map, it costs at most
  SAMPLED_CHILDREN + 1 spans. The summary needs the children's states in the flow's final
  state: every local `flow.run()` has them; with a Prefect backend, only the flow's
  terminal and reference tasks do.

Every span carries the events' tags as attributes (region, flow_name, flow_run_id,
flow_run_name, flow_run_version, task_name, ...) and its final `state`. Names and
attributes are scrubbed as events are (`scrubbing.scrub`), before the span starts and
again before it is sent. Only these spans are made: they are never the scope's current
span, so the SDK's own integrations (HTTP calls, subprocesses) add none.

Where a task runs: in the flow's process (LocalExecutor, LocalDaskExecutor's threads) its
span is a child of the flow run's span; in any other process (a process pool's worker, a
Dask worker) it continues the flow run's trace (its `sentry-trace`, carried in
`prefect.context`) as a segment of its own whose parent is the flow run's span, and is
handed to the transport at once. Such a process traces only when it has the variable too
(a Dask cluster's workers get it from the flow: deployment).
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from typing import Any, Dict, Optional, Tuple

import prefect
import sentry_sdk
from prefect import Flow, Task
from prefect.engine.state import Mapped, State
from prefect.utilities.logging import get_logger

from . import sentry_setup
from .events import TAGGED_CONTEXT
from .scrubbing import FILTERED, scrub

SENTRY_TRACES_SAMPLE_RATE_ENV_NAME = "SENTRY_TRACES_SAMPLE_RATE"
# The children of a mapped task that get a span of their own, by map_index.
SAMPLED_CHILDREN = 3
# Where the flow run's trace travels to its task runs, in every process.
TRACE_CONTEXT_KEY = "sentry_trace"

logger = get_logger("monitoring")
# Whether this process's SDK streams spans: set by tracing_options, read by the handlers.
_enabled = False
# The spans still open in this process, by flow run (and task run); with the pid that
# opened them, so that a forked worker never ends its parent's copy.
_open: Dict[Tuple[Any, ...], Tuple[int, Any]] = {}
_lock = threading.Lock()


def tracing_options() -> Dict[str, Any]:
    """The SDK options that SENTRY_TRACES_SAMPLE_RATE asks for: none when tracing is off."""
    global _enabled
    _enabled = False
    rate = read_sample_rate()
    if not rate:
        return {}
    _enabled = True
    return {
        "traces_sample_rate": rate,
        "trace_lifecycle": "stream",
        "before_send_span": scrub_span,
    }


def read_sample_rate() -> float:
    """SENTRY_TRACES_SAMPLE_RATE as a number from 0 to 1; 0, with a warning, when invalid."""
    raw = os.environ.get(SENTRY_TRACES_SAMPLE_RATE_ENV_NAME, "").strip()
    if not raw:
        return 0.0
    try:
        rate = float(raw)
    except ValueError:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:  # NaN too
        logger.warning(
            "%s=%r is not a number from 0 to 1: tracing is off. Set it to the share of "
            "flow runs to trace (e.g. 0.1), or to 0 or nothing for none.",
            SENTRY_TRACES_SAMPLE_RATE_ENV_NAME,
            raw,
        )
        return 0.0
    return rate


def scrub_span(span: Dict[str, Any], hint: Dict[str, Any]) -> Dict[str, Any]:
    """`before_send_span`: the span's name and attributes without secrets.

    The SDK cannot drop a span, and sends it unchanged when this raises: on any error the
    span goes out with no name and no attributes instead.
    """
    try:
        return {**span, "name": scrub(span["name"]), "attributes": scrub(span["attributes"])}
    except Exception:
        return {**span, "name": FILTERED, "attributes": {}}


def trace_flow_run(flow: Flow, new_state: State) -> None:
    """Flow state handler's part: open the run's span when it starts, end it when it ends."""
    if not _enabled:
        return
    key = ("flow", prefect.context.get("flow_run_id"))
    if new_state.is_running() and key not in _open:
        sentry_sdk.traces.new_trace()  # a trace of its own, not the process's
        span = _start(flow.name, parent=None)
        if span.sampled:
            _open[key] = (os.getpid(), span)
            # Every task run's context is a copy of the flow run's, in every executor.
            prefect.context[TRACE_CONTEXT_KEY] = f"{span.trace_id}-{span.span_id}-1"
    elif new_state.is_finished():
        opened = _take(key)
        if opened is not None:
            _summarise_maps(flow, opened, new_state)
            _end(opened, new_state)


def trace_task_run(task: Task, new_state: State) -> None:
    """Task state handler's part: a span per task run, and per sampled child of a map."""
    if not _enabled:
        return
    traceparent = prefect.context.get(TRACE_CONTEXT_KEY)
    map_index = prefect.context.get("map_index")
    if traceparent is None or isinstance(new_state, Mapped):
        return  # not traced, or a map's parent: the flow run summarises it at its end
    if map_index is not None and map_index >= SAMPLED_CHILDREN:
        return  # counted in the map's summary
    key = (
        prefect.context.get("flow_run_id"),
        prefect.context.get("task_slug"),
        map_index,
        prefect.context.get("task_run_count"),
    )
    if new_state.is_running():
        if key not in _open:
            _open[key] = (os.getpid(), _start_task_span(task, traceparent))
    elif new_state.is_finished():
        span = _take(key) or _start_task_span(task, traceparent)
        _end(span, new_state)
        if _take(("flow", key[0]), keep=True) is None:
            # Not the flow's process: it may end without a word (a process pool's worker).
            sentry_sdk.get_client().flush(timeout=0)


def _start_task_span(task: Task, traceparent: str) -> Any:
    flow_span = _take(("flow", prefect.context.get("flow_run_id")), keep=True)
    if flow_span is not None:
        return _start(task.name, parent=flow_span)
    sentry_sdk.traces.continue_trace({"sentry-trace": traceparent})
    return _start(task.name, parent=None)


def _start(name: str, parent: Any, **attributes: Any) -> Any:
    """A span that never becomes the scope's current one, its name and tags scrubbed."""
    context = prefect.context
    tags = {tag: str(context[tag]) for tag in TAGGED_CONTEXT if context.get(tag) is not None}
    region = os.environ.get(sentry_setup.SENTRY_REGION_ENV_NAME)
    if region:
        tags["region"] = region
    return sentry_sdk.traces.start_span(
        name=scrub(name), attributes=scrub({**tags, **attributes}), parent_span=parent, active=False
    )


def _end(span: Any, state: State) -> None:
    span.set_attribute("state", type(state).__name__)
    span.status = "error" if state.is_failed() else "ok"
    span.end()


def _take(key: Tuple[Any, ...], keep: bool = False) -> Optional[Any]:
    """The span opened under `key` in this process, removed unless `keep`."""
    with _lock:
        opened = _open.get(key) if keep else _open.pop(key, None)
    if opened is None or opened[0] != os.getpid():
        return None
    return opened[1]


def _summarise_maps(flow: Flow, flow_span: Any, state: State) -> None:
    """One span per mapped task whose children's states the flow run's final state holds."""
    states = state.result if isinstance(state.result, dict) else {}
    for task, task_state in states.items():
        if isinstance(task_state, Mapped) and isinstance(task, Task):
            children = task_state.map_states
            counts = Counter(type(child).__name__ for child in children)
            span = _start(
                task.name,
                parent=flow_span,
                task_name=task.name,
                task_slug=flow.slugs.get(task, ""),
                **{"map.size": len(children)},
                **{f"map.{name}": count for name, count in counts.items()},
            )
            failed = any(child.is_failed() for child in children)
            span.set_attribute("state", "Mapped")
            span.status = "error" if failed else "ok"
            span.end()
