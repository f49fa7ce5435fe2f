"""Fixtures for baking the template: `bake(**answers)` and what checks a baked project."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_cookies.plugin import Cookies, Result

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
# The checks of a baked project run in that project's environment (tests/test_bake.py).
collect_ignore = ["baked"]

Bake = Callable[..., Result]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cookiecutter reads and writes nothing in the home folder during tests."""
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(
        f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'cookiecutters'}\n"
    )
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))
    yield


@pytest.fixture
def bake(cookies: Cookies) -> Bake:
    """Bake the template with these answers (the rest default), as `--no-input` would."""

    def bake(**answers: str) -> Result:
        return cookies.bake(extra_context=answers, template=str(TEMPLATE_DIR))

    return bake


@pytest.fixture
def baked_files(cookies: Cookies) -> Callable[[], list[Path]]:
    """Every file and folder written under the bakes' output folder so far."""
    root = Path(cookies._output_factory.__self__)  # the folder pytest-cookies bakes into

    def written() -> list[Path]:
        return [path for path in root.rglob("*") if not path.name.startswith("bake")]

    return written


def project_files(project: Path) -> set[str]:
    """Paths of the baked files, relative to the project, without git's and tool caches."""
    ignored = {".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__"}
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and not ignored & set(path.relative_to(project).parts)
    }


def environment_without_venv() -> dict[str, str]:
    """This process's environment, minus what would tie a child to our virtualenv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    env["PATH"] = os.pathsep.join(
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if not entry.startswith(str(TEMPLATE_DIR / ".venv"))
    )
    return env
