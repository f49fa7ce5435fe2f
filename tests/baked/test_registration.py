"""`make register`, exactly as the deploy workflow runs it, against a STAND-IN of Prefect
Server's GraphQL API.

The stand-in is not Prefect Server (that needs Docker: Postgres, Hasura, Apollo). It is a
loopback HTTP endpoint that answers the queries and mutations Prefect 1.4.1's own client
sends during registration (`prefect/client/client.py`, `prefect/cli/build_register.py`),
the way Prefect Server answers them, and keeps every request for the assertions. What it
cannot show: that a real server accepts the flow's metadata, schedules it, and that an
agent with the flow's label picks its runs up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Tuple

import prefect
import pytest
from prefect.serialization.flow import FlowSchema
from prefect.storage import Module
from prefect.utilities.configuration import set_temporary_config
from prefect.utilities.graphql import decompress

from .project import ANSWERS, PACKAGE, PROJECT, module

register = module("deployment.register")
events = module("monitoring.events")

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/flow:0123456789abcdef"
TASK_ROLE_ARN = "arn:aws:iam::123456789012:role/flow-task"
UI_URL = "https://prefect.internal.example"
PROXY_TOKEN = "proxy-token-that-must-not-leak"
DSN = "https://0123456789abcdef0123456789abcdef@sentry.example/1"
QUOTED = r'"(?:[^"\\]|\\.)*"'


class PrefectServerStandIn:
    """A stand-in for Prefect Server's GraphQL API on 127.0.0.1; not Prefect Server."""

    def __init__(self) -> None:
        self.tenant_id = str(uuid.uuid4())
        self.projects: Dict[str, str] = {}  # name -> id
        self.flows: List[Dict[str, Any]] = []  # every version, in order
        self.requests: List[Tuple[Dict[str, str], Dict[str, Any]]] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stand_in._lock:
                    stand_in.requests.append((dict(self.headers), body))
                    # Prefect 1's client sends the variables as a JSON string.
                    variables = json.loads(body.get("variables") or "null") or {}
                    try:
                        reply = stand_in.answer(body["query"], variables)
                    except Exception as error:  # the client shows it, and the test fails
                        reply = {"errors": [{"message": f"stand-in: {error!r} for {body}"}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/graphql"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def answer(self, query: str, variables: Dict[str, Any]) -> Dict[str, Any]:
        if "create_flow_from_compressed_string" in query:
            created = self.create_flow(variables["input"])
            return {"data": {"create_flow_from_compressed_string": created}}
        if "create_project" in query:
            given = variables["input"]
            assert given["tenant_id"] == self.tenant_id
            project_id = self.projects.setdefault(given["name"], str(uuid.uuid4()))
            return {"data": {"create_project": {"id": project_id}}}
        names = [json.loads(quoted) for quoted in re.findall(r"_eq: (" + QUOTED + ")", query)]
        if re.search(r"\bflow\(", query):
            name, project_id = names
            versions = [
                f for f in self.flows if f["name"] == name and f["project_id"] == project_id
            ]
            latest = [{"id": f["id"], "version": f["version"]} for f in versions[-1:]]
            return {"data": {"flow": latest}}
        if re.search(r"\bproject\(", query):
            found = [{"id": self.projects[names[0]]}] if names[0] in self.projects else []
            return {"data": {"project": found}}
        if re.search(r"\btenant\b", query):
            return {"data": {"tenant": [{"id": self.tenant_id}]}}
        return {"errors": [{"message": f"the stand-in does not answer: {query}"}]}

    def create_flow(self, given: Dict[str, Any]) -> Dict[str, str]:
        """As Prefect Server does: the same idempotency key as the newest version of the
        flow returns that version instead of creating one."""
        serialized = decompress(given["serialized_flow"])
        versions = [
            f
            for f in self.flows
            if f["name"] == serialized["name"] and f["project_id"] == given["project_id"]
        ]
        if versions and given.get("idempotency_key") == versions[-1]["idempotency_key"]:
            return {"id": versions[-1]["id"]}
        self.flows.append(
            {
                "id": str(uuid.uuid4()),
                "name": serialized["name"],
                "project_id": given["project_id"],
                "version": len(versions) + 1,
                "idempotency_key": given.get("idempotency_key"),
                "serialized_flow": serialized,
            }
        )
        return {"id": self.flows[-1]["id"]}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stand_in() -> Iterator[PrefectServerStandIn]:
    server = PrefectServerStandIn()
    yield server
    server.stop()


def deploy_environment(stand_in: PrefectServerStandIn) -> Dict[str, str]:
    """What deploy.yml gives `make register`, pointed at the stand-in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT")}
    env.update(
        PREFECT__BACKEND="server",
        PREFECT__SERVER__ENDPOINT=stand_in.endpoint,
        PREFECT__SERVER__UI__ENDPOINT=UI_URL,
        PREFECT_SERVER_PROXY_HEADER=f"X-Proxy-Token: {PROXY_TOKEN}",
        FLOW_IMAGE=IMAGE,
        FLOW_TASK_ROLE_ARN=TASK_ROLE_ARN,
        SENTRY_DSN=DSN,  # a secret in the deploy job's environment must stay there
    )
    return env


def make_register(env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "register"], cwd=PROJECT, env=env, capture_output=True, text=True
    )


def test_make_register_registers_the_flow_the_agent_runs(stand_in: PrefectServerStandIn) -> None:
    completed = make_register(deploy_environment(stand_in))

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    [registered] = stand_in.flows
    assert list(stand_in.projects) == [register.PREFECT_PROJECT]
    assert registered["project_id"] == stand_in.projects[register.PREFECT_PROJECT]
    flow = FlowSchema().load(registered["serialized_flow"])  # Prefect's own schema
    assert flow.name == ANSWERS["flow_name"]
    assert isinstance(flow.storage, Module)
    assert flow.storage.module == f"{PACKAGE}.flow"
    run_config = flow.run_config
    assert sorted(run_config.labels) == [ANSWERS["environment"]]
    assert getattr(run_config, "image", IMAGE) == IMAGE
    assert getattr(run_config, "task_role_arn", TASK_ROLE_ARN) == TASK_ROLE_ARN
    assert (run_config.env or {}).get("PREFECT__SERVER__UI__ENDPOINT") == UI_URL


def test_every_request_carries_the_proxy_header_and_no_secret(
    stand_in: PrefectServerStandIn,
) -> None:
    completed = make_register(deploy_environment(stand_in))

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert stand_in.requests
    for headers, _ in stand_in.requests:
        assert headers.get("X-Proxy-Token") == PROXY_TOKEN
    payload = json.dumps([body for _, body in stand_in.requests])
    payload += json.dumps([flow["serialized_flow"] for flow in stand_in.flows])
    for secret in (PROXY_TOKEN, DSN, "0123456789abcdef0123456789abcdef"):
        assert secret not in payload


def test_registering_the_same_commit_twice_makes_no_second_version(
    stand_in: PrefectServerStandIn,
) -> None:
    env = deploy_environment(stand_in)

    first, second = make_register(env), make_register(env)

    assert first.returncode == second.returncode == 0, second.stderr[-3000:]
    assert [flow["version"] for flow in stand_in.flows] == [1]
    assert "unchanged: 1" in second.stdout
    env["PREFECT__SERVER__UI__ENDPOINT"] = UI_URL + "/moved"  # changed metadata, every run config
    assert make_register(env).returncode == 0
    assert [flow["version"] for flow in stand_in.flows] == [1, 2]


def test_events_of_a_server_run_link_to_the_run_in_the_server_ui() -> None:
    """What a flow run started by a Prefect Server agent has: the backend, the UI address."""
    settings = {"backend": "server", "cloud.api": "http://prefect:4200/graphql"}
    with set_temporary_config({**settings, "server.ui.endpoint": UI_URL + "/"}):
        with prefect.context(running_with_backend=True, flow_run_id="4f1c"):
            assert events.flow_run_url() == f"{UI_URL}/default/flow-run/4f1c"
