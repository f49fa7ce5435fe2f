"""Check every cookiecutter answer before a single file is written.

Each rule is one small function that returns an error message or None, marked with
the answers it reads. `prefect_flow_filters.checked` reads this file and runs each rule
as soon as the last answer it reads is given, while cookiecutter asks; cookiecutter
also renders this file with all the answers and runs it, for a replayed bake that
asks nothing. The tests import it and call the rules directly. Nothing here touches
the network.
"""

from __future__ import annotations

import functools
import json
import keyword
import re
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

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
# With no Prefect backend, the platform's scheduler starts the runs: these run configs
# have one the template sets up (EventBridge Scheduler and an ECS task).
SCHEDULED_WITHOUT_BACKEND = ("ecs",)
# The template this file is part of, when imported from it. Cookiecutter (and cruft)
# run a rendered copy from a temporary file instead: that copy is given the choices.
TEMPLATE_DIR = Path(__file__).resolve().parent.parent

SENTRY_SLUG = re.compile(r"^(?![0-9]+$)[a-z0-9][a-z0-9_-]{0,49}$")
# A monitor slug that Sentry keeps as it is: it slugifies the others (merging dashes).
SENTRY_MONITOR_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9_-]{0,79}$")
# A Kubernetes namespace name: an RFC 1123 label (what `kubectl create namespace` takes).
KUBERNETES_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


# Cron in EventBridge Scheduler's syntax: cron(minutes hours day-of-month month
# day-of-week year). Its day-of-week counts 1-7 from Sunday, and one of day-of-month and
# day-of-week must be `?`. Day names are written out, so no number is misread.
CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class CronError(ValueError):
    """A cron expression EventBridge Scheduler cannot run as written."""


def cron_values(field: str, name: str, low: int, high: int) -> list[int]:
    """Every value a standard cron field matches, in order; CronError names what is wrong.

    Standard cron only: numbers (names for months and weekdays), `*`, ranges `a-b`, steps
    `*/n`, `a/n` and `a-b/n`, and comma lists of them. Prefect 1 reads the schedule with
    croniter, which reads a few of these differently: a range of one value (`3-3`) as
    every value, a weekday step from 7 (`7/2`) as one from Sunday 0. Those are refused.
    """
    names = MONTHS if name == "month" else DAYS if name == "day-of-week" else ()
    offset = 1 if name == "month" else 0

    def number(word: str) -> int:
        if word.upper() in names:
            return names.index(word.upper()) + offset
        if not re.fullmatch(r"[0-9]+", word) or not low <= int(word) <= high:
            spelled = f" or a name {names[0]}-{names[-1]}" if names else ""
            raise CronError(f"{name} {word!r} is not a number from {low} to {high}{spelled}")
        return int(word)

    values: set[int] = set()
    for part in field.split(","):
        spread, _, step_text = part.partition("/")
        if step_text and (not re.fullmatch(r"[0-9]+", step_text) or int(step_text) == 0):
            raise CronError(f"{name} step {step_text!r} is not a positive number")
        step = int(step_text or 1)
        if spread == "*":
            start, end = low, high
        elif "-" in spread:
            first, _, last = spread.partition("-")
            start, end = number(first), number(last)
            if start > end:
                raise CronError(f"{name} range {spread!r} runs backwards")
            if start == end:
                raise CronError(
                    f"{name} range {spread!r} holds one value, which croniter reads as every "
                    f"value: write {first}"
                )
        else:
            start = number(spread)
            # A weekday step from a value runs to Saturday, as croniter reads it.
            end = (6 if name == "day-of-week" else high) if step_text else start
            if step_text and name == "day-of-week" and start == 7:
                raise CronError(f"{name} {part!r} steps from 7, which croniter reads as 0")
        values.update(range(start, end + 1, step))
    return sorted(values)


def eventbridge_cron(cron: str) -> str:
    """The five-field cron `cron` as EventBridge Scheduler's `cron(...)`, matching the same
    minutes; CronError when it cannot."""
    fields = cron.split()
    if len(fields) != 5:
        raise CronError(f"{cron!r} has {len(fields)} fields, not 5")
    for field, (name, _, _) in zip(fields, CRON_FIELDS, strict=True):
        if not re.fullmatch(r"[0-9A-Za-z*/,-]+", field):
            raise CronError(f"{name} {field!r} uses a character other than digits, names, * / , -")
    _, _, day, _, weekday = fields
    limits = {name: (low, high) for name, low, high in CRON_FIELDS}
    parsed = [
        cron_values(field, name, *limits[name])
        for field, (name, _, _) in zip(fields, CRON_FIELDS, strict=True)
    ]
    days = sorted({value % 7 for value in parsed[4]})  # 0 and 7 are both Sunday
    if day != "*" and weekday != "*":
        # Standard cron runs when either matches; EventBridge allows only one of them.
        raise CronError(
            f"day-of-month {day!r} and day-of-week {weekday!r} are both set: cron runs on "
            "either one, EventBridge only on one of them"
        )

    def listed(values: list[int], name: str, words: tuple[str, ...] = ()) -> str:
        low, high = limits[name]
        if set(values) >= set(range(low, high + 1)) - ({7} if name == "day-of-week" else set()):
            return "*"
        first = 1 if name == "month" else 0
        return ",".join(words[value - first] if words else str(value) for value in values)

    day_of_month = listed(parsed[2], "day-of-month") if weekday == "*" else "?"
    day_of_week = "?" if weekday == "*" else listed(days, "day-of-week", DAYS)
    return (
        f"cron({listed(parsed[0], 'minute')} {listed(parsed[1], 'hour')} {day_of_month} "
        f"{listed(parsed[3], 'month', MONTHS)} {day_of_week} *)"
    )


@functools.cache
def choices(template_dir: Path = TEMPLATE_DIR) -> dict[str, tuple[str, ...]]:
    """Each choice answer of the template's cookiecutter.json (a list there), with the
    values it offers: the one list of them, read by the hook, the tests and the scripts."""
    variables = json.loads((template_dir / "cookiecutter.json").read_text(encoding="utf-8"))
    return {
        name: tuple(value)
        for name, value in variables.items()
        if isinstance(value, list) and not name.startswith("_")
    }


def reads(*fields: str) -> Callable[[Rule], Rule]:
    """Name the answers a rule reads: it is checked as soon as the last of them is given."""

    def mark(rule: Rule) -> Rule:
        rule.fields = fields
        return rule

    return mark


def error(field: str, problem: str, fix: str) -> str:
    return f"ERROR: {field}: {problem} - {fix}"


def text(answers: Answers, field: str) -> str:
    return str(answers.get(field, ""))


@reads("flow_slug")
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


@reads("flow_slug")
def check_flow_slug_is_not_keyword(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if not keyword.iskeyword(slug) and not keyword.issoftkeyword(slug):
        return None
    return error(
        "flow_slug",
        f"{slug!r} is a Python keyword",
        "add a word to it, e.g. flow_slug=" + slug + "_flow",
    )


@reads("flow_slug")
def check_flow_slug_is_not_stdlib(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if slug not in sys.stdlib_module_names:
        return None
    return error(
        "flow_slug",
        f"{slug!r} is a standard-library module and would shadow it",
        "add a word to it, e.g. flow_slug=" + slug + "_flow",
    )


@reads("flow_slug")
def check_flow_slug_is_not_dependency(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    if slug not in DEPENDENCY_MODULES:
        return None
    return error(
        "flow_slug",
        f"{slug!r} is the name of a package the project depends on",
        "add a word to it, e.g. flow_slug=" + slug + "_flow",
    )


@reads("flow_slug")
def check_flow_slug_makes_sentry_slugs(answers: Answers) -> str | None:
    slug = text(answers, "flow_slug")
    sentry_slug = slug.replace("_", "-")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", slug) or (
        len(sentry_slug) <= 50 and SENTRY_MONITOR_SLUG.fullmatch(sentry_slug)
    ):
        return None  # check_flow_slug_is_identifier speaks for the first case
    return error(
        "flow_slug",
        f"{slug!r} names the Sentry project and its Crons monitor {sentry_slug!r}, and Sentry "
        "takes only up to 50 letters and digits with single dashes between them",
        "drop leading, trailing and doubled underscores and keep it to 50 characters, "
        "e.g. flow_slug=sales_report",
    )


def check_required(field: str) -> Rule:
    def rule(answers: Answers) -> str | None:
        if text(answers, field).strip():
            return None
        return error(field, "is empty", f"give {field} a value")

    rule.__name__ = f"check_{field}_is_not_empty"
    return reads(field)(rule)


def check_pattern(field: str, pattern: re.Pattern, expected: str, example: str) -> Rule:
    def rule(answers: Answers) -> str | None:
        value = text(answers, field)
        if pattern.fullmatch(value):
            return None
        return error(field, f"{value!r} is not {expected}", f"use e.g. {field}={example}")

    rule.__name__ = f"check_{field}_format"
    return reads(field)(rule)


def check_choice(field: str) -> Rule:
    """The answer is one cookiecutter.json offers: cookiecutter checks a command-line
    answer itself, but not one from a replay file."""

    def rule(answers: Answers) -> str | None:
        # `_choices`: what main() was given; else the template's own cookiecutter.json.
        offered = tuple((answers["_choices"] if "_choices" in answers else choices())[field])
        value = text(answers, field)
        if value in offered:
            return None
        return error(field, f"{value!r} is not a choice", "pick one of " + ", ".join(offered))

    rule.__name__ = f"check_{field}_choice"
    return reads(field)(rule)


def check_boolean(field: str) -> Rule:
    def rule(answers: Answers) -> str | None:
        # Cookiecutter turns yes/no answers into booleans; a replayed file may hold anything.
        value = answers.get(field, True)
        if isinstance(value, bool):
            return None
        return error(field, f"{value!r} is not true or false", f"use {field}=true or {field}=false")

    rule.__name__ = f"check_{field}_is_boolean"
    return reads(field)(rule)


def schedule_fields(answers: Answers) -> list[str] | None:
    """The schedule's fields, when it has the five that cron needs; None otherwise."""
    fields = text(answers, "schedule").split()
    return fields if len(fields) == 5 else None


@reads("schedule")
def check_schedule(answers: Answers) -> str | None:
    schedule = text(answers, "schedule").strip()
    if not schedule or schedule_fields(answers) is not None:
        return None
    return error(
        "schedule",
        f"{schedule!r} is not a five-field cron expression",
        "use e.g. schedule='0 6 * * *' (06:00 UTC daily), or leave it empty for no schedule",
    )


def check_schedule_field(index: int) -> Rule:
    name, low, high = CRON_FIELDS[index]
    words = {"month": " or JAN-DEC", "day-of-week": " (0 and 7 are Sunday) or SUN-SAT"}

    def rule(answers: Answers) -> str | None:
        fields = schedule_fields(answers)
        if fields is None:
            return None  # check_schedule says so
        try:
            cron_values(fields[index], name, low, high)
        except CronError as problem:
            return error(
                "schedule",
                str(problem),
                f"write the {name} as numbers from {low} to {high}{words.get(name, '')}, "
                "with *, a-b, */n, a-b/n and commas, e.g. schedule='0 6 * * 1-5'",
            )
        return None

    rule.__name__ = f"check_schedule_{name.replace('-', '_')}"
    return reads("schedule")(rule)


SCHEDULE_FIELD_RULES: tuple[Rule, ...] = tuple(
    check_schedule_field(index) for index in range(len(CRON_FIELDS))
)
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February 29 does come


@reads("schedule")
def check_schedule_can_run(answers: Answers) -> str | None:
    fields = schedule_fields(answers)
    if fields is None or any(rule(answers) for rule in SCHEDULE_FIELD_RULES):
        return None
    _, _, day, month, weekday = fields
    days, months, weekdays = (
        cron_values(field, *CRON_FIELDS[index])
        for index, field in ((2, day), (3, month), (4, weekday))
    )
    if {value % 7 for value in weekdays} != set(range(7)):
        return None  # cron also runs on the weekdays named
    if any(value <= DAYS_IN_MONTH[chosen - 1] for value in days for chosen in months):
        return None
    return error(
        "schedule",
        f"day-of-month {day!r} never comes in month {month!r}, so the flow would never run "
        "(Prefect fails to find a next run)",
        "pick days every chosen month has, e.g. schedule='0 6 28 2 *'",
    )


@reads("orchestrator", "run_config")
def check_orchestrator_has_a_scheduler(answers: Answers) -> str | None:
    run_config = text(answers, "run_config")
    if text(answers, "orchestrator") != "none" or run_config in SCHEDULED_WITHOUT_BACKEND:
        return None
    return error(
        "orchestrator",
        f"none (no Prefect backend) has no scheduler set up for run_config={run_config}",
        "use run_config=ecs (EventBridge Scheduler starts an ECS task), "
        "or orchestrator=prefect_server",
    )


@reads("orchestrator", "schedule")
def check_unorchestrated_flow_is_scheduled(answers: Answers) -> str | None:
    if text(answers, "orchestrator") != "none" or text(answers, "schedule").strip():
        return None
    return error(
        "schedule",
        "is empty, and with orchestrator=none nothing else would ever start the flow",
        "give a cron schedule, e.g. schedule='0 6 * * *', or use orchestrator=prefect_server",
    )


@reads("orchestrator", "sentry_crons")
def check_unorchestrated_flow_reports_to_crons(answers: Answers) -> str | None:
    if text(answers, "orchestrator") != "none" or answers.get("sentry_crons", True) is not False:
        return None
    return error(
        "sentry_crons",
        "is false, but with orchestrator=none Sentry Crons is the only thing that notices "
        "a run that never started",
        "use sentry_crons=true",
    )


@reads("orchestrator", "run_config", "schedule")
def check_schedule_converts_for_eventbridge(answers: Answers) -> str | None:
    schedule = text(answers, "schedule").strip()
    if text(answers, "orchestrator") != "none" or text(answers, "run_config") != "ecs":
        return None
    if not schedule:
        return None  # check_unorchestrated_flow_is_scheduled says so
    if any(rule(answers) for rule in (check_schedule, *SCHEDULE_FIELD_RULES)):
        return None  # not standard cron: those rules say why
    try:
        eventbridge_cron(schedule)
    except CronError as problem:
        return error(
            "schedule",
            f"{schedule!r} cannot run on EventBridge Scheduler: {problem}",
            "use minutes, hours, days, months and weekdays as numbers, names, ranges, lists "
            "and steps, with day-of-month or day-of-week left at *",
        )
    return None


@reads("orchestrator", "executor")
def check_dask_cluster_has_a_flow_run_image(answers: Answers) -> str | None:
    if text(answers, "orchestrator") != "none" or text(answers, "executor") != "dask_cluster":
        return None
    # Workers start from the flow run's image, which a Prefect agent names
    # (prefect.context.image); a scheduled task's copy per deploy has nothing that does.
    return error(
        "executor",
        "dask_cluster with orchestrator=none has no flow run image to start the cluster's "
        "workers from",
        "use executor=local_dask (threads in the flow's task), or orchestrator=prefect_server",
    )


FLOW_SLUG_RULES: tuple[Rule, ...] = (
    check_flow_slug_is_identifier,
    check_flow_slug_is_not_keyword,
    check_flow_slug_is_not_stdlib,
    check_flow_slug_is_not_dependency,
    check_flow_slug_makes_sentry_slugs,
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
    *SCHEDULE_FIELD_RULES,
    check_schedule_can_run,
    check_boolean("sentry_crons"),
    check_choice("python"),
    check_choice("orchestrator"),
    check_choice("run_config"),
    check_choice("executor"),
    check_pattern(
        "kubernetes_namespace",
        KUBERNETES_NAMESPACE,
        "a Kubernetes namespace name (at most 63 lowercase letters, digits and inner dashes)",
        "flows",
    ),
    check_orchestrator_has_a_scheduler,
    check_unorchestrated_flow_is_scheduled,
    check_unorchestrated_flow_reports_to_crons,
    check_schedule_converts_for_eventbridge,
    check_dask_cluster_has_a_flow_run_image,
)


def errors(answers: Answers, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Every rule's message for these answers; empty when all is well."""
    return [message for rule in rules if (message := rule(answers)) is not None]


def rules_decided_by(field: str, answered: Collection[str]) -> tuple[Rule, ...]:
    """The rules that read `field` and nothing unanswered: those checked once it is given.

    Cookiecutter asks in order; asked after each answer, every rule comes up exactly once.
    """
    known = {*answered, field}
    return tuple(rule for rule in RULES if field in rule.fields and set(rule.fields) <= known)


def errors_once_answered(answers: Answers, field: str) -> list[str]:
    """The messages of the rules `field`'s answer decides, given the answers so far."""
    return errors(answers, rules_decided_by(field, answers))


def main(answers: Answers) -> int:
    problems = errors(answers)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # Cookiecutter renders the answers into this raw string; tojson escapes every
    # quote, so no answer can end the string early. `template_choices` is choices() of
    # cookiecutter.json, read by prefect_flow_filters where the template is.
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    sys.exit(main({**answers, "_choices": json.loads(r"""{{ template_choices | tojson }}""")}))
