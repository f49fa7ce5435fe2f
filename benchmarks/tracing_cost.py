"""What opt-in tracing costs, in instructions: part 5's count of `flow.run()`, for bare
Prefect and this template with SENTRY_TRACES_SAMPLE_RATE unset (off) and 1 (every run).

`python -m benchmarks.tracing_cost [--seeds 2] [--counted-tasks 10,50]`, on a fresh bake
of this template with the default answers, in a scratch folder. Mapped no-op tasks on
LocalExecutor, as in part 5: a traced run sends the flow's span, three children's and
the map's summary, whatever the number of tasks. Needs valgrind.
"""

from __future__ import annotations

import argparse
import sys

from .harness import flow_sizes, median, progress
from .instruction_counts import Counts, _count, find_valgrind
from .monitoring import Children
from .projects import standalone_project
from .report import Table, markdown_table

RATE = "SENTRY_TRACES_SAMPLE_RATE"
# (label, variant, extra environment)
CASES = [
    ("(a) bare Prefect", "bare", {}),
    ("(c) this template, tracing off (unset)", "template", {}),
    ("(c) this template, tracing on (rate 1)", "template", {RATE: "1"}),
]


def tracing_cost(children: Children, seeds: int, sizes: tuple[int, int]) -> Table:
    valgrind = find_valgrind("the tracing count")
    by_cell = {}
    for seed in range(seeds):
        for tasks in sizes:
            for label, variant, extra in CASES:
                progress(f"tracing cost: {label}, {tasks} tasks, seed {seed}")
                by_cell[(label, tasks, seed)] = _count(
                    children, valgrind, variant, "local", tasks, seed, extra_environment=extra
                )
    counts = Counts(by_cell, sizes, seeds)
    small, large = sizes
    table = Table(
        title="Tracing cost in instructions: `flow.run()` of mapped no-op tasks, LocalExecutor",
        columns=["Variant", f"{small} tasks", f"{large} tasks", "vs (a)", "Per task, vs (a)"],
        notes=[f"Medians over PYTHONHASHSEED 0 to {seeds - 1}; ratios against (a), same seed."],
    )
    bare = CASES[0][0]
    for label, _, _ in CASES:
        table.rows.append(
            [
                label,
                f"{median(counts.each_seed(counts.small, label)) / 1e9:.4f} G",
                f"{median(counts.each_seed(counts.large, label)) / 1e9:.4f} G",
                f"{median(counts.ratios(counts.large, label, bare)):.4f}x",
                f"{median(counts.ratios(counts.per_task, label, bare)):.4f}x",
            ]
        )
    return table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracing_cost")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--counted-tasks", type=flow_sizes, default=(10, 50))
    args = parser.parse_args(argv)
    with standalone_project("template-benchmarks-tracing-", {}) as (scratch, project, python):
        children = Children(project, python, scratch)
        table = tracing_cost(children, args.seeds, args.counted_tasks)
    print("\n" + markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
