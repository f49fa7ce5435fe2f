"""Check a built image of this project the way its flow runs use it: `make check-image`.

    python tests/template/check_image.py IMAGE

Each check runs the image as production does: a numeric non-root user, a read-only root
with a writable /tmp, every capability dropped, no network.

- the default command (one flow run) exits 0;
- a flow run whose first task fails exits 1;
- `prefect execute flow-run --help` works: what a Prefect agent starts;
- the installed distributions are exactly uv.lock's for the image's Python and the
  extras its Dockerfile installs: same names and versions, nothing missing or extra.

It needs Docker, or another engine given as CONTAINER_ENGINE (e.g. `podman`), with
more `run` options in CONTAINER_RUN_OPTIONS; and uv (or UV), which reads the lock.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Dict, List, Optional

from packaging.markers import Marker
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parents[2]
PACKAGE = {{ cookiecutter.__package | tojson }}
HARDENED = [
    "--rm",
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--user",
    "10001:10001",
    "--cap-drop=ALL",
    "--security-opt",
    "no-new-privileges",
]
# A run of the image's own entry point whose first task raises: it must exit 1.
FAILING_RUN = f"""
import sys
from {PACKAGE}.deployment import run
from {PACKAGE}.flow import flow

def fail(*args, **kwargs):
    raise RuntimeError("check-image: a task that fails on purpose")

first = next(task for task in flow.sorted_tasks() if type(task).__name__ != "Parameter")
first.run = fail
sys.exit(run.main([]))
"""
# What the image has installed, and what its Python's environment markers are.
INSPECT = """
import json, os, platform, sys
from importlib import metadata
python = ".".join(platform.python_version_tuple()[:2])
markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": python,
    "sys_platform": sys.platform,
}
installed = {d.metadata["Name"]: d.version for d in metadata.distributions()}
print(json.dumps({"markers": markers, "installed": installed}))
"""


def engine() -> List[str]:
    return shlex.split(os.environ.get("CONTAINER_ENGINE", "docker"))


def run_image(
    image: str,
    command: Optional[List[str]] = None,
    options: Optional[List[str]] = None,
    network: str = "none",
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run `image` hardened as in production: its default command unless `command`."""
    extra = shlex.split(os.environ.get("CONTAINER_RUN_OPTIONS", ""))
    return subprocess.run(
        [*engine(), "run", *HARDENED, "--network", network, *extra, *(options or []), image]
        + (command or []),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def failing_run_command() -> List[str]:
    return ["python", "-c", FAILING_RUN]


def image_extras(dockerfile: Path = PROJECT / "Dockerfile") -> List[str]:
    """The optional dependencies the Dockerfile installs (`uv sync ... --extra NAME`)."""
    return sorted(set(re.findall(r"--extra[= ]([\w-]+)", dockerfile.read_text())))


def locked(markers: Dict[str, str], extras: List[str]) -> Dict[str, str]:
    """uv.lock's distributions for these markers and extras, with the project: name to version."""
    extra_options = [option for extra in extras for option in ("--extra", extra)]
    export = [os.environ.get("UV", "uv"), "export", "--frozen", "--no-dev", "--no-emit-project"]
    exported = subprocess.run(
        export
        + ["--no-hashes", "--no-header", "--no-annotate", "--format", "requirements-txt"]
        + extra_options,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wanted: Dict[str, str] = {}
    for line in exported.splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip() or requirement.lstrip().startswith(("#", "-")):
            continue
        if marker.strip() and not Marker(marker.strip()).evaluate({**markers, "extra": ""}):
            continue
        name, _, version = requirement.strip().partition("==")
        wanted[canonicalize_name(name)] = version.strip()
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    wanted[canonicalize_name(project["name"])] = project["version"]
    return wanted


def differences(image: str) -> List[str]:
    """How the image's installed distributions differ from the lock's; [] when equal."""
    done = run_image(image, ["python", "-c", INSPECT])
    if done.returncode != 0:
        return [f"listing the installed distributions failed: {done.stderr}"]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    installed = {canonicalize_name(name): found["installed"][name] for name in found["installed"]}
    wanted = locked(found["markers"], image_extras())
    problems = [
        f"missing: {name}=={wanted[name]}" for name in sorted(wanted.keys() - installed.keys())
    ]
    problems += [
        f"not in uv.lock: {name}=={installed[name]}"
        for name in sorted(installed.keys() - wanted.keys())
    ]
    problems += [
        f"{name}: {installed[name]} installed, {wanted[name]} in uv.lock"
        for name in sorted(wanted.keys() & installed.keys())
        if installed[name] != wanted[name]
    ]
    return problems


def check(image: str) -> List[str]:
    """Every check above; the failures, each with what the image printed."""
    failures: List[str] = []

    def expect(what: str, done: subprocess.CompletedProcess, code: int) -> None:
        if done.returncode != code:
            failures.append(
                f"{what}: exit {done.returncode}, expected {code}\n{done.stdout}\n{done.stderr}"
            )

    expect("the default command (one flow run)", run_image(image), 0)
    expect("a flow run whose first task fails", run_image(image, failing_run_command()), 1)
    expect(
        "prefect execute flow-run --help",
        run_image(image, ["prefect", "execute", "flow-run", "--help"]),
        0,
    )
    failures += [f"installed set: {problem}" for problem in differences(image)]
    return failures


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    failures = check(argv[0])
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if not failures:
        print(f"{argv[0]}: runs, fails and installs as uv.lock says")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
