"""Measure how strong the tests are with cosmic-ray: `uv run python scripts/mutation.py
monitoring --sample 100 --seed 1`.

Mutation testing changes the code one small way at a time (`<` into `<=`, a constant into
another, `and` into `or`...) and runs the tests against each change, a mutant: tests that
pass on a mutant that behaves differently miss something. cosmic-ray makes every mutant
of an area's modules (`cosmic-ray init`); this script keeps a uniform random sample of
them, drawn with a fixed seed, by marking the others skipped in cosmic-ray's session
database, and tests the sample one mutant at a time in the seed's random order, as
cosmic-ray's local distributor does (`cosmic-ray exec`), recording each result in the
session. A killed mutant is tested again at once with the test that failed first; it
counts as killed only when that rerun fails too. With `--minutes`, no mutant starts after
that time: the mutants tested by then are still a uniform sample, only a smaller one.
With `--again <an earlier run's session.sqlite>` (same area and seed, tests added since),
a mutant the earlier run killed, whose diff is the same today, is tested only with the
tests that killed it then (the confirming rerun); every other mutant, and one whose
kill does not repeat, as usual.
The script prints the score, its 95 % interval, which test killed each mutant first, and
every survivor with its diff.

Areas: `monitoring`, the baked project's monitoring package as the default answers bake
it, against the baked project's own tests, then the template's checks of its monitoring
(tests/baked/test_monitoring*.py), run in the baked project's .venv as tests/test_bake.py
runs them. The checks are copied into the scratch folder first: editing them during a
run changes nothing measured. docs/mutation.md keeps the figures and the survivors
judged equivalent.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

import baking
from baking import TEMPLATE_DIR

# A whole run of the monitoring checks takes about 100 s here; a mutant that makes a test
# hang is killed by this timeout (cosmic-ray counts a timeout as a kill).
TIMEOUT_SECONDS = 600
# The template's checks of the monitoring package, in this order (any other
# tests/baked/test_monitoring*.py after them): `-x` stops at the first failure, so the
# broad, quick ones go first.
MONITORING_CHECKS = (
    "test_monitoring.py",
    "test_monitoring_secrets.py",
    "test_monitoring_crons.py",
    "test_monitoring_startup.py",
    "test_monitoring_faults.py",
    "test_monitoring_delivery.py",
    "test_monitoring_executors.py",
    "test_monitoring_start_methods.py",
    "test_monitoring_storms.py",
)
PYTEST_FAST = ("-x", "-q", "-p", "no:cacheprovider", "--numprocesses=0")
# The checks on both cores, as tests/test_bake.py runs them: a survivor runs them all.
PYTEST_CHECKS = ("-x", "-q", "-p", "no:cacheprovider", "--numprocesses=2", "--dist=worksteal")
# pytest's short summary (-ra): "FAILED <node id> - <error>".
FAILED_TEST = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)

Key = tuple[str, str, int]


@dataclass(frozen=True)
class Suite:
    """One pytest run: `command` without test paths, run on `paths`; node ids it prints
    are relative to `rootdir`."""

    command: tuple[str, ...]
    rootdir: Path
    paths: tuple[str, ...]

    def argv(self, paths: Sequence[str] | None = None) -> list[str]:
        return [*self.command, *(self.paths if paths is None else paths)]


@dataclass(frozen=True)
class Workspace:
    """Where an area's mutants are made and tested: in `folder`, with `env`, mutating
    `modules` in place; the `suites` run one after the other, stopping at a failure."""

    folder: Path
    modules: tuple[Path, ...]
    suites: tuple[Suite, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def test_command(self) -> str:
        """The command cosmic-ray runs on each mutant: every suite, `&&`-chained."""
        return shell(suite.argv() for suite in self.suites)

    def rerun_command(self, output: str) -> str:
        """The command that runs again only the tests that failed in `output` (two
        workers may each have failed one before `-x` stopped them: one of them may be a
        test that fails under load), or the whole test command when no failed test is
        named (a timeout, say). The rerun fails if any of them fails again."""
        failed = FAILED_TEST.findall(output)
        # `&&` stops at the first failing suite: it is the last one whose output shows.
        # pytest names a failed test by its path from the folder it runs in.
        for suite in reversed(self.suites):
            nodes = []
            for node in failed:
                path, _, test = node.partition("::")
                found = (self.folder / path).resolve()
                if found.is_file() and found.is_relative_to(suite.rootdir):
                    nodes.append(f"{found}::{test}")
            if nodes:
                # Without -x: a test that passes now must not hide one that fails.
                command = [part for part in suite.argv(nodes) if part != "-x"]
                return shell([command])
        return self.test_command()


def shell(commands: Iterable[Sequence[str]]) -> str:
    """`commands` run one after the other by sh, stopping at the first that fails."""
    return shlex.join(["sh", "-c", " && ".join(shlex.join(command) for command in commands)])


def monitoring(scratch: Path) -> Workspace:
    """Bake the default answers into `scratch`, install the project's .venv, and test the
    monitoring package with the project's tests, then the template's monitoring checks."""
    project = baking.bake({}, scratch / "bake")
    python = baking.python_interpreter(str(project.context["python"]))
    installed = project.run("uv", "sync", "--quiet", env={"UV_PYTHON": python})
    if installed.returncode != 0:
        sys.exit(f"ERROR: uv sync failed in {project.path}:\n{installed.stderr}")
    # A snapshot of tests/baked: tests/baked/project.py finds the template's `tests`
    # package two folders up from itself.
    checks = scratch / "checks" / "tests" / "baked"
    shutil.copytree(TEMPLATE_DIR / "tests" / "baked", checks)
    shutil.copy(TEMPLATE_DIR / "tests" / "__init__.py", checks.parent / "__init__.py")
    listed = [name for name in MONITORING_CHECKS if (checks / name).is_file()]
    others = sorted(path.name for path in checks.glob("test_monitoring*.py"))
    package = next(path for path in (project.path / "src").iterdir() if path.is_dir())
    python_m_pytest = (str(project.path / ".venv" / "bin" / "python"), "-m", "pytest")
    pytest = (*python_m_pytest, *PYTEST_FAST)
    return Workspace(
        folder=project.path,
        modules=tuple(sorted((package / "monitoring").glob("*.py"))),
        suites=(
            Suite(pytest, project.path, ("tests",)),
            Suite(
                (*python_m_pytest, *PYTEST_CHECKS, "-c", str(checks / "pytest.ini"))
                + ("--rootdir", str(checks)),
                checks,
                tuple(str(checks / name) for name in [*listed, *sorted(set(others) - set(listed))]),
            ),
        ),
        env={"BAKED_PROJECT": str(project.path)},
    )


AREAS: dict[str, Callable[[Path], Workspace]] = {"monitoring": monitoring}


def write_config(workspace: Workspace, path: Path) -> Path:
    """cosmic-ray's TOML config for `workspace`: one local worker."""
    modules = ", ".join(_toml_string(str(module)) for module in workspace.modules)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {TIMEOUT_SECONDS}\n"
        "excluded-modules = []\n"
        f"test-command = {_toml_string(workspace.test_command())}\n"
        "\n[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    return path


def _toml_string(text: str) -> str:
    """`text` as a TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mutant_key(item: WorkItem) -> Key:
    """What names a mutant whatever the session: module, operator, occurrence
    (cosmic-ray's job ids are random)."""
    [mutation] = item.mutations
    return (str(mutation.module_path), mutation.operator_name, mutation.occurrence)


def draw(items: Iterable[WorkItem], size: int, seed: int) -> list[WorkItem]:
    """A uniform random sample of `size` mutants in a random order, the same for the same
    seed and code: every start of the list is a uniform sample too."""
    by_key = {mutant_key(item): item for item in items}
    keys = random.Random(seed).sample(sorted(by_key), min(size, len(by_key)))
    return [by_key[key] for key in keys]


def skip_all_but(database: WorkDB, kept: Iterable[WorkItem]) -> None:
    """Mark every work item but `kept` skipped, as cosmic-ray's own filters do."""
    wanted = {item.job_id for item in kept}
    others = [item.job_id for item in database.work_items if item.job_id not in wanted]
    skipped = WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not in the sample")
    database.set_multiple_results(others, skipped)


def earlier_kills(session: Path) -> dict[tuple[str, str], WorkResult]:
    """The mutants an earlier run's `session` killed, by module name and diff: the same
    diff today is the same change to the same code (a diff shows the lines around it)."""
    with use_db(str(session), WorkDB.Mode.open) as database:
        return {
            same_mutant(item, result): result
            for item, result in database.completed_work_items
            if killed(result)
        }


def same_mutant(item: WorkItem, result: WorkResult) -> tuple[str, str]:
    """A mutant's module file name and its diff without the file names, which hold the
    scratch folder."""
    [mutation] = item.mutations
    lines = (result.diff or "").splitlines()
    body = [line for line in lines if not line.startswith(("--- ", "+++ "))]
    return Path(mutation.module_path).name, "\n".join(body)


def diff_of(item: WorkItem) -> WorkResult:
    """The mutant's diff as cosmic-ray records it: the change made, a command that passes run."""
    return mutate_and_test(item.mutations, "true", 60)


def killed(result: WorkResult) -> bool:
    """Whether the tests failed on the mutant (or timed out). An exception in the worker,
    or an incompetent mutant, is no kill."""
    return (
        result.worker_outcome == WorkerOutcome.NORMAL and result.test_outcome == TestOutcome.KILLED
    )


def first_failure(output: str | None) -> str:
    """The test that failed first in a test run's `output`, or why none is named."""
    if output == "timeout":
        return "timeout"
    failed = FAILED_TEST.findall(output or "")
    return Path(failed[0].split("::")[0]).name if failed else "no test named"


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion."""
    if trials == 0:
        return (0.0, 1.0)
    share = successes / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / scale
    return centre - half, centre + half


@dataclass
class Outcome:
    """One tested mutant: its work item, the first result, and whether the rerun of a
    kill failed too."""

    item: WorkItem
    result: WorkResult
    confirmed: bool = False
    earlier: bool = False  # the first result is an earlier run's

    def describe(self) -> str:
        [mutation] = self.item.mutations
        return (
            f"{Path(mutation.module_path).name}:{mutation.start_pos[0]} "
            f"{mutation.operator_name} #{mutation.occurrence}"
        )


def tested(item: WorkItem, workspace: Workspace, before: WorkResult | None) -> Outcome:
    """One mutant: the checks, then the tests that failed run again to confirm a kill. An
    earlier run's kill (`before`) is confirmed first; unconfirmed, the mutant is tested anew."""
    if before is not None and confirmed(item, before, workspace):
        return Outcome(item, before, confirmed=True, earlier=True)
    result = mutate_and_test(item.mutations, workspace.test_command(), TIMEOUT_SECONDS)
    return Outcome(item, result, confirmed=killed(result) and confirmed(item, result, workspace))


def confirmed(item: WorkItem, result: WorkResult, workspace: Workspace) -> bool:
    """Whether the tests that failed in `result` fail again on the mutant."""
    rerun = workspace.rerun_command(result.output or "")
    return killed(mutate_and_test(item.mutations, rerun, TIMEOUT_SECONDS))


def measure(
    area: str,
    size: int,
    seed: int,
    minutes: float | None,
    scratch: Path,
    again: Path | None = None,
) -> int:
    """Bake, sample, test, confirm the kills, print the score; 0 if the whole sample ran."""
    started = time.monotonic()
    kills_before = earlier_kills(again) if again else {}
    workspace = AREAS[area](scratch)
    config = write_config(workspace, scratch / "cosmic-ray.toml")
    session = scratch / "session.sqlite"
    env = baking.clean_environment(**workspace.env)
    subprocess.run(
        [sys.executable, "-m", "cosmic_ray.cli", "init", str(config), str(session)],
        cwd=workspace.folder,
        env=env,
        check=True,
    )
    # cosmic-ray runs each test command from this process: in the workspace, with its env.
    os.chdir(workspace.folder)
    os.environ.clear()
    os.environ.update(env)
    outcomes: list[Outcome] = []
    with use_db(str(session), WorkDB.Mode.open) as database:
        sample = draw(database.work_items, size, seed)
        skip_all_but(database, sample)
        print(
            f"{area}: {len(sample)} of {database.num_work_items} mutants, seed {seed}", flush=True
        )
        for number, item in enumerate(sample, 1):
            if minutes is not None and time.monotonic() - started > minutes * 60:
                print(f"Out of time: {len(sample) - number + 1} mutants left untested.")
                break
            before = kills_before.get(same_mutant(item, diff_of(item))) if kills_before else None
            outcome = tested(item, workspace, before)
            database.set_result(item.job_id, outcome.result)
            outcomes.append(outcome)
            verdict = (
                f"killed by {first_failure(outcome.result.output)}"
                if killed(outcome.result)
                else "survived"
            )
            if outcome.earlier:
                verdict += " in the earlier run"
            if killed(outcome.result) and not outcome.confirmed:
                verdict += ", NOT killed again"
            print(f"[{number}/{len(sample)}] {outcome.describe()}: {verdict}", flush=True)
    report(outcomes)
    return 0 if len(outcomes) == len(sample) else 1


def report(outcomes: Sequence[Outcome]) -> None:
    """Print every mutant not killed twice with its diff, which tests killed first, and
    the score with its interval."""
    for outcome in outcomes:
        if not outcome.confirmed:
            print(f"\nSURVIVED {outcome.describe()}")
            print(outcome.result.diff or outcome.result.output or "")
    print("\nKilled first by:")
    firsts = Counter(first_failure(o.result.output) for o in outcomes if o.confirmed)
    for test, count in firsts.most_common():
        print(f"  {count:3}  {test}")
    kills = sum(outcome.confirmed for outcome in outcomes)
    low, high = wilson_interval(kills, len(outcomes))
    share = kills / len(outcomes) if outcomes else 0.0
    print(
        f"\nScore: {kills} of {len(outcomes)} mutants killed twice = {share:.0%} "
        f"(95 % interval {low:.0%}-{high:.0%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("area", choices=sorted(AREAS))
    parser.add_argument("--sample", type=int, default=100, help="mutants to test (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="the sample's random seed")
    parser.add_argument("--minutes", type=float, help="start no mutant after this long")
    parser.add_argument(
        "--scratch", type=Path, help="folder to bake and keep the session in (default: temporary)"
    )
    parser.add_argument(
        "--again",
        type=Path,
        help="an earlier run's session.sqlite: retest its kills with the tests that killed them",
    )
    args = parser.parse_args(argv)
    if args.again and not args.again.is_file():
        parser.error(f"--again {args.again} is no file - give an earlier run's session.sqlite")
    if args.sample < 1:
        parser.error("--sample must be 1 or more - give the number of mutants to test")
    os.nice(10)  # one worker, at a low priority: the machine is shared
    if args.scratch:
        if args.scratch.exists() and any(args.scratch.iterdir()):
            parser.error(f"--scratch {args.scratch} is not empty - give an empty or new folder")
        scratch = args.scratch.resolve()
        return measure(args.area, args.sample, args.seed, args.minutes, scratch, args.again)
    with tempfile.TemporaryDirectory(prefix="mutation-") as folder:
        return measure(args.area, args.sample, args.seed, args.minutes, Path(folder), args.again)


if __name__ == "__main__":
    raise SystemExit(main())
