"""A baked flow's failures end up as issues in Bugsink, a real Sentry-compatible server.

Bugsink (https://www.bugsink.com) ingests what the Sentry SDK sends, groups events into
issues and stores their tags, as Sentry does. It runs here on 127.0.0.1, in this
environment (the `bugsink` dev dependency), on SQLite databases in a temporary folder,
with ingestion digested at once (its `local` configuration).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baking import clean_environment
from tests.conftest import Bake

BIN = Path(sys.executable).parent
STORM = 40  # identical failures of one mapped task: more than SENTRY_MAX_EVENTS_PER_TASK

FLOW = f"""
from prefect import task
from daily_sales_report.monitoring import MonitoredFlow


@task
def load_orders() -> None:
    raise ConnectionError("the warehouse refused the connection")


@task
def parse(line: str) -> int:
    return int(line)


with MonitoredFlow("Bugsink proof") as flow:
    load_orders()
    parse.map(["not a number"] * {STORM})
state = flow.run()
print("flow run:", type(state).__name__)
"""

ISSUES = """
import json
from events.models import Event
from issues.models import Issue

issues = [
    {
        "type": issue.calculated_type,
        "value": issue.calculated_value,
        "events": issue.digested_event_count,
        "tags": [Event.objects.filter(issue=issue).first().get_parsed_data().get("tags", {})],
    }
    for issue in Issue.objects.all()
]
print(json.dumps(issues))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def bugsink(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Bugsink on 127.0.0.1 with one project: its DSN, and the environment to query it."""
    port = free_port()
    folder = tmp_path / "bugsink"
    folder.mkdir()
    subprocess.run(
        [BIN / "bugsink-create-conf", "--template", "local", "--host", "127.0.0.1",
         "--port", str(port), "--output-file", folder / "bugsink_conf.py"],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(folder),
        "DJANGO_SETTINGS_MODULE": "bugsink_conf",
        "DATABASE_PATH": str(folder / "db.sqlite3"),
        "SNAPPEA_DATABASE_PATH": str(folder / "snappea.sqlite3"),
    }
    manage = [str(BIN / "bugsink-manage")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, capture_output=True)
    create = (
        "from projects.models import Project; from teams.models import Team; "
        "print(Project.objects.create(name='flow', team=Team.objects.create(name='t')).dsn)"
    )
    created = subprocess.run(
        [*manage, "shell", "-c", create], env=env, check=True, capture_output=True, text=True
    )
    dsn = created.stdout.strip().splitlines()[-1]
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and server.poll() is None, "Bugsink did not start"
            time.sleep(0.2)
        yield dsn, env
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def bugsink_issues(env: dict[str, str], expected: int, timeout: float = 60) -> dict[str, dict]:
    """Bugsink's issues by exception type, once `expected` are there (it digests in turn)."""
    deadline = time.monotonic() + timeout
    while True:
        queried = subprocess.run(
            [str(BIN / "bugsink-manage"), "shell", "-c", ISSUES],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        issues = json.loads(queried.stdout.splitlines()[-1])
        if len(issues) >= expected or time.monotonic() > deadline:
            return {issue["type"]: issue for issue in issues}
        time.sleep(1)


@pytest.mark.slow
def test_failures_become_the_expected_issues_in_bugsink(
    bake: Bake, bugsink: tuple[str, dict[str, str]]
) -> None:
    dsn, bugsink_env = bugsink
    project = bake().project_path
    env = clean_environment()
    env.update(SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="test", SENTRY_REGION="eu-west-1")
    # Bugsink digests each event before it answers, a few hundred milliseconds each on a
    # busy machine: the default 2 s at exit could leave the last events (the summary) unsent.
    env["SENTRY_SHUTDOWN_TIMEOUT"] = "60"
    subprocess.run(["uv", "sync", "--quiet"], cwd=project, env=env, check=True)

    ran = subprocess.run(
        ["uv", "run", "python", "-c", FLOW], cwd=project, env=env, capture_output=True, text=True
    )

    assert "flow run: Failed" in ran.stdout, ran.stdout[-2000:] + ran.stderr[-2000:]
    issues = bugsink_issues(bugsink_env, expected=3)
    server_log = (Path(bugsink_env["PYTHONPATH"]) / "server.log").read_text()[-3000:]
    assert sorted(issues) == ["ConnectionError", "Log Message", "ValueError"], (issues, server_log)
    assert issues["ConnectionError"]["events"] == 1
    assert issues["ValueError"]["events"] == 10  # SENTRY_MAX_EVENTS_PER_TASK's default
    summary = issues["Log Message"]
    assert summary["value"].startswith(f"Task 'parse' failed {STORM} times in one flow run")
    assert f"{STORM - 10} more not sent" in summary["value"]
    [tags] = issues["ConnectionError"]["tags"]
    assert tags["flow_name"] == "Bugsink proof"
    assert tags["task_name"] == "load_orders"
    assert tags["region"] == "eu-west-1"
    assert tags["flow_run_id"] and tags["flow_run_name"]
