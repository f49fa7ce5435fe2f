"""Jinja filters for this template, loaded through `_extensions` in cookiecutter.json.

Cookiecutter renders each answer's `__check_<answer>` variable right after asking it
(cookiecutter.json puts one after each answer): `checked` runs the hook's rules that
answer decides, so a bad answer stops the prompts at once, before the project folder
is named, with only the hook's `ERROR:` lines (the CLI prints a FailedHookException
raised here as its message alone). The other filters quote a user's free text for the
file formats that have no `tojson`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).parent
HOOK = TEMPLATE_DIR / "hooks" / "pre_gen_project.py"


def read_template_version() -> str:
    """The template's version: the one in its pyproject.toml, bumped with each release."""
    pyproject = (TEMPLATE_DIR / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE).group(1)


@functools.cache
def _load_hook():
    spec = importlib.util.spec_from_file_location("pre_gen_project", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checked(answers: Mapping[str, object], field: str) -> str:
    """Nothing, if the answers so far pass the rules `field` decides; else stop the bake
    with the hook's messages."""
    problems = _load_hook().errors_once_answered(answers, field)
    if problems:
        raise FailedHookException("\n".join(problems))
    return ""


def eventbridge_schedule(cron: str) -> str:
    """The schedule answer as EventBridge Scheduler's expression (the hook checked it)."""
    return _load_hook().eventbridge_cron(cron.strip())


def python_string(value: str) -> str:
    """A Python string literal, quoted the way `ruff format` leaves it untouched.

    Double quotes, unless the text holds more double than single quotes.
    """
    body = json.dumps(value, ensure_ascii=False)[1:-1]
    if value.count('"') > value.count("'"):
        # In JSON every '"' is escaped as '\\"': unescape those, escape "'" instead.
        return "'" + body.replace('\\"', '"').replace("'", "\\'") + "'"
    return f'"{body}"'


def hcl_string(value: str) -> str:
    """A quoted HCL string: JSON escapes, plus `$${` and `%%{` so nothing interpolates."""
    return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def dockerfile_string(value: str) -> str:
    """A double-quoted Dockerfile word: JSON escapes, plus `\\$` so nothing expands."""
    return json.dumps(value, ensure_ascii=False).replace("$", "\\$")


def verbatim(name: str) -> str:
    """The text of templates/<name>, not rendered: its GitHub `${{ }}` need no escaping.

    It comes without its final newline, to stand on the line of the `{{ }}` that inserts it.
    """
    return (TEMPLATE_DIR / "templates" / name).read_text(encoding="utf-8").rstrip("\n")


def recorded_answers(context: dict) -> dict:
    """The answers to keep in the baked project, with the template and its version.

    No machine paths and no derived names, so the record can be handed back to
    cookiecutter or `cruft link` as extra context (they ignore the `_template` keys).
    """
    answers = {key: value for key, value in context.items() if not key.startswith("_")}
    return {
        **answers,
        "_template": context.get("_template"),
        "_template_version": read_template_version(),
    }


class TemplateFilters(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        # Keep non-ASCII letters readable in generated files; JSON escapes stay valid.
        environment.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
        environment.globals["template_version"] = read_template_version()
        # The choice lists of cookiecutter.json, for the hook's rendered copy to check with.
        environment.globals["template_choices"] = _load_hook().choices()
        environment.filters.update(
            checked=checked,
            eventbridge_schedule=eventbridge_schedule,
            hcl_string=hcl_string,
            python_string=python_string,
            dockerfile_string=dockerfile_string,
            recorded_answers=recorded_answers,
            verbatim=verbatim,
        )
