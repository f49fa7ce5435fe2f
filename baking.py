"""Bake this template: the one way its tests, `scripts/lock.py` and the benchmarks do it.

`bake(answers, folder)` bakes with cookiecutter's API, as `--no-input` would, and writes
nothing to the home folder: cookiecutter's config and replay files go in `folder`. The
`BakedProject` it returns lists and reads its files, and runs commands in it the way a
user's shell would: without this template's own virtualenv (`clean_environment`).
The template's development environment installs this folder (editable), so
`import baking` works from the tests, the scripts and the benchmarks alike.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cookiecutter.main import cookiecutter
from cookiecutter.replay import load as load_replay

from hooks.pre_gen_project import choices
from prefect_flow_filters import read_template_version as template_version

TEMPLATE_DIR = Path(__file__).resolve().parent
PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.flow_slug}}"
# What tools write in a baked project: never part of what the template bakes.
TOOL_FOLDERS = frozenset({".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__"})
# What ties a child to the template's own virtualenv, or stops it keeping bytecode.
DROPPED_VARIABLES = frozenset(
    {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}
)

__all__ = [
    "PROJECT_TEMPLATE",
    "TEMPLATE_DIR",
    "TOOL_FOLDERS",
    "BakedProject",
    "bake",
    "choices",
    "clean_environment",
    "cookiecutter_config",
    "python_interpreter",
    "template_version",
]


def cookiecutter_config(folder: Path) -> Path:
    """A cookiecutter config that keeps its replay and clone folders inside `folder`:
    point COOKIECUTTER_CONFIG at it and cookiecutter leaves the home folder alone."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "cookiecutter-config.yaml"
    config.write_text(
        f"replay_dir: {folder / 'replay'}\ncookiecutters_dir: {folder / 'cookiecutters'}\n"
    )
    return config


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment minus what ties a child to the template's virtualenv,
    plus `extra`: what a baked project's commands run with.

    The SENTRY_* and PREFECT__* variables go too: a child gets exactly the ones it is
    given, and a developer's own Sentry DSN never receives a test's events. So does
    PYTHONDONTWRITEBYTECODE: a baked project's checks start a dozen processes that import
    Prefect, and each would compile it again (docs/design.md, "The template's checks of a
    baked project").
    """
    venv = str(TEMPLATE_DIR / ".venv")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in DROPPED_VARIABLES and not key.startswith(("SENTRY_", "PREFECT__"))
    }
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if not entry.startswith(venv)
    )
    if versions := _pyenv_versions(env["PATH"]):
        # A baked project pins its Python in .python-version, which uv looks for as
        # `python3.13` on PATH; pyenv's shims answer only for the versions listed here.
        env["PYENV_VERSION"] = versions
    env.update(extra)
    return env


@functools.cache
def _pyenv_versions(path: str) -> str:
    """Every version of the pyenv on `path`, the active one first (it stays `python3`);
    "" without pyenv."""
    pyenv_command = shutil.which("pyenv", path=path)
    if not pyenv_command:
        return ""

    def pyenv(*args: str) -> list[str]:
        # From the template's folder, with no version forced: pyenv's own active version,
        # not a baked project's .python-version or an earlier list of ours.
        env = {key: value for key, value in os.environ.items() if key != "PYENV_VERSION"}
        listed = subprocess.run(
            [pyenv_command, *args], cwd=TEMPLATE_DIR, env=env, capture_output=True, text=True
        ).stdout
        return listed.replace(":", " ").split()

    active = pyenv("version-name")[:1]
    return ":".join(
        active + [version for version in pyenv("versions", "--bare") if version not in active]
    )


def python_interpreter(version: str) -> str:
    """The interpreter uv finds for Python `version`, with every pyenv version visible to
    it (`clean_environment`). uv cannot download one here: a missing version raises
    LookupError."""
    found = subprocess.run(
        ["uv", "python", "find", "--no-project", version],
        env=clean_environment(),
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise LookupError(f"no Python {version} here: {found.stderr}")
    return found.stdout.strip()


@dataclass(frozen=True)
class BakedProject:
    """A project baked from the template, in the spirit of cookiecutter-uv's tests."""

    path: Path
    # Every answer and derived name the bake rendered with, when baked by `bake`.
    context: Mapping[str, object] = field(default_factory=dict)

    def files(self) -> set[str]:
        """The baked files, relative to the project, without what git and tools wrote."""
        return {
            path.relative_to(self.path).as_posix()
            for path in self.path.rglob("*")
            if path.is_file() and not TOOL_FOLDERS & set(path.relative_to(self.path).parts)
        }

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text(encoding="utf-8")

    def contents(self) -> dict[str, bytes]:
        """Every baked file's bytes, by relative path: what two bakes compare."""
        return {relative: (self.path / relative).read_bytes() for relative in self.files()}

    def run(
        self, *command: str, env: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """`command` in the project, with the clean environment plus `env`; output kept."""
        return subprocess.run(
            command,
            cwd=self.path,
            env=clean_environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def make_test(self, python: str) -> subprocess.CompletedProcess:
        """The baked README's `make test`, in a fresh .venv on the interpreter `python`."""
        return self.run("make", "test", env={"UV_PYTHON": python})


def bake(
    answers: Mapping[str, object],
    output_dir: Path,
    *,
    template: Path = TEMPLATE_DIR,
    overwrite: bool = False,
) -> BakedProject:
    """Bake `template` into `output_dir` with `answers` (the rest default).

    Raises what cookiecutter raises: FailedHookException when the hook refuses an answer.
    """
    config = cookiecutter_config(output_dir)
    previous = os.environ.get("COOKIECUTTER_CONFIG")
    os.environ["COOKIECUTTER_CONFIG"] = str(config)
    try:
        project = cookiecutter(
            str(template),
            no_input=True,
            extra_context=dict(answers),
            output_dir=str(output_dir),
            overwrite_if_exists=overwrite,
        )
    finally:
        if previous is None:
            os.environ.pop("COOKIECUTTER_CONFIG", None)
        else:
            os.environ["COOKIECUTTER_CONFIG"] = previous
    # Cookiecutter's replay record of this bake: the answers after defaults and rendering.
    replay = load_replay(str(output_dir / "replay"), Path(template).resolve().name)
    return BakedProject(Path(project), replay["cookiecutter"])
