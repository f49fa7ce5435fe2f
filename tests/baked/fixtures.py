"""Fixtures for checking monitoring offline, loaded by conftest.py.

Sentry is a loopback HTTP endpoint that the real SDK posts to. AWS SSM is moto's server,
over real HTTP too, so that subprocesses and Dask workers reach it as a flow run reaches
AWS. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Tuple

import boto3
import botocore.loaders
import botocore.session
import pytest
import sentry_sdk
from moto.server import ThreadedMotoServer
from prefect import Flow
from prefect.engine.state import State

from .project import SentryEndpoint, module

budget = module("monitoring.budget")
events = module("monitoring.events")
sentry_setup = module("monitoring.sentry_setup")
state_handlers = module("monitoring.state_handlers")
tracing = module("monitoring.tracing")
transport = module("monitoring.transport")

MONITORING_VARIABLES = (
    sentry_setup.SENTRY_DSN_ENV_NAME,
    sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME,
    sentry_setup.SENTRY_REGION_ENV_NAME,
    sentry_setup.SENTRY_ENVIRONMENT_ENV_NAME,
    sentry_setup.SENTRY_RELEASE_ENV_NAME,
    transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME,
    budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME,
    events.PREFECT_TENANT_SLUG_ENV_NAME,
    tracing.SENTRY_TRACES_SAMPLE_RATE_ENV_NAME,
    "PREFECT__CLOUD__API_KEY",
)
# Other ways AWS could find credentials or endpoints, some of them on the network.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
DSN_PARAMETER = "/test/flow/sentry-dsn"
REGION = "eu-west-1"
# The discard port: nothing answers there, so a stray AWS call fails at once, locally.
NO_AWS = "http://127.0.0.1:9"
# botocore's service descriptions, parsed once for the whole run: every new session
# would parse megabytes of JSON again, a quarter of the suite's time.
AWS_DATA = botocore.loaders.create_loader()


def aws_session() -> boto3.session.Session:
    """A new AWS session, as a new process starts with, sharing the parsed descriptions."""
    core = botocore.session.Session()
    core.register_component("data_loader", AWS_DATA)
    return boto3.session.Session(botocore_session=core)


@pytest.fixture(scope="session", autouse=True)
def offline_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """AWS on 127.0.0.1 only, with fake credentials, for every test and every fixture."""
    nowhere = tmp_path_factory.mktemp("no-aws")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in MONITORING_VARIABLES + AWS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("AWS_ENDPOINT_URL", NO_AWS)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials from the network
        monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
        yield


@pytest.fixture(autouse=True)
def fresh_monitoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with monitoring off and its state reset."""
    # A new default session: the last one keeps the credentials it found.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", aws_session())
    monkeypatch.setattr(sentry_setup, "_started_pid", None)
    monkeypatch.setattr(sentry_setup, "_options", None)
    monkeypatch.setattr(transport, "_problem", None)
    monkeypatch.setattr(transport, "_gave_up", False)
    monkeypatch.setattr(state_handlers, "budget", budget.FailureBudget())
    # A Dask worker plugin set up in this process replaces it: put it back after the test.
    monkeypatch.setattr(state_handlers, "first_report", state_handlers.first_report)
    sentry_sdk.get_isolation_scope().clear()
    yield
    sentry_sdk.get_client().close(timeout=0)
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_global_scope().clear()


@pytest.fixture(scope="session")
def aws() -> str:
    """The address of moto's AWS server on 127.0.0.1, up for the rest of the test process.

    Its thread ends with the process: stopping it earlier would wait for werkzeug's next
    poll, up to half a second."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


@pytest.fixture
def sentry() -> Iterator[SentryEndpoint]:
    """A Sentry endpoint on 127.0.0.1 that keeps every event it receives."""
    endpoint = SentryEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[SentryEndpoint]:
    """One Sentry endpoint for a whole module: Dask workers keep the DSN they read first."""
    endpoint = SentryEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def monitoring_env(
    monkeypatch: pytest.MonkeyPatch, sentry: SentryEndpoint, aws: str
) -> SentryEndpoint:
    """What the flow's image sets: all four SENTRY_* variables, the DSN of `sentry` in SSM."""
    use_monitoring(monkeypatch, sentry.dsn, aws)
    return sentry


def use_monitoring(
    monkeypatch: pytest.MonkeyPatch, dsn: str, aws: str, parameter: str = DSN_PARAMETER
) -> None:
    """Store `dsn` in moto's SSM and set the four SENTRY_* variables, as the image does."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    ssm = aws_session().client("ssm")  # not the default session the flow uses
    ssm.put_parameter(Name=parameter, Value=dsn, Type="SecureString", Overwrite=True)
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME, parameter)
    monkeypatch.setenv(sentry_setup.SENTRY_REGION_ENV_NAME, REGION)
    monkeypatch.setenv(sentry_setup.SENTRY_ENVIRONMENT_ENV_NAME, "test")
    monkeypatch.setenv(sentry_setup.SENTRY_RELEASE_ENV_NAME, "0123abc")


def monitoring_warnings(caplog: pytest.LogCaptureFixture, text: str = "") -> List[str]:
    """The warnings monitoring logged that contain `text`."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == sentry_setup.logger.name
        and record.levelno == logging.WARNING
        and text in record.getMessage()
    ]


def outcome(flow: Flow, state: State) -> Tuple[str, str, object]:
    """A run's final state and each task's states and results, comparable across runs."""
    if not isinstance(state.result, dict):  # the flow itself failed
        return type(state).__name__, str(state.message), repr(state.result)
    tasks: Dict[str, List[Tuple[str, str]]] = {}
    for task in flow.sorted_tasks():
        task_state = state.result[task]
        children = task_state.map_states if task_state.is_mapped() else [task_state]
        tasks[flow.slugs[task]] = [(type(child).__name__, repr(child.result)) for child in children]
    return type(state).__name__, str(state.message), tasks


def run_python(code: str, env: Dict[str, str], timeout: float = 60) -> Tuple[str, str, float]:
    """Run `code` in a fresh interpreter: its stdout, its stderr, and when it ended."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    ended = time.time()
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout, completed.stderr, ended
