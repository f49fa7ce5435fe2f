"""THE SEED'S APPROACH, the baseline the template is measured against. Not the template.

This is `init_sentry` and `init_base_flow` from the seed design
(shared/reference/seed-blog.md, "Creating a Base Task With Sentry Built-in"), kept as
written there, with two changes so that it runs offline and in a local flow run:

- the DSN comes from the SENTRY_DSN variable instead of an AWS SSM parameter (the
  template's benchmark variant reads SENTRY_DSN too, so neither pays for SSM);
- `context.get("flow_run_version")` instead of `context.flow_run_version`, which raises
  AttributeError outside Prefect Cloud and would skip `set_context`: the baseline does
  everything the seed intends to do in production.

Events come only from the SDK's default integrations: the LoggingIntegration turns
Prefect's ERROR log line for a failed task into the event.
"""

from __future__ import annotations

import logging
import os

from boto3 import client  # noqa: F401 - imported by the seed's module: part of its cost
from prefect import context, task
from sentry_sdk import init, set_context, set_tag

SENTRY_DSN_ENV_NAME = "SENTRY_DSN"
SENTRY_REGION_ENV_NAME = "SENTRY_REGION"
SENTRY_ENVIRONMENT_ENV_NAME = "SENTRY_ENVIRONMENT"
SENTRY_RELEASE_ENV_NAME = "SENTRY_RELEASE"


def init_sentry() -> None:
    sentry_dsn = os.environ.get(SENTRY_DSN_ENV_NAME, None)
    sentry_environment = os.environ.get(SENTRY_ENVIRONMENT_ENV_NAME, None)
    sentry_region = os.environ.get(SENTRY_REGION_ENV_NAME, None)
    sentry_release = os.environ.get(SENTRY_RELEASE_ENV_NAME, None)

    if sentry_dsn is None:
        logging.warning(
            "'%s' environment variable is not defined. Sentry won't be initialized.",
            SENTRY_DSN_ENV_NAME,
        )
    if sentry_region is None:
        logging.warning(
            "'%s' environment variable is not defined."
            " Sentry will be missing the region tag when sending events to Slack.",
            SENTRY_REGION_ENV_NAME,
        )
    if sentry_release is None:
        logging.warning(
            "'%s' environment variable is not defined."
            " Sentry will be missing the release tag when sending events.",
            SENTRY_RELEASE_ENV_NAME,
        )
    if sentry_environment is None:
        logging.warning(
            "'%s' environment variable is not defined."
            " Sentry will be missing the environment tag when sending events to Slack.",
            SENTRY_ENVIRONMENT_ENV_NAME,
        )

    if sentry_dsn:
        try:
            logging.info("Initializing Sentry...")
            init(sentry_dsn, environment=sentry_environment, release=sentry_release)

            if sentry_region:
                set_tag("region", sentry_region)

            set_tag("flow_name", context.flow_name)
            set_tag("flow_run_name", context.flow_run_name)
            set_tag("flow_run_version", context.get("flow_run_version"))

            set_context("flow_parameters", context.parameters)

        except Exception as exception:
            logging.warning("Failed to initialized Sentry. Inner exception: %s", exception)


@task(name="Base flow initialization")
def init_base_flow() -> None:
    init_sentry()
