"""The template's own Python is held to the style it asks of baked projects."""

from __future__ import annotations

import json
import re
import subprocess

from tests.conftest import TEMPLATE_DIR

# Named one by one: ruff would try to read the baked project's pyproject.toml, which is
# a Jinja template and no TOML until it is baked.
TEMPLATE_CODE = [
    "baking.py",
    "hooks",
    "prefect_flow_filters.py",
    "scripts",
    "tests",
    "benchmarks",
    "mutation",
]


def test_ruff_finds_nothing_to_fix() -> None:
    for command in (
        ["ruff", "check", *TEMPLATE_CODE],
        ["ruff", "format", "--check", *TEMPLATE_CODE],
    ):
        completed = subprocess.run(command, cwd=TEMPLATE_DIR, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_readme_describes_every_answer() -> None:
    """The answers table of README.md has a row for each answer cookiecutter asks."""
    answers = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    asked = {name for name in answers if not name.startswith("_")}
    readme = (TEMPLATE_DIR / "README.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", readme, flags=re.MULTILINE))

    assert asked <= rows, f"README.md's answers table lacks: {sorted(asked - rows)}"
