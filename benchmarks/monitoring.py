"""Parts 1 and 2: what monitoring costs a flow run, and how fast a failure alerts.

Every sample is a fresh child process running flows.py with a baked project's Python.
The Sentry endpoint lives here, in the parent, so the SDK's transport really sends
every event over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from baking import clean_environment

from .endpoints import BlackHole, timed_endpoint_class
from .harness import median, round_robin, run_process
from .projects import DEFAULT_PACKAGE
from .report import Table, noise, ratio, seconds, verdict

FLOWS = Path(__file__).resolve().parent / "flows.py"
VARIANT_NAMES = {
    "bare": "(a) bare Prefect",
    "seed": "(b) seed's approach",
    "template": "(c) this template",
}
EXECUTOR_NAMES = {"local": "LocalExecutor", "threads": 'LocalDaskExecutor("threads")'}
FAIL_EVERY = 10  # the failing path: one task in ten raises
OVERHEAD_GOAL = 1.02  # (c) / (a) on the success path
DEFAULT_SHUTDOWN_TIMEOUT = 2.0  # the SDK's, and the template's when the variable is unset
EXIT_SLACK = 0.1  # seconds the exit may exceed the shutdown timeout
SENTRY_VARIABLES = {
    "SENTRY_REGION": "eu-west-1",
    "SENTRY_ENVIRONMENT": "benchmark",
    "SENTRY_RELEASE": "0123abc",
}


@dataclass
class Sample:
    process_seconds: float
    flow_seconds: float
    exit_seconds: float  # from flow.run() returning to the process being reaped
    max_rss_mib: float
    events: list[dict]  # the error events the endpoint received
    latencies: list[float]


class Children:
    """Runs flows.py children, each against an endpoint of its own.

    (a), (b) and (c) run in the template's baked project (a default bake), with the
    Python of its .venv, in table order.
    """

    def __init__(self, project: Path, python: Path, scratch: Path) -> None:
        self.project = project
        self.python = python
        self.variants = list(VARIANT_NAMES)
        self.monitored = [variant for variant in self.variants if variant != "bare"]
        self.scratch = scratch
        self.endpoint_class = timed_endpoint_class(project)
        self._count = 0

    def run(
        self,
        variant: str,
        executor: str = "local",
        tasks: int = 1000,
        fail_every: int = 0,
        endpoint: str = "healthy",
        shutdown_timeout: str | None = None,
    ) -> Sample:
        self._count += 1
        result = self.scratch / f"flow-{self._count:04d}.json"
        log = self.scratch / f"flow-{self._count:04d}.log"
        server = self.endpoint_class() if endpoint == "healthy" else BlackHole()
        server.start()
        command = self.command(variant, executor, tasks, fail_every, result)
        env = environment(variant, server.dsn, shutdown_timeout)
        try:
            with log.open("wb") as output:
                process = run_process(command, env=env, cwd=self.project, log=output)
            if process.returncode != 0 or not result.exists():
                raise SystemExit(f"benchmark child failed ({process.returncode}): see {log}")
            child = json.loads(result.read_text())
            healthy = endpoint == "healthy"
            return Sample(
                process_seconds=process.seconds,
                flow_seconds=child["flow_seconds"],
                exit_seconds=process.end - child["flow_end"],
                max_rss_mib=process.max_rss_mib,
                events=server.events() if healthy else [],
                latencies=server.failure_latencies() if healthy else [],
            )
        finally:
            server.stop()

    def command(
        self, variant: str, executor: str, tasks: int, fail_every: int, result: Path
    ) -> list[str]:
        """The flows.py command line of one child."""
        return [
            str(self.python),
            str(FLOWS),
            f"--variant={variant}",
            f"--executor={executor}",
            f"--tasks={tasks}",
            f"--fail-every={fail_every}",
            f"--package={DEFAULT_PACKAGE}",
            f"--result={result}",
        ]


def environment(
    variant: str, dsn: str, shutdown_timeout: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of one child: Prefect at INFO; Sentry's variables when monitored."""
    variables = {"PREFECT__LOGGING__LEVEL": "INFO", **extra}
    if variant != "bare":
        variables.update(SENTRY_VARIABLES, SENTRY_DSN=dsn)
    if shutdown_timeout is not None:
        variables["SENTRY_SHUTDOWN_TIMEOUT"] = shutdown_timeout
    return clean_environment(**variables)


def overhead(children: Children, repeats: int, tasks: int) -> tuple[list[Table], dict]:
    """Part 1: every variant, two executors, success and failing paths."""
    paths = (0, FAIL_EVERY)
    cells = [
        (variant, executor, fail_every)
        for executor in EXECUTOR_NAMES
        for fail_every in paths
        for variant in children.variants
    ]
    samples = round_robin(
        cells,
        repeats,
        lambda cell: children.run(cell[0], cell[1], tasks=tasks, fail_every=cell[2]),
        "monitoring overhead",
    )
    table = Table(
        title=f"Monitoring overhead: {tasks:,} mapped no-op tasks, Prefect logging at INFO",
        columns=[
            "Executor",
            "Path",
            "Variant",
            "Flow run",
            "vs (a)",
            "Noise",
            "Fastest, vs (a)",
            "Process",
            "vs (a)",
            "Peak RSS",
            "vs (a)",
            "Events",
        ],
        notes=[
            "Flow run: `flow.run()` timed inside the child. Process: the child from spawn to "
            "exit (imports and Sentry's exit drain included). Peak RSS: the child's own "
            "`ru_maxrss`, free of the orchestrator's (see launch.py). Medians; ratios "
            "against (a) in the same run.",
            "Noise: half the interquartile range of the flow-run times, relative to their median. "
            "Fastest: the fastest flow run of the variant against the fastest of (a). This "
            "machine has slow spells of seconds, which lengthen whatever runs in them: the "
            "fastest runs are those that met the fewest.",
            "Events: events the loopback endpoint received per run (median), against the "
            "task failures in each run.",
        ],
    )
    figures: dict = {}
    for executor, executor_name in EXECUTOR_NAMES.items():
        for fail_every in paths:
            path = "success" if not fail_every else f"{100 // FAIL_EVERY} % fail"
            base = samples[("bare", executor, fail_every)]
            base_flow_runs = [s.flow_seconds for s in base]
            base_flow = median(base_flow_runs)
            base_process = median([s.process_seconds for s in base])
            base_rss = median([s.max_rss_mib for s in base])
            for variant in children.variants:
                runs = samples[(variant, executor, fail_every)]
                flow = [s.flow_seconds for s in runs]
                process = [s.process_seconds for s in runs]
                rss = [s.max_rss_mib for s in runs]
                failures = len(range(0, tasks, fail_every)) if fail_every else 0
                events = median([len(s.events) for s in runs])
                table.rows.append(
                    [
                        executor_name,
                        path,
                        VARIANT_NAMES[variant],
                        seconds(median(flow)),
                        ratio(median(flow), base_flow),
                        noise(flow),
                        ratio(min(flow), min(base_flow_runs)),
                        seconds(median(process)),
                        ratio(median(process), base_process),
                        f"{median(rss):.0f} MiB",
                        ratio(median(rss), base_rss),
                        "–" if variant == "bare" else f"{events:.0f} / {failures}",
                    ]
                )
                figures[(variant, executor, fail_every)] = {
                    "flow_ratio": median(flow) / base_flow,
                    "fastest_ratio": min(flow) / min(base_flow_runs),
                    "latencies": [s.latencies for s in runs],
                }
    seed_ratios = ", ".join(
        f"{figures[('seed', executor, 0)]['flow_ratio']:.3f}x with {name}"
        for executor, name in EXECUTOR_NAMES.items()
    )
    goals = Table(
        title="Goals: monitoring overhead on the success path (flow run, median)",
        columns=[
            "Executor",
            "Variant",
            "vs (a)",
            f"Goal: ≤ {OVERHEAD_GOAL:.2f}x",
            "Goal: below (b)",
            "Fastest, vs (a)",
        ],
        notes=[
            f"(b), the seed's approach, measured in the same run: {seed_ratios}.",
            "Part 5 counts the instructions of the same flow runs, which the machine's slow "
            "spells do not change.",
        ],
    )
    for executor, executor_name in EXECUTOR_NAMES.items():
        seed = figures[("seed", executor, 0)]["flow_ratio"]
        template = figures[("template", executor, 0)]
        goals.rows.append(
            [
                executor_name,
                VARIANT_NAMES["template"],
                f"{template['flow_ratio']:.3f}x",
                verdict(template["flow_ratio"] <= OVERHEAD_GOAL),
                verdict(template["flow_ratio"] < seed) + f" ({seed:.3f}x)",
                f"{template['fastest_ratio']:.3f}x",
            ]
        )
    return [table, goals], figures


def failure_to_alert(
    children: Children, repeats: int, overhead_figures: dict | None
) -> tuple[list[Table], dict]:
    """Part 2: from a task raising to its event arriving; exit with a hanging Sentry."""
    cells = [
        (variant, endpoint, None)
        for variant in children.monitored
        for endpoint in ("healthy", "black hole")
    ]
    cells.append(("template", "black hole", "1"))
    samples = round_robin(
        cells,
        repeats,
        lambda cell: children.run(
            cell[0], tasks=1, fail_every=1, endpoint=cell[1], shutdown_timeout=cell[2]
        ),
        "failure to alert",
    )
    latency = Table(
        title="Failure to alert: from a task raising to its event reaching the endpoint",
        columns=["Variant", "Workload", "Median", "Slowest in a run (median over runs)"],
        notes=[
            "The task records `time.time()` in its exception message before raising; the "
            "endpoint records when the envelope carrying the event has arrived.",
        ],
    )
    figures: dict = {"latency": {}}
    for variant in children.monitored:
        runs = [s.latencies for s in samples[(variant, "healthy", None)]]
        latency.rows.append([VARIANT_NAMES[variant], "one failing task", *_latencies(runs)])
        figures["latency"][variant] = median([lat for run in runs for lat in run] or [0.0])
        if overhead_figures:
            for executor, executor_name in EXECUTOR_NAMES.items():
                burst = overhead_figures[(variant, executor, FAIL_EVERY)]["latencies"]
                workload = f"{100 // FAIL_EVERY} % of the mapped tasks fail, {executor_name}"
                latency.rows.append([VARIANT_NAMES[variant], workload, *_latencies(burst)])

    exit_table = Table(
        title="Process exit when Sentry accepts connections but never answers",
        columns=[
            "Variant",
            "Shutdown timeout",
            "Exit, healthy",
            "Exit, hanging",
            "Extra",
            "Extra over the timeout",
            "Goal",
        ],
        notes=[
            "Exit: from `flow.run()` returning (one failing task) to the process being "
            "reaped, median. Hanging: a socket on 127.0.0.1 that accepts connections and "
            "never replies. Extra: hanging minus healthy.",
            f"Goal: the extra time is bounded by the shutdown timeout (met when at most "
            f"{EXIT_SLACK * 1000:.0f} ms over it).",
        ],
    )
    exits = [(variant, None) for variant in children.monitored] + [("template", "1")]
    for variant, timeout in exits:
        healthy = median([s.exit_seconds for s in samples[(variant, "healthy", None)]])
        hanging = median([s.exit_seconds for s in samples[(variant, "black hole", timeout)]])
        extra = hanging - healthy
        bound = float(timeout) if timeout else DEFAULT_SHUTDOWN_TIMEOUT
        if timeout:
            label = f"{timeout} s (SENTRY_SHUTDOWN_TIMEOUT={timeout})"
        elif variant == "seed":
            label = f"{DEFAULT_SHUTDOWN_TIMEOUT:g} s (the SDK's default)"
        else:
            label = f"{DEFAULT_SHUTDOWN_TIMEOUT:g} s (SENTRY_SHUTDOWN_TIMEOUT unset)"
        exit_table.rows.append(
            [
                VARIANT_NAMES[variant],
                label,
                seconds(healthy),
                seconds(hanging),
                seconds(extra),
                f"{(extra - bound) * 1000:+.0f} ms",
                verdict(extra <= bound + EXIT_SLACK),
            ]
        )
        figures[(variant, timeout)] = {"extra": extra, "bound": bound}
    return [latency, exit_table], figures


def _latencies(runs: list[list[float]]) -> list[str]:
    every = [latency for run in runs for latency in run]
    slowest = [max(run) for run in runs if run]
    if not every:
        return ["no event", "–"]
    return [_ms(median(every)), _ms(median(slowest))]


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"
