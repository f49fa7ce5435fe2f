"""The uv.lock a baked project ships with: current, and the project's own.

When a test here fails after a change to the baked pyproject.toml, re-lock:
`uv run python scripts/lock.py`.
"""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from baking import clean_environment
from scripts import lock
from tests.conftest import Bake


@pytest.mark.parametrize("python", lock.python_versions())
def test_the_shipped_lock_matches_the_baked_pyproject(bake: Bake, python: str) -> None:
    """Under another name than the default, which the lock must carry too."""
    project = bake(flow_slug="orders_nightly", python=python).project_path

    checked = subprocess.run(
        ["uv", "lock", "--check", "--offline"],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stderr + "Re-lock: uv run python scripts/lock.py"
    locked = tomllib.loads((project / "uv.lock").read_text())
    [root] = [package for package in locked["package"] if package["source"] == {"editable": "."}]
    assert root["name"] == "orders-nightly"
    # From the answer up: the lock of a project moved to a newer Python still holds.
    assert locked["requires-python"] in {f">={python}, <3.14", f"=={python}.*"}


def test_each_python_version_has_its_lock_in_the_template() -> None:
    for version in lock.python_versions():
        assert lock.template_lock(version).is_file(), version


def test_a_lock_becomes_a_template_with_its_name_as_the_only_variable() -> None:
    baked = 'version = 1\n\n[[package]]\nname = "orders-nightly"\nversion = "0.1.0"\n'

    assert lock.to_template(baked, "orders-nightly") == baked.replace(
        '"orders-nightly"', '"{{ cookiecutter.__distribution }}"'
    )


def test_a_lock_without_the_project_name_is_refused() -> None:
    with pytest.raises(ValueError, match='name = "orders-nightly"'):
        lock.to_template('[[package]]\nname = "boto3"\n', "orders-nightly")


def test_the_markers_of_the_locked_extras_carry_the_name_and_its_length() -> None:
    baked = (
        '[manifest]\nconflicts = [[\n    { package = "orders-nightly", extra = "fargate" },\n]]\n'
        '[[package]]\nname = "orders-nightly"\n'
        "marker = \"extra == 'extra-14-orders-nightly-fargate'\"\n"
    )

    template = lock.to_template(baked, "orders-nightly")

    name = lock.NAME_VARIABLE
    assert "orders-nightly" not in template
    assert f"extra-{lock.LENGTH_VARIABLE}-{name}-fargate" in template
    assert f'package = "{name}"' in template
