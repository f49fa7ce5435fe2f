"""The flow as Prefect registers it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prefect.run_configs import RunConfig
from prefect.storage import Module

from .project import ANSWERS, module

FLOW_NAME = module("flow").FLOW_NAME
flow = module("flow").flow


def test_prefect_build_writes_the_registration_metadata(tmp_path: Path) -> None:
    """The registration canary: `prefect build` fails when a Prefect 1 pin breaks."""
    output = tmp_path / "flows.json"
    subprocess.run(
        [sys.executable, "-m", "prefect", "build", "-m", flow.storage.module, "-o", str(output)],
        check=True,
        capture_output=True,
    )

    [built] = json.loads(output.read_text())["flows"]
    assert built["name"] == FLOW_NAME
    assert built["storage"]["type"] == "Module"
    assert built["run_config"]["type"] == type(flow.run_config).__name__


def test_the_flow_is_stored_as_a_module_and_labelled_for_its_agent() -> None:
    assert isinstance(flow.storage, Module)
    assert isinstance(flow.run_config, RunConfig)
    assert list(flow.run_config.labels) == [ANSWERS["environment"]]
