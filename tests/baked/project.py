"""The baked project these checks run against, named by BAKED_PROJECT.

tests/test_bake.py runs this folder once per baked project, with the project's own
interpreter (its .venv), so the checks import the baked package as a flow run does.
By hand: `BAKED_PROJECT=$PWD .venv/bin/python -m pytest -c <template>/tests/baked/pytest.ini
<template>/tests/baked`, from the baked project.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict

# The folder that holds the template's `tests` package: where Dask workers started apart
# from pytest find the tasks of sample_tasks.py.
TEMPLATE_DIR = Path(__file__).resolve().parents[2]


def _project() -> Path:
    named = os.environ.get("BAKED_PROJECT", "")
    if not named or not (Path(named) / ".cookiecutter.json").is_file():
        sys.exit(
            f"ERROR: BAKED_PROJECT={named!r} is not a baked project - set it to the folder "
            "of one (the folder with .cookiecutter.json), as tests/test_bake.py does"
        )
    return Path(named).resolve()


PROJECT = _project()
# The answers it was baked with (cookiecutter.json's public variables).
ANSWERS: Dict[str, Any] = json.loads((PROJECT / ".cookiecutter.json").read_text())
[PACKAGE] = [path.name for path in (PROJECT / "src").iterdir() if (path / "__init__.py").exists()]


def module(name: str) -> ModuleType:
    """The baked package's module `name` (e.g. "monitoring.budget"), imported."""
    return importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)


def _baked_test_module(relative: str) -> ModuleType:
    """A module of the baked project's tests/, loaded from its file: the baked project's
    `tests` package is not importable beside this one."""
    path = PROJECT / "tests" / relative
    name = f"baked_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


# The baked smoke test's loopback Sentry, shared with these checks and benchmarks/.
SentryEndpoint = _baked_test_module("template/sentry_endpoint.py").SentryEndpoint
