"""Fixtures for baking the template: `bake(**answers)` and what checks a baked project.

Every bake goes through the template's one bake helper, `baking` (at the template root).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_cookies.plugin import Result

import baking
from baking import TEMPLATE_DIR, BakedProject

__all__ = ["TEMPLATE_DIR", "Bake", "project_files"]
# The checks of a baked project run in that project's environment (tests/test_bake.py).
collect_ignore = ["baked"]

Bake = Callable[..., Result]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cookiecutter (and cruft) read and write nothing in the home folder during tests."""
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(baking.cookiecutter_config(tmp_path)))
    yield


@pytest.fixture
def bakes_folder(tmp_path: Path) -> Path:
    """Where this test's bakes go: one numbered folder each."""
    return tmp_path / "bakes"


@pytest.fixture
def bake(bakes_folder: Path) -> Bake:
    """Bake the template with these answers (the rest default), as `--no-input` would.

    Returns pytest-cookies' Result: `exception` (None when the bake succeeded),
    `exit_code`, `project_path` and `context` (the answers the bake rendered with).
    """
    count = 0

    def bake(**answers: object) -> Result:
        nonlocal count
        count += 1
        try:
            project = baking.bake(answers, bakes_folder / f"bake{count:02d}")
        except SystemExit as error:  # as pytest-cookies does
            return Result(exception=error if error.code else None, exit_code=error.code)
        except Exception as error:
            return Result(exception=error, exit_code=-1)
        return Result(project_dir=str(project.path), context=dict(project.context))

    return bake


@pytest.fixture
def baked_files(bakes_folder: Path) -> Callable[[], list[Path]]:
    """Every file and folder a bake wrote so far, but cookiecutter's own config and replay."""
    own = {"cookiecutter-config.yaml", "replay", "cookiecutters"}

    def written() -> list[Path]:
        return [path for path in bakes_folder.glob("bake*/*") if path.name not in own]

    return written


def project_files(project: Path) -> set[str]:
    """Paths of the baked files, relative to the project, without git's and tool caches."""
    return BakedProject(project).files()
