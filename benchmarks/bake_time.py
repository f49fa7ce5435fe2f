"""Parts 3 and 4: baking a project, and baking it through to a green `make test`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from baking import clean_environment

from .harness import median, progress, round_robin, run_process
from .projects import LARGEST, LONG_FLOW_NAME, LONG_SLUG, LONG_TEXT, Baker, make_floor_template
from .report import Table, noise, ratio, seconds, verdict

DEFAULT_ANSWERS = "default answers"
ANSWER_SETS = {DEFAULT_ANSWERS: {}, "largest answers": LARGEST}  # in table order
BAKE_GOAL = 1.0  # seconds, default and largest answers
GREEN_GOAL = 30.0  # seconds, bake + install + lint + tests
# What make echoes as it starts each step of `make test` (the baked Makefile; uv may be
# called by its full path).
MAKE_STEPS = {
    "install": r"\buv sync\b",
    "lint": r"\buv run ruff check\b",
    "tests": r"\buv run pytest\b",
}


def bake(baker: Baker, template: Path, repeats: int) -> tuple[list[Table], dict]:
    """Part 3: the cookiecutter CLI on the floor template, the defaults, the largest answers."""
    floor = make_floor_template(baker.scratch)
    cells = {"floor": (floor, {})}
    cells |= {name: (template, answers) for name, answers in ANSWER_SETS.items()}
    written: dict[str, int] = {}

    def measure(cell: str):
        template, answers = cells[cell]
        process, project = baker.bake(template, answers)
        written[cell] = sum(
            1
            for path in project.rglob("*")
            if path.is_file() and ".git" not in path.relative_to(project).parts
        )
        shutil.rmtree(project.parent)
        return process

    measure("floor")  # warm-up: Python writes the bytecode of cookiecutter's imports
    samples = round_robin(list(cells), repeats, measure, "bake")
    base = median([p.seconds for p in samples["floor"]])
    table = Table(
        title="Bake: `cookiecutter --no-input -o DIR TEMPLATE [answers]`, in a fresh process",
        columns=["Template and answers", "Files", "Wall", "vs floor", "Noise", "Peak RSS", "Goal"],
        notes=[
            "Wall: the cookiecutter CLI from spawn to exit (interpreter start, imports, "
            "rendering, hooks). Largest: run_config=ecs, executor=dask_cluster, every "
            f"free-text answer {len(LONG_TEXT)} characters and every bounded one at its "
            f"limit, but flow_slug {len(LONG_SLUG)} and flow_name {len(LONG_FLOW_NAME)} "
            "characters: longer ones bake a project that fails its own lint (lines over 100 "
            "characters).",
            "Python keeps the bytecode of what it imports, as it does unless told not to, "
            "after one untimed warm-up bake. This machine sets PYTHONDONTWRITEBYTECODE=1, "
            "which the harness unsets for cookiecutter: with it, every run would compile "
            "cookiecutter and Jinja again.",
            f"Goal: under {BAKE_GOAL:g} s for this template's bakes.",
        ],
    )
    figures = {}
    for cell in cells:
        wall = [p.seconds for p in samples[cell]]
        figures[cell] = median(wall)
        table.rows.append(
            [
                "floor: a one-file template" if cell == "floor" else cell,
                str(written[cell]),
                seconds(median(wall)),
                ratio(median(wall), base),
                noise(wall),
                f"{median([p.max_rss_mib for p in samples[cell]]):.0f} MiB",
                "–" if cell == "floor" else verdict(median(wall) < BAKE_GOAL),
            ]
        )
    return [table], figures


def bake_to_green(
    baker: Baker, template: Path, repeats: int, python: str
) -> tuple[list[Table], dict]:
    """Part 4: bake, then the baked `make test` in a fresh .venv, with a warm uv cache.

    A `make test` that fails is a result too: it is counted, its output's end is
    printed, and the run goes on. Only green runs are timed.
    """

    def measure(cell: str) -> dict:
        baked, project = baker.bake(template, ANSWER_SETS[cell])
        log_path = project.parent.with_suffix(".make.log")
        with log_path.open("wb") as log:
            make = run_process(
                ["make", "test"],
                cwd=project,
                # pytest reads PYTEST_ADDOPTS: its slowest tests, for the page.
                env=clean_environment(UV_PYTHON=python, PYTEST_ADDOPTS=f"--durations={SLOWEST}"),
                log=log,
                marks=MAKE_STEPS,
            )
        output = log_path.read_text(errors="replace")
        shutil.rmtree(project.parent)
        summary = _pytest_summary(output)
        if make.returncode != 0 or set(make.marks) != set(MAKE_STEPS):
            progress(f"`make test` failed for {cell}:\n" + "\n".join(output.splitlines()[-15:]))
            return {"failed": True, "summary": summary or "no pytest summary"}
        return {
            "failed": False,
            "bake": baked.seconds,
            "install": make.marks["lint"],  # make's start to lint's first command
            "lint": make.marks["tests"] - make.marks["lint"],
            "tests": make.seconds - make.marks["tests"],
            "total": baked.seconds + make.seconds,
            "summary": summary,
            "slowest": _slowest_tests(output),
        }

    # Warm-up, untimed: uv's cache then holds every package of the template's bake.
    measure(DEFAULT_ANSWERS)
    samples = round_robin(list(ANSWER_SETS), repeats, measure, "bake to green")
    table = Table(
        title="Bake to green: bake, then the baked `make test` in a fresh .venv (warm uv cache)",
        columns=["Answers", "Bake", "Install", "Lint", "Tests", "Total", "Noise", "Goal", "pytest"],
        notes=[
            "Install: `uv sync` into the project's new .venv (make's start to its first "
            "lint command). Lint: ruff check, ruff format --check, hadolint, "
            "check-jsonschema (workflows, Dependabot). Tests: the baked pytest run. Split "
            "read from the moment make echoes each command. pytest: its summary line in "
            "the last run.",
            f"One untimed warm-up run first. Goal: under {GREEN_GOAL:g} s.",
        ],
    )
    slowest = Table(
        title=f"Bake to green: the {SLOWEST} slowest baked tests (pytest --durations, last run)",
        columns=["Answers", "Seconds", "Phase", "Test"],
    )
    figures = {}
    for cell in ANSWER_SETS:
        green = [run for run in samples[cell] if not run["failed"]]
        failed = len(samples[cell]) - len(green)
        summary = samples[cell][-1]["summary"]
        if not green:
            table.rows.append(
                [cell, *["–"] * 5, "–", f"MISSED: make test failed {failed}x", summary]
            )
            continue
        totals = [run["total"] for run in green]
        figures[cell] = {step: median([run[step] for run in green]) for step in MAKE_STEPS}
        figures[cell]["bake"] = median([run["bake"] for run in green])
        figures[cell]["total"] = median(totals)
        goal = verdict(median(totals) < GREEN_GOAL)
        if failed:
            goal += f"; make test failed in {failed} of {len(samples[cell])} runs"
        table.rows.append(
            [
                cell,
                seconds(figures[cell]["bake"]),
                seconds(figures[cell]["install"]),
                seconds(figures[cell]["lint"]),
                seconds(figures[cell]["tests"]),
                seconds(median(totals)),
                noise(totals),
                goal,
                summary,
            ]
        )
        slowest.rows += [[cell, *test] for test in green[-1]["slowest"]]
    return [table, slowest], figures


SLOWEST = 5
_DURATION = re.compile(r"^(\d+\.\d+)s (call|setup|teardown) +(\S+)$")
_SUMMARY = re.compile(r"^=+ (.*\b(?:passed|failed)\b.*) =+$")


def _pytest_summary(output: str) -> str:
    found = [m.group(1) for line in output.splitlines() if (m := _SUMMARY.match(line.strip()))]
    return found[-1] if found else ""


def _slowest_tests(output: str) -> list[list[str]]:
    rows = []
    for line in output.splitlines():
        match = _DURATION.match(line.strip())
        if match:
            rows.append([f"{float(match.group(1)):.2f}", match.group(2), match.group(3)])
    return rows[:SLOWEST]
