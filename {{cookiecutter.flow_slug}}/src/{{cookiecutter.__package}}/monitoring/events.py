"""What every event carries, and which of Prefect's error logs are duplicates.

Both are event processors, registered by `integration.PrefectIntegration`. Everything is
read from `prefect.context` when an event is captured, in the thread and process that
captures it, and each task run has a Sentry scope of its own (state_handlers): one task's
data never lands on another task's event. `bound_tags` keeps tags within Sentry's limits.
"""

from __future__ import annotations

import json
import os
from itertools import islice
from typing import Any, Dict, Optional

import prefect

Event = Dict[str, Any]

# Prefect context values that become tags on every event, when present.
TAGGED_CONTEXT = (
    "flow_name",
    "flow_run_id",
    "flow_run_name",
    "flow_run_version",
    "task_name",
    "task_slug",
    "map_index",
    "task_run_count",
)
# The tenant's slug in the Prefect UI's addresses, e.g. `my-team` in
# https://cloud.prefect.io/my-team: with it, events link to their flow run.
PREFECT_TENANT_SLUG_ENV_NAME = "PREFECT_TENANT_SLUG"
# A flow parameter whose JSON is longer than this is summarised on events (type, size and
# the start of its value): Sentry drops events over about 1 MB, and a parameter can be a
# list of thousands of rows.
MAX_PARAMETER_CHARS = 1024
MAX_PARAMETER_ITEMS = 64
PREVIEW_ITEMS = 3
PARAMETER_PREVIEW_CHARS = 200
# A Prefect Server's tenant, unless PREFECT_TENANT_SLUG names another one: the one
# `prefect server create-tenant --name default --slug default` creates.
PREFECT_SERVER_TENANT_SLUG = "default"
# Their ERROR lines repeat the failures that the state handlers report: while handlers
# report, integration.ignore_runner_loggers keeps them from becoming events.
PREFECT_RUNNER_LOGGERS = frozenset(
    {
        "prefect.TaskRunner",
        "prefect.CloudTaskRunner",
        "prefect.FlowRunner",
        "prefect.CloudFlowRunner",
    }
)
# Dask's own: when a worker dies, the scheduler logs ERROR lines about the tasks it held,
# whose failures the state handlers report. Patterns, as the logging integration takes them.
DASK_LOGGERS = ("distributed", "distributed.*")
# `Flow.run()` logs a runner's unexpected error once more, after the run.
FLOW_RUN_REPEAT = "Unexpected error occured in "
# Sentry's limits for tags, in characters: it drops a longer tag's value, and refuses a
# newline in one (Relay's MaxChars::TagKey and TagValue; newer Sentry allows keys of 200).
MAX_TAG_KEY_CHARS = 32
MAX_TAG_VALUE_CHARS = 200
CUT = "..."


def add_flow_run_data(event: Event, hint: Dict[str, Any]) -> Event:
    """Tag the event with the flow run and task it comes from; add the flow parameters."""
    tags = event.setdefault("tags", {})
    for name in TAGGED_CONTEXT:
        value = prefect.context.get(name)
        if value is not None:
            tags.setdefault(name, str(value))
    url = flow_run_url()
    if url:
        tags.setdefault("flow_run_url", url)
    parameters = prefect.context.get("parameters")
    if parameters:
        # scrubbing.scrub_event filters the secret-looking ones before sending.
        event.setdefault("contexts", {})["flow_parameters"] = {
            name: summarise(value) for name, value in parameters.items()
        }
    return event


def bound_tags(event: Event) -> Event:
    """Every tag within Sentry's limits: a long task name is cut, not dropped by Sentry.

    Run last, after scrubbing: a secret cut in half would no longer be recognised.
    """
    tags = event.get("tags")
    if isinstance(tags, dict) and any(
        len(str(key)) > MAX_TAG_KEY_CHARS or _unfit(value) for key, value in tags.items()
    ):
        event["tags"] = {
            str(key)[:MAX_TAG_KEY_CHARS]: _tag_value(value) for key, value in tags.items()
        }
    return event


def _unfit(value: Any) -> bool:
    return not isinstance(value, str) or len(value) > MAX_TAG_VALUE_CHARS or "\n" in value


def _tag_value(value: Any) -> str:
    text = " ".join(str(value).splitlines())
    if len(text) > MAX_TAG_VALUE_CHARS:
        return text[: MAX_TAG_VALUE_CHARS - len(CUT)] + CUT
    return text


def summarise(value: Any) -> Any:
    """`value` itself when its JSON is short; else what it is, how big, and how it starts."""
    sized = hasattr(value, "__len__") and not isinstance(value, (str, bytes))
    if sized and len(value) > MAX_PARAMETER_ITEMS:
        # Only the start is turned into JSON: the whole of a big parameter costs each event.
        start = list(islice(value.items() if isinstance(value, dict) else value, PREVIEW_ITEMS))
        text = None
    else:
        start = value
        text = _json(value)
        if len(text) <= MAX_PARAMETER_CHARS:
            return value
    summary: Dict[str, Any] = {"type": type(value).__name__}
    if sized or isinstance(value, str):
        summary["length"] = len(value)
    summary["starts_with"] = (_json(start) if text is None else text)[:PARAMETER_PREVIEW_CHARS]
    return summary


def _json(value: Any) -> str:
    try:
        return json.dumps(value, default=repr, ensure_ascii=False)
    except ValueError:  # a container that holds itself
        return repr(value)


def drop_duplicate_log_events(event: Event, hint: Dict[str, Any]) -> Optional[Event]:
    """Drop `Flow.run()`'s repeat of an error that was reported already."""
    record = hint.get("log_record")
    if record is None or not record.name.startswith("prefect."):
        return event
    if str(record.msg).startswith(FLOW_RUN_REPEAT):
        return None
    return event


def flow_run_url() -> Optional[str]:
    """The flow run's page in the Prefect UI, in runs with a backend; None elsewhere.

    Built from configuration, with no API call: the UI's address from Prefect's own
    settings (as `prefect.Client.get_cloud_url` derives it) and the tenant's slug from
    PREFECT_TENANT_SLUG (a Prefect Server's default tenant when unset).
    """
    run_id = prefect.context.get("flow_run_id")
    tenant = os.environ.get(PREFECT_TENANT_SLUG_ENV_NAME)
    if not tenant and prefect.config.backend == "server":
        tenant = PREFECT_SERVER_TENANT_SLUG
    if not (prefect.context.get("running_with_backend") and run_id and tenant):
        return None
    return f"{prefect_ui_url()}/{tenant}/flow-run/{run_id}"


def prefect_ui_url() -> str:
    """The Prefect UI's address: Prefect Cloud's for its API, else Prefect Server's UI."""
    api = str(prefect.config.cloud.api)
    if ".prefect.io" not in api:
        return str(prefect.config.server.ui.endpoint).rstrip("/")
    # https://api.prefect.io -> https://cloud.prefect.io, https://api-beta.prefect.io -> https://beta.prefect.io
    ui = api.replace("api-", "") if "api-" in api else api.replace("api", "cloud", 1)
    return ui.rstrip("/")
