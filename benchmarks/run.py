"""Benchmarks: what the template costs its users. Prints the tables, writes the page.

From the template's folder:

    uv run python -m benchmarks             # everything, about 50 minutes on 2 cores
    uv run python -m benchmarks --quick     # one repeat of small workloads, no page
    uv run python -m benchmarks --parts 3 --repeats 5

Parts: 1 monitoring overhead, 2 failure to alert, 3 bake, 4 bake to green, 5 monitoring
overhead counted in instructions (callgrind: needs valgrind), 6 the failing path in
instructions, 7 a failure storm, 10 the image: size, cold build, warm rebuild, start-up
in instructions (buildah, podman, valgrind in the image). The results page
(docs/benchmarks.md) is rewritten from this run's measurements only. Parts 8 and 9, on
executor=dask_cluster, run alone: `python -m benchmarks.cluster_speedup` (scaling out on
1, 2, 4 local worker processes) and `python -m benchmarks.cluster_instructions` (the
monitoring overhead counted in instructions, in the flow's process and a worker's).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import bake_time, failure_storm, image, instruction_counts, monitoring
from .harness import TEMPLATE_DIR, flow_sizes, median, progress
from .projects import Baker, bake_and_sync, default_python
from .report import machine, markdown_page, markdown_table

# 5, 6: hash seeds; 10: builds of each kind, and as many hash seeds
DEFAULT_REPEATS = {1: 7, 2: 7, 3: 10, 4: 3, 5: 3, 6: 3, 7: 3, 10: 3}
PAGE = TEMPLATE_DIR / "docs" / "benchmarks.md"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--parts",
        default="1,2,3,4,5",
        help="comma-separated parts to run: 1 overhead, 2 alert, 3 bake, 4 bake to green, "
        "5 overhead in instructions, 6 failing path in instructions, 7 failure storm, 10 the "
        "image (8 and 9 run alone: see above)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="repeats for every part (default: "
        + ", ".join(f"part {part}: {n}" for part, n in DEFAULT_REPEATS.items())
        + ")",
    )
    parser.add_argument("--tasks", type=int, default=1000, help="mapped tasks in part 1")
    parser.add_argument(
        "--counted-tasks",
        type=flow_sizes,
        help="the two flow sizes of part 5, in mapped tasks (under callgrind; default: 10,50)",
    )
    parser.add_argument(
        "--gc-off",
        action="store_true",
        help="parts 5 and 6: count with Python's cyclic garbage collector off (a diagnostic: "
        "see docs/benchmarks.md, part 6)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 repeat, 100 tasks, and no results page unless --output is given",
    )
    parser.add_argument("--output", type=Path, help=f"results page (default: {PAGE})")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    args.parts = {int(part) for part in args.parts.split(",")}
    if not args.parts <= DEFAULT_REPEATS.keys():
        parser.error("parts are 1 to 7 and 10 (8 and 9 run alone: see --help)")
    if args.quick:
        args.repeats = args.repeats or 1
        args.tasks = 100
        args.counted_tasks = args.counted_tasks or (5, 10)
    elif args.output is None:
        args.output = PAGE
    args.counted_tasks = args.counted_tasks or (10, 50)
    return args


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    repeats = {part: args.repeats or n for part, n in DEFAULT_REPEATS.items()}
    load_before = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="template-benchmarks-"))
    progress(f"scratch folder: {scratch}")
    sections = []
    figures: dict[int, dict] = {}
    child_python = None
    try:
        baker = Baker(scratch)
        template = TEMPLATE_DIR  # as its files are now
        python = default_python(template)

        if args.parts & {1, 2, 5, 6, 7}:
            children = monitoring.Children(*bake_and_sync(baker, template, {}, python), scratch)
            child_python = f"Python {_version_of(children.python)}"
            overhead_figures = None
            if 1 in args.parts:
                tables, overhead_figures = monitoring.overhead(children, repeats[1], args.tasks)
                figures[1] = overhead_figures
                sections.append(("1. Monitoring overhead", OVERHEAD_INTRO, tables))
            if 2 in args.parts:
                tables, figures[2] = monitoring.failure_to_alert(
                    children, repeats[2], overhead_figures
                )
                sections.append(("2. Failure to alert", ALERT_INTRO, tables))
            if 5 in args.parts:
                tables, figures[5] = instruction_counts.instructions(
                    children, repeats[5], args.counted_tasks, args.tasks, gc_off=args.gc_off
                )
                title = "5. Monitoring overhead, counted in instructions"
                sections.append((title, COUNTED_INTRO, tables))
            if 6 in args.parts:
                tables, figures[6] = instruction_counts.instructions(
                    children,
                    repeats[6],
                    args.counted_tasks,
                    args.tasks,
                    fail_every=monitoring.FAIL_EVERY,
                    goal=FAILING_GOAL,
                    gc_off=args.gc_off,
                )
                title = "6. The failing path, counted in instructions"
                sections.append((title, FAILING_INTRO, tables))
            if 7 in args.parts:
                tables, figures[7] = failure_storm.storm(children, repeats[7])
                sections.append(("7. A failure storm", STORM_INTRO, tables))
        if 3 in args.parts:
            tables, figures[3] = bake_time.bake(baker, template, repeats[3])
            sections.append(("3. Bake", BAKE_INTRO, tables))
        if 4 in args.parts:
            tables, figures[4] = bake_time.bake_to_green(baker, template, repeats[4], python)
            child_python = child_python or f"Python {_version_of(Path(python))}"
            sections.append(("4. Bake to green", GREEN_INTRO, tables))
        if 10 in args.parts:
            tables, figures[10] = image.image(baker, template, repeats[10], repeats[10])
            sections.append(("10. The image", IMAGE_INTRO, tables))
    except BaseException:
        progress(f"stopped: the scratch folder {scratch} is kept, with every log")
        raise
    if args.keep:
        progress(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)

    machine_lines = machine(TEMPLATE_DIR, child_python, load_before, os.getloadavg())
    summary = headlines(figures, args.tasks, args.counted_tasks)
    print("\n".join(["", "Headline figures", "================", *summary]))
    for _, _, tables in sections:
        for table in tables:
            print("\n" + markdown_table(table))
    print("\n" + "\n".join(machine_lines))
    if args.output:
        shown = [arg for arg in argv if arg != "--keep"]  # changes no figure
        command = shlex.join(["uv", "run", "python", "-m", "benchmarks", *shown])
        args.output.write_text(markdown_page(command, machine_lines, summary, sections))
        progress(f"wrote {args.output}")
    return 0


def headlines(figures: dict[int, dict], tasks: int, sizes: tuple[int, int]) -> list[str]:
    """The few figures worth quoting, from this run's measurements."""
    lines = []
    if 1 in figures:
        overhead = figures[1]

        def extra(variant: str) -> str:
            return " and ".join(
                f"{overhead[(variant, executor, 0)]['flow_ratio'] - 1:+.1%} with {name}"
                for executor, name in monitoring.EXECUTOR_NAMES.items()
            )

        def fastest(variant: str) -> str:
            return " and ".join(
                f"{overhead[(variant, executor, 0)]['fastest_ratio'] - 1:+.1%}"
                for executor in monitoring.EXECUTOR_NAMES
            )

        lines.append(
            f"- Monitoring: a flow run of {tasks:,} mapped tasks takes {extra('template')} "
            f"against bare Prefect (median; fastest runs {fastest('template')}); the seed's "
            f"approach {extra('seed')} (fastest runs {fastest('seed')})."
        )
    if 5 in figures:
        counted = figures[5]

        def more(variant: str) -> str:
            return " and ".join(
                f"{counted[(variant, executor)]['projected'] - 1:+.1%} (at most "
                f"{counted[(variant, executor)]['projected_highest'] - 1:+.1%}) with {name}"
                for executor, name in monitoring.EXECUTOR_NAMES.items()
            )

        lines.append(
            f"- Counted in instructions, which this machine's noise does not change: a flow "
            f"run of {tasks:,} mapped tasks executes {more('template')} against bare Prefect "
            f"(projected from counts at {sizes[0]} and {sizes[1]} tasks); the seed's approach "
            f"{more('seed')}."
        )
    if 2 in figures:
        alert = figures[2]
        lines.append(
            f"- A failing task's event reaches Sentry {alert['latency']['template'] * 1000:.0f} ms "
            f"after the task raises (the seed's approach: "
            f"{alert['latency']['seed'] * 1000:.0f} ms)."
        )
        lines.append(
            f"- A Sentry that accepts connections and never answers delays the process exit "
            f"by {alert[('template', None)]['extra']:.2f} s with the default "
            f"{monitoring.DEFAULT_SHUTDOWN_TIMEOUT:g} s shutdown timeout, and "
            f"{alert[('template', '1')]['extra']:.2f} s with SENTRY_SHUTDOWN_TIMEOUT=1."
        )
    if 3 in figures:
        bake = figures[3]
        lines.append(
            f"- Baking takes {bake['default answers']:.2f} s with the default answers and "
            f"{bake['largest answers']:.2f} s with the largest, of which "
            f"{bake['floor']:.2f} s is cookiecutter baking a one-file template."
        )
    if 4 in figures and bake_time.DEFAULT_ANSWERS in figures[4]:
        green = figures[4][bake_time.DEFAULT_ANSWERS]
        lines.append(
            f"- From nothing to a green `make test`: {green['total']:.0f} s (bake "
            f"{green['bake']:.1f} s, install {green['install']:.1f} s, lint "
            f"{green['lint']:.1f} s, tests {green['tests']:.1f} s)."
        )
    if 10 in figures:
        built = figures[10]
        lines.append(
            f"- The image: {built['size_mb']:.0f} MB on the debootstrap base, built cold in "
            f"{built['cold']:.0f} s and again after a code-only change in {built['warm']:.1f} s;"
            f" its entry point runs {median(built['start_ratios']):.3f}x the instructions of "
            f"bare Prefect from process start to the first task."
        )
    return lines


def _version_of(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()


OVERHEAD_INTRO = (
    "One flow: a `Parameter`, a task that returns that many integers, and a no-op task "
    "mapped over them (1,000 children by default), run with `flow.run()` in a fresh "
    "process at Prefect's default INFO logging. (a) a plain `prefect.Flow`, Sentry never "
    "imported. (b) the seed's approach (`benchmarks/seed_approach.py`): a plain "
    "`prefect.Flow` with the seed's `init_base_flow` upstream of the mapped task, "
    "`sentry_sdk.init(dsn, environment, release)` plus `set_tag`/`set_context`, events "
    "from the default logging integration. (c) the baked package's `MonitoredFlow`, as the "
    "generated `flow.py` wires it. (b) and (c) send to the baked project's own "
    "`tests/template/sentry_endpoint.py` endpoint, running on 127.0.0.1 in the parent "
    "process, with SENTRY_DSN, SENTRY_REGION, SENTRY_ENVIRONMENT and SENTRY_RELEASE set. "
    "In the failing path every tenth task raises."
)
FAILING_GOAL = 1.015  # (c) / (a), in instructions, one task in ten failing
FAILING_INTRO = (
    "Part 5's count on the failing path: one task in ten raises, and the count takes in "
    "`flow.run()` and the `sentry_sdk.flush()` after it that sends the events (the "
    "sending thread's instructions included), so that what each failure costs to report "
    "is counted in full. Bare Prefect, (a), has no Sentry to flush."
)
STORM_INTRO = (
    "A task mapped over 2,000 items that all fail (`benchmarks/failure_storm.py`): without "
    "a bound, every failure would be an event until the SDK's queue of 100 overflowed. "
    "The template sends the first SENTRY_MAX_EVENTS_PER_TASK (10) and one event that "
    "counts the rest."
)
COUNTED_INTRO = (
    "Part 1's flow on the success path, at two small sizes, each run under callgrind "
    "(`benchmarks/instruction_counts.py`): the instructions that `flow.run()` executes, "
    "from the call to its return. Seconds on this machine vary from run to run by more "
    "than the 2 % goal (part 1's Noise column); these counts do not, but for the order "
    "that Python's string hashing gives sets and dicts, so each variant runs with the same "
    "PYTHONHASHSEED values and each ratio compares two runs with the same seed."
)
ALERT_INTRO = (
    "A flow whose one task raises, (b) and (c) as above, each run in a fresh process; "
    "the failing path of part 1 adds the latency under a burst of failures."
)
BAKE_INTRO = (
    "The cookiecutter CLI, as a user runs it, against the floor of a one-file template "
    "baked in the same run. Each bake writes into a new folder; cookiecutter's replay and "
    "cache folders live in the scratch folder."
)
GREEN_INTRO = (
    "What a new user waits for before the first green test run: bake, then the baked "
    "project's own `make test` (uv sync into a new .venv, ruff, hadolint, "
    "check-jsonschema, pytest) on the Python of the default image."
)
IMAGE_INTRO = (
    "The image of the default bake, built with buildah as the template's tests build it, "
    "on a Debian trixie base made by debootstrap with Debian's python3.13, the stand-in "
    "here for python:3.13-slim-trixie, which cannot be pulled (`benchmarks/image.py`). "
    "The start-up count runs in an image derived from the flow's with valgrind added, as "
    "the flow's image runs: numeric user, read-only root, no network."
)
