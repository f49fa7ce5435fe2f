"""What never leaves the process: `scrub_event`, run on every event just before it is sent.

It is the only scrubber: sentry-sdk 3 has none of its own, and 2.x's (which filtered a
few parts of an event by key name only) is off once `data_collection` is set (sdk.py).
This one walks the whole event:

- a value under a secret-looking key (password, pwd, secret, token, key, credential,
  webhook, ...) becomes [Filtered], whatever it is;
- in every string, the known secrets become [Filtered]. Known are the values (strings
  and numbers) of Prefect secrets (`prefect.context.secrets`), of the Prefect API key,
  of every environment variable whose name looks secret (PREFECT__CLOUD__API_KEY,
  MYSQL_PWD, SLACK_WEBHOOK_URL, ...) and of every flow parameter under a secret-looking
  name, however deep (`api_token`, `{"warehouse": {"password": ...}}`); the password of
  every URL in any environment variable or flow parameter; the path of every known
  secret that is a URL (a webhook's secret is its path). Each is found as it is, escaped
  once or twice as JSON or Python's repr escape it (a quote or backslash in a message,
  the repr of a KeyError), percent-encoded, and, from 6 characters, inside base64 of any
  text that holds it (an `Authorization: Basic` header). A value of 6 characters or more
  is found anywhere; one of 4 or 5 only as a word of its own (not inside a longer word
  or number); shorter ones, and true, false, none and null, are not searched for: they
  would filter ordinary words all over the event;
- in every string, the credentials of URLs (`scheme://user:password@host`, DSNs) become
  [Filtered].

A secret this process only learns while running (a password read from a vault, a
PrefectSecret fetched from Prefect Cloud) is not known here: keep it out of exception
messages and log lines, and under a secret-looking name. Frame locals are not sent at all
(see sentry_setup.INCLUDE_LOCAL_VARIABLES), nor the source code around a frame (a line such as
`Parameter("api_token", default="tok_...")` would carry a secret literal). An event this
function fails on is dropped. Last, `events.bound_tags` keeps tags within Sentry's limits.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Dict, FrozenSet, Iterator, Optional, Pattern, Set, Tuple
from urllib.parse import quote, quote_plus, unquote, urlsplit

import prefect

from .events import bound_tags

SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|credential|auth|dsn|private|session|cookie|signature"
    r"|webhook|jwt|bearer",
    re.IGNORECASE,
)
# The user[:password]@ part of a URL: everything between :// and the last @ of the host.
URL_CREDENTIALS = re.compile(r"(?<=://)[^\s/?#]+@")
# The password alone: after the first colon of that part.
URL_PASSWORD = re.compile(r"(?<=://)[^\s/?#:@]*:([^\s/?#]+)@")
FILTERED = "[Filtered]"
# Known secrets this long are filtered wherever they appear, even inside a word.
MIN_SECRET_LENGTH = 6
# Shorter ones, down to this length, only where they stand as a word of their own; shorter
# still ("1", "yes") would filter ordinary words all over the event.
MIN_WORD_SECRET_LENGTH = 4
# Values of secret-looking settings (USE_LOCAL_SECRETS=true) that are no secret.
NOT_SECRETS = frozenset({"true", "false", "none", "null"})
# What base64 turns "+" and "/" into in its URL-safe alphabet.
URL_SAFE_BASE64 = str.maketrans("+/", "-_")


def scrub_event(event: Dict[str, Any], hint: Dict[str, Any]) -> Dict[str, Any]:
    """`before_send`: the event without secrets, its tags within Sentry's limits."""
    return bound_tags(_scrub(event, _known_secrets()))


def scrub(value: Any) -> Any:
    """`value` (a string, or dicts and lists of them) as `scrub_event` leaves an event's."""
    return _scrub(value, _known_secrets())


def _scrub(value: Any, secrets: Optional[Pattern[str]]) -> Any:
    if isinstance(value, str):
        if "@" in value:  # the cheap test first: most strings hold no URL credentials
            value = URL_CREDENTIALS.sub(FILTERED + "@", value)
        return secrets.sub(FILTERED, value) if secrets else value
    if isinstance(value, dict):
        return {
            key: FILTERED if _is_secret_name(key) else _scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(item, secrets) for item in value]
    return value


@lru_cache(maxsize=4096)
def _is_secret_name(key: Any) -> bool:
    # Every event has the same few dozen keys: each is matched against SECRET_NAME once.
    return SECRET_NAME.search(str(key)) is not None


def _known_secrets() -> Optional[Pattern[str]]:
    """One pattern matching every secret value this process knows of, longest first."""
    config = prefect.context.get("config") or prefect.config
    cloud = config.get("cloud", {})
    values = {
        *_environment_secrets(),
        *_strings(prefect.context.get("secrets")),
        *_strings([cloud.get("api_key"), cloud.get("auth_token")]),
        *_parameter_secrets(),
    }
    return _pattern(frozenset(values))


def _environment_secrets() -> FrozenSet[str]:
    """The values of the environment variables whose names look secret."""
    # os.environ decodes every name and value at each read: read it again only when the
    # raw pairs it keeps underneath (CPython's `_data`, compared at C speed) have changed,
    # as they do when a task sets a variable.
    raw = getattr(os.environ, "_data", os.environ)
    return _secret_variables(frozenset(raw.items()))


@lru_cache(maxsize=4)
def _secret_variables(environment: FrozenSet[Any]) -> FrozenSet[str]:
    # `environment` is the cache key only: names and values are read decoded.
    secrets = set()
    for name, value in os.environ.items():
        if SECRET_NAME.search(name):
            secrets.add(value)
        elif "://" in value:
            secrets.update(_url_passwords(value))
    return frozenset(secrets)


def _parameter_secrets() -> FrozenSet[str]:
    """The values under secret-looking names in the flow parameters, found once per run."""
    global _parameter_secrets_found
    parameters = prefect.context.get("parameters")
    # A flow run's parameters are one dict for all its tasks, and a parameter can be a
    # list of thousands of rows: walk them again only when they are another dict.
    walked, secrets = _parameter_secrets_found
    if parameters is not walked:
        secrets = frozenset(_secret_parameters(parameters))
        _parameter_secrets_found = (parameters, secrets)
    return secrets


_parameter_secrets_found: Tuple[Any, FrozenSet[str]] = (None, frozenset())


@lru_cache(maxsize=16)
def _pattern(values: FrozenSet[str]) -> Optional[Pattern[str]]:
    """Every form of every secret in `values`, longest first: a secret that starts another
    one must not leave the rest of the longer one behind."""
    # The same secrets come back for every event of a run: build their pattern once.
    forms = {
        form
        for value in values
        if len(value) >= MIN_WORD_SECRET_LENGTH and value.lower() not in NOT_SECRETS
        for form in _forms(value)
    }
    anywhere = [form for form in forms if len(form) >= MIN_SECRET_LENGTH]
    words = [form for form in forms if MIN_WORD_SECRET_LENGTH <= len(form) < MIN_SECRET_LENGTH]
    parts = [_alternatives(anywhere)] if anywhere else []
    if words:
        parts.append(rf"(?<!\w)(?:{_alternatives(words)})(?!\w)")
    return re.compile("|".join(parts)) if parts else None


def _alternatives(forms: Iterable[str]) -> str:
    """A regex matching any of `forms`, the longest where several match, built as a trie:
    each character of a string is compared about once, however many forms there are."""
    trie: Dict[str, Any] = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}  # a form ends here
    return _trie_regex(trie)


def _trie_regex(node: Dict[str, Any]) -> str:
    chain = ""
    while len(node) == 1 and "" not in node:  # one way on: no group needed
        [(char, node)] = node.items()
        chain += re.escape(char)
    branches = [re.escape(char) + _trie_regex(child) for char, child in node.items() if char]
    if not branches:
        return chain
    rest = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    # Greedy: a longer form wins over one that ends here, which must not leave its tail.
    return chain + (f"(?:{rest})?" if "" in node else rest)


def _forms(secret: str) -> Set[str]:
    """The ways `secret` shows in a string: see the module's docstring."""
    once = _escaped(secret)
    forms = {secret, *once, *(twice for form in once for twice in _escaped(form))}
    forms.update((quote(secret, safe=""), quote_plus(secret)))
    if "://" in secret:
        forms.update(_url_passwords(secret))
        path = _url_path(secret)
        if path and len(path) >= MIN_SECRET_LENGTH:
            forms.add(path)
    if len(secret) >= MIN_SECRET_LENGTH:
        cores = set(_base64_cores(secret.encode()))
        forms.update(cores, (core.translate(URL_SAFE_BASE64) for core in cores))
    return forms


def _escaped(text: str) -> Set[str]:
    """`text` inside a JSON string (ASCII-only or not) and inside its Python repr."""
    return {
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(text)[1:-1],
    }


def _base64_cores(data: bytes) -> Iterator[str]:
    """The base64 characters that `data` alone decides, at each of the three places it can
    start in a group of three bytes: what base64 of any text holding `data` contains."""
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode()
        # Character i encodes bits 6i to 6i+6 of the input; `data` holds bits 8*offset on.
        yield encoded[-(-8 * offset // 6) : 8 * (offset + len(data)) // 6]


def _url_passwords(text: str) -> Iterator[str]:
    """The password of every URL in `text`, as written and percent-decoded."""
    for password in URL_PASSWORD.findall(text):
        yield password
        yield unquote(password)


def _url_path(url: str) -> Optional[str]:
    """The path and query of a URL: what an HTTP library's error message shows of it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.netloc else None


def _secret_parameters(value: Any) -> Iterator[str]:
    """Every value under a secret-looking key, at any depth of the flow's parameters, and
    every URL password anywhere in them."""
    if isinstance(value, dict):
        for key, item in value.items():
            if SECRET_NAME.search(str(key)):
                yield from _strings(item)
            else:
                yield from _secret_parameters(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secret_parameters(item)
    elif isinstance(value, str) and "://" in value:
        yield from _url_passwords(value)


def _strings(value: Any) -> Iterator[str]:
    """Every string and number inside `value`: a secret may be one, or a dict or list of them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, dict):
        yield from _strings(list(value.values()))
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        for item in value:
            yield from _strings(item)
