"""How every figure is taken: fresh processes, round-robin repeats, medians.

Each sample is one child process, started through launch.py: its wall time and its
own peak memory (`ru_maxrss` from `os.wait4`, free of the orchestrator's own).
`round_robin` runs every variant once per repeat, in an order shuffled with a fixed
seed, so that whatever else the machine does hits every variant alike.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median, quantiles
from typing import IO, Any

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent / "launch.py"
SHUFFLE_SEED = 20221205  # fixed: the same order on every run; Prefect 1.4.1's release date


@dataclass
class Process:
    """One finished child process, as seen from the parent."""

    returncode: int
    seconds: float
    end: float  # time.time() when it was reaped
    max_rss_mib: float
    marks: dict[str, float] = field(default_factory=dict)  # line marker -> seconds from start


def run_process(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    log: IO[bytes] | None = None,
    marks: Mapping[str, str] | None = None,
) -> Process:
    """Run `command` to completion through launch.py: its wall time and own peak memory.

    `marks` maps a name to a regular expression for an output line (a command that make
    echoes): the seconds from the command's start to the first line it matches are
    recorded under that name. Output goes to `log` (or nowhere).
    """
    with tempfile.TemporaryDirectory(prefix="launch-") as folder:
        report = Path(folder) / "process.json"
        launcher = [sys.executable, "-S", "-E", str(LAUNCHER), str(report), "--", *command]
        stdout = subprocess.PIPE if marks else (log or subprocess.DEVNULL)
        process = subprocess.Popen(
            launcher, cwd=cwd, env=dict(env), stdout=stdout, stderr=subprocess.STDOUT
        )
        seen: dict[str, float] = {}  # time.time() of each mark's line
        if marks:
            for line in process.stdout:
                now = time.time()
                if log:
                    log.write(line)
                text = line.decode(errors="replace").strip()
                for name, pattern in marks.items():
                    if name not in seen and re.search(pattern, text):
                        seen[name] = now
            process.stdout.close()
        if process.wait() != 0 or not report.exists():
            raise RuntimeError(f"launch.py failed ({process.returncode}) for {command}")
        launched = json.loads(report.read_text())
    return Process(
        returncode=launched["returncode"],
        seconds=launched["seconds"],
        end=launched["end"],
        max_rss_mib=launched["max_rss_kib"] / 1024,  # KiB on Linux
        marks={name: when - launched["started"] for name, when in seen.items()},
    )


def round_robin(
    cells: Iterable[Hashable],
    repeats: int,
    measure: Callable[[Any], Any],
    label: str,
) -> dict[Any, list[Any]]:
    """`measure(cell)` `repeats` times for every cell, interleaved and shuffled."""
    cells = list(cells)
    rng = random.Random(SHUFFLE_SEED)
    samples: dict[Any, list[Any]] = {cell: [] for cell in cells}
    total = repeats * len(cells)
    done = 0
    for repeat in range(repeats):
        order = cells[:]
        rng.shuffle(order)
        for cell in order:
            done += 1
            progress(f"{label}: repeat {repeat + 1}/{repeats}, run {done}/{total}: {cell}")
            samples[cell].append(measure(cell))
    return samples


def spread(values: Sequence[float]) -> float:
    """Half the interquartile range, relative to the median: the run-to-run noise."""
    quartiles = quantiles(values, n=4, method="inclusive")
    return (quartiles[2] - quartiles[0]) / 2 / median(values)


def flow_sizes(text: str) -> tuple[int, int]:
    """The two flow sizes of the counts in instructions (`--counted-tasks`), smaller first."""
    try:
        small, large = (int(size) for size in text.split(","))
    except ValueError:
        small = large = -1
    if not 0 <= small < large:
        raise argparse.ArgumentTypeError(f"{text!r}: two flow sizes, smaller first (e.g. 10,50)")
    return small, large


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
