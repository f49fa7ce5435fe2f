"""The benchmark's verdicts on counted instructions (parts 5 and 9), from made-up counts.

Running callgrind takes minutes, so these tests give `instruction_counts` and
`cluster_instructions` counts of their own and check what they conclude from them:
the projection and the goals.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks import instruction_counts

FIXED = 1_000_000  # what every bare flow run costs once
PER_TASK = 65_000_000  # what each task costs in bare Prefect, as measured here


def verdicts(
    monkeypatch: pytest.MonkeyPatch,
    fixed: dict[str, int],
    per_task: dict[str, int],
    **options: float,
) -> tuple[list[list[str]], dict]:
    """Part 5's table rows and figures for counts `fixed + tasks * per_task`, per variant."""
    monkeypatch.setattr(instruction_counts.shutil, "which", lambda name: "/usr/bin/valgrind")

    def count(children, valgrind, variant, executor, tasks, seed, fail_every=0, gc_off=False):
        assert fail_every == options.get("fail_every", 0)
        assert gc_off == options.get("gc_off", False)
        return fixed[variant] + tasks * per_task[variant] + seed  # seeds differ a little

    monkeypatch.setattr(instruction_counts, "_count", count)
    children = SimpleNamespace(variants=["bare", "seed", "template"])
    [table], figures = instruction_counts.instructions(children, 3, (10, 50), 1000, **options)
    return [row for row in table.rows if row[1] == "(c) this template"], figures


def test_a_small_start_up_cost_meets_both_goals(monkeypatch: pytest.MonkeyPatch) -> None:
    rows, figures = verdicts(
        monkeypatch,
        fixed={"bare": FIXED, "seed": FIXED + 400_000_000, "template": FIXED + 10_000_000},
        per_task={"bare": PER_TASK, "seed": PER_TASK * 104 // 100, "template": PER_TASK},
    )
    assert [row[-2] for row in rows] == ["met", "met"]
    assert all(row[-1].startswith("met") for row in rows)
    assert figures[("template", "local")]["per_task"] == pytest.approx(1.0)
    # 10 M once against 65 G for 1,000 tasks.
    assert figures[("template", "local")]["projected"] == pytest.approx(1.00015, abs=1e-5)


def test_a_per_task_cost_is_projected_to_the_full_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2.5 % more per task: 1.025x at 50 tasks already, and so at 1,000.
    rows, figures = verdicts(
        monkeypatch,
        fixed={"bare": FIXED, "seed": FIXED, "template": FIXED},
        per_task={
            "bare": PER_TASK,
            "seed": PER_TASK * 110 // 100,
            "template": PER_TASK * 1025 // 1000,
        },
    )
    assert [row[-2] for row in rows] == ["MISSED", "MISSED"]
    assert all(row[-1].startswith("met") for row in rows)  # still below the seed's 1.10x
    assert figures[("template", "threads")]["projected"] == pytest.approx(1.025, abs=1e-4)


def test_costlier_than_the_seed_misses_that_goal(monkeypatch: pytest.MonkeyPatch) -> None:
    rows, _ = verdicts(
        monkeypatch,
        fixed={"bare": FIXED, "seed": FIXED, "template": FIXED + 5_000_000_000},
        per_task={"bare": PER_TASK, "seed": PER_TASK * 101 // 100, "template": PER_TASK},
    )
    # 5 G once: 1.08x at 1,000 tasks, and above the seed's 1.01x.
    assert [row[-2] for row in rows] == ["MISSED", "MISSED"]
    assert all(row[-1].startswith("MISSED") for row in rows)


def test_the_failing_path_is_judged_on_its_own_goal(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1.8 % more per task: within the success path's 1.02x, not within part 6's 1.015x.
    counts = {
        "fixed": {"bare": FIXED, "seed": FIXED, "template": FIXED},
        "per_task": {
            "bare": PER_TASK,
            "seed": PER_TASK * 107 // 100,
            "template": PER_TASK * 1018 // 1000,
        },
    }
    success_rows, _ = verdicts(monkeypatch, **counts)
    failing_rows, _ = verdicts(monkeypatch, **counts, fail_every=10, goal=1.015)

    assert [row[-2] for row in success_rows] == ["met", "met"]
    assert [row[-2] for row in failing_rows] == ["MISSED", "MISSED"]


# Part 9: the same verdict on the dask_cluster path (the flow's process and a worker's).


def cluster_figures(
    monkeypatch: pytest.MonkeyPatch, fixed: dict[str, int], per_task: dict[str, int]
) -> tuple[list[str], dict]:
    """Part 9's template row and figures for counts `fixed + tasks * per_task`, per variant."""
    from benchmarks import cluster_instructions

    monkeypatch.setattr(instruction_counts.shutil, "which", lambda name: "/usr/bin/valgrind")

    class Counter:
        def __init__(self, *args: object) -> None:
            pass

        def count(self, variant: str, tasks: int, seed: int) -> int:
            return fixed[variant] + tasks * per_task[variant] + seed

    monkeypatch.setattr(cluster_instructions, "_Counter", Counter)
    table, figures = cluster_instructions.cluster_instructions(
        SimpleNamespace(), SimpleNamespace(), SimpleNamespace(), 3, (10, 50), 1000
    )
    [row] = [row for row in table.rows if row[0] == "(c) this template"]
    return row, figures


def test_the_cluster_path_s_start_up_cost_is_paid_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sentry's start-up on the worker: 300 M once, against 87 M per task.
    row, figures = cluster_figures(
        monkeypatch,
        fixed={"bare": FIXED, "template": FIXED + 300_000_000},
        per_task={"bare": 87_000_000, "template": 87_000_000},
    )
    assert figures["per_task"] == pytest.approx(1.0)
    assert figures["projected"] == pytest.approx(1 + 300 / 87_000, abs=1e-5)
    assert figures["ratio"] == pytest.approx(1 + 300 / (50 * 87), abs=1e-4)
    assert row[-1] == "MISSED"  # 1.069x at 50 tasks: the verdict asks it there too


def test_a_per_task_cost_on_the_workers_misses_the_goal(monkeypatch: pytest.MonkeyPatch) -> None:
    row, figures = cluster_figures(
        monkeypatch,
        fixed={"bare": FIXED, "template": FIXED},
        per_task={"bare": 87_000_000, "template": 87_000_000 * 103 // 100},
    )
    assert figures["per_task"] == pytest.approx(1.03, abs=1e-4)
    assert figures["projected"] == pytest.approx(1.03, abs=1e-4)
    assert row[-1] == "MISSED"
    assert row[-2].startswith("1.030x")


def test_a_cluster_path_within_the_goal_meets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    row, _ = cluster_figures(
        monkeypatch,
        fixed={"bare": FIXED, "template": FIXED + 20_000_000},
        per_task={"bare": 87_000_000, "template": 87_000_000 * 1005 // 1000},
    )
    assert row[-1] == "met"


def test_counts_with_the_collector_off_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instruction_counts.shutil, "which", lambda name: "/usr/bin/valgrind")
    asked = []

    def count(children, valgrind, variant, executor, tasks, seed, fail_every=0, gc_off=False):
        asked.append(gc_off)
        return FIXED + tasks * PER_TASK

    monkeypatch.setattr(instruction_counts, "_count", count)
    children = SimpleNamespace(variants=["bare", "seed", "template"])
    [table], _ = instruction_counts.instructions(children, 1, (10, 50), 1000, gc_off=True)
    assert set(asked) == {True}
    assert "garbage collector off" in table.title
