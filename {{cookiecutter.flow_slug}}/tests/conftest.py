"""How pytest starts the tests. The template owns this file; the fixtures are in fixtures.py."""

from __future__ import annotations

import gc

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Load the fixtures where tests run. With `--numprocesses`, pytest-xdist's controller
    only hands tests out to its workers: importing Prefect, boto3 and moto there too would
    hold the workers' start back by a second or more."""
    distributing = config.getoption("dist", "no") != "no"
    xdist_worker = hasattr(config, "workerinput")
    if xdist_worker or not distributing:
        config.pluginmanager.import_plugin("tests.fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The test process ends next. Its exit would collect every object still alive, which
    takes a second once moto and Prefect are loaded: the memory is freed all the same."""
    gc.freeze()
