"""The baked README's first commands on a machine with pyenv, with this machine's real pyenv.

Each test builds a pyenv of its own (`PYENV_ROOT`, a temporary `HOME`): the Python
3.13 this machine has, seen through a link, and an "older" Python that the team's
developer once ran `pip install uv` in, as the template's README used to say. Its `uv`
shim runs only where that Python is selected; a baked folder's `.python-version`
selects another. Nothing of this machine's own pyenv or home folder is changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import baking
from tests.conftest import Bake

UV_VERSION = subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.split()[1]


@dataclass(frozen=True)
class PyenvMachine:
    """A developer's machine: pyenv's shims first on PATH, then ~/.local/bin."""

    root: Path
    home: Path
    pip_cache: Path

    def env(self) -> dict[str, str]:
        pyenv_bin = Path(shutil.which("pyenv")).parent
        keep = {"LANG", "TERM", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_INDEX_URL"}
        return {
            **{key: value for key, value in os.environ.items() if key in keep},
            "HOME": str(self.home),
            "PYENV_ROOT": str(self.root),
            "PATH": os.pathsep.join(
                [str(self.root / "shims"), str(self.home / ".local/bin"), str(pyenv_bin)]
                + ["/usr/local/bin", "/usr/bin", "/bin"]
            ),
            # Where uv and pip keep what they download: this machine's, so nothing is
            # fetched again; a developer's would be under the home folder.
            "UV_CACHE_DIR": baking_uv_cache(),
            "PIP_CACHE_DIR": str(self.pip_cache),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }

    def run(self, *command: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, cwd=cwd, env={**self.env(), **extra}, capture_output=True, text=True
        )


def baking_uv_cache() -> str:
    return subprocess.run(
        ["uv", "cache", "dir"], env=baking.clean_environment(), capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def machine(tmp_path: Path, request: pytest.FixtureRequest) -> PyenvMachine:
    """A pyenv whose global Python ("older", a copy of 3.12 here) has uv installed by pip,
    and which has 3.13 too, the Python of a default bake."""
    root, home = tmp_path / "pyenv", tmp_path / "home"
    (root / "versions").mkdir(parents=True)
    home.mkdir()
    machine = PyenvMachine(root, home, request.config.cache.mkdir("pip"))
    for version, target in (("3.13", "newer"), ("3.12", "older")):
        python = Path(baking.python_interpreter(version))
        if target == "newer":
            (root / "versions" / python.parent.parent.name).symlink_to(python.parent.parent)
        else:
            created = subprocess.run([str(python), "-m", "venv", str(root / "versions/older")])
            assert created.returncode == 0
    (root / "version").write_text("older\n")
    for command in (
        ["pyenv", "rehash"],
        ["python3", "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"],
        ["pyenv", "rehash"],  # what pyenv does after a `pip install` of its own shim
    ):
        completed = machine.run(*command, cwd=home)
        assert completed.returncode == 0, completed.stderr
    return machine


def test_make_names_a_pyenv_shim_that_cannot_run_uv(bake: Bake, machine: PyenvMachine) -> None:
    project = bake().project_path
    assert machine.run("uv", "--version", cwd=machine.home).returncode == 0  # where it was put

    shim = machine.run("uv", "--version", cwd=project)
    installed = machine.run("make", "install", cwd=project)

    assert shim.returncode != 0 and "pyenv: uv: command not found" in shim.stderr
    assert installed.returncode != 0
    [line] = [line for line in installed.stderr.splitlines() if line.startswith("ERROR:")]
    assert f"{machine.root}/shims/uv is pyenv's shim" in line
    assert line.endswith(
        "- install uv for your user, not into one Python: pipx install uv (README, Quickstart)"
    )
    assert not (project / ".venv").exists()


def test_make_says_when_uv_is_missing(bake: Bake, tmp_path: Path) -> None:
    project = bake().project_path

    installed = subprocess.run(
        ["make", "install"],
        cwd=project,
        env={**baking.clean_environment(), "PATH": "/usr/bin:/bin", "UV": "uv"},
        capture_output=True,
        text=True,
    )

    assert installed.returncode != 0
    assert "ERROR: uv is missing - install uv for your user" in installed.stderr
    assert not (project / ".venv").exists()


@pytest.mark.slow
def test_the_readme_way_to_install_uv_works_in_the_baked_folder_under_pyenv(
    bake: Bake, machine: PyenvMachine, tmp_path: Path
) -> None:
    """The baked README's fix, word for word where it names commands: remove the uv that
    pip put into a pyenv Python, then `pipx install uv`; `make install` then works."""
    project = bake().project_path
    readme = (project / "README.md").read_text()
    assert "pipx install uv" in readme
    assert "python -m pip uninstall -y uv && pyenv rehash" in readme
    # pipx as a developer has it (apt, brew or pip --user): here in a virtualenv of its own.
    pipx = tmp_path / "pipx"
    made = subprocess.run([baking.python_interpreter("3.12"), "-m", "venv", str(pipx)])
    assert made.returncode == 0
    got_pipx = machine.run(str(pipx / "bin/pip"), "install", "-q", "pipx==1.8.0", cwd=machine.home)
    assert got_pipx.returncode == 0, got_pipx.stderr

    removed = machine.run(
        "sh",
        "-c",
        "python -m pip uninstall -y uv && pyenv rehash",
        cwd=machine.home,
        PYENV_VERSION="older",
    )
    installed_uv = machine.run(
        str(pipx / "bin/pipx"), "install", f"uv=={UV_VERSION}", cwd=machine.home
    )
    found = machine.run("uv", "--version", cwd=project)
    installed = machine.run("make", "install", cwd=project)

    assert removed.returncode == 0, removed.stderr
    assert installed_uv.returncode == 0, installed_uv.stderr
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(f"uv {UV_VERSION}")
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    venv_python = project / ".venv/bin/python"
    version = subprocess.run(
        [str(venv_python), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == "(3, 13)"
