"""A seeded uniform sample of a cosmic-ray session, kills confirmed by a rerun, the score.

cosmic-ray (`cosmic-ray init CONFIG SESSION`) lists every mutant of the configured modules
in a session database; `cosmic-ray exec` runs the ones without a result. `draw` gives
every mutant outside a seeded uniform sample a `skipped` result, so `exec` runs only the
sample; `confirm` runs each killed mutant a second time and counts a kill only when the
rerun kills it too; `report` prints the score, its 95 % interval and each survivor's
diff. `retest` runs each survivor again, after tests were added. From the template's root:

    uv run cosmic-ray init mutation/hooks.toml SESSION
    uv run python -m mutation.sample draw SESSION --size 200 --seed 21
    nice -n 10 uv run cosmic-ray exec mutation/hooks.toml SESSION
    nice -n 10 uv run python -m mutation.sample confirm mutation/hooks.toml SESSION
    uv run python -m mutation.sample report SESSION

cosmic-ray mutates the files in place and restores them after each run: do not edit or
test the same checkout meanwhile, and `git checkout` the modules if a run is interrupted.

Mutants inside annotations are left out before the sample is drawn: the modules start
with `from __future__ import annotations`, so Python never evaluates an annotation and
`str | None` turned into `str + None` there is the same program (equivalent by design).
"""

from __future__ import annotations

import argparse
import ast
import functools
import math
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cosmic_ray.config import load_config
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

CONFIRMED = "kill confirmed by a rerun"


@functools.cache
def annotation_spans(module_path: Path) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
    """The (start, end) positions of every annotation in a module, as cosmic-ray counts
    them: lines from 1, columns from 0."""
    tree = ast.parse(module_path.read_text(encoding="utf-8"))
    annotations: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            annotations.append(node.returns)
    return tuple(
        ((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset))
        for node in annotations
    )


def in_annotation(item: WorkItem) -> bool:
    """Whether every mutation of `item` lies inside an annotation (never evaluated)."""
    return all(
        any(
            start <= tuple(mutation.start_pos) and tuple(mutation.end_pos) <= end
            for start, end in annotation_spans(Path(mutation.module_path))
        )
        for mutation in item.mutations
    )


def sort_key(item: WorkItem) -> tuple:
    """An order that does not depend on cosmic-ray's random job ids: the same source and
    configuration give the same sample for the same seed."""
    return tuple(
        (str(m.module_path), m.operator_name, m.occurrence, tuple(m.start_pos))
        for m in item.mutations
    )


def skip(db: WorkDB, job_ids: Iterable[str], why: str) -> None:
    db.set_multiple_results(
        list(job_ids), WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why)
    )


def draw(session: Path, size: int | None, seed: int) -> tuple[int, int, int]:
    """Mark every mutant outside a uniform random sample of `size` (all when None) as
    skipped, annotation mutants first; (annotation mutants, population, sample size)."""
    with use_db(str(session), WorkDB.Mode.open) as db:
        if db.num_results:
            sys.exit(f"ERROR: {session} has results already - run `cosmic-ray init` again")
        items = sorted(db.work_items, key=sort_key)
        annotated = [item for item in items if in_annotation(item)]
        population = [item for item in items if not in_annotation(item)]
        skip(db, (item.job_id for item in annotated), "equivalent: inside an annotation")
        size = len(population) if size is None else min(size, len(population))
        chosen = {item.job_id for item in random.Random(seed).sample(population, size)}
        skip(
            db,
            (item.job_id for item in population if item.job_id not in chosen),
            f"outside the sample (seed {seed}, {size} of {len(population)})",
        )
    return len(annotated), len(population), size


def confirm(config_file: Path, session: Path) -> list[str]:
    """Run each killed mutant again; a kill the rerun does not repeat is recorded as a
    survivor. The job ids of those flaky kills."""
    config = load_config(str(config_file))
    flaky: list[str] = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.test_outcome != TestOutcome.KILLED or (result.output or "").startswith(
                CONFIRMED
            ):
                continue
            rerun = mutate_and_test(item.mutations, config.test_command, config.timeout)
            if rerun.test_outcome == TestOutcome.KILLED:
                db.set_result(
                    item.job_id,
                    WorkResult(
                        worker_outcome=result.worker_outcome,
                        output=f"{CONFIRMED}\n{result.output}",
                        test_outcome=TestOutcome.KILLED,
                        diff=result.diff,
                    ),
                )
            else:
                flaky.append(item.job_id)
                db.set_result(
                    item.job_id,
                    WorkResult(
                        worker_outcome=rerun.worker_outcome,
                        output=f"killed once, not by the rerun\n{rerun.output}",
                        test_outcome=TestOutcome.SURVIVED,
                        diff=rerun.diff,
                    ),
                )
    return flaky


def retest(config_file: Path, session: Path) -> int:
    """Run each survivor again with the tests as they are now (after tests were added);
    what they kill is confirmed by `confirm` like any kill. The number now killed."""
    config = load_config(str(config_file))
    killed = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.test_outcome == TestOutcome.SURVIVED:
                rerun = mutate_and_test(item.mutations, config.test_command, config.timeout)
                db.set_result(item.job_id, rerun)
                killed += rerun.test_outcome == TestOutcome.KILLED
    return killed


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return centre - half / (1 + z * z / trials), centre + half / (1 + z * z / trials)


@dataclass(frozen=True)
class Score:
    killed: int
    confirmed: int
    survivors: tuple[tuple[WorkItem, WorkResult], ...]
    incompetent: int
    pending: int

    @property
    def tested(self) -> int:
        return self.killed + len(self.survivors)

    def text(self) -> str:
        low, high = wilson(self.killed, self.tested)
        share = self.killed / self.tested if self.tested else 0.0
        return (
            f"score {share:.1%}: {self.killed} of {self.tested} sampled mutants killed "
            f"({self.confirmed} kills confirmed by a rerun), 95 % interval "
            f"{low:.1%}-{high:.1%}; {self.incompetent} incompetent or not testable, "
            f"{self.pending} not run yet"
        )


def score(session: Path) -> Score:
    with use_db(str(session), WorkDB.Mode.open) as db:
        done = db.completed_work_items
        pending = len(db.pending_work_items)
    tested = [(i, r) for i, r in done if r.worker_outcome != WorkerOutcome.SKIPPED]
    killed = [r for _, r in tested if r.test_outcome == TestOutcome.KILLED]
    survivors = tuple(
        sorted(
            ((i, r) for i, r in tested if r.test_outcome == TestOutcome.SURVIVED),
            key=lambda pair: sort_key(pair[0]),
        )
    )
    return Score(
        killed=len(killed),
        confirmed=sum((r.output or "").startswith(CONFIRMED) for r in killed),
        survivors=survivors,
        incompetent=len(tested) - len(killed) - len(survivors),
        pending=pending,
    )


def report(session: Path) -> Score:
    result = score(session)
    for item, outcome in result.survivors:
        mutation = item.mutations[0]
        print(
            f"SURVIVED {mutation.module_path}:{mutation.start_pos[0]} "
            f"{mutation.operator_name} #{mutation.occurrence} ({item.job_id})"
        )
        print(outcome.diff or "", end="\n\n")
    print(result.text())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    drawing = commands.add_parser("draw", help="skip every mutant outside a seeded sample")
    drawing.add_argument("session", type=Path)
    drawing.add_argument("--size", type=int, default=None, help="sample size (default: all)")
    drawing.add_argument("--seed", type=int, required=True)
    confirming = commands.add_parser("confirm", help="run each killed mutant again")
    confirming.add_argument("config", type=Path)
    confirming.add_argument("session", type=Path)
    retesting = commands.add_parser("retest", help="run each survivor again")
    retesting.add_argument("config", type=Path)
    retesting.add_argument("session", type=Path)
    reporting = commands.add_parser("report", help="print the survivors and the score")
    reporting.add_argument("session", type=Path)
    args = parser.parse_args(argv)
    if args.command == "draw":
        annotated, population, size = draw(args.session, args.size, args.seed)
        print(
            f"{annotated} mutants inside annotations left out; sample of {size} drawn "
            f"from {population} with seed {args.seed}"
        )
    elif args.command == "confirm":
        flaky = confirm(args.config, args.session)
        print(f"{len(flaky)} kills not repeated by the rerun: {' '.join(flaky) or 'none'}")
    elif args.command == "retest":
        print(f"{retest(args.config, args.session)} survivors killed by the tests as they are now")
    else:
        report(args.session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
