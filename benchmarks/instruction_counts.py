"""Part 5: the monitoring overhead of part 1, counted in instructions instead of seconds.

On this machine the same flow run can take a third longer or more from one run to the
next, whatever the variant (bare Prefect's 1,000 tasks: 8.8 to 12.2 s in five runs on an
idle machine): far more than the 2 % that the overhead goal allows, so medians of
seconds cannot say whether it is met. Instructions do not vary with the machine:
callgrind (valgrind) counts each one the interpreter executes. flows.py brackets
`flow.run()` with two libc calls that nothing else in the run makes (`--callgrind-markers`);
callgrind zeroes its counters before the first and writes them out before the
second, so the count holds the flow run alone, without the imports or the exit.

What still changes the count is Python's string hashing, which orders sets and dicts
and so the paths through them: each variant runs once per PYTHONHASHSEED value, and
each ratio compares two runs with the same seed. The count measures work, not time: it
misses cache misses and waiting, which part 1's seconds include.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .harness import median, progress
from .monitoring import EXECUTOR_NAMES, OVERHEAD_GOAL, VARIANT_NAMES, Children
from .report import Table, verdict

CALLGRIND_OPTIONS = [
    "--tool=callgrind",
    "--zero-before=getloadavg",  # flows.py calls os.getloadavg() right before flow.run()
    "--dump-before=ctermid",  # ... and os.ctermid() right after it
    "--dump-instr=no",
]
# Counts do not depend on what else runs: both cores count at once.
PARALLEL = 2


def instructions(
    children: Children,
    seeds: int,
    sizes: tuple[int, int],
    projected: int,
    fail_every: int = 0,
    goal: float = OVERHEAD_GOAL,
    gc_off: bool = False,
) -> tuple[list[Table], dict[tuple[str, str], dict[str, float]]]:
    """Parts 5 and 6: instructions of `flow.run()`, at two flow sizes.

    The two sizes separate what a run costs once (Sentry's start-up) from what each task
    costs, which projects the count to `projected` tasks, part 1's size. With
    `fail_every`, one task in that many fails, and the count takes in the final flush of
    the events (part 6). With `gc_off`, every child runs with the cyclic garbage collector
    off (flows.py --gc-off).
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("part 5 needs valgrind: `apt-get install valgrind`, or leave out 5")
    small, large = sizes
    cells = [
        (variant, executor, tasks, seed)
        for seed in range(seeds)
        for tasks in sizes
        for executor in EXECUTOR_NAMES
        for variant in children.variants
    ]

    def count(cell: tuple[str, str, int, int]) -> int:
        progress(f"instructions: {cell}")
        return _count(children, valgrind, *cell, fail_every=fail_every, gc_off=gc_off)

    with ThreadPoolExecutor(PARALLEL) as pool:
        counts = dict(zip(cells, pool.map(count, cells), strict=True))

    def ratios(variant: str, executor: str, measure) -> list[float]:
        """`measure(variant)` over `measure("bare")`, one ratio per hash seed."""
        return [
            measure(variant, executor, seed) / measure("bare", executor, seed)
            for seed in range(seeds)
        ]

    def at_large(variant: str, executor: str, seed: int) -> float:
        return counts[(variant, executor, large, seed)]

    def per_task(variant: str, executor: str, seed: int) -> float:
        grown = at_large(variant, executor, seed) - counts[(variant, executor, small, seed)]
        return grown / (large - small)

    def at_projected(variant: str, executor: str, seed: int) -> float:
        return at_large(variant, executor, seed) + (projected - large) * per_task(
            variant, executor, seed
        )

    path = f"one task in {fail_every} failing" if fail_every else "success path"
    if gc_off:
        path += ", cyclic garbage collector off"
    counted = "`flow.run()` and the final flush" if fail_every else "`flow.run()`"
    table = Table(
        title=f"Monitoring overhead in instructions: {counted} of mapped no-op tasks, "
        f"{path}, Prefect logging at INFO",
        columns=[
            "Executor",
            "Variant",
            f"{small} tasks",
            f"{large} tasks",
            f"vs (a), {large} tasks",
            "Per task, vs (a)",
            f"vs (a), {projected:,} tasks (projected)",
            "Spread",
            f"Goal: ≤ {goal:.3f}x",
            "Goal: below (b)",
        ],
        notes=[
            f"{small} tasks, {large} tasks: callgrind's count for {counted} alone, median of "
            f"{seeds} runs with PYTHONHASHSEED 0 to {seeds - 1}. Every ratio divides by (a)'s "
            "count with the same seed; the table shows the median over the seeds and, in "
            "brackets, the highest.",
            f"Per task: the count's growth from {small} to {large} tasks, per task. Projected: "
            f"the {large}-task count plus that growth for {projected - large:,} more tasks "
            "(a projection: it takes every further task to cost what each of those did).",
            "Spread: the range of a variant's counts over the seeds, relative to their "
            f"median, at {large} tasks.",
            "Goals: met when this template's highest ratio, measured and projected, is at "
            f"most {goal:.3f}x, and below the median ratio of (b) at the same size.",
        ],
    )
    figures: dict[tuple[str, str], dict[str, float]] = {}
    for executor, executor_name in EXECUTOR_NAMES.items():
        for variant in children.variants:
            measured = ratios(variant, executor, at_large)
            per_task_ratios = ratios(variant, executor, per_task)
            projection = ratios(variant, executor, at_projected)
            large_counts = [at_large(variant, executor, seed) for seed in range(seeds)]
            small_counts = [counts[(variant, executor, small, seed)] for seed in range(seeds)]
            figures[(variant, executor)] = {
                "ratio": median(measured),
                "highest": max(measured),
                "per_task": median(per_task_ratios),
                "projected": median(projection),
                "projected_highest": max(projection),
            }
            row = [
                executor_name,
                VARIANT_NAMES[variant],
                f"{median(small_counts) / 1e9:.3f} G",
                f"{median(large_counts) / 1e9:.3f} G",
                _ratios(measured),
                _ratios(per_task_ratios),
                _ratios(projection),
                f"{(max(large_counts) - min(large_counts)) / median(large_counts):.2%}",
            ]
            if variant in ("bare", "seed"):
                row += ["–", "–"]
            else:
                seed_figures = figures[("seed", executor)]
                worst = max(max(measured), max(projection))
                below_seed = (
                    max(measured) < seed_figures["ratio"]
                    and max(projection) < seed_figures["projected"]
                )
                row += [
                    verdict(worst <= goal),
                    verdict(below_seed)
                    + f" ({seed_figures['ratio']:.3f}x; {seed_figures['projected']:.3f}x)",
                ]
            table.rows.append(row)
    return [table], figures


def _ratios(values: list[float]) -> str:
    return f"{median(values):.3f}x ({max(values):.3f}x)"


def _count(
    children: Children,
    valgrind: str,
    variant: str,
    executor: str,
    tasks: int,
    seed: int,
    fail_every: int = 0,
    extra_environment: dict[str, str] | None = None,
    gc_off: bool = False,
) -> int:
    """callgrind's instruction count of one child's `flow.run()` (and final flush)."""
    folder = Path(tempfile.mkdtemp(prefix=f"callgrind-{variant}-{executor}-", dir=children.scratch))
    server = children.endpoint_class()
    server.start()
    try:
        command = children.command(variant, executor, tasks, fail_every, folder / "result.json")
        env = children.environment(
            variant, server.dsn, PYTHONHASHSEED=str(seed), **(extra_environment or {})
        )
        with (folder / "child.log").open("wb") as log:
            completed = subprocess.run(
                [
                    valgrind,
                    *CALLGRIND_OPTIONS,
                    f"--callgrind-out-file={folder / 'callgrind.out.%p'}",
                    *command,
                    "--callgrind-markers",
                    *(["--gc-off"] if gc_off else []),
                ],
                env=env,
                cwd=children.baked[variant].project,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    finally:
        server.stop()
    dumps = list(folder.glob("callgrind.out.*.1"))  # the dump written before ctermid
    if completed.returncode != 0 or len(dumps) != 1:
        raise SystemExit(f"callgrind counted no flow run ({completed.returncode}): see {folder}")
    for line in dumps[0].read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary line in {dumps[0]}")
