"""Baking projects with the cookiecutter CLI, and installing them with uv.

Everything is written under one scratch folder; cookiecutter reads and writes nothing
in the home folder (COOKIECUTTER_CONFIG points at a config inside the scratch folder).
The config and the CLI's environment come from the template's bake helper, `baking`;
the CLI itself is timed, so the benchmarks bake through it rather than `baking.bake`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import baking

from .harness import Process, progress, run_process

DEFAULT_PACKAGE = "daily_sales_report"  # the package of a bake with every default answer
DASK_CLUSTER = {"executor": "dask_cluster"}  # the answers of parts 8 and 9

# The largest answer combination: the choices that write the most files, and every
# free-text answer long (500 characters, the bounded ones at their limit). The hooks set
# no limit on flow_slug and flow_name, but the baked project fails its own lint (lines
# over 100 characters) from about 35 and 87 characters: they are 32 and 80 here.
LONG_TEXT = ("A long answer, with words and punctuation; " * 12)[:500]
LONG_SLUG = "a_long_flow_package_name_xxxxxxx"
LONG_FLOW_NAME = LONG_TEXT[:80]
LARGEST = {
    "project_name": LONG_TEXT,
    "flow_slug": LONG_SLUG,
    "flow_name": LONG_FLOW_NAME,
    "description": LONG_TEXT,
    "team": LONG_TEXT,
    "sentry_organization": "o" * 50,
    "sentry_team": "t" * 50,
    "slack_channel": "#" + "c" * 80,
    "aws_region": "ap-southeast-1",
    "environment": "e" * 32,
    "prefect_project": LONG_TEXT,
    "schedule": "0,15,30,45 6-18 1-31 1-12 MON-FRI",
    "python": "3.13",
    "run_config": "ecs",
    "executor": "dask_cluster",
}


class Baker:
    """Bakes into numbered folders under `scratch` with the cookiecutter CLI."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.config = baking.cookiecutter_config(scratch)
        self.cookiecutter = shutil.which("cookiecutter", path=str(Path(sys.executable).parent))
        if self.cookiecutter is None:
            raise SystemExit("cookiecutter is missing: run this with `uv run` from the template")
        self._count = 0

    def environment(self) -> dict[str, str]:
        """The CLI's environment: Python keeps the bytecode of what it imports, as it does
        unless told not to. This machine sets PYTHONDONTWRITEBYTECODE=1, under which every
        run would compile cookiecutter and Jinja again."""
        env = baking.clean_environment(COOKIECUTTER_CONFIG=str(self.config))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def bake(self, template: Path, answers: dict[str, str]) -> tuple[Process, Path]:
        """Bake `template` with `answers` into a new folder; the process and the project."""
        self._count += 1
        out = self.scratch / f"bake-{self._count:04d}"
        out.mkdir()
        command = [self.cookiecutter, "--no-input", "-o", str(out), str(template)]
        command += [f"{key}={value}" for key, value in answers.items()]
        with (out.parent / f"bake-{self._count:04d}.log").open("wb") as log:
            process = run_process(command, env=self.environment(), log=log)
        if process.returncode != 0:
            raise SystemExit(f"baking {template} failed: see {log.name}")
        [project] = [path for path in out.iterdir() if path.is_dir()]
        return process, project


def make_floor_template(folder: Path) -> Path:
    """The smallest template there is: one answer, one folder, one file."""
    template = folder / "floor-template"
    project = template / "{{cookiecutter.project_slug}}"
    project.mkdir(parents=True)
    (template / "cookiecutter.json").write_text(json.dumps({"project_slug": "floor"}))
    (project / "README.md").write_text("# {{ cookiecutter.project_slug }}\n")
    return template


def default_python(template: Path) -> str:
    """The interpreter uv finds for `template`'s default Python answer (baking's), or
    the run stops saying so."""
    version = json.loads((template / "cookiecutter.json").read_text())["python"][0]
    try:
        return baking.python_interpreter(version)
    except LookupError as error:
        raise SystemExit(str(error)) from None


def sync(project: Path, python: str) -> Path:
    """`uv sync` the baked project, compiled to bytecode as pip compiles the flow's image;
    the Python of its new .venv."""
    env = baking.clean_environment(UV_PYTHON=python)
    command = ["uv", "sync", "--compile-bytecode"]
    completed = subprocess.run(command, cwd=project, env=env, capture_output=True)
    if completed.returncode != 0:
        raise SystemExit(f"uv sync failed in {project}:\n{completed.stderr.decode()[-3000:]}")
    return project / ".venv" / "bin" / "python"


def bake_and_sync(
    baker: Baker, template: Path, answers: dict[str, str], python: str
) -> tuple[Path, Path]:
    """`template` baked with `answers` and installed in its own .venv on `python`: the
    project and the Python of its .venv."""
    progress(f"baking {template} with {answers or 'the default answers'}, syncing it")
    _, project = baker.bake(template, answers)
    return project, sync(project, python)


@contextmanager
def standalone_project(
    prefix: str, answers: dict[str, str], keep: bool = False
) -> Iterator[tuple[Path, Path, Path]]:
    """For a module run alone: a scratch folder, and this template baked there with
    `answers` and synced on its default Python; the folder goes at the end unless `keep`."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        template = baking.TEMPLATE_DIR
        project, python = bake_and_sync(Baker(scratch), template, answers, default_python(template))
        yield scratch, project, python
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
