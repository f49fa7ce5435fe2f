"""Part 7: a failure storm, one task mapped over thousands of items that all fail.

The same flow without Sentry, (a), against this template, (c): how many events reach
the endpoint, what the last one says about the failures not sent, the flow run's
seconds, and (callgrind, as part 5) its instructions with the final flush.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .harness import median, progress, run_process
from .instruction_counts import _count
from .monitoring import Children
from .report import Table

STORM_FAILURES = 2000  # mapped children, every one failing
COUNTED_FAILURES = 200  # the same storm, smaller, under callgrind


def storm(children: Children, repeats: int) -> tuple[list[Table], dict[str, float]]:
    """Part 7: events sent, the total reported, wall and instruction ratios against (a)."""
    seconds: dict[str, list[float]] = {"bare": [], "template": []}
    sent: list[int] = []
    reported: list[int] = []
    for repeat in range(repeats):
        for variant in ("bare", "template"):
            progress(f"storm: {variant}, repeat {repeat + 1}")
            flow_seconds, events = _run(children, variant)
            seconds[variant].append(flow_seconds)
            if variant == "template":
                single = [event for event in events if event.get("exception")]
                summaries = [event for event in events if not event.get("exception")]
                sent.append(len(single))
                reported.append(
                    len(single) + sum(e["contexts"]["failures"]["not_sent"] for e in summaries)
                )
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("part 7 needs valgrind: `apt-get install valgrind`, or leave out 7")
    counts = {
        variant: _count(children, valgrind, variant, "local", COUNTED_FAILURES, 0, fail_every=1)
        for variant in ("bare", "template")
    }
    figures = {
        "events": median(sent),
        "reported": median(reported),
        "seconds_ratio": median(seconds["template"]) / median(seconds["bare"]),
        "instructions_ratio": counts["template"] / counts["bare"],
    }
    table = Table(
        title=f"A failure storm: {STORM_FAILURES:,} mapped tasks that all fail, LocalExecutor",
        columns=["What", "(a) bare Prefect", "(c) this template"],
        rows=[
            ["events received (median)", "–", f"{figures['events']:.0f}"],
            ["failures the events account for", "–", f"{figures['reported']:.0f}"],
            [
                "`flow.run()` seconds (median)",
                f"{median(seconds['bare']):.2f} s",
                f"{median(seconds['template']):.2f} s ({figures['seconds_ratio']:.3f}x)",
            ],
            [
                f"instructions of `flow.run()` and the flush, {COUNTED_FAILURES} failing tasks",
                f"{counts['bare'] / 1e9:.3f} G",
                f"{counts['template'] / 1e9:.3f} G ({figures['instructions_ratio']:.3f}x)",
            ],
        ],
        notes=[
            f"Seconds: median of {repeats} runs of each. Failures accounted for: the events "
            "of single failures plus the failures that the summary events count as not sent.",
            "Instructions: one callgrind run each, PYTHONHASHSEED=0.",
        ],
    )
    return [table], figures


def _run(children: Children, variant: str) -> tuple[float, list[dict]]:
    folder = Path(tempfile.mkdtemp(prefix=f"storm-{variant}-", dir=children.scratch))
    server = children.endpoint_class()
    server.start()
    try:
        command = children.command(variant, "local", STORM_FAILURES, 1, folder / "result.json")
        with (folder / "child.log").open("wb") as log:
            process = run_process(
                command,
                env=children.environment(variant, server.dsn),
                cwd=children.baked[variant].project,
                log=log,
            )
        if process.returncode != 0:
            raise SystemExit(f"storm child failed ({process.returncode}): see {folder}")
        result = json.loads((folder / "result.json").read_text())
        # The child has ended: whatever it sent has arrived.
        return result["flow_seconds"], server.events()
    finally:
        server.stop()
