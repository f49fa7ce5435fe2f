"""Part 10: the flow's image: its size, a cold build and a warm rebuild, and what the
template's monitoring and deployment modules add to a flow run's start inside it.

The image of the default bake is built as the template's tests build it
(tests/image_tools.py): buildah on a Debian trixie base made by debootstrap, with
Debian's python3.13 (the registry's python:3.13-slim-trixie cannot be pulled here). A
cold build reuses no layer (`--no-cache`); a warm rebuild follows a change to the
flow's code alone (a comment added to tasks.py), every layer before it cached.

Start-up is counted in instructions, as parts 5 and 9 count: callgrind, in an image
derived from the flow's with Debian's valgrind added, run as the flow's image runs
(numeric user, read-only root, no network). Each count is one process from its start
to the start of the flow's first task, where the task ends the process (`os._exit`):
(a) a plain `prefect.Flow` of the same tasks, imported from the same image, the
template's monitoring and deployment modules never imported; (c) the image's own entry
point (`deployment.run.main`, the `MonitoredFlow` of `flow.py`, Sentry started from
SENTRY_DSN). Each variant runs with the same PYTHONHASHSEED values; each ratio compares
two runs with the same seed.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from tests import image_tools

from .harness import median, progress, run_process
from .projects import DEFAULT_PACKAGE, Baker
from .report import Table, verdict

SIZE_GOAL_MB = 300
WARM_GOAL_SECONDS = 10.0
START_GOAL = 1.10  # (c) / (a), instructions from process start to the first task
TAG = "localhost/cookiecutter-prefect-flow-benchmark"
# A closed loopback port: Sentry starts, and nothing is sent before the first task.
DSN = "http://public@127.0.0.1:9/1"
FIRST_TASK_ENDS = """
import os
first = next(task for task in flow.sorted_tasks() if type(task).__name__ != "Parameter")
first.run = lambda *args, **kwargs: os._exit(0)
"""
BARE = (
    "from prefect import Flow, Parameter\n"
    f"from {DEFAULT_PACKAGE}.tasks import extract, load, transform\n"
    "with Flow('bare') as flow:\n"
    "    rows = extract(Parameter('day', default='today'))\n"
    "    load(transform.map(rows))\n" + FIRST_TASK_ENDS + "flow.run(run_on_schedule=False)\n"
)
TEMPLATE = (
    "import sys\n"
    f"from {DEFAULT_PACKAGE}.deployment import run\n"
    f"from {DEFAULT_PACKAGE}.flow import flow\n" + FIRST_TASK_ENDS + "sys.exit(run.main([]))\n"
)
VARIANTS = {
    "bare": ("(a) bare Prefect, same tasks", BARE),
    "template": ("(c) the image's entry point", TEMPLATE),
}
VALGRIND = """FROM {image}
USER root
RUN apt-get update \\
    && apt-get install -y --no-install-recommends valgrind \\
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
"""


def image(baker: Baker, template: Path, repeats: int, seeds: int) -> tuple[list[Table], dict]:
    """Part 10's tables and figures."""
    base = image_tools.base_image("3.13")
    _, project = baker.bake(template, {})
    builds = [_build(project, base, cold=True) for _ in range(repeats)]
    _build(project, base, cold=False)  # every layer cached for the rebuilds
    tasks = project / "src" / DEFAULT_PACKAGE / "tasks.py"
    rebuilds = []
    for number in range(repeats):
        tasks.write_text(tasks.read_text() + f"# a code-only change, {number}\n")
        rebuilds.append(_build(project, base, cold=False))
    size = image_tools.image_size(TAG) / 1e6
    base_size = image_tools.image_size(base) / 1e6
    counts = _start_counts(seeds)

    figures = {
        "size_mb": size,
        "cold": median(builds),
        "warm": median(rebuilds),
        "start_ratios": [counts["template", s] / counts["bare", s] for s in range(seeds)],
    }
    start_ratio = median(figures["start_ratios"])
    per_seed = ", ".join(f"{value:.3f}x" for value in figures["start_ratios"])
    goals = Table(
        "The image of the default bake: size, build, start-up",
        ["What", "This template", "Goal", "Verdict"],
    )
    goals.rows = [
        [
            "runtime image size (on the debootstrap base)",
            f"{size:.0f} MB ({base_size:.0f} MB base, {size - base_size:.0f} MB the flow's)",
            f"≤ {SIZE_GOAL_MB} MB",
            verdict(size <= SIZE_GOAL_MB),
        ],
        ["cold build, no layer cached", _runs(builds), "–", "–"],
        [
            "warm rebuild after a code-only change",
            _runs(rebuilds),
            f"≤ {WARM_GOAL_SECONDS:g} s",
            verdict(median(rebuilds) <= WARM_GOAL_SECONDS),
        ],
        [
            "instructions from process start to the first task, (c) / (a)",
            f"{start_ratio:.3f}x (per seed: {per_seed})",
            f"≤ {START_GOAL:.2f}x",
            verdict(start_ratio <= START_GOAL),
        ],
    ]
    detail = Table(
        "Instructions from process start to the first task, in the image (callgrind)",
        ["Variant", *(f"PYTHONHASHSEED={seed}" for seed in range(seeds))],
    )
    detail.rows = [
        [label, *(f"{counts[variant, seed]:,}" for seed in range(seeds))]
        for variant, (label, _) in VARIANTS.items()
    ]
    return [goals, detail], figures


def _runs(values: list[float]) -> str:
    return (
        f"{median(values):.1f} s (median of {len(values)}: {', '.join(f'{v:.1f}' for v in values)})"
    )


def _build(project: Path, base: str, cold: bool) -> float:
    progress(f"image: {'cold build' if cold else 'rebuild'} of {project.name}")
    command = image_tools.build_command(project, TAG, base)
    if cold:
        command.insert(command.index("--layers") + 1, "--no-cache")
    done = run_process(command, env=dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"the build failed: {' '.join(command)}")
    return done.seconds


def _start_counts(seeds: int) -> dict[tuple[str, int], int]:
    """Instructions of each variant and seed: two processes at a time (counts do not
    depend on the load)."""
    from concurrent.futures import ThreadPoolExecutor

    derived = f"{TAG}-valgrind"
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "Containerfile").write_text(VALGRIND.format(image=TAG))
        image_tools.run(
            ["buildah", *image_tools.STORAGE, "bud", "--isolation", "chroot", "--layers"]
            + ["--pull=never", "--tag", derived, folder]
        )
    cells = [(variant, seed) for seed in range(seeds) for variant in VARIANTS]

    def count(cell: tuple[str, int]) -> int:
        variant, seed = cell
        progress(f"image: counting {variant}, PYTHONHASHSEED={seed}")
        done = subprocess.run(
            [*image_tools.PODMAN, "run", "--rm", "--read-only", "--tmpfs", "/tmp"]
            + ["--user", "10001:10001", "--network", "none", *image_tools.RUN_OPTIONS]
            + ["--env", f"PYTHONHASHSEED={seed}", "--env", f"SENTRY_DSN={DSN}", derived]
            + ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
            + ["python", "-c", VARIANTS[variant][1]],
            capture_output=True,
            text=True,
        )
        # The process itself: importing Prefect forks a child, which callgrind follows
        # and reports first, under its own PID.
        main = re.search(r"==(\d+)== Command:", done.stderr)
        found = main and re.search(rf"=={main.group(1)}== Collected : (\d+)", done.stderr)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"callgrind of {variant} failed:\n{done.stderr[-3000:]}")
        return int(found.group(1))

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(cells, pool.map(count, cells), strict=True))
