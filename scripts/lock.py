"""Re-lock the dependencies a baked project ships with: `uv run python scripts/lock.py`.

A baked project comes with a `uv.lock`, so that its first `make test` installs the set
of packages this template was tested with, without resolving them again. There is one
lock per `python` choice (the pins differ), rendered from the filename
conditionals in `{{cookiecutter.flow_slug}}/`. Only the project's own name varies
between answers: it (and its length, in the markers of the extras) is the one template
variable in a lock.

Run this after changing the baked `pyproject.toml`; `tests/test_lock.py` fails until
you do. It bakes the template with each Python version, runs `uv lock` in the baked
project, which keeps every pin its requirements still allow (`--upgrade`: the newest
versions instead), and writes the lock back into the template.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tomllib
from pathlib import Path

import baking
from baking import PROJECT_TEMPLATE, TEMPLATE_DIR

NAME_VARIABLE = "{{ cookiecutter.__distribution }}"
LENGTH_VARIABLE = "{{ cookiecutter.__distribution | length }}"


def python_versions() -> tuple[str, ...]:
    """The `python` choices in cookiecutter.json."""
    return baking.choices()["python"]


def template_lock(python: str) -> Path:
    """The template file that a bake with `python` renders into `uv.lock`."""
    condition = f"cookiecutter.python == '{python}'"
    return PROJECT_TEMPLATE / f"{{% if {condition} %}}uv.lock{{% endif %}}"


def to_template(lock: str, distribution: str) -> str:
    """`lock` with the baked project's name as a template variable.

    uv writes the name once as the project's, and again where the optional dependencies
    are locked apart (`[tool.uv] conflicts`): in the conflict sets, and in markers that
    name each extra `extra-<length of the name>-<name>-<extra>`.
    """
    line = f'name = "{distribution}"\n'
    if lock.count(line) != 1:
        raise ValueError(f"expected the line {line.strip()!r} once in the lock")
    lock = lock.replace(line, f'name = "{NAME_VARIABLE}"\n')
    lock = lock.replace(f'package = "{distribution}"', f'package = "{NAME_VARIABLE}"')
    return lock.replace(
        f"extra-{len(distribution)}-{distribution}-", f"extra-{LENGTH_VARIABLE}-{NAME_VARIABLE}-"
    )


def relock(python: str, upgrade: bool, scratch: Path) -> bool:
    """Lock the project baked with `python`; whether the template's lock changed."""
    project = baking.bake({"python": python}, scratch / python)
    locking = project.run("uv", "lock", *(["--upgrade"] if upgrade else []))
    if locking.returncode != 0:
        raise SystemExit(f"uv lock failed in {project.path}:\n{locking.stderr}")
    distribution = tomllib.loads(project.read("pyproject.toml"))["project"]["name"]
    locked = to_template(project.read("uv.lock"), distribution)
    target = template_lock(python)
    if target.exists() and target.read_text() == locked:
        return False
    target.write_text(locked)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upgrade", action="store_true", help="lock the newest versions the pins allow"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        for version in python_versions():
            changed = relock(version, args.upgrade, Path(scratch))
            name = template_lock(version).relative_to(TEMPLATE_DIR)
            print(f"{name}: {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
