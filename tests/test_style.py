"""The template's own Python is held to the style it asks of baked projects."""

from __future__ import annotations

import subprocess

from tests.conftest import TEMPLATE_DIR


def test_ruff_finds_nothing_to_fix() -> None:
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        completed = subprocess.run(command, cwd=TEMPLATE_DIR, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr
