"""Part 7: a failure storm, one task mapped over thousands of items that all fail.

The same flow without Sentry, (a), against this template, (c): how many events reach
the endpoint, what the last one says about the failures not sent, the flow run's
seconds, and (callgrind, as part 5) its instructions with the final flush.
"""

from __future__ import annotations

from .harness import median, progress
from .instruction_counts import _count, find_valgrind
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
            # The child has ended when run() returns: whatever it sent has arrived.
            run = children.run(variant, tasks=STORM_FAILURES, fail_every=1)
            seconds[variant].append(run.flow_seconds)
            if variant == "template":
                single = [event for event in run.events if event.get("exception")]
                summaries = [event for event in run.events if not event.get("exception")]
                sent.append(len(single))
                reported.append(
                    len(single) + sum(e["contexts"]["failures"]["not_sent"] for e in summaries)
                )
    valgrind = find_valgrind("part 7")
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
