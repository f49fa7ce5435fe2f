"""No secret reaches Sentry: not one byte of any, in anything the SDK sends.

Known secret values are planted where a flow keeps them
(Prefect secrets, the Prefect API key, the environment, parameters, local variables) and
where they leak from (exception messages, log lines, tags, contexts, URLs); then every
byte the endpoint received is searched for them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from typing import Dict
from urllib.parse import quote

import prefect
import pytest
import sentry_sdk
from prefect import Flow, Parameter, task
from prefect.engine.state import State
from prefect.executors import LocalDaskExecutor, LocalExecutor
from prefect.triggers import always_run

from .project import SentryEndpoint, module

MonitoredFlow = module("monitoring").MonitoredFlow
budget = module("monitoring.budget")
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


def warn_of_the_token(flow: Flow, old_state: State, new_state: State) -> State:
    """A flow state handler of the team's, logging a parameter's secret as the run starts."""
    if new_state.is_running():
        token = prefect.context.parameters["api_token"]
        logging.getLogger("sales.flow").warning("starting with %s", token)
    return new_state


def test_a_flow_run_s_events_carry_none_of_an_earlier_run_s_log_lines(
    monitoring_env: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs in one process: the second run's scrubber does not know the first's token,
    so the first run's warnings must not come along on the second run's events."""
    monkeypatch.setenv(budget.SENTRY_MAX_EVENTS_PER_TASK_ENV_NAME, "1")
    tokens = ["first-run-api-token-7311", "second-run-api-token-8422"]
    with MonitoredFlow("Two runs", state_handlers=[warn_of_the_token]) as flow:
        refuse.map(Parameter("api_token", default=["a", "b"]))  # mapped: 2 failures, 1 event

    assert sentry_setup.init_sentry()
    logging.getLogger("sales.flow").warning("before any run: %s", tokens[0])  # known to none
    for token in tokens:
        assert flow.run(parameters={"api_token": token}).is_failed()
    sentry_sdk.flush()

    events = monitoring_env.events(expected=4)
    # Each run's count of the failures not sent is an event of the flow run itself.
    summaries = [event for event in events if "failures" in event.get("contexts", {})]
    assert len(summaries) == 2
    for summary in summaries:
        lines = [crumb.get("message") for crumb in summary["breadcrumbs"]["values"]]
        assert [line for line in lines if line.startswith("starting with")] == [
            "starting with [Filtered]"
        ]
    sent = b"".join(monitoring_env.bodies)
    assert [token for token in tokens if token.encode() in sent] == []


QUOTED_TOKEN = 'quoted"and\\slashed-token-3301'
MYSQL_PWD = "mysql-pwd-value-8812"
SHORT_PWD = "pwd-value-5521"
URL_PASSWORD_ALONE = "p@ss-word-4410"
WEBHOOK_PATH = "/services/T0001/B0002/webhook-path-secret-77"
ACCOUNT_KEY = 90817263
PIN = 4711


def known_secret_forms() -> Dict[str, str]:
    """Each form the scrubber guarantees to find (baked README, "What is never sent"), and
    three it leaves alone: too short, not a word of its own, not a secret."""
    return {
        "verbatim": f"refused {QUOTED_TOKEN}",
        "in JSON": json.dumps({"login": "etl", "secret": QUOTED_TOKEN}),
        "repr of a KeyError": str(KeyError(QUOTED_TOKEN)),
        "JSON in a KeyError": str(KeyError(json.dumps({"t": QUOTED_TOKEN}))),
        "percent-encoded": f"?t={quote(QUOTED_TOKEN, safe='')}&x=1",
        "base64": BASE64,
        "inside base64": f"Authorization: Basic {BASIC}",
        "inside URL-safe base64": URL_SAFE,
        "MYSQL_PWD": f"access denied for {MYSQL_PWD}",
        "pwd": f"access denied for {SHORT_PWD}",
        "a number": f"account {ACCOUNT_KEY} refused",
        "a short number": f"pin {PIN} refused",
        "a URL's password alone": f"login with {URL_PASSWORD_ALONE} failed",
        "the same, percent-encoded": f"login with {quote(URL_PASSWORD_ALONE)} failed",
        "a webhook's path": f"Max retries exceeded with url: {WEBHOOK_PATH} (Caused by x)",
        "too short": f"code {SHORT_CODE}",
        "inside a longer number": f"order 1{PIN}2",
        "no secret": "USE_LOCAL_SECRETS is true",
    }


BASE64 = base64.b64encode(QUOTED_TOKEN.encode()).decode()
BASIC = base64.b64encode(f"etl:{QUOTED_TOKEN}".encode()).decode()
URL_SAFE = base64.urlsafe_b64encode(f"xy{QUOTED_TOKEN}".encode()).decode()
SHORT_CODE = "a1b"


def base64_filtered(encoded: str, start: int) -> str:
    """`encoded` with the characters that QUOTED_TOKEN alone decides filtered: base64 turns
    each 6 bits into a character, and the token holds bits 8 * start to 8 * (start + n)."""
    end = start + len(QUOTED_TOKEN.encode())
    return encoded[: -(-8 * start // 6)] + "[Filtered]" + encoded[8 * end // 6 :]


@pytest.fixture
def secrets_in_other_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets where flows keep them: variables and parameters, none of them a string."""
    monkeypatch.setenv("WAREHOUSE_TOKEN", QUOTED_TOKEN)
    monkeypatch.setenv("MYSQL_PWD", MYSQL_PWD)
    monkeypatch.setenv("pwd", SHORT_PWD)
    monkeypatch.setenv("DATABASE_URL", f"mysql://etl:{quote(URL_PASSWORD_ALONE)}@db:3306/sales")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"https://hooks.slack.com{WEBHOOK_PATH}")
    monkeypatch.setenv("USE_LOCAL_SECRETS", "true")


SECRET_NUMBERS = {
    "account_key": ACCOUNT_KEY,
    "login": {"pin_secret": PIN, "code_secret": SHORT_CODE},
}


@pytest.mark.usefixtures("secrets_in_other_forms")
def test_known_secrets_are_filtered_in_every_form_the_readme_names() -> None:
    forms = known_secret_forms()
    event = {"extra": {"messages": list(forms.values())}}  # the labels would look secret

    with prefect.context(parameters=SECRET_NUMBERS):
        scrubbed = dict(zip(forms, scrub_event(event, {})["extra"]["messages"], strict=True))

    assert scrubbed == {
        "verbatim": "refused [Filtered]",
        "in JSON": '{"login": "etl", "secret": "[Filtered]"}',
        "repr of a KeyError": "'[Filtered]'",
        "JSON in a KeyError": """'{"t": "[Filtered]"}'""",
        "percent-encoded": "?t=[Filtered]&x=1",
        "base64": base64_filtered(BASE64, 0),
        "inside base64": f"Authorization: Basic {base64_filtered(BASIC, len('etl:'))}",
        "inside URL-safe base64": base64_filtered(URL_SAFE, len("xy")),
        "MYSQL_PWD": "access denied for [Filtered]",
        "pwd": "access denied for [Filtered]",
        "a number": "account [Filtered] refused",
        "a short number": "pin [Filtered] refused",
        "a URL's password alone": "login with [Filtered] failed",
        "the same, percent-encoded": "login with [Filtered] failed",
        "a webhook's path": "Max retries exceeded with url: [Filtered] (Caused by x)",
        "too short": f"code {SHORT_CODE}",
        "inside a longer number": f"order 1{PIN}2",
        "no secret": "USE_LOCAL_SECRETS is true",
    }


@task
def leak_in_other_forms(account_key: int, login: dict) -> None:
    logging.getLogger("sales.db").warning(
        "account %s, pin %s, password %s", account_key, login["pin_secret"], URL_PASSWORD_ALONE
    )
    settings = json.loads(json.dumps({"token": os.environ["WAREHOUSE_TOKEN"]}))
    raise KeyError(json.dumps(settings) + f" {MYSQL_PWD} {WEBHOOK_PATH} {BASIC}")


@pytest.mark.usefixtures("secrets_in_other_forms")
@pytest.mark.parametrize("executor", EXECUTORS)
def test_secrets_in_other_forms_never_leave_a_flow_run(
    monitoring_env: SentryEndpoint, executor: str
) -> None:
    """The same forms through the SDK, from the process that runs the task."""
    with MonitoredFlow("Other forms", executor=EXECUTORS[executor]()) as flow:
        leak_in_other_forms(
            Parameter("account_key", default=ACCOUNT_KEY),
            Parameter("login", default=SECRET_NUMBERS["login"]),
        )

    assert flow.run().is_failed()
    sentry_sdk.flush()

    [event] = monitoring_env.events(expected=1)
    assert event["exception"]["values"][-1]["value"] == (
        """'{"token": "[Filtered]"} [Filtered] [Filtered] """
        + base64_filtered(BASIC, len("etl:"))
        + "'"
    )
    [line] = [
        crumb["message"]
        for crumb in event["breadcrumbs"]["values"]
        if crumb.get("category") == "sales.db"
    ]
    assert line == "account [Filtered], pin [Filtered], password [Filtered]"
    sent = b"".join(monitoring_env.bodies)
    fragments = ["slashed-token-3301", str(ACCOUNT_KEY), "8812", "4410", "secret-77"]
    # As whole words: a short number also turns up by chance inside event ids and times.
    word = rb"(?<![0-9A-Za-z])%s(?![0-9A-Za-z])"
    leaked = [each for each in fragments if re.search(word % re.escape(each.encode()), sent)]
    assert leaked == []


def test_a_secret_that_starts_another_leaves_nothing_of_the_longer_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHORT_TOKEN", "prefix-token-12")
    monkeypatch.setenv("LONG_TOKEN", "prefix-token-12-and-more-34")
    event = {"extra": {"lines": ["a prefix-token-12-and-more-34 b prefix-token-12 c"]}}

    assert scrub_event(event, {})["extra"]["lines"] == ["a [Filtered] b [Filtered] c"]


def test_tags_are_scrubbed_before_they_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret across the 200th character is filtered whole, not cut in half and kept;
    a key is cut at 32 characters, and a newline becomes a space."""
    monkeypatch.setenv("WAREHOUSE_TOKEN", ENV_TOKEN)
    value = "x" * 190 + ENV_TOKEN + "y" * 20

    key = "a_tag_name_of_forty_characters_in_width"

    tags = scrub_event({"tags": {key: value, "line": "one\ntwo"}}, {})["tags"]

    assert tags == {
        key[:32]: ("x" * 190 + "[Filtered]" + "y" * 20)[:197] + "...",
        "line": "one two",
    }


def test_a_secret_beyond_ascii_is_filtered_in_either_kind_of_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """json.dumps writes `ü` as `\\u00fc` by default and as itself with ensure_ascii=False;
    a quote in the secret is escaped either way."""
    secret = 'grüße"aus-köln-2291'
    monkeypatch.setenv("WAREHOUSE_PASSWORD", secret)
    lines = [json.dumps({"p": secret}), json.dumps({"p": secret}, ensure_ascii=False)]

    assert scrub_event({"extra": {"lines": lines}}, {})["extra"]["lines"] == [
        '{"p": "[Filtered]"}',
        '{"p": "[Filtered]"}',
    ]


def test_the_path_of_a_secret_url_is_a_secret_only_from_six_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short path (`/send`) is not secret alone: the URL is filtered, not every `/send`."""
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://alerts.example.com/send")
    monkeypatch.setenv("REPORT_WEBHOOK_URL", "https://reports.example.com/T0123/B456")
    lines = [
        "POST https://alerts.example.com/send failed",
        "the /send endpoint answered 503",
        "POST /T0123/B456 failed",
    ]

    assert scrub_event({"extra": {"lines": lines}}, {})["extra"]["lines"] == [
        "POST [Filtered] failed",
        "the /send endpoint answered 503",
        "POST [Filtered] failed",
    ]
