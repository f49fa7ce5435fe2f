"""Events leave before the process ends, and `make check-monitoring` proves the wiring."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .fixtures import run_python
from .project import PACKAGE, SentryEndpoint, module

check_command = module("monitoring.__main__")

# DELIVERY_RUNS=200 make test: a longer proof.
RUNS = int(os.environ.get("DELIVERY_RUNS", "20"))

# Prefect is imported once; each run is a child process forked from that interpreter,
# which starts Sentry itself, runs a failing flow, and ends through the interpreter's
# exit handlers as any flow run process does. Two run at a time.
FORKED_RUNS = """
import gc
import os
import sys

import boto3
from prefect import task

from BAKED_PACKAGE.monitoring import MonitoredFlow


@task
def fail(run: int) -> None:
    raise RuntimeError(f"run {run} failed")


def run_once(run: int) -> None:
    with MonitoredFlow("Delivered before exit") as flow:
        fail(run)
    flow.run()


boto3.client("ssm")  # botocore parses its service descriptions here, not in every run
gc.freeze()  # or each run's exit would collect every object it shares with this one
running, exit_codes = set(), []
for run in range(int(os.environ["DELIVERY_RUNS"])):
    if len(running) == 2:
        pid, status = os.wait()
        running.remove(pid)
        exit_codes.append(os.waitstatus_to_exitcode(status))
    pid = os.fork()
    if pid == 0:
        run_once(run)
        sys.exit(0)
    running.add(pid)
for pid in running:
    exit_codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(f"exit codes: {sorted(set(exit_codes))}")
""".replace("BAKED_PACKAGE", PACKAGE)


def test_every_failing_run_delivers_its_event_before_its_process_ends(
    monitoring_env: SentryEndpoint,
) -> None:
    stdout, _, _ = run_python(FORKED_RUNS, {**os.environ, "DELIVERY_RUNS": str(RUNS)})

    assert "exit codes: [0]" in stdout
    # No waiting: every run had ended, so its event must be here already.
    events = monitoring_env.events(expected=RUNS, timeout=0)
    messages = sorted(event["exception"]["values"][-1]["value"] for event in events)
    assert messages == sorted(f"run {run} failed" for run in range(RUNS))


def test_check_monitoring_sends_a_test_event_as_a_flow_run_would(
    monitoring_env: SentryEndpoint,
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", check_command.__package__],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    [event_id] = re.findall(r"Sentry took test event ([0-9a-f]{32})\.", completed.stdout)
    [event] = monitoring_env.events(expected=1, timeout=0)
    assert event["event_id"] == event_id
    assert event["level"] == "info"
    assert (event["environment"], event["release"]) == ("test", "0123abc")
    # One issue per project, named after its package.
    assert event["message"].startswith(f"Monitoring check: {PACKAGE} reaches Sentry.")
    assert event["fingerprint"] == ["monitoring-check", PACKAGE]


def test_check_monitoring_fails_when_monitoring_is_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check_command.main() == 1
    assert "Monitoring is off" in capsys.readouterr().err


def test_check_monitoring_fails_when_sentry_does_not_take_the_event(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refusing = SentryEndpoint(status=500).start()
    monkeypatch.setenv("SENTRY_DSN", refusing.dsn)

    assert check_command.main() == 1
    assert "did not reach Sentry" in capsys.readouterr().err
    assert any("HTTP 500" in record.getMessage() for record in caplog.records)
    refusing.stop()
