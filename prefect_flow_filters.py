"""Jinja filters for this template, loaded through `_extensions` in cookiecutter.json.

Cookiecutter renders each answer's `__check_<answer>` variable right after asking it
(cookiecutter.json puts one after each answer): `checked` runs the hook's rules that
answer decides, so a bad answer stops the prompts at once, before the project folder
is named, with only the hook's `ERROR:` lines (the CLI prints a FailedHookException
raised here as its message alone). The other filters quote a user's free text for the
file formats that have no `tojson`.

Template updates render two releases of this template in one process (cruft renders
the release a repository was baked from, then the newest, from one clone). Python
would hand the second render the first release's module from `sys.modules`, and a
stale `__pycache__` copy when a release changes this file by a few bytes within the
same second. So this module's name is its own (no earlier release had it; theirs was
`local_extensions`, which stays cached after an old release renders), and it forgets
itself as soon as cookiecutter's Jinja environment has taken its filters
(`TemplateFilters.__init__`): off `sys.modules`, its bytecode deleted, the hook read
from source. Whatever a later release changes here, its render imports its own copy.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import types
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


def read_template_commit() -> str | None:
    """The git commit of the template being rendered (its HEAD: cruft checks out the
    commit it renders; a bake from a working copy gets the commit it started from), or
    None outside a git checkout of the template. `cruft link --checkout` takes it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=TEMPLATE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    top, commit = found
    return commit if Path(top).resolve() == TEMPLATE_DIR.resolve() else None


@functools.cache
def _load_hook() -> types.ModuleType:
    """The hook's rules, compiled from its source: never a cached copy of another
    release's hook (no `sys.modules` entry, no bytecode file)."""
    module = types.ModuleType("pre_gen_project")
    module.__file__ = str(HOOK)
    exec(compile(HOOK.read_text(encoding="utf-8"), HOOK, "exec"), module.__dict__)
    return module


def _forget_this_module() -> None:
    """Leave nothing of this release behind for the next template rendered in this
    process: it imports its own copy of this module, from source."""
    if sys.modules.get(__name__) is _THIS_MODULE:
        del sys.modules[__name__]
    if cached := globals().get("__cached__"):
        with contextlib.suppress(OSError):  # a read-only template wrote no bytecode
            Path(cached).unlink(missing_ok=True)


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
        "_template_commit": read_template_commit(),
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
        _forget_this_module()


_THIS_MODULE = sys.modules.get(__name__)
