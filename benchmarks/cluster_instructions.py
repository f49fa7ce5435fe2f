"""Part 9: the monitoring overhead of executor=dask_cluster, counted in instructions.

Part 5's count, on the path where tasks run in a process that is not the flow's: a
scheduler started with the distributed CLI (`dask scheduler`, not counted: it does the
same work whatever the flow) and one worker process with one thread, under callgrind,
as is the flow's own process. A project baked with executor=dask_cluster runs
`items(n)` then `work.map(items)`, n mapped no-op tasks, through the scheduler:

- (a) bare Prefect: a plain `prefect.Flow` with Prefect's `DaskExecutor(address=...)`;
- (c) this template: the baked `MonitoredFlow` with its `FlowRunDaskExecutor`, given
  the scheduler in DASK_SCHEDULER_ADDRESS, as a team with an existing scheduler runs it.
  Its SentryWorkerPlugin gives the worker the flow's SENTRY_* settings; the worker has
  the DSN in its own environment, as its operator would give it (workers never receive
  the DSN from the flow).

The count is what runs the flow and its tasks, from right before `flow.run()` to right
after it: the flow process's main thread, and the worker's thread for tasks (one, which
runs every task). The flow's child calls `os.getloadavg()` before the run and
`os.ctermid()` after it in its main thread and, as a task, in the worker's; callgrind
(`--separate-threads=yes`) turns them into a zero and a dump of that thread's counters
(part 5's markers). The worker has imported Prefect before the count starts, as a
worker that has run a flow before has; the template's own imports on the worker
(Sentry, the baked package) are counted. The seed's approach is left out: it starts
Sentry only in the flow's process, so on these workers it monitors nothing.

Left out: the event loops of both processes (messages, and timers: heartbeats, health
checks), the same work for (a) and (c) but for the run's length, since they wake on
timers: under callgrind a run takes minutes, and a worker and a flow process idle for
120 s counted 538 M and 107 M instructions in all their threads. `--idle N` counts the
threads that are counted while both processes wait N seconds: 1.3 M for 30 s, of which
1.2 M in the worker's task thread (measured with (a)).

    uv run python -m benchmarks.cluster_instructions [--seeds 3] [--counted-tasks 10,50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from baking import clean_environment

from .endpoints import timed_endpoint_class
from .harness import flow_sizes, median, progress
from .instruction_counts import Counts, callgrind, dumped_count, find_valgrind, median_and_highest
from .monitoring import OVERHEAD_GOAL, VARIANT_NAMES, environment
from .projects import DASK_CLUSTER, DEFAULT_PACKAGE, standalone_project
from .report import Table, markdown_table, verdict

VARIANTS = ("bare", "template")
SIZES = (10, 50)
PROJECTED = 1000
# Two cells at a time: each keeps about one core busy (its flow process and its worker
# take turns), and counts do not depend on what else runs.
PARALLEL = 2
STARTUP_SECONDS = 600  # a worker under callgrind takes a minute or more to join

# What a waiting worker, and the flow's client, do on their own, turned down (see the
# module docstring).
QUIET_DASK = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "30s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
}
WORKER = """
import asyncio, sys
from distributed import Worker

async def main(address):
    async with Worker(
        address, nthreads=1, host="127.0.0.1", memory_limit=0, heartbeat_interval="30s"
    ) as worker:
        await worker.finished()

asyncio.run(main(sys.argv[1]))
"""
FLOW = """
import importlib, json, os, sys
from distributed import Client
from prefect import Flow, Parameter, task

variant, tasks, idle, address = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

@task
def items(n):
    return list(range(n))

@task
def work(item):
    return item

if variant == "template":
    from {package}.deployment.executor import FlowRunDaskExecutor
    from {package}.monitoring import MonitoredFlow

    flow = MonitoredFlow("Cluster path", executor=FlowRunDaskExecutor())
else:
    from prefect.executors import DaskExecutor

    flow = Flow("Cluster path", executor=DaskExecutor(address=address))
with flow:
    work.map(items(Parameter("n", default=tasks)))

client = Client(address)


def on_the_worker(function):
    # in the worker's thread for tasks (it has one), where the flow's tasks run
    return client.submit(function, pure=False).result()


on_the_worker(lambda: bool(importlib.import_module("prefect")))  # as after a first flow
on_the_worker(os.getloadavg)  # callgrind --zero-before=getloadavg, in the worker
os.getloadavg()  # ... and here
if idle:
    import time

    time.sleep(idle)  # the worker waits, counted: its own work while a run takes this long
    ok = True
else:
    ok = flow.run().is_successful()
os.ctermid()  # callgrind --dump-before=ctermid, here
on_the_worker(os.ctermid)  # ... and in the worker
client.close()
print(json.dumps({{"ok": ok}}))
"""


def cluster_instructions(
    python: Path,
    project: Path,
    scratch: Path,
    seeds: int,
    sizes: tuple[int, int] = SIZES,
    projected: int = PROJECTED,
) -> tuple[Table, dict[str, float]]:
    """Part 9's table and figures: (c)'s count over (a)'s at two sizes and projected."""
    counter = _Counter(find_valgrind("part 9"), python, project, scratch)
    cells = [
        (variant, tasks, seed) for seed in range(seeds) for tasks in sizes for variant in VARIANTS
    ]
    with ThreadPoolExecutor(PARALLEL) as pool:
        by_cell = dict(zip(cells, pool.map(lambda cell: counter.count(*cell), cells), strict=True))
    counts = Counts(by_cell, sizes, seeds, projected)
    ratios = counts.against("template", "bare")
    small, large = sizes
    table = Table(
        title="Monitoring overhead in instructions on the dask_cluster path: the flow's "
        "process and one worker process, success path, Prefect logging at INFO",
        columns=[
            "Variant",
            f"{small} tasks",
            f"{large} tasks",
            "Per task",
            f"vs (a), {large} tasks",
            "Per task, vs (a)",
            f"vs (a), {projected:,} tasks (projected)",
            f"Goal: ≤ {OVERHEAD_GOAL:.2f}x",
        ],
        notes=[
            f"Counts: callgrind's, of the flow process's main thread and the worker's thread "
            f"for tasks, from right before `flow.run()` to right after it, median of {seeds} "
            f"runs with PYTHONHASHSEED 0 to {seeds - 1} (flow and worker alike). Every ratio "
            "divides by (a)'s count with the same seed; the table shows the median over the "
            "seeds and, in brackets, the highest. Per task and projected as in part 5.",
            "The scheduler's work is not counted: it is the same for (a) and (c), and counting "
            "it would only make the ratio smaller.",
        ],
    )
    for variant in VARIANTS:
        row = [
            VARIANT_NAMES[variant],
            f"{median(counts.each_seed(counts.small, variant)) / 1e9:.3f} G",
            f"{median(counts.each_seed(counts.large, variant)) / 1e9:.3f} G",
            f"{median(counts.each_seed(counts.per_task, variant)) / 1e6:.2f} M",
        ]
        if variant == "bare":
            row += ["–", "–", "–", "–"]
        else:
            row += [
                median_and_highest(ratios.measured),
                median_and_highest(ratios.per_task),
                median_and_highest(ratios.projected),
                verdict(ratios.worst() <= OVERHEAD_GOAL),
            ]
        table.rows.append(row)
    return table, ratios.figures()


class _Counter:
    """Counts one cell: a scheduler, a worker and a flow process of their own."""

    def __init__(self, valgrind: str, python: Path, project: Path, scratch: Path) -> None:
        self.valgrind = valgrind
        self.python = python
        self.project = project
        self.scratch = scratch
        self.endpoint_class = timed_endpoint_class(project)
        self.flow_code = FLOW.format(package=DEFAULT_PACKAGE)
        self.last: dict[str, int] = {}  # the last count's instructions, by process

    def count(self, variant: str, tasks: int, seed: int, idle: float = 0) -> int:
        """Instructions of the flow process and the worker during one flow run (or `idle` s)."""
        progress(f"cluster instructions: {variant}, {tasks} tasks, seed {seed}")
        folder = Path(tempfile.mkdtemp(prefix=f"cluster-{variant}-{tasks}-", dir=self.scratch))
        endpoint = self.endpoint_class()
        endpoint.start()
        processes: list[subprocess.Popen] = []
        try:
            address = self._start_scheduler(folder, processes)
            self._start_worker(folder, address, seed, endpoint.dsn, processes)
            # as part 5's children, and the scheduler's address for the template's executor
            env = environment(variant, endpoint.dsn, PYTHONHASHSEED=str(seed), **QUIET_DASK)
            if variant == "template":
                env["DASK_SCHEDULER_ADDRESS"] = address
            arguments = [variant, str(tasks), str(idle), address]  # as FLOW reads them
            command = callgrind(self.valgrind, folder / "flow.%p", "--separate-threads=yes")
            command += [str(self.python), "-c", self.flow_code, *arguments]
            with (folder / "flow.log").open("wb") as log:
                completed = subprocess.run(
                    command, env=env, cwd=self.project, stdout=subprocess.PIPE, stderr=log
                )
            lines = completed.stdout.decode().strip().splitlines()
            if completed.returncode != 0 or not lines or not json.loads(lines[-1])["ok"]:
                raise SystemExit(
                    f"the counted flow run failed ({completed.returncode}): see {folder}"
                )
            worker = _thread_counts(folder, "worker")
            flow = _thread_counts(folder, "flow")
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                process.wait(timeout=120)
            endpoint.stop()
        # callgrind dumps the thread that reaches the marker: in the flow process its main
        # thread, which runs the flow; in the worker the thread that runs its tasks.
        self.last = {"flow": sum(flow.values()), "worker": sum(worker.values())}
        return self.last["flow"] + self.last["worker"]

    def _start_scheduler(self, folder: Path, processes: list[subprocess.Popen]) -> str:
        scheduler_file = folder / "scheduler.json"
        command = [str(self.python.parent / "dask"), "scheduler", "--host", "127.0.0.1"]
        command += ["--port", "0", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
        command += ["--scheduler-file", str(scheduler_file)]
        env = clean_environment(DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL="1 hour")
        processes.append(self._popen(command, env, folder / "scheduler.log"))
        _wait_until(lambda: _address(scheduler_file), "the scheduler to start", folder)
        return _address(scheduler_file)

    def _start_worker(
        self, folder: Path, address: str, seed: int, dsn: str, processes: list[subprocess.Popen]
    ) -> None:
        command = callgrind(self.valgrind, folder / "worker.%p", "--separate-threads=yes")
        command += [str(self.python), "-c", WORKER, address]
        # The worker's own settings, as its operator gives them: the DSN, not the rest.
        env = clean_environment(
            PYTHONHASHSEED=str(seed), PREFECT__LOGGING__LEVEL="INFO", SENTRY_DSN=dsn, **QUIET_DASK
        )
        processes.append(self._popen(command, env, folder / "worker.log"))
        probe = [
            str(self.python),
            "-c",
            f"from distributed import Client; Client({address!r}).wait_for_workers(1)",
        ]
        completed = subprocess.run(
            probe,
            env=clean_environment(),
            cwd=self.project,
            capture_output=True,
            timeout=STARTUP_SECONDS,
        )
        if completed.returncode != 0:
            raise SystemExit(f"the worker did not join the scheduler: see {folder}")

    def _popen(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with log.open("wb") as output:
            return subprocess.Popen(
                command, env=env, cwd=self.project, stdout=output, stderr=subprocess.STDOUT
            )


def _wait_until(condition: Callable[[], bool], what: str, folder: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}: see {folder}")
        time.sleep(0.2)


def _address(scheduler_file: Path) -> str | None:
    """The scheduler's address, once its file is written whole."""
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


def _thread_counts(folder: Path, name: str) -> dict[int, int]:
    """callgrind's counts at the ctermid marker, by thread (`<name>.<pid>.1-<thread>`)."""

    def dumps() -> list[Path]:
        return [path for path in folder.glob(f"{name}.*.1-*") if "summary:" in path.read_text()]

    _wait_until(dumps, f"callgrind's count of the {name}", folder)
    return {int(path.name.rsplit("-", 1)[1]): dumped_count(path) for path in dumps()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster_instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seeds", type=int, default=3, help="PYTHONHASHSEED 0 to N-1")
    parser.add_argument("--counted-tasks", type=flow_sizes, default=SIZES)
    parser.add_argument(
        "--idle", type=float, default=0, help="instead: count a worker idle for this many seconds"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    prefix = "template-benchmarks-cluster-"
    with standalone_project(prefix, DASK_CLUSTER, args.keep) as (scratch, project, python):
        if args.idle:
            counter = _Counter(find_valgrind("part 9"), python, project, scratch)
            total = counter.count("bare", 0, 0, idle=args.idle)
            parts = ", ".join(f"{name} {count / 1e6:.1f} M" for name, count in counter.last.items())
            print(
                f"a flow process and an idle worker, {args.idle:g} s: {total / 1e6:.1f} M ({parts})"
            )
            return 0
        table, _ = cluster_instructions(python, project, scratch, args.seeds, args.counted_tasks)
    print("\n" + markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
