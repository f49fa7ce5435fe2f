"""Check every cookiecutter answer before a single file is written.

Each rule is one small function that returns an error message or None. Cookiecutter
renders this file with the answers and runs it; the tests import it and call the
rules directly. Nothing here touches the network.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Callable, Mapping

Answers = Mapping[str, object]
Rule = Callable[[Answers], str | None]

# Packages the generated project imports or installs: a flow package with one of
# these names would shadow it.
DEPENDENCY_MODULES = frozenset(
    {
        "boto3",
        "botocore",
        "dask",
        "distributed",
        "marshmallow",
        "moto",
        "pendulum",
        "prefect",
        "pytest",
        "sentry_sdk",
        "tests",
    }
)
PYTHON_VERSIONS = ("3.10", "3.9")
RUN_CONFIGS = ("ecs", "kubernetes", "docker", "local")
EXECUTORS = ("local", "local_dask", "dask_cluster")

SENTRY_SLUG = re.compile(r"^(?![0-9]+$)[a-z0-9][a-z0-9_-]{0,49}$")
AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9_-]{0,79}$")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")


def error(field: str, problem: str, fix: str) -> str:
    return f"ERROR: {field}: {problem} - {fix}"


def text(answers: Answers, field: str) -> str:
    return str(answers.get(field, ""))


def check_flow_slug_is_identifier(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if re.fullmatch(r"[a-z_][a-z0-9_]*", slug):
        return None
    return error(
        "flow_slug",
        f"{slug!r} is not a lowercase ASCII Python identifier",
        "use lowercase letters, digits and underscores, starting with a letter, "
        "e.g. flow_slug=sales_report",
    )


def check_flow_slug_is_not_keyword(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if not keyword.iskeyword(slug) and not keyword.issoftkeyword(slug):
        return None
    return error(
        "flow_slug",
        f"{slug!r} is a Python keyword",
        "add a word to it, e.g. flow_slug=" + slug + "_flow",
    )


def check_flow_slug_is_not_stdlib(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if slug not in sys.stdlib_module_names:
        return None
    return error(
        "flow_slug",
        f"{slug!r} is a standard-library module and would shadow it",
        "add a word to it, e.g. flow_slug=" + slug + "_flow",
    )


def check_flow_slug_is_not_dependency(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if slug not in DEPENDENCY_MODULES:
        return None
    return error(
        "flow_slug",
        f"{slug!r} is the name of a package the project depends on",
        "add a word to it, e.g. flow_slug=" + slug + "_flow",
    )


def check_required(field: str) -> Rule:
    def rule(answers: Answers) -> str | None:
        if text(answers, field).strip():
            return None
        return error(field, "is empty", f"give {field} a value")

    rule.__name__ = f"check_{field}_is_not_empty"
    return rule


def check_pattern(field: str, pattern: re.Pattern, expected: str, example: str) -> Rule:
    def rule(answers: Answers) -> str | None:
        value = text(answers, field)
        if pattern.fullmatch(value):
            return None
        return error(field, f"{value!r} is not {expected}", f"use e.g. {field}={example}")

    rule.__name__ = f"check_{field}_format"
    return rule


def check_choice(field: str, choices: tuple[str, ...]) -> Rule:
    def rule(answers: Answers) -> str | None:
        value = text(answers, field)
        if value in choices:
            return None
        return error(field, f"{value!r} is not a choice", "pick one of " + ", ".join(choices))

    rule.__name__ = f"check_{field}_choice"
    return rule


def check_boolean(field: str) -> Rule:
    def rule(answers: Answers) -> str | None:
        # Cookiecutter turns yes/no answers into booleans; a replayed file may hold anything.
        value = answers.get(field, True)
        if isinstance(value, bool):
            return None
        return error(field, f"{value!r} is not true or false", f"use {field}=true or {field}=false")

    rule.__name__ = f"check_{field}_is_boolean"
    return rule


def check_schedule(answers: Answers) -> str | None:
    schedule = text(answers, "schedule").strip()
    fields = schedule.split()
    if not schedule or (len(fields) == 5 and all(CRON_FIELD.fullmatch(f) for f in fields)):
        return None
    return error(
        "schedule",
        f"{schedule!r} is not a five-field cron expression",
        "use e.g. schedule='0 6 * * *' (06:00 UTC daily), or leave it empty for no schedule",
    )


FLOW_SLUG_RULES: tuple[Rule, ...] = (
    check_flow_slug_is_identifier,
    check_flow_slug_is_not_keyword,
    check_flow_slug_is_not_stdlib,
    check_flow_slug_is_not_dependency,
)

RULES: tuple[Rule, ...] = (
    *FLOW_SLUG_RULES,
    check_required("project_name"),
    check_required("flow_name"),
    check_required("prefect_project"),
    check_pattern("sentry_organization", SENTRY_SLUG, "a Sentry slug", "my-org"),
    check_pattern("sentry_team", SENTRY_SLUG, "a Sentry slug", "data-platform"),
    check_pattern("aws_region", AWS_REGION, "an AWS region", "us-east-1"),
    check_pattern("environment", ENVIRONMENT, "lowercase letters, digits and dashes", "production"),
    check_pattern("slack_channel", SLACK_CHANNEL, "a Slack channel name", "'#data-alerts'"),
    check_schedule,
    check_boolean("sentry_crons"),
    check_choice("python_version", PYTHON_VERSIONS),
    check_choice("run_config", RUN_CONFIGS),
    check_choice("executor", EXECUTORS),
)


def errors(answers: Answers, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Every rule's message for these answers; empty when all is well."""
    return [message for rule in rules if (message := rule(answers)) is not None]


def main(answers: Answers) -> int:
    problems = errors(answers)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # Cookiecutter renders the answers into this raw string; tojson escapes every
    # quote, so no answer can end the string early.
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))
