"""Fixtures for testing monitoring offline. The template owns this file.

Sentry is a loopback HTTP endpoint that the real SDK posts to; AWS SSM is moto.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

from typing import Iterator

import boto3
import pytest
import sentry_sdk
from moto import mock_aws

from {{ cookiecutter.__package }} import monitoring

from .sentry_endpoint import SentryEndpoint

MONITORING_VARIABLES = (
    monitoring.SENTRY_DSN_ENV_NAME,
    monitoring.SENTRY_DSN_SSM_PARAMETER_NAME,
    monitoring.SENTRY_REGION_ENV_NAME,
    monitoring.SENTRY_ENVIRONMENT_ENV_NAME,
    monitoring.SENTRY_RELEASE_ENV_NAME,
    monitoring.SENTRY_SHUTDOWN_TIMEOUT_ENV_NAME,
)
DSN_PARAMETER = "/test/flow/sentry-dsn"
REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def fresh_monitoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with monitoring off, no SENTRY_* variable and fake AWS credentials."""
    for name in MONITORING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(monitoring, "_started", False)
    yield
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def sentry() -> Iterator[SentryEndpoint]:
    """A Sentry endpoint on 127.0.0.1 that keeps every event it receives."""
    endpoint = SentryEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def monitoring_env(
    monkeypatch: pytest.MonkeyPatch, sentry: SentryEndpoint
) -> Iterator[SentryEndpoint]:
    """All four SENTRY_* variables set, the DSN (pointing at `sentry`) stored in moto's SSM."""
    with mock_aws():
        boto3.client("ssm").put_parameter(Name=DSN_PARAMETER, Value=sentry.dsn, Type="SecureString")
        monkeypatch.setenv(monitoring.SENTRY_DSN_SSM_PARAMETER_NAME, DSN_PARAMETER)
        monkeypatch.setenv(monitoring.SENTRY_REGION_ENV_NAME, REGION)
        monkeypatch.setenv(monitoring.SENTRY_ENVIRONMENT_ENV_NAME, "test")
        monkeypatch.setenv(monitoring.SENTRY_RELEASE_ENV_NAME, "0123abc")
        yield sentry
