"""No secret reaches Sentry: not one byte of any, in anything the SDK sends.

Known secret values are planted where a flow keeps them
(Prefect secrets, the Prefect API key, the environment, parameters, local variables) and
where they leak from (exception messages, log lines, tags, contexts, URLs); then every
byte the endpoint received is searched for them.
"""

from __future__ import annotations

import logging
import os

import prefect
import pytest
import sentry_sdk
from prefect import Parameter, task
from prefect.executors import LocalDaskExecutor, LocalExecutor
from prefect.triggers import always_run

from .project import SentryEndpoint, module

MonitoredFlow = module("monitoring").MonitoredFlow
sentry_setup = module("monitoring.sentry_setup")
scrub_event = module("monitoring.scrubbing").scrub_event

PREFECT_SECRET = "prefect-secret-4417"
API_KEY_VARIABLE = "pcu_api-key-from-the-environment-9051"
API_KEY_CONFIG = "pcu_api-key-from-the-config-2208"
ENV_TOKEN = "warehouse-token-7730"
PARAMETER_SECRET = "parameter-password-6120"
URL_PASSWORD = "url-password-5581"
LOCAL_SECRET = "local-variable-secret-3396"
TAGGED_SECRET = "tagged-secret-8842"
SECRETS = (
    PREFECT_SECRET,
    API_KEY_VARIABLE,
    API_KEY_CONFIG,
    ENV_TOKEN,
    PARAMETER_SECRET,
    URL_PASSWORD,
    LOCAL_SECRET,
    TAGGED_SECRET,
)
DATABASE_URL = f"postgresql://etl:{URL_PASSWORD}@warehouse.internal:5432/sales"
# Parameter values under secret-looking names: known secrets wherever they show up.
API_TOKEN = "tok_parameter-api-token-2719"
NESTED_PASSWORD = "nested-parameter-password-6650"
LISTED_TOKEN = "listed-account-token-3187"
EXECUTORS = {
    "local": LocalExecutor,
    "threads": lambda: LocalDaskExecutor(scheduler="threads", num_workers=2),
    "processes": lambda: LocalDaskExecutor(scheduler="processes", num_workers=2),
}


@task
def call_api(api_token: str, warehouse: dict, accounts: list) -> None:
    logger = logging.getLogger("sales.api")
    logger.warning("Retrying with token %s and %s", api_token, warehouse["login"]["password"])
    if api_token == "tok_parameter-api-token-2719":  # a literal in the lines around the raise
        raise ValueError(
            f"API refused token {api_token} for {warehouse['login']['password']}"
            f" and {accounts[0]['token']}"
        )


@task
def load(database_url: str) -> None:
    password = LOCAL_SECRET  # noqa: F841 - a local variable, as data tasks have them
    harmless = prefect.context.secrets["WAREHOUSE"]  # noqa: F841 - under a harmless name
    prefect.context.logger.info("Connecting with %s", prefect.context.secrets["WAREHOUSE"])
    sentry_sdk.set_tag("api_key", TAGGED_SECRET)
    sentry_sdk.set_context("warehouse", {"password": TAGGED_SECRET, "url": database_url})
    sentry_sdk.set_extra("credentials", TAGGED_SECRET)
    raise ConnectionError(
        f"login refused at {database_url} with token {ENV_TOKEN}, "
        f"key {API_KEY_VARIABLE} or {API_KEY_CONFIG}, secret {PREFECT_SECRET}"
    )


@pytest.mark.parametrize("locals_sent", [False, True], ids=["as-configured", "frame-locals-on"])
def test_no_secret_reaches_sentry(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch, locals_sent: bool
) -> None:
    """Even with frame locals switched on, the scrubber keeps every secret home."""
    monkeypatch.setattr(sentry_setup, "INCLUDE_LOCAL_VARIABLES", locals_sent)
    monkeypatch.setenv("PREFECT__CLOUD__API_KEY", API_KEY_VARIABLE)
    monkeypatch.setenv("WAREHOUSE_TOKEN", ENV_TOKEN)
    monkeypatch.setitem(prefect.context.config.cloud, "api_key", API_KEY_CONFIG)
    with MonitoredFlow("Secrets") as flow:
        password = Parameter("warehouse_password", default=PARAMETER_SECRET)
        load(Parameter("database_url", default=DATABASE_URL), upstream_tasks=[password])

    state = flow.run(context={"secrets": {"WAREHOUSE": PREFECT_SECRET}})
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    sent = b"".join(monitoring_env.bodies)
    assert [secret for secret in SECRETS if secret.encode() in sent] == []
    message = event["exception"]["values"][-1]["value"]
    assert message.startswith("login refused at postgresql://[Filtered]@warehouse.internal")
    assert event["contexts"]["flow_parameters"]["warehouse_password"] == "[Filtered]"
    assert event["tags"]["api_key"] == "[Filtered]"
    frame = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]
    assert ("vars" in frame) is locals_sent


@pytest.mark.parametrize("executor", EXECUTORS)
def test_parameter_secrets_never_leave_in_messages_breadcrumbs_or_code(
    monitoring_env: SentryEndpoint, executor: str
) -> None:
    """A parameter's secret in an exception message, a log line and a line of code."""
    warehouse = {"login": {"user": "etl", "password": NESTED_PASSWORD}, "schema": "sales"}
    with MonitoredFlow("Parameter secrets", executor=EXECUTORS[executor]()) as flow:
        call_api(
            Parameter("api_token", default="tok_parameter-api-token-2719"),
            Parameter("warehouse", default=warehouse),
            Parameter("accounts", default=[{"name": "east", "token": LISTED_TOKEN}]),
        )

    state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    [event] = monitoring_env.events(expected=1)
    sent = b"".join(monitoring_env.bodies)
    assert [s for s in (API_TOKEN, NESTED_PASSWORD, LISTED_TOKEN) if s.encode() in sent] == []
    assert event["exception"]["values"][-1]["value"].startswith(
        "API refused token [Filtered] for [Filtered] and [Filtered]"
    )
    [crumb] = [b for b in event["breadcrumbs"]["values"] if b.get("category") == "sales.api"]
    assert crumb["message"] == "Retrying with token [Filtered] and [Filtered]"
    frames = [f for v in event["exception"]["values"] for f in v["stacktrace"]["frames"]]
    assert frames[-1]["function"] == "call_api" and frames[-1]["lineno"] > 0
    assert [f for f in frames if {"context_line", "pre_context", "post_context"} & set(f)] == []
    assert event["contexts"]["flow_parameters"]["warehouse"]["login"]["password"] == "[Filtered]"


LATE_VARIABLE = "LATE_WAREHOUSE_TOKEN"
LATE_TOKEN = "late-warehouse-token-4471"


@task
def fail_plainly() -> None:
    raise ValueError("the first failure, with no secret in it")


@task(trigger=always_run)
def fail_with_a_token_set_on_the_way() -> None:
    os.environ[LATE_VARIABLE] = LATE_TOKEN  # as a task that reads a vault may do
    raise ValueError(f"refused {LATE_TOKEN}")


def test_a_variable_set_during_the_run_is_a_known_secret(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scrubber reads the environment again when it changed since the last event."""
    monkeypatch.delenv(LATE_VARIABLE, raising=False)
    with MonitoredFlow("Late secret") as flow:
        fail_with_a_token_set_on_the_way(upstream_tasks=[fail_plainly()])

    try:
        state = flow.run()
    finally:
        os.environ.pop(LATE_VARIABLE, None)
    sentry_sdk.flush()

    assert state.is_failed()
    events = monitoring_env.events(expected=2)
    assert sorted(e["exception"]["values"][-1]["value"] for e in events) == [
        "refused [Filtered]",
        "the first failure, with no secret in it",
    ]
    assert LATE_TOKEN.encode() not in b"".join(monitoring_env.bodies)


@task
def refuse(api_token: str) -> None:
    raise ValueError(f"refused {api_token}")


def test_each_flow_run_s_parameter_secrets_are_known(monitoring_env: SentryEndpoint) -> None:
    """Two runs in one process, each with a secret parameter of its own."""
    tokens = ["first-run-api-token-5150", "second-run-api-token-6261"]
    with MonitoredFlow("Two runs") as flow:
        refuse(Parameter("api_token"))

    for token in tokens:
        assert flow.run(parameters={"api_token": token}).is_failed()
    sentry_sdk.flush()

    events = monitoring_env.events(expected=2)
    assert [e["exception"]["values"][-1]["value"] for e in events] == ["refused [Filtered]"] * 2
    sent = b"".join(monitoring_env.bodies)
    assert [token for token in tokens if token.encode() in sent] == []


def test_the_scrubber_covers_every_part_of_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE_TOKEN", ENV_TOKEN)
    dsn = f"https://abc123:{URL_PASSWORD}@o1.ingest.sentry.io/1"
    local_variables = {"secret": "s", "row": {"a": "b"}, "url": f"mysql://root@db/{ENV_TOKEN}"}
    event = {
        "tags": {"session_id": "s", "day": f"token={ENV_TOKEN}"},
        "request": {"cookies": {"sid": "c"}, "headers": {"Cookie": "c", "Accept": "*/*"}},
        "contexts": {"db": {"Password": "p", "host": dsn}},
        "extra": {"nested": [{"auth": {"user": "u"}}, ENV_TOKEN]},
        "breadcrumbs": {"values": [{"message": f"using {dsn}", "data": {"apiKey": "k"}}]},
        "exception": {
            "values": [{"value": ENV_TOKEN, "stacktrace": {"frames": [{"vars": local_variables}]}}]
        },
        "logentry": {"message": "%s", "params": [ENV_TOKEN]},
    }

    scrubbed = scrub_event(event, {})

    filtered_dsn = "https://[Filtered]@o1.ingest.sentry.io/1"
    assert scrubbed["tags"] == {"session_id": "[Filtered]", "day": "token=[Filtered]"}
    assert scrubbed["request"] == {
        "cookies": "[Filtered]",
        "headers": {"Cookie": "[Filtered]", "Accept": "*/*"},
    }
    assert scrubbed["contexts"] == {"db": {"Password": "[Filtered]", "host": filtered_dsn}}
    assert scrubbed["extra"] == {"nested": [{"auth": "[Filtered]"}, "[Filtered]"]}
    [crumb] = scrubbed["breadcrumbs"]["values"]
    assert crumb == {"message": f"using {filtered_dsn}", "data": {"apiKey": "[Filtered]"}}
    [exception] = scrubbed["exception"]["values"]
    assert exception["value"] == "[Filtered]"
    assert exception["stacktrace"]["frames"][0]["vars"] == {
        "secret": "[Filtered]",
        "row": {"a": "b"},
        "url": "mysql://[Filtered]@db/[Filtered]",
    }
    assert scrubbed["logentry"] == {"message": "%s", "params": ["[Filtered]"]}
