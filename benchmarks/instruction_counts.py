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
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .harness import median, progress
from .monitoring import EXECUTOR_NAMES, OVERHEAD_GOAL, VARIANT_NAMES, Children, environment
from .report import Table, verdict

CALLGRIND_OPTIONS = [
    "--tool=callgrind",
    "--zero-before=getloadavg",  # flows.py calls os.getloadavg() right before flow.run()
    "--dump-before=ctermid",  # ... and os.ctermid() right after it
    "--dump-instr=no",
]
# Counts do not depend on what else runs: both cores count at once.
PARALLEL = 2
Measure = Callable[[Hashable, int], float]  # a figure of a variant's count with a hash seed


def find_valgrind(what: str) -> str:
    """valgrind's path, or the run stops saying that `what` needs it."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit(f"{what} needs valgrind: `apt-get install valgrind`, or leave it out")
    return valgrind


def callgrind(valgrind: str, out_file: Path, *options: str) -> list[str]:
    """valgrind's command line that counts between flows.py's markers, into `out_file`."""
    return [valgrind, *CALLGRIND_OPTIONS, *options, f"--callgrind-out-file={out_file}"]


def dumped_count(dump: Path) -> int:
    """The instructions of a callgrind dump: its summary line."""
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary line in {dump}")


@dataclass
class Ratios:
    """A variant's count over the baseline's, one ratio per hash seed."""

    measured: list[float]  # at the larger flow size
    per_task: list[float]  # of the growth from the smaller size to the larger, per task
    projected: list[float]  # at the size the counts are projected to

    def figures(self) -> dict[str, float]:
        """The medians over the seeds, and the highest ratios."""
        return {
            "ratio": median(self.measured),
            "highest": max(self.measured),
            "per_task": median(self.per_task),
            "projected": median(self.projected),
            "projected_highest": max(self.projected),
        }

    def worst(self) -> float:
        """The highest ratio, measured or projected: what the goals judge."""
        return max(max(self.measured), max(self.projected))


@dataclass
class Counts:
    """callgrind's counts by (variant, tasks, seed), at two flow sizes.

    The two sizes separate what a run costs once (Sentry's start-up) from what each task
    costs, which projects the count to `projected` tasks.
    """

    counts: Mapping[tuple[Hashable, int, int], float]
    sizes: tuple[int, int]
    seeds: int
    projected: int = 0  # 0: no projection

    def small(self, variant: Hashable, seed: int) -> float:
        return self.counts[(variant, self.sizes[0], seed)]

    def large(self, variant: Hashable, seed: int) -> float:
        return self.counts[(variant, self.sizes[1], seed)]

    def per_task(self, variant: Hashable, seed: int) -> float:
        small, large = self.sizes
        return (self.large(variant, seed) - self.small(variant, seed)) / (large - small)

    def at_projected(self, variant: Hashable, seed: int) -> float:
        grown = (self.projected - self.sizes[1]) * self.per_task(variant, seed)
        return self.large(variant, seed) + grown

    def each_seed(self, measure: Measure, variant: Hashable) -> list[float]:
        return [measure(variant, seed) for seed in range(self.seeds)]

    def ratios(self, measure: Measure, variant: Hashable, baseline: Hashable) -> list[float]:
        """`measure(variant)` over `measure(baseline)`, one ratio per hash seed."""
        return [measure(variant, seed) / measure(baseline, seed) for seed in range(self.seeds)]

    def against(self, variant: Hashable, baseline: Hashable) -> Ratios:
        """`variant`'s counts over `baseline`'s: measured, per task and projected."""
        return Ratios(
            self.ratios(self.large, variant, baseline),
            self.ratios(self.per_task, variant, baseline),
            self.ratios(self.at_projected, variant, baseline),
        )


def instructions(
    children: Children,
    seeds: int,
    sizes: tuple[int, int],
    projected: int,
    fail_every: int = 0,
    goal: float = OVERHEAD_GOAL,
    gc_off: bool = False,
) -> tuple[list[Table], dict[tuple[str, str], dict[str, float]]]:
    """Parts 5 and 6: instructions of `flow.run()`, at two flow sizes, projected to
    `projected` tasks, part 1's size (see `Counts`). With `fail_every`, one task in that
    many fails, and the count takes in the final flush of the events (part 6). With
    `gc_off`, every child runs with the cyclic garbage collector off (flows.py --gc-off).
    """
    valgrind = find_valgrind("part 5")
    small, large = sizes
    cells = [
        ((variant, executor), tasks, seed)
        for seed in range(seeds)
        for tasks in sizes
        for executor in EXECUTOR_NAMES
        for variant in children.variants
    ]

    def count(cell: tuple[tuple[str, str], int, int]) -> int:
        (variant, executor), tasks, seed = cell
        progress(f"instructions: {variant}, {executor}, {tasks} tasks, seed {seed}")
        return _count(
            children, valgrind, variant, executor, tasks, seed, fail_every=fail_every, gc_off=gc_off
        )

    with ThreadPoolExecutor(PARALLEL) as pool:
        by_cell = dict(zip(cells, pool.map(count, cells), strict=True))
    counts = Counts(by_cell, sizes, seeds, projected)

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
            ratios = counts.against((variant, executor), ("bare", executor))
            figures[(variant, executor)] = ratios.figures()
            large_counts = counts.each_seed(counts.large, (variant, executor))
            small_counts = counts.each_seed(counts.small, (variant, executor))
            row = [
                executor_name,
                VARIANT_NAMES[variant],
                f"{median(small_counts) / 1e9:.3f} G",
                f"{median(large_counts) / 1e9:.3f} G",
                median_and_highest(ratios.measured),
                median_and_highest(ratios.per_task),
                median_and_highest(ratios.projected),
                f"{(max(large_counts) - min(large_counts)) / median(large_counts):.2%}",
            ]
            if variant in ("bare", "seed"):
                row += ["–", "–"]
            else:
                seed_figures = figures[("seed", executor)]
                below_seed = (
                    max(ratios.measured) < seed_figures["ratio"]
                    and max(ratios.projected) < seed_figures["projected"]
                )
                row += [
                    verdict(ratios.worst() <= goal),
                    verdict(below_seed)
                    + f" ({seed_figures['ratio']:.3f}x; {seed_figures['projected']:.3f}x)",
                ]
            table.rows.append(row)
    return [table], figures


def median_and_highest(values: list[float]) -> str:
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
        command = callgrind(valgrind, folder / "callgrind.out.%p")
        command += children.command(variant, executor, tasks, fail_every, folder / "result.json")
        command += ["--callgrind-markers", *(["--gc-off"] if gc_off else [])]
        env = environment(
            variant, server.dsn, PYTHONHASHSEED=str(seed), **(extra_environment or {})
        )
        with (folder / "child.log").open("wb") as log:
            completed = subprocess.run(
                command, env=env, cwd=children.project, stdout=log, stderr=subprocess.STDOUT
            )
    finally:
        server.stop()
    dumps = list(folder.glob("callgrind.out.*.1"))  # the dump written before ctermid
    if completed.returncode != 0 or len(dumps) != 1:
        raise SystemExit(f"callgrind counted no flow run ({completed.returncode}): see {folder}")
    return dumped_count(dumps[0])
