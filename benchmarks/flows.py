"""The child workload: one Prefect flow run in a fresh process, timed from inside.

Run by `run.py` with the Python of a baked project's `.venv` (Prefect 1, sentry-sdk and
the baked package are installed there), never imported by the orchestrator:

    python flows.py --variant template --executor local --tasks 1000 --fail-every 10 \
        --package daily_sales_report --result out.json

The flow is `items(n)` (a list of n integers) then `work.map(items)`: n mapped no-op
tasks. With `--fail-every k`, every task whose item is a multiple of k raises after
recording `time.time()` in its message, which is how the orchestrator measures the
time from a failure to its Sentry event. Variants:

- `bare`: a plain `prefect.Flow`; Sentry is never imported.
- `seed`: a plain `prefect.Flow` with the seed's `init_base_flow` upstream of the
  mapped task (`unmapped`, or Prefect would map over it): see seed_approach.py.
- `template`: the baked package's `MonitoredFlow`, wired as the generated flow.py does.

The Sentry variables (SENTRY_DSN and the others) come from the environment. With
`--callgrind-markers`, the run is bracketed by two libc calls that nothing else in it
makes, `getloadavg` before and `ctermid` after, for callgrind to count the
instructions of `flow.run()` alone (see instruction_counts.py); on the failing path, of
`flow.run()` and the flush that sends its events. `--gc-off` turns Python's cyclic
garbage collector off for the whole child: a diagnostic for counts at small sizes, where
one full collection more or less in a run moves a ratio by about a percent.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import time
from pathlib import Path

from prefect import Flow, Parameter, task, unmapped
from prefect.executors import LocalDaskExecutor, LocalExecutor

VARIANTS = ("bare", "seed", "template")
EXECUTORS = ("local", "threads")
FAILURE_PREFIX = "benchmark failure raised at "


def make_executor(name: str):
    if name == "local":
        return LocalExecutor()
    return LocalDaskExecutor(scheduler="threads")


def build_flow(variant: str, executor: str, tasks: int, fail_every: int, package: str) -> Flow:
    @task
    def items(n: int) -> list:
        return list(range(n))

    @task
    def work(item: int) -> int:
        if fail_every and item % fail_every == 0:
            raise RuntimeError(f"{FAILURE_PREFIX}{time.time()!r}")
        return item

    name = f"Benchmark {variant}"
    if variant == "template":
        monitoring = importlib.import_module(f"{package}.monitoring")
        with monitoring.MonitoredFlow(name, executor=make_executor(executor)) as flow:
            work.map(items(Parameter("n", default=tasks)))
    elif variant == "seed":
        from seed_approach import init_base_flow

        with Flow(name, executor=make_executor(executor)) as flow:
            numbers = items(Parameter("n", default=tasks))
            work.map(numbers, upstream_tasks=[unmapped(init_base_flow)])
    else:
        with Flow(name, executor=make_executor(executor)) as flow:
            work.map(items(Parameter("n", default=tasks)))
    return flow


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--package", required=True, help="the baked flow package")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON")
    parser.add_argument(
        "--callgrind-markers",
        action="store_true",
        help="call getloadavg() right before flow.run() and ctermid() right after",
    )
    parser.add_argument(
        "--gc-off", action="store_true", help="turn the cyclic garbage collector off first"
    )
    args = parser.parse_args(argv)
    if args.gc_off:
        gc.disable()

    flow = build_flow(args.variant, args.executor, args.tasks, args.fail_every, args.package)
    if args.callgrind_markers:
        os.getloadavg()  # callgrind --zero-before=getloadavg: the count starts here
    started = time.perf_counter()
    state = flow.run()
    flow_seconds = time.perf_counter() - started
    if args.callgrind_markers and args.fail_every and args.variant != "bare":
        import sentry_sdk

        sentry_sdk.flush()  # the events' sending belongs to the failing path's cost
    if args.callgrind_markers:
        os.ctermid()  # callgrind --dump-before=ctermid: the count of flow.run() ends here
    args.result.write_text(
        json.dumps(
            {
                "flow_seconds": flow_seconds,
                "flow_end": time.time(),
                "state": type(state).__name__,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
