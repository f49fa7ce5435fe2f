"""What never leaves the process: `scrub_event`, run on every event just before it is sent.

The SDK's own scrubber filters request data, `extra`, `user`, breadcrumb data and frame
locals by key name, but not tags, contexts, or exception and log messages. This one walks
the whole event:

- a value under a secret-looking key (password, secret, token, key, credential, ...)
  becomes [Filtered], whatever it is;
- in every string, the values of known secrets become [Filtered]: Prefect secrets
  (`prefect.context.secrets`), the Prefect API key, every environment variable whose
  name looks secret (PREFECT__CLOUD__API_KEY, AWS_SECRET_ACCESS_KEY, ...), and every
  flow parameter value under a secret-looking name, however deep (`api_token`,
  `{"warehouse": {"password": ...}}`): in an exception message or a log line too;
- in every string, the credentials of URLs (`scheme://user:password@host`, DSNs) become
  [Filtered].

A secret this process only learns while running (a password read from a vault, a
PrefectSecret fetched from Prefect Cloud) is not known here: keep it out of exception
messages and log lines, and under a secret-looking name. Frame locals are not sent at all
(see sentry_setup.INCLUDE_LOCAL_VARIABLES), nor the source code around a frame (a line such as
`Parameter("api_token", default="tok_...")` would carry a secret literal). An event this
function fails on is dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Dict, FrozenSet, Iterator, Optional, Pattern, Tuple

import prefect

SECRET_NAME = re.compile(
    r"pass|secret|token|key|credential|auth|dsn|private|session|cookie|signature", re.IGNORECASE
)
# The user[:password]@ part of a URL: everything between :// and the last @ of the host.
URL_CREDENTIALS = re.compile(r"(?<=://)[^\s/?#]+@")
FILTERED = "[Filtered]"
# Shorter values ("1", "true") would filter ordinary words all over the event.
MIN_SECRET_LENGTH = 6


def scrub_event(event: Dict[str, Any], hint: Dict[str, Any]) -> Dict[str, Any]:
    """`before_send`: the event without secrets."""
    return _scrub(event, _known_secrets())


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
    return _pattern(frozenset(value for value in values if len(value) >= MIN_SECRET_LENGTH))


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
    return frozenset(value for name, value in os.environ.items() if SECRET_NAME.search(name))


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
    # The same secrets come back for every event of a run: build their pattern once.
    if not values:
        return None
    return re.compile("|".join(re.escape(value) for value in sorted(values, key=len, reverse=True)))


def _secret_parameters(value: Any) -> Iterator[str]:
    """Every string under a secret-looking key, at any depth of the flow's parameters."""
    if isinstance(value, dict):
        for key, item in value.items():
            if SECRET_NAME.search(str(key)):
                yield from _strings(item)
            else:
                yield from _secret_parameters(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secret_parameters(item)


def _strings(value: Any) -> Iterator[str]:
    """Every string inside `value`: a secret may be a string, a dict or a list of them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        yield from _strings(list(value.values()))
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        for item in value:
            yield from _strings(item)
