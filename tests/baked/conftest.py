"""How pytest starts the checks of a baked project (see project.py for which one).

Two measured speed-ups live here, not in the baked repository (docs/design.md, "The
template's checks of a baked project"): the fixtures load only where tests run, and the
test process skips the collection of everything still alive when it exits.
"""

from __future__ import annotations

import gc
from typing import List

import pytest

from .project import ANSWERS

# The checks of files that only some answers bake.
collect_ignore: List[str] = []
if ANSWERS["executor"] != "dask_cluster":
    collect_ignore.append("test_dask_cluster.py")
if ANSWERS["orchestrator"] != "none":
    collect_ignore.append("test_schedule.py")
if ANSWERS["orchestrator"] != "prefect_server":
    collect_ignore.append("test_registration.py")


def pytest_configure(config: pytest.Config) -> None:
    """Load the fixtures where tests run. With `--numprocesses`, pytest-xdist's controller
    only hands tests out to its workers: importing Prefect, boto3 and moto there too would
    hold the workers' start back by a second or more."""
    distributing = config.getoption("dist", "no") != "no"
    xdist_worker = hasattr(config, "workerinput")
    if xdist_worker or not distributing:
        config.pluginmanager.import_plugin("tests.baked.fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The test process ends next. Its exit would collect every object still alive, which
    takes a second once moto and Prefect are loaded: the memory is freed all the same."""
    gc.freeze()
