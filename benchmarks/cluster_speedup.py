"""Part 8: scaling out with executor=dask_cluster, on 1, 2 and 4 local worker processes.

A project baked with executor=dask_cluster runs one flow of 200 mapped tasks, each
50 ms of blocking CPU work (CPU time, `time.thread_time()`), through its own
`FlowRunDaskExecutor` on the LocalCluster it creates (DASK_MIN_WORKERS =
DASK_MAX_WORKERS = n). For each n, in one run: the flow run's wall time (creating and
closing the cluster included), the span from the first task's start to the last one's
end, and the speed-up of both against one worker. A machine with fewer cores than
workers cannot go faster than its cores.

    uv run python -m benchmarks.cluster_speedup [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from baking import clean_environment

from .harness import median, round_robin
from .projects import DASK_CLUSTER, DEFAULT_PACKAGE, standalone_project
from .report import Table, markdown_table

TASKS = 200
TASK_SECONDS = 0.05
WORKERS = (1, 2, 4)

CHILD = """
import json, os, time
from prefect import task
from {package}.deployment.executor import FlowRunDaskExecutor
from {package}.monitoring import MonitoredFlow

@task
def work(i):
    started = time.time()
    # 50 ms of the CPU, not of the clock: a worker that shares a core with another
    # takes longer, as real work would (a loop on the clock ends on time either way).
    end = time.thread_time() + {seconds}
    while time.thread_time() < end:  # blocking work: holds the worker's one thread
        pass
    return os.getpid(), started, time.time()

with MonitoredFlow("Scale out", executor=FlowRunDaskExecutor()) as flow:
    spans = work.map(list(range({tasks})))

began = time.perf_counter()
state = flow.run()
seconds = time.perf_counter() - began
results = state.result[spans].result
print(json.dumps({{
    "ok": state.is_successful(),
    "seconds": seconds,
    "span": max(r[2] for r in results) - min(r[1] for r in results),
    "processes": len({{r[0] for r in results}}),
}}))
"""


def scale_out(python: Path, project: Path, repeats: int) -> tuple[Table, dict]:
    """Part 8's table and figures: medians per worker count, and speed-ups against 1."""
    code = CHILD.format(package=DEFAULT_PACKAGE, seconds=TASK_SECONDS, tasks=TASKS)

    def measure(count: int) -> dict:
        env = clean_environment(
            DASK_CLUSTER="local", DASK_MIN_WORKERS=str(count), DASK_MAX_WORKERS=str(count)
        )
        completed = subprocess.run(
            [str(python), "-c", code], cwd=project, env=env, capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise SystemExit(f"the flow run failed:\n{completed.stderr[-3000:]}")
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        if not result["ok"]:
            raise SystemExit(f"the flow run did not succeed:\n{completed.stderr[-3000:]}")
        return result

    samples = round_robin(WORKERS, repeats, measure, "dask cluster")
    figures = {
        count: {
            "seconds": median([s["seconds"] for s in runs]),
            "span": median([s["span"] for s in runs]),
            "processes": max(s["processes"] for s in runs),
        }
        for count, runs in samples.items()
    }
    one = figures[WORKERS[0]]
    rows = [
        [
            str(count),
            str(figure["processes"]),
            f"{figure['seconds']:.2f} s",
            f"{one['seconds'] / figure['seconds']:.2f}x",
            f"{figure['span']:.2f} s",
            f"{one['span'] / figure['span']:.2f}x",
        ]
        for count, figure in figures.items()
    ]
    table = Table(
        title=f"{TASKS} mapped tasks of {TASK_SECONDS * 1000:.0f} ms of blocking work, "
        f"executor=dask_cluster on a LocalCluster (median of {repeats}, {os.cpu_count()} cores)",
        columns=[
            "workers",
            "processes that ran tasks",
            "flow run",
            "speed-up",
            "first task to last",
            "speed-up",
        ],
        rows=rows,
    )
    return table, figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster_speedup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    with standalone_project("template-benchmarks-dask-", DASK_CLUSTER, args.keep) as baked:
        _, project, python = baked
        table, _ = scale_out(python, project, args.repeats)
    print("\n" + markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
