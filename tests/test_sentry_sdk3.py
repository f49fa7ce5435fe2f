"""The monitoring of a baked project on sentry-sdk 3, the next major release of the SDK.

The baked lock pins sentry-sdk 2.76, which tests/test_bake.py checks with every answer
combination. Here the default bake gets the newest 3.x pre-release in its own .venv
instead, and passes its own tests and the template's monitoring checks
(tests/baked/test_monitoring*.py) there. The other checks of tests/baked test deployment
files and schedules, which never import the SDK.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import baking
from baking import BakedProject
from tests.conftest import Bake
from tests.test_bake import BAKED_CHECKS, checks_run

# The newest sentry-sdk 3 on PyPI (a pre-release, 2026-10-27): move it on as 3.x moves.
SENTRY_SDK_3 = "3.0.0b2"
MONITORING_CHECKS = sorted(BAKED_CHECKS.glob("test_monitoring*.py"))


@pytest.mark.slow
def test_monitoring_keeps_its_promises_on_sentry_sdk_3(bake: Bake, tmp_path: Path) -> None:
    result = bake()
    project = BakedProject(result.project_path, result.context)
    python = baking.python_interpreter(result.context["python"])
    venv_python = str(project.path / ".venv/bin/python")

    installed = project.run("make", "install", env={"UV_PYTHON": python})
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    upgraded = project.run(
        "uv", "pip", "install", "--python", venv_python, f"sentry-sdk=={SENTRY_SDK_3}"
    )
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]

    # `uv run` and `uv sync` (the smoke test's `make check-monitoring` runs `make install`)
    # would put the locked sentry-sdk 2 back: uv may not sync, and make's uv skips `sync`.
    uv_without_sync = tmp_path / "uv"
    uv_without_sync.write_text('#!/bin/sh\n[ "$1" = sync ] && exit 0\nexec uv "$@"\n')
    uv_without_sync.chmod(0o755)
    no_sync = {"UV_PYTHON": python, "UV_NO_SYNC": "1", "MAKEFLAGS": f"UV={uv_without_sync}"}
    own = project.run(venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", env=no_sync)
    assert own.returncode == 0, own.stdout[-4000:] + own.stderr[-3000:]

    report = tmp_path / "checks.xml"
    checks = project.run(
        venv_python,
        *("-m", "pytest", "-c", str(BAKED_CHECKS / "pytest.ini"), "--rootdir", str(BAKED_CHECKS)),
        *("--numprocesses=2", "--dist=worksteal", f"--junitxml={report}"),
        *map(str, MONITORING_CHECKS),
        env={**no_sync, "BAKED_PROJECT": str(project.path)},
    )
    assert checks.returncode == 0, checks.stdout[-6000:] + checks.stderr[-3000:]
    assert checks_run(report) == {path.stem for path in MONITORING_CHECKS}

    version = project.run(venv_python, "-c", "import sentry_sdk; print(sentry_sdk.VERSION)")
    assert version.stdout.strip() == SENTRY_SDK_3, version.stderr
