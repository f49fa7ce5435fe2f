"""The flow as Prefect registers it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List

from prefect.run_configs import RunConfig
from prefect.storage import Module

from .project import ANSWERS, PROJECT, module

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


def agent_commands(guide: str) -> List[List[str]]:
    """Each `prefect agent ...` command of DEPLOY.md's shell blocks, as words."""
    blocks = re.findall(r"```bash\n(.*?)```", guide, re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        if "prefect agent " in line:
            words = shlex.split(line.split("prefect agent ", 1)[1].split("|", 1)[0])
            commands.append(words)
    return commands


def test_deploy_md_starts_the_agent_with_commands_prefect_1_4_1_has() -> None:
    """Every `prefect agent` command DEPLOY.md gives, checked against this environment's
    Prefect CLI (click): the kind, the subcommand and every option must exist."""
    import click
    from prefect.cli.agent import agent

    guide = (PROJECT / "DEPLOY.md").read_text()
    commands = agent_commands(guide)

    if ANSWERS["orchestrator"] == "none":
        assert commands == []
        return
    assert commands, "DEPLOY.md says nowhere how to start the agent"
    for words in commands:
        kind, action, *arguments = words
        group = agent.commands[kind]
        assert isinstance(group, click.Group), kind
        command = group.commands[action]
        options = {name for param in command.params for name in param.opts}
        given = [word.split("=", 1)[0] for word in arguments if word.startswith("-")]
        assert set(given) <= options, f"prefect agent {kind} {action}: {set(given) - options}"
        labels = [arguments[i + 1] for i, word in enumerate(arguments) if word == "--label"]
        assert labels == [ANSWERS["environment"]]
        # The options parse: click accepts the command line as written.
        context = command.make_context(
            f"prefect agent {kind} {action}", [word for word in arguments], resilient_parsing=True
        )
        assert context.params["label"] == (ANSWERS["environment"],)
