"""Starting the Sentry SDK: once per process, from the same settings everywhere, never raising."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Dict, Optional, TypeVar

import sentry_sdk
from prefect.utilities.logging import get_logger
from sentry_sdk.integrations.argv import ArgvIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.utils import BadDsn, Dsn

from . import sdk
from .integration import PrefectIntegration
from .scrubbing import scrub_event
from .tracing import tracing_options
from .transport import (
    WarningTransport,
    forward_from_forked_workers,
    forwarding_options,
    shutdown_timeout,
)

SENTRY_DSN_SSM_PARAMETER_NAME = "SENTRY_DSN_SSM_PARAMETER_NAME"
SENTRY_REGION_ENV_NAME = "SENTRY_REGION"
SENTRY_ENVIRONMENT_ENV_NAME = "SENTRY_ENVIRONMENT"
SENTRY_RELEASE_ENV_NAME = "SENTRY_RELEASE"
# For local runs: a DSN given directly wins over the SSM parameter.
SENTRY_DSN_ENV_NAME = "SENTRY_DSN"
# Without SENTRY_ENVIRONMENT the SDK would say "production": a run on a laptop must not.
DEFAULT_ENVIRONMENT = "local"

# Frame locals of data tasks hold rows of customer data, which must stay in our network,
# and the lines of code around a frame can hold literals (a parameter's secret default):
# the stack trace says where a task failed (file, function, line number), the code is
# in git at the event's release, and the Prefect logs say with which inputs.
INCLUDE_LOCAL_VARIABLES = False
INCLUDE_SOURCE_CONTEXT = False
# An SSM endpoint that does not answer costs a start at most SSM_DEADLINE_SECONDS, once
# per process (the flow's, and each Dask worker's): past it, monitoring is off for that
# process and the flow goes on. Within it, a throttled or failed call is retried: the
# first try and at most three retries ("max_attempts" counts retries), each bounded.
SSM_DEADLINE_SECONDS = 4.0
# botocore.config.Config's settings. boto3 is imported only to read the DSN from SSM: a
# process given SENTRY_DSN (by the platform, from the same parameter) never imports it,
# and importing it is about a tenth of a flow's start.
SSM_CLIENT_SETTINGS: Dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 2,
    "retries": {"mode": "standard", "max_attempts": 3},
}

# A Prefect logger, so that monitoring's warnings show in the Prefect UI too.
logger = get_logger("monitoring")
# The process whose start-up is complete: set last, once the SDK and its tags are ready.
_started_pid: Optional[int] = None
# The process that last began a start-up: a forked worker inherits its parent's.
_starting_pid: Optional[int] = None
# The SDK options of this process, inherited by the workers a process pool forks from it.
_options: Optional[Dict[str, Any]] = None
# Threads that start flow runs at once wait here for the first one to finish starting.
_start_lock = threading.Lock()
T = TypeVar("T")


def _new_start_lock() -> None:
    """In a forked child: the parent's lock may have been held by a thread that is gone."""
    global _start_lock
    _start_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_start_lock)


def init_sentry() -> bool:
    """Start Sentry for this process, once. Return whether events will be sent.

    Never raises: a missing variable or a failed DSN lookup logs one warning and leaves
    monitoring off. A worker process that the flow's process started (a process pool's,
    forked or not) hands its events to the flow's process to send
    (transport.ForwardingTransport); a forked one reuses its parent's settings.
    Atomic: a thread that asks while another one starts Sentry waits for it, so that no
    event leaves before the SDK and its tags are ready.
    """
    if _started_pid == os.getpid():
        return sentry_sdk.is_initialized()
    with _start_lock:
        if _started_pid != os.getpid():
            _start()
    return sentry_sdk.is_initialized()


def _start() -> None:
    global _started_pid, _starting_pid, _options
    forked = _starting_pid not in (None, os.getpid())
    _starting_pid = os.getpid()
    try:
        if not forked:
            _options = _read_options()
        if _options is not None:
            _start_sdk(_options, forked)
    except Exception as exc:  # monitoring must never break the flow
        _options = None
        sentry_sdk.get_global_scope().set_client(None)
        logger.warning("Sentry is off: %s", describe(exc))
    _started_pid = os.getpid()


def _start_sdk(options: Dict[str, Any], forked: bool) -> None:
    if forked:  # the region tag came with the rest of the parent's global scope
        sentry_sdk.init(**{**options, **forwarding_options()})
        return
    region = os.environ.get(SENTRY_REGION_ENV_NAME)
    if region:
        sentry_sdk.get_global_scope().set_tag("region", region)
    sentry_sdk.init(**{**options, **forwarding_options()})
    forward_from_forked_workers()
    sent = sentry_sdk.get_client().options  # the SDK may find a release in git
    logger.info("Sentry is on: environment %r, release %r.", sent["environment"], sent["release"])


def get_ssm_parameter(ssm_client: Any, name: str, with_decryption: bool = True) -> str:
    """The value of an SSM parameter, decrypted; ValueError naming it on failure."""
    try:
        response = ssm_client.get_parameter(Name=name, WithDecryption=with_decryption)
        return response["Parameter"]["Value"]
    except Exception as exc:
        raise ValueError(f"Failed to get SSM parameter {name!r}") from exc


def describe(exc: BaseException) -> str:
    """`exc` and what caused it, on one line."""
    # This module words its own failures as ValueErrors; anything else needs its type.
    text = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    return f"{text} ({type(cause).__name__}: {cause})" if cause else text


def _read_options() -> Optional[Dict[str, Any]]:
    """The SDK options from the environment, or None (with a warning) when there is no DSN."""
    region = _read_variable(SENTRY_REGION_ENV_NAME, "events will have no region tag")
    environment = _read_variable(
        SENTRY_ENVIRONMENT_ENV_NAME, f"events will have the environment {DEFAULT_ENVIRONMENT!r}"
    )
    release = _read_variable(SENTRY_RELEASE_ENV_NAME, "events will have no release")
    dsn = _read_dsn(region)
    if dsn is None:
        return None
    return {
        "dsn": dsn,
        "environment": environment or DEFAULT_ENVIRONMENT,
        "release": release,
        "shutdown_timeout": shutdown_timeout(),
        # Sentry drops events over about 1 MB: long strings are cut at 8 KiB, and an event
        # keeps the last 30 breadcrumbs (flow parameters: events.summarise).
        "max_value_length": 8192,
        "max_breadcrumbs": 30,
        "data_collection": sdk.frame_data(INCLUDE_LOCAL_VARIABLES, INCLUDE_SOURCE_CONTEXT),
        "before_send": scrub_event,
        "before_send_log": sdk.drop_sentry_log,
        "transport": WarningTransport,
        # Breadcrumbs from warnings and errors only: Prefect logs two INFO lines per task
        # run, and each would cost every task run a breadcrumb and every event a hundred
        # lines to carry. The whole log is in the Prefect UI, one click from the event.
        # No log line is sent as a Sentry Log (sdk.logging_integration).
        "integrations": [
            PrefectIntegration(),
            sdk.logging_integration(breadcrumb_level=logging.WARNING, event_level=logging.ERROR),
            ArgvIntegration(),
            DedupeIntegration(),
            ExcepthookIntegration(),
        ],
        # Of the SDK's defaults, only the ones above; none of the integrations it would
        # enable for whatever libraries happen to be installed (web frameworks, ...).
        # Left out: the atexit integration (transport.flush_at_exit takes its place: the
        # same bounded wait, plus a warning); the modules integration (the list of
        # installed packages: the release pins it already, and reading it costs each
        # process a quarter of a second at its first event); the threading integration
        # (scope copies into every thread and thread-pool task, Dask's too: events read
        # their tags from prefect.context, which Prefect sets in each thread); the stdlib
        # integration (a breadcrumb per HTTP request and subprocess, as noisy as INFO
        # lines; importing it imports botocore, about 4 % of a flow run's start); the
        # unraisable-hook integration (on by default in sentry-sdk 3: an event for each
        # exception raised in a __del__, never a task's failure, outside the event budget).
        "default_integrations": False,
        "auto_enabling_integrations": False,
        # SENTRY_TRACES_SAMPLE_RATE: nothing unless it asks for tracing.
        **tracing_options(),
    }


def _read_dsn(region: Optional[str]) -> Optional[str]:
    source = SENTRY_DSN_ENV_NAME
    dsn = os.environ.get(SENTRY_DSN_ENV_NAME)
    if not dsn:
        parameter = _read_variable(
            SENTRY_DSN_SSM_PARAMETER_NAME,
            f"Sentry is off (set it, or {SENTRY_DSN_ENV_NAME} for a local run)",
        )
        if not parameter:
            return None
        source = f"SSM parameter {parameter!r}"
        dsn = _read_ssm_parameter(parameter, region)
    dsn = dsn.strip()
    try:
        Dsn(dsn)
    except BadDsn as exc:  # the message names the part that is wrong, never the DSN itself
        raise ValueError(f"the DSN in {source} is malformed: {exc}") from None
    return dsn


def _read_ssm_parameter(name: str, fallback_region: Optional[str]) -> str:
    import boto3
    from botocore.config import Config

    region = boto3.session.Session().region_name or fallback_region
    if not region:
        raise ValueError(
            f"no AWS region to read SSM parameter {name!r} from: "
            f"set AWS_DEFAULT_REGION or {SENTRY_REGION_ENV_NAME}"
        )

    def read() -> str:
        ssm = boto3.client("ssm", region_name=region, config=Config(**SSM_CLIENT_SETTINGS))
        return get_ssm_parameter(ssm, name)

    return within(SSM_DEADLINE_SECONDS, read, f"SSM parameter {name!r}")


def within(seconds: float, call: Callable[[], T], what: str) -> T:  # noqa: UP047
    """`call()`'s result, or ValueError when it takes longer than `seconds`.

    The call goes on in a daemon thread, its result unused: botocore's own timeouts and
    retries (SSM_CLIENT_SETTINGS) bound a single read, and this bounds them all, together
    with finding credentials.
    """
    outcome: Dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="sentry-dsn-read", daemon=True)
    thread.start()
    thread.join(seconds)
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise ValueError(f"{what} did not answer within {seconds:g} s")
    return outcome["value"]


def _read_variable(name: str, consequence: str) -> Optional[str]:
    value = os.environ.get(name)
    if not value:
        logger.warning("%s is not set: %s.", name, consequence)
    return value or None
