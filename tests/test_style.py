"""The template's own Python is held to the style it asks of baked projects."""

from __future__ import annotations

import subprocess

from tests.conftest import TEMPLATE_DIR

# Named one by one: ruff would try to read the baked project's pyproject.toml, which is
# a Jinja template and no TOML until it is baked.
TEMPLATE_CODE = ["baking.py", "hooks", "local_extensions.py", "scripts", "tests", "benchmarks"]


def test_ruff_finds_nothing_to_fix() -> None:
    for command in (
        ["ruff", "check", *TEMPLATE_CODE],
        ["ruff", "format", "--check", *TEMPLATE_CODE],
    ):
        completed = subprocess.run(command, cwd=TEMPLATE_DIR, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr
