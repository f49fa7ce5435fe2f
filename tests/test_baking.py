"""The template's bake helper itself: what a baked project's commands run with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import baking


def test_the_clean_environment_has_none_of_the_template_virtualenv_nor_monitoring_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venv_bin = str(baking.TEMPLATE_DIR / ".venv" / "bin")
    monkeypatch.setenv("PATH", os.pathsep.join([venv_bin, "/usr/bin", "/bin"]))
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "SENTRY_DSN"):
        monkeypatch.setenv(name, "from the template's shell")
    monkeypatch.setenv("PREFECT__BACKEND", "server")
    monkeypatch.setenv("HOME_OF_TEST", "kept")

    env = baking.clean_environment(UV_PYTHON="3.13")

    assert env["PATH"].split(os.pathsep) == ["/usr/bin", "/bin"]
    assert not {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "SENTRY_DSN"} & set(env)
    assert "PREFECT__BACKEND" not in env
    assert env["HOME_OF_TEST"] == "kept"
    assert env["UV_PYTHON"] == "3.13"


def test_a_baked_project_lists_its_own_files_and_runs_commands_in_the_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://key@sentry.invalid/1")
    project = baking.bake({"flow_slug": "orders_nightly"}, tmp_path / "out")

    assert project.path == tmp_path / "out" / "orders_nightly"
    assert project.context["flow_slug"] == "orders_nightly"
    assert (project.path / ".git").is_dir()  # the post-gen hook's, not the template's
    assert "README.md" in project.files()
    assert not [name for name in project.files() if name.startswith(".git/")]
    assert project.read("README.md").startswith("# Daily Sales Report")
    ran = project.run("sh", "-c", 'pwd; echo "dsn=${SENTRY_DSN-unset} x=$X"', env={"X": "1"})
    assert ran.stdout.splitlines() == [str(project.path), "dsn=unset x=1"]
    # Cookiecutter's record stays in the bake's folder, not the test's (nor the home folder).
    assert list((tmp_path / "out" / "replay").glob("*.json"))
    assert not (tmp_path / "replay").exists()
