"""Monitoring never hurts the flow.

For each way reading the DSN or reaching Sentry can fail, the run ends exactly as without
monitoring, one warning names the cause, and a process waits at most
SENTRY_SHUTDOWN_TIMEOUT for Sentry when it ends.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import sentry_sdk
from botocore.retries.standard import ExponentialBackoff
from prefect import Flow
from prefect.executors import LocalDaskExecutor
from sentry_sdk.transport import HttpTransport

from .fixtures import (
    MONITORING_VARIABLES,
    aws_session,
    monitoring_warnings,
    outcome,
    run_python,
    use_monitoring,
)
from .project import PACKAGE, SentryEndpoint, module
from .sample_tasks import add_one, invert, process_id

MonitoredFlow = module("monitoring").MonitoredFlow
sentry_setup = module("monitoring.sentry_setup")
tracing = module("monitoring.tracing")
transport = module("monitoring.transport")

FakeAws = Callable[[str, str], SentryEndpoint]
SHUTDOWN_TIMEOUT = 1.0


def mixed_flow() -> Flow:
    """A failing task, a task failing from upstream, two succeeding tasks."""
    with MonitoredFlow("Mixed results") as flow:
        add_one(invert(0))
        add_one(invert(4))
    return flow


@pytest.fixture
def baseline(monkeypatch: pytest.MonkeyPatch) -> tuple:
    """The outcome of the run without any monitoring at all."""
    with monkeypatch.context() as unmonitored:
        for name in MONITORING_VARIABLES:
            unmonitored.delenv(name, raising=False)
        flow = mixed_flow()
        result = outcome(flow, flow.run())
    monkeypatch.setattr(sentry_setup, "_started_pid", None)
    return result


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    """Start AWS endpoints on 127.0.0.1 answering every call with one error, as AWS words it."""
    endpoints: List[SentryEndpoint] = []

    def answering(error: str, message: str) -> SentryEndpoint:
        reply = json.dumps({"__type": error, "message": message}).encode()
        endpoints.append(SentryEndpoint(status=400, reply=reply).start())
        return endpoints[-1]

    yield answering
    for endpoint in endpoints:
        endpoint.stop()


def refused_dsn() -> str:
    """A DSN on a port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://public@127.0.0.1:{port}/1"


def parameter_missing(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME, "/not/there")


def access_denied(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    message = "User: arn:aws:sts::123456789012:assumed-role/flow is not authorized to perform"
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_aws("AccessDeniedException", message).url)


def no_credentials(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")


def no_region(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv(sentry_setup.SENTRY_REGION_ENV_NAME)


def throttled(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    retry_at_once(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_aws("ThrottlingException", "Rate exceeded").url)


def retry_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry throttled calls at once, not after botocore's random waits of up to 1, 2, 4 s."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def malformed_dsn(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    aws_session().client("ssm").put_parameter(
        Name=os.environ[sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME],
        Value="https://o1.ingest.sentry.io/1",
        Type="SecureString",
        Overwrite=True,
    )


@pytest.mark.parametrize(
    ("cause", "named"),
    [
        pytest.param(parameter_missing, "ParameterNotFound", id="parameter-missing"),
        pytest.param(access_denied, "AccessDeniedException", id="access-denied"),
        pytest.param(no_credentials, "Unable to locate credentials", id="no-credentials"),
        pytest.param(no_region, "no AWS region", id="no-region"),
        pytest.param(throttled, "ThrottlingException", id="throttled"),
        pytest.param(malformed_dsn, "malformed: Missing public key", id="malformed-dsn"),
    ],
)
def test_a_dsn_that_cannot_be_read_turns_monitoring_off_with_one_warning(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fake_aws: FakeAws,
    baseline: tuple,
    cause: Callable[[pytest.MonkeyPatch, FakeAws], None],
    named: str,
) -> None:
    cause(monkeypatch, fake_aws)
    caplog.clear()
    flow = mixed_flow()

    assert outcome(flow, flow.run()) == baseline
    assert not sentry_sdk.is_initialized()
    [warning] = monitoring_warnings(caplog, "Sentry is off")
    assert named in warning
    assert monitoring_env.bodies == []


def test_a_throttled_dsn_read_is_retried_before_monitoring_turns_off(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws
) -> None:
    retry_at_once(monkeypatch)
    ssm = fake_aws("ThrottlingException", "Rate exceeded")
    monkeypatch.setenv("AWS_ENDPOINT_URL", ssm.url)

    assert sentry_setup.init_sentry() is False
    # SSM_CLIENT_SETTINGS: botocore counts "max_attempts" as retries, after the first try.
    assert len(ssm.bodies) == 1 + 3


def broken_sentries() -> Dict[str, Tuple[Optional[SentryEndpoint], str]]:
    """Each way Sentry fails to take events: an endpoint (None: refused), what the warning names."""
    return {
        "connection-refused": (None, "Connection refused"),
        "rate-limited-429": (SentryEndpoint(status=429), "HTTP 429"),
        "server-error-500": (SentryEndpoint(status=500), "HTTP 500"),
        "never-answers": (
            SentryEndpoint(hang=True),
            f"did not take the queued events within {SHUTDOWN_TIMEOUT:g} s",
        ),
    }


@pytest.fixture(params=list(broken_sentries()))
def broken_sentry(request: pytest.FixtureRequest) -> Iterator[Tuple[str, str]]:
    """The DSN of a Sentry that fails one way, and what the warning must name."""
    endpoint, named = broken_sentries()[request.param]
    if endpoint is None:
        yield refused_dsn(), named
    else:
        yield endpoint.start().dsn, named
        endpoint.stop()


def test_a_sentry_that_does_not_take_events_changes_nothing_but_one_warning(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    baseline: tuple,
    broken_sentry: Tuple[str, str],
) -> None:
    dsn, named = broken_sentry
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_ENV_NAME, dsn)
    monkeypatch.setenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, str(SHUTDOWN_TIMEOUT))
    caplog.clear()
    flow = mixed_flow()

    result = outcome(flow, flow.run())
    sentry_sdk.capture_message("one more event, after the first was not delivered")

    assert result == baseline
    assert not transport.flush()
    [warning] = monitoring_warnings(caplog)
    assert named in warning


# Prefect is imported once; each run is a process forked from that interpreter, reading
# its own DSN parameter, which runs a failing flow and ends through the interpreter's exit
# handlers. All at once: most of each run is waiting for Sentry.
FORKED_FAILING_RUNS = """
import gc
import json
import os
import sys
import time

import boto3
from prefect import task

from BAKED_PACKAGE.monitoring import MonitoredFlow, sentry_setup


@task
def invert(x: int) -> float:
    return 1 / x


def run_failing_flow(parameter: str, output: str) -> None:
    os.environ[sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME] = parameter
    log = os.open(output, os.O_WRONLY | os.O_CREAT)  # this run's own Prefect log
    os.dup2(log, 1)
    os.dup2(log, 2)
    with MonitoredFlow("Failing in a fresh process") as flow:
        invert(0)
    state = flow.run()
    print(f"Finished: {type(state).__name__} {time.time()}", flush=True)


boto3.client("ssm")  # botocore parses its service descriptions here, not in every run
gc.freeze()  # or each run's exit would collect every object it shares with this one
runs = {}
for name, (parameter, output) in json.loads(os.environ["RUNS"]).items():
    pid = os.fork()
    if pid == 0:
        run_failing_flow(parameter, output)
        sys.exit(0)
    runs[pid] = name
ended = {}
while runs:
    pid, status = os.wait()
    ended[runs.pop(pid)] = [time.time(), os.waitstatus_to_exitcode(status)]
print(json.dumps(ended))
""".replace("BAKED_PACKAGE", PACKAGE)


def test_a_process_waits_for_sentry_at_most_the_shutdown_timeout(
    monitoring_env: SentryEndpoint,
    aws: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Processes run a failing flow each, one per Sentry: each exit is timed from its run's end."""
    endpoints = {name: endpoint for name, (endpoint, _) in broken_sentries().items()}
    dsns = {"healthy": monitoring_env.dsn}
    dsns.update((n, e.start().dsn if e else refused_dsn()) for n, e in endpoints.items())
    runs = {}
    for name, dsn in dsns.items():
        use_monitoring(monkeypatch, dsn, aws, parameter=f"/test/faults/{name}")
        runs[name] = (f"/test/faults/{name}", str(tmp_path / f"{name}.log"))
    monkeypatch.setenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, str(SHUTDOWN_TIMEOUT))

    stdout, _, _ = run_python(FORKED_FAILING_RUNS, {**os.environ, "RUNS": json.dumps(runs)})
    ended = json.loads(stdout.splitlines()[-1])

    for name, (_, output) in runs.items():
        log = Path(output).read_text()
        [(state, flow_ended)] = re.findall(r"Finished: (\w+) ([0-9.]+)", log)
        exit_time, exit_code = ended[name]
        assert (state, exit_code) == ("Failed", 0), name
        # Within the SDK's own default of 2 s: the setting, not the default, bounds the wait.
        assert exit_time - float(flow_ended) < SHUTDOWN_TIMEOUT + 0.9, name
        assert log.count("WARNING - prefect.monitoring") == (0 if name == "healthy" else 1), name
    assert len(monitoring_env.events(expected=1)) == 1
    for endpoint in endpoints.values():
        if endpoint:
            endpoint.stop()


def broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("broken on purpose")


def test_a_failing_sentry_call_never_fails_the_flow(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, baseline: tuple
) -> None:
    monkeypatch.setattr(sentry_sdk, "capture_event", broken)
    monkeypatch.setattr(sentry_sdk, "capture_message", broken)
    flow = mixed_flow()

    assert outcome(flow, flow.run()) == baseline


def test_an_error_in_the_monitoring_itself_never_fails_the_flow(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    baseline: tuple,
) -> None:
    """Each state handler's last step raises: the run ends as without monitoring, and the
    log says which handler could not report."""
    monkeypatch.setattr(tracing, "trace_flow_run", broken)
    monkeypatch.setattr(tracing, "trace_task_run", broken)
    flow = mixed_flow()

    assert outcome(flow, flow.run()) == baseline
    assert monitoring_warnings(caplog, "Sentry could not report flow 'Mixed")
    assert monitoring_warnings(caplog, "Sentry could not report task")


def test_a_malformed_shutdown_timeout_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, "soon")

    assert transport.shutdown_timeout() == transport.DEFAULT_SHUTDOWN_TIMEOUT
    [warning] = monitoring_warnings(caplog)
    assert "'soon'" in warning


def test_worker_processes_never_wait_for_a_hanging_sentry_while_the_flow_runs(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Forked workers hand their events to the flow's process: none of them waits.

    What would wait for Sentry is counted, not timed: every flush of the SDK's client or of
    an HTTP transport, and every HTTP transport made, in a process other than the flow's.
    """
    hanging = SentryEndpoint(hang=True).start()
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_ENV_NAME, hanging.dsn)
    monkeypatch.setenv(transport.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME, "8")
    flow_pid = os.getpid()
    waits = tmp_path / "waits"  # one line per wait in a worker; workers append to it

    def counted(name: str, real: Callable) -> Callable:
        def call(*args: object, **kwargs: object) -> object:
            if os.getpid() != flow_pid:
                with waits.open("a") as record:
                    record.write(f"{os.getpid()} {name}\n")
            return real(*args, **kwargs)

        return call

    for owner, name in [
        (sentry_sdk.client._Client, "flush"),
        (HttpTransport, "flush"),
        (HttpTransport, "__init__"),
    ]:
        monkeypatch.setattr(owner, name, counted(f"{owner.__name__}.{name}", getattr(owner, name)))
    with MonitoredFlow("Processes", executor=LocalDaskExecutor("processes", num_workers=2)) as flow:
        ran_in = process_id.map([0, 1, 2, 3])
        invert.map([0, 1, 0, 2, 0, 0])

    state = flow.run()

    assert state.is_failed()
    assert set(state.result[ran_in].result) - {flow_pid}, "no task ran in a worker process"
    assert not waits.exists(), waits.read_text()
    # The flow's process sends them: the workers' events come to it over a socket, and
    # on a loaded machine the first may still be on its way when the run returns.
    assert hanging.events(expected=1, timeout=30)
    hanging.stop()


def test_once_a_flush_timed_out_later_ones_do_not_wait_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hanging = SentryEndpoint(hang=True).start()
    monkeypatch.setenv(sentry_setup.SENTRY_DSN_ENV_NAME, hanging.dsn)
    sentry_setup.init_sentry()
    sentry_sdk.capture_message("the first event: its request never gets an answer")
    waits = []
    client = sentry_sdk.get_client()
    real_flush = client.flush
    monkeypatch.setattr(client, "flush", lambda *a, **k: waits.append(a) or real_flush(*a, **k))

    assert not transport.flush(0.3)
    sentry_sdk.capture_message("a later event")
    assert not transport.flush(0.3)

    assert len(waits) == 1
    assert len(monitoring_warnings(caplog, "did not take the queued events within 0.3 s")) == 1
    hanging.stop()
