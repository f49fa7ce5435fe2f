"""Starting monitoring: what a slow SSM may cost a start, and threads that start at once.

No check here times anything: a deadline is proven by what gave up and what was
configured, a race by making one thread wait for the other where the race would be.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List

import pytest
import sentry_sdk
from botocore.config import Config
from prefect import Flow
from prefect.executors import LocalDaskExecutor, LocalExecutor

from .fixtures import REGION, monitoring_warnings, run_python
from .project import PACKAGE, SentryEndpoint, module
from .sample_tasks import invert

MonitoredFlow = module("monitoring").MonitoredFlow
sentry_setup = module("monitoring.sentry_setup")


def test_what_ssm_may_cost_a_start_is_bounded_by_its_settings() -> None:
    """Each try is bounded by botocore's timeouts, the tries by their count, and all of
    them, with finding credentials, by one deadline."""
    config = Config(**sentry_setup.SSM_CLIENT_SETTINGS)

    assert sentry_setup.SSM_DEADLINE_SECONDS == 4.0
    assert (config.connect_timeout, config.read_timeout) == (1, 2)
    # botocore rewrites "max_attempts" (retries) as "total_max_attempts" (tries) in use.
    retries = dict(config.retries)
    tries = retries.pop("total_max_attempts", None) or retries.pop("max_attempts") + 1
    assert (tries, retries) == (4, {"mode": "standard"})


def test_a_process_given_its_dsn_never_imports_boto3(sentry: SentryEndpoint) -> None:
    """boto3 is for the SSM fallback alone: importing it is about a tenth of a start."""
    env = {**os.environ, sentry_setup.SENTRY_DSN_ENV_NAME: sentry.dsn}
    env[sentry_setup.SENTRY_DSN_SSM_PARAMETER_NAME] = "/not/read"
    code = (
        "import sys\n"
        f"from {PACKAGE}.deployment import run\n"
        f"from {PACKAGE}.flow import flow\n"
        f"from {PACKAGE}.monitoring import init_sentry\n"
        "assert init_sentry()\n"
        "print(sorted(name for name in sys.modules if name.startswith('boto')))\n"
    )

    stdout, _, _ = run_python(code, env)

    assert stdout.splitlines()[-1] == "[]"  # Prefect logs to stdout before it


def test_without_a_dsn_a_fresh_process_reads_it_from_ssm_decrypted(
    monitoring_env: SentryEndpoint,
) -> None:
    """The fallback imports boto3 itself: nothing else in a fresh process has."""
    code = (
        f"from {PACKAGE}.monitoring import sentry_setup\n"
        "assert sentry_setup.init_sentry()\n"
        "print(sentry_setup.sentry_sdk.get_client().options['dsn'])\n"
    )

    stdout, _, _ = run_python(code, dict(os.environ))

    assert stdout.splitlines()[-1] == monitoring_env.dsn


def test_an_ssm_endpoint_that_never_answers_is_given_up_at_the_deadline(
    monitoring_env: SentryEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hanging = SentryEndpoint(hang=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", hanging.url)
    # Far below one read timeout (2 s): only the deadline can end the wait this early.
    monkeypatch.setattr(sentry_setup, "SSM_DEADLINE_SECONDS", 0.2, raising=False)
    with MonitoredFlow("Slow SSM") as flow:
        invert(1)

    state = flow.run()

    assert state.is_successful()
    assert not sentry_sdk.is_initialized()
    [warning] = monitoring_warnings(caplog, "Sentry is off")
    assert "did not answer within 0.2 s" in warning
    # No second try: the first was still waiting for its answer (or, on a loaded
    # machine, had not even been sent) when the deadline came.
    assert len(hanging.bodies) <= 1
    hanging.stop()


class ObservedLock:
    """A lock that notes when a thread has to wait for it."""

    def __init__(self, waited: threading.Event) -> None:
        self._lock = threading.Lock()
        self._waited = waited

    def __enter__(self) -> ObservedLock:
        if not self._lock.acquire(blocking=False):
            self._waited.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._lock.release()


@pytest.mark.parametrize("pause", ["before", "after"])
@pytest.mark.parametrize(
    "executor",
    [LocalExecutor, lambda: LocalDaskExecutor(scheduler="threads", num_workers=2)],
    ids=["local", "threads"],
)
def test_flow_runs_started_at_once_in_two_threads_both_send_complete_events(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, executor: Any, pause: str
) -> None:
    """The first thread's start-up stops right before or after the SDK starts, until the
    second thread has either gone past init_sentry (and sent its event) or waits in it."""
    first_started_sdk = threading.Event()
    second_went_on = threading.Event()
    monkeypatch.setattr(sentry_setup, "_start_lock", ObservedLock(second_went_on), raising=False)
    real_init = sentry_sdk.init

    def init_then_let_the_second_go(*args: Any, **kwargs: Any) -> Any:
        if pause == "after":
            started = real_init(*args, **kwargs)
        if threading.current_thread().name == "first":
            first_started_sdk.set()
            assert second_went_on.wait(timeout=60), "the second thread never got here"
        if pause == "before":
            started = real_init(*args, **kwargs)
        return started

    monkeypatch.setattr(sentry_sdk, "init", init_then_let_the_second_go)
    flows: Dict[str, Flow] = {}
    for name in ("first", "second"):
        with MonitoredFlow(f"At once {name}", executor=executor()) as flows[name]:
            invert(0)
    errors: List[BaseException] = []

    def run(name: str) -> None:
        try:
            if name == "second":
                assert first_started_sdk.wait(timeout=60), "the first thread never started"
            flows[name].run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)
        finally:
            second_went_on.set()  # the second ran (and reported) without waiting

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sentry_sdk.flush()

    assert errors == []
    events = monitoring_env.events(expected=2)
    assert sorted(event["tags"]["flow_name"] for event in events) == [
        "At once first",
        "At once second",
    ]
    assert [event["tags"].get("region") for event in events] == [REGION, REGION]
