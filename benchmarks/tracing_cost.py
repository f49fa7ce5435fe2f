"""What opt-in tracing costs, in instructions: part 5's count of `flow.run()`, for bare
Prefect and this template with SENTRY_TRACES_SAMPLE_RATE unset (off) and 1 (every run).

`python -m benchmarks.tracing_cost [--project P]`: P a default bake already synced (the
template's own `uv sync`), or a fresh bake in a scratch folder. Mapped no-op tasks on
LocalExecutor, as in part 5: a traced run sends the flow's span, three children's and
the map's summary, whatever the number of tasks. Needs valgrind.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .harness import median, progress
from .instruction_counts import _count
from .monitoring import Baked, Children
from .projects import Baker, python_interpreter, sync
from .report import Table, text_table

DEFAULT_PACKAGE = "daily_sales_report"
RATE = "SENTRY_TRACES_SAMPLE_RATE"
# (label, variant, extra environment)
CASES = [
    ("(a) bare Prefect", "bare", {}),
    ("(c) this template, tracing off (unset)", "template", {}),
    ("(c) this template, tracing on (rate 1)", "template", {RATE: "1"}),
]


def tracing_cost(children: Children, seeds: int, sizes: tuple[int, int]) -> Table:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("needs valgrind: `apt-get install valgrind`")
    counts = {}
    for seed in range(seeds):
        for tasks in sizes:
            for label, variant, extra in CASES:
                progress(f"tracing cost: {label}, {tasks} tasks, seed {seed}")
                counts[(label, tasks, seed)] = _count(
                    children, valgrind, variant, "local", tasks, seed, extra_environment=extra
                )
    small, large = sizes
    table = Table(
        title="Tracing cost in instructions: `flow.run()` of mapped no-op tasks, LocalExecutor",
        columns=["Variant", f"{small} tasks", f"{large} tasks", "vs (a)", "Per task, vs (a)"],
        notes=[f"Medians over PYTHONHASHSEED 0 to {seeds - 1}; ratios against (a), same seed."],
    )
    bare = CASES[0][0]

    def ratio(label: str, seed: int) -> float:
        return counts[(label, large, seed)] / counts[(bare, large, seed)]

    def per_task(label: str, seed: int) -> float:
        return (counts[(label, large, seed)] - counts[(label, small, seed)]) / (large - small)

    for label, _, _ in CASES:
        table.rows.append(
            [
                label,
                f"{median([counts[(label, small, s)] for s in range(seeds)]) / 1e9:.4f} G",
                f"{median([counts[(label, large, s)] for s in range(seeds)]) / 1e9:.4f} G",
                f"{median([ratio(label, s) for s in range(seeds)]):.4f}x",
                f"{median([per_task(label, s) / per_task(bare, s) for s in range(seeds)]):.4f}x",
            ]
        )
    return table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracing_cost")
    parser.add_argument("--project", type=Path, help="a default bake, already synced")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--counted-tasks", default="10,50")
    args = parser.parse_args(argv)
    sizes = tuple(int(size) for size in args.counted_tasks.split(","))
    scratch = Path(tempfile.mkdtemp(prefix="template-benchmarks-tracing-"))
    try:
        if args.project:
            project = args.project.resolve()
            python = project / ".venv" / "bin" / "python"
        else:
            _, project = Baker(scratch).bake(Path(__file__).resolve().parents[1], {})
            python = sync(project, python_interpreter("3.13"))
        children = Children(Baked(project, python, DEFAULT_PACKAGE), scratch)
        table = tracing_cost(children, args.seeds, sizes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n" + text_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
