"""Benchmarks: what the template costs its users. Prints the tables, writes the page.

From the template's folder:

    uv run python -m benchmarks             # everything, about 50 minutes on 2 cores
    uv run python -m benchmarks --quick     # one repeat of small workloads, no page
    uv run python -m benchmarks --parts 3 --repeats 5
    uv run python -m benchmarks --before ../before  # e.g. a git worktree of a commit

Parts: 1 monitoring overhead, 2 failure to alert, 3 bake, 4 bake to green, 5 monitoring
overhead counted in instructions (callgrind: needs valgrind), 6 the failing path in
instructions, 7 a failure storm, 8 scaling out on executor=dask_cluster (1, 2, 4
local worker processes; also `python -m benchmarks.cluster_speedup` alone), 9 the monitoring
overhead of executor=dask_cluster counted in instructions, in the flow's process and a
worker's (also `python -m benchmarks.cluster_instructions` alone). With
--before, parts 1, 2 and 4 also measure the template as it was before a change, as
variant (c0), in the same run as (c), this template: the page shows before and after,
and what changed from one to the other. The results page (docs/benchmarks.md) is
rewritten from this run's measurements only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path

from . import (
    bake_time,
    cluster_instructions,
    cluster_speedup,
    failure_storm,
    instruction_counts,
    monitoring,
)
from .harness import TEMPLATE_DIR, progress
from .projects import DEFAULT_PACKAGE, Baker, python_interpreter, sync
from .report import machine, markdown_page, source_of, template_diff, text_table

DEFAULT_REPEATS = {1: 7, 2: 7, 3: 10, 4: 3, 5: 3, 6: 3, 7: 3, 8: 3, 9: 3}  # 5, 6, 9: seeds
PAGE = TEMPLATE_DIR / "docs" / "benchmarks.md"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--parts",
        default="1,2,3,4,5",
        help="comma-separated parts to run: 1 overhead, 2 alert, 3 bake, 4 bake to green, "
        "5 overhead in instructions, 6 failing path in instructions, 7 failure storm, "
        "8 scaling out on a Dask cluster, 9 dask_cluster overhead in instructions",
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
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE_DIR,
        help="the template to measure (default: this one, as its files are now)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="the template as it was before a change (e.g. a git worktree of an earlier "
        "commit): parts 1, 2 and 4 measure it too, as (c0), in the same run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    args.parts = {int(part) for part in args.parts.split(",")}
    if args.quick:
        args.repeats = args.repeats or 1
        args.tasks = 100
        args.counted_tasks = args.counted_tasks or "5,10"
    elif args.output is None:
        args.output = PAGE
    sizes = (args.counted_tasks or "10,50").split(",")
    if (
        len(sizes) != 2
        or not all(size.isdigit() for size in sizes)
        or int(sizes[0]) >= int(sizes[1])
    ):
        parser.error(
            f"--counted-tasks {args.counted_tasks!r} is not two flow sizes, smaller first - "
            "give e.g. 10,50"
        )
    args.counted_tasks = (int(sizes[0]), int(sizes[1]))
    return args


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    repeats = {part: args.repeats or n for part, n in DEFAULT_REPEATS.items()}
    load_before = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="template-benchmarks-"))
    progress(f"scratch folder: {scratch}")
    before_section = _before_section(args)  # read before baking: the files then baked
    sections = []
    figures: dict[int, dict] = {}
    child_python = None
    try:
        baker = Baker(scratch)
        template = args.template.resolve()
        version = json.loads((template / "cookiecutter.json").read_text())["python"]
        python = python_interpreter(version[0])  # the default answer's Python
        before = args.before.resolve() if args.before else None

        if args.parts & {1, 2, 5, 6, 7}:
            baked = _bake_and_sync(baker, template, python)
            unfixed = _bake_and_sync(baker, before, python) if before else None
            children = monitoring.Children(baked, scratch, unfixed)
            child_python = f"Python {_version_of(baked.python)}"
            overhead_figures = None
            if 1 in args.parts:
                tables, overhead_figures = monitoring.overhead(children, repeats[1], args.tasks)
                figures[1] = overhead_figures
                intro = OVERHEAD_INTRO + (BEFORE_NOTE if before else "")
                sections.append(("1. Monitoring overhead", intro, tables))
            if 2 in args.parts:
                tables, figures[2] = monitoring.failure_to_alert(
                    children, repeats[2], overhead_figures
                )
                sections.append(("2. Failure to alert", ALERT_INTRO, tables))
            if 5 in args.parts:
                tables, figures[5] = instruction_counts.instructions(
                    children, repeats[5], args.counted_tasks, args.tasks, gc_off=args.gc_off
                )
                counted = COUNTED_INTRO + (BEFORE_NOTE if before else "")
                title = "5. Monitoring overhead, counted in instructions"
                sections.append((title, counted, tables))
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
        if args.parts & {8, 9}:
            progress(f"baking {template} with executor=dask_cluster, installing it")
            _, project = baker.bake(template, {"executor": "dask_cluster"})
            cluster_python = sync(project, python)
        if 8 in args.parts:
            table, figures[8] = cluster_speedup.scale_out(cluster_python, project, repeats[8])
            sections.append(("8. Scaling out on a Dask cluster", DASK_INTRO, [table]))
        if 9 in args.parts:
            table, figures[9] = cluster_instructions.cluster_instructions(
                cluster_python, project, scratch, repeats[9], args.counted_tasks, args.tasks
            )
            title = "9. Monitoring overhead on a Dask cluster, counted in instructions"
            sections.append((title, CLUSTER_COUNTED_INTRO, [table]))
        if 3 in args.parts:
            templates = bake_time.answer_sets(template)
            tables, figures[3] = bake_time.bake(baker, templates, repeats[3])
            sections.append(("3. Bake", BAKE_INTRO, tables))
        if 4 in args.parts:
            templates = bake_time.answer_sets(template, before)
            tables, figures[4] = bake_time.bake_to_green(baker, templates, repeats[4], python)
            child_python = child_python or f"Python {_version_of(Path(python))}"
            intro = GREEN_INTRO + (GREEN_BEFORE_NOTE if before else "")
            sections.append(("4. Bake to green", intro, tables))
    except BaseException:
        progress(f"stopped: the scratch folder {scratch} is kept, with every log")
        raise
    if args.keep:
        progress(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)

    if before_section:
        sections.append(before_section)
    machine_lines = machine(args.template.resolve(), child_python, load_before, os.getloadavg())
    summary = headlines(figures, args.tasks, args.counted_tasks)
    print("\n".join(["", "Headline figures", "================", *summary]))
    for _, _, tables in sections:
        for table in tables:
            print("\n" + text_table(table))
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
        if ("before", "local", 0) in overhead:
            lines.append(f"- Before the fixes (c0): {extra('before')}.")
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
    if 9 in figures:
        cluster = figures[9]
        lines.append(
            f"- On executor=dask_cluster, counted in the flow's process and a worker's: "
            f"{cluster['projected'] - 1:+.1%} (at most {cluster['projected_highest'] - 1:+.1%}) "
            f"against bare Prefect's DaskExecutor, projected to {tasks:,} tasks."
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
        if "before" in alert["latency"]:
            lines.append(
                f"- Before the fixes (c0): the event reaches Sentry "
                f"{alert['latency']['before'] * 1000:.0f} ms after the task raises, and the "
                f"hanging Sentry delays the exit by {alert[('before', None)]['extra']:.2f} s "
                f"with the default timeout."
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
    if 4 in figures and bake_time.BEFORE_ANSWERS in figures[4]:
        green = figures[4][bake_time.BEFORE_ANSWERS]
        lines.append(f"- Before the fixes (c0): {green['total']:.0f} s.")
    return lines


def _before_section(args: argparse.Namespace) -> tuple[str, str, list] | None:
    """The diff from --before to the template, for the page's last section."""
    if not (args.before and args.parts & {1, 2, 4}):
        return None
    before, template = args.before.resolve(), args.template.resolve()
    diff = template_diff(before, template) or "(no difference)\n"
    *others, last = [str(part) for part in sorted(args.parts & {1, 2, 4})]
    parts = f"parts {', '.join(others)} and {last}" if others else f"part {last}"
    intro = BEFORE_INTRO.format(parts=parts, source=source_of(before))
    return BEFORE_TITLE, intro + f"\n\n```diff\n{diff}```", []


def _bake_and_sync(baker: Baker, template: Path, python: str) -> monitoring.Baked:
    """The template baked with the default answers, installed in its own .venv."""
    progress(f"baking {template} with the default answers, installing it with {python}")
    _, project = baker.bake(template.resolve(), {})
    return monitoring.Baked(project, sync(project, python), DEFAULT_PACKAGE)


def _version_of(python: Path) -> str:
    import subprocess

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
BEFORE_NOTE = (
    " (c0): as (c), but baked from the template as it was before the fixes (see the last section)."
)
GREEN_BEFORE_NOTE = (
    " The row for (c0) bakes the template as it was before the fixes (see the last section)."
)
BEFORE_TITLE = "Before and after: what changed from (c0) to (c)"
BEFORE_INTRO = (
    "(c0) in {parts} is the template at {source}, baked and measured in the same "
    "run as (c), this template: the rows (c0) and (c) are before and after. The change "
    "from one to the other, in the files a user bakes and runs (the template's own "
    "tests, scripts, docs, benchmarks, README.md, CHANGELOG.md and uv.lock left out):"
)
FAILING_GOAL = 1.015  # (c) / (a), in instructions, one task in ten failing
FAILING_INTRO = (
    "Part 5's count on the failing path: one task in ten raises, and the count takes in "
    "`flow.run()` and the `sentry_sdk.flush()` after it that sends the events (the "
    "sending thread's instructions included), so that what each failure costs to report "
    "is counted in full. Bare Prefect, (a), has no Sentry to flush."
)
DASK_INTRO = (
    "A project baked with executor=dask_cluster runs 200 mapped tasks of 50 ms of blocking "
    "CPU work (CPU time, not clock time) on the LocalCluster its executor creates, with "
    "1, 2 and 4 worker processes (`benchmarks/cluster_speedup.py`). The flow run's time "
    "includes creating and closing the cluster; no machine goes faster than its cores."
)
CLUSTER_COUNTED_INTRO = (
    "Part 5's count on the executor=dask_cluster path "
    "(`benchmarks/cluster_instructions.py`): a scheduler started with `dask scheduler` "
    "and one worker process with one thread, apart from the flow's process; the count is "
    "of the flow process's main thread and the worker's thread for tasks, each under "
    "callgrind, from right before `flow.run()` to right after it (the event loops' "
    "threads left out: see the module's docstring). (a) runs a plain `Flow` with Prefect's "
    "`DaskExecutor(address=...)`, (c) the baked `MonitoredFlow` with its "
    "`FlowRunDaskExecutor`, given the scheduler in DASK_SCHEDULER_ADDRESS."
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
