"""Bake every answer combination: the right files, fully rendered, parseable, green."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

import baking
from baking import BakedProject
from benchmarks.projects import LARGEST
from tests.answers import COMBINATIONS, HOSTILE, HOSTILE_TEXT
from tests.conftest import Bake, project_files

PACKAGE = "src/daily_sales_report"
ALWAYS = {
    ".cookiecutter.json",
    ".dockerignore",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    ".github/dependabot.yml",
    ".github/workflows/ci.yml",
    ".github/workflows/deploy.yml",
    ".github/workflows/template-update.yml",
    "scripts/template_update.py",
    "DEPLOY.md",
    "Dockerfile",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "uv.lock",
    f"{PACKAGE}/__init__.py",
    f"{PACKAGE}/deployment/__init__.py",
    f"{PACKAGE}/deployment/executor.py",
    f"{PACKAGE}/deployment/register.py",
    f"{PACKAGE}/deployment/run.py",
    f"{PACKAGE}/deployment/run_config.py",
    f"{PACKAGE}/flow.py",
    f"{PACKAGE}/monitoring/__init__.py",
    f"{PACKAGE}/monitoring/__main__.py",
    f"{PACKAGE}/monitoring/budget.py",
    f"{PACKAGE}/monitoring/crons.py",
    f"{PACKAGE}/monitoring/events.py",
    f"{PACKAGE}/monitoring/integration.py",
    f"{PACKAGE}/monitoring/scrubbing.py",
    f"{PACKAGE}/monitoring/sdk.py",
    f"{PACKAGE}/monitoring/sentry_setup.py",
    f"{PACKAGE}/monitoring/state_handlers.py",
    f"{PACKAGE}/monitoring/tracing.py",
    f"{PACKAGE}/monitoring/transport.py",
    f"{PACKAGE}/tasks.py",
    "tests/__init__.py",
    "tests/test_flow.py",
    "tests/template/__init__.py",
    "tests/template/check_image.py",
    "tests/template/sentry_endpoint.py",
    "tests/template/test_monitoring_smoke.py",
}
TERRAFORM = {
    "terraform/alerts.tf",
    "terraform/backend.tf",
    "terraform/crons.tf",
    "terraform/iam.tf",
    "terraform/main.tf",
    "terraform/outputs.tf",
    "terraform/sentry.tf",
    "terraform/ssm.tf",
    "terraform/variables.tf",
    "terraform/versions.tf",
}
IMAGE_PUSH = {"terraform/ecr.tf", "terraform/deploy_role.tf"}
# What each choice adds to ALWAYS and TERRAFORM.
BY_RUN_CONFIG = {
    "ecs": IMAGE_PUSH | {"terraform/task_role.tf"},
    "docker": IMAGE_PUSH,
    "kubernetes": {"terraform/irsa.tf"},
    "local": set(),
}
# What each orchestrator adds to them.
BY_ORCHESTRATOR = {
    "prefect_server": set(),
    "prefect_cloud": set(),
    "none": {"terraform/schedule.tf"},
}
# An ECS agent starts the ECS runs of a Prefect backend: its policy and execution role.
ECS_AGENT = {"terraform/ecs_agent.tf"}
# What executor=dask_cluster adds: its cluster settings and worker monitoring; on ECS
# also the Terraform of the per-run Fargate cluster. Absent from every other bake.
DASK_CLUSTER = {
    f"{PACKAGE}/deployment/dask_cluster.py",
    f"{PACKAGE}/deployment/worker_monitoring.py",
}
DASK_CLUSTER_BY_RUN_CONFIG = {
    "ecs": {"terraform/dask.tf"},
    "kubernetes": {"dask-rbac.yaml", "terraform/dask_irsa.tf"},
}
RUN_CONFIG_CLASS = {
    "ecs": "ECSRun",
    "kubernetes": "KubernetesRun",
    "docker": "DockerRun",
    "local": "LocalRun",
}
EXECUTOR_CLASS = {
    "local": "LocalExecutor",
    "local_dask": "LocalDaskExecutor",
    "dask_cluster": "DaskExecutor",
}
# What a flow with a schedule and Sentry Crons adds: its monitor's settings.
CRONS_MONITOR = {f"{PACKAGE}/deployment/sentry_crons.json"}
JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#")  # GitHub's ${{ }} is not Jinja


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_the_project_has_exactly_the_files_of_its_choices(bake: Bake, answers: dict) -> None:
    result = bake(**answers)

    assert result.exception is None, result.exception
    run_config = result.context["run_config"]
    orchestrator = result.context["orchestrator"]
    dask = set()
    if result.context["executor"] == "dask_cluster":
        dask = DASK_CLUSTER | DASK_CLUSTER_BY_RUN_CONFIG.get(run_config, set())
    agent = ECS_AGENT if run_config == "ecs" and orchestrator != "none" else set()
    monitored = result.context["schedule"].strip() and result.context["sentry_crons"]
    crons = CRONS_MONITOR if monitored else set()
    assert (
        project_files(result.project_path)
        == ALWAYS
        | TERRAFORM
        | BY_RUN_CONFIG[run_config]
        | BY_ORCHESTRATOR[orchestrator]
        | dask
        | agent
        | crons
    )


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_the_choices_reach_the_code(bake: Bake, answers: dict) -> None:
    result = bake(**answers)
    deployment = result.project_path / PACKAGE / "deployment"
    context = result.context

    assert RUN_CONFIG_CLASS[context["run_config"]] in (deployment / "run_config.py").read_text()
    assert EXECUTOR_CLASS[context["executor"]] in (deployment / "executor.py").read_text()
    pyproject = tomllib.loads((result.project_path / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={context['python']},<3.14"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + context["python"].replace(".", "")
    dockerfile = (result.project_path / "Dockerfile").read_text()
    assert f"python:{context['python']}-slim-trixie" in dockerfile
    # uv's interpreter for local runs: the image's Python, not whatever is newest here.
    assert (result.project_path / ".python-version").read_text() == f"{context['python']}\n"


@pytest.mark.parametrize("answers", [*COMBINATIONS, pytest.param(HOSTILE, id="hostile-free-text")])
def test_nothing_is_left_unrendered(bake: Bake, answers: dict) -> None:
    result = bake(**answers)

    for relative in project_files(result.project_path):
        assert not JINJA.search(relative), relative
        text = (result.project_path / relative).read_text(encoding="utf-8")
        assert not JINJA.search(text), f"{relative}: {JINJA.search(text).group()}"


def test_the_answers_are_recorded_for_updates(bake: Bake) -> None:
    result = bake(team="Analytics", executor="local_dask")

    recorded = json.loads((result.project_path / ".cookiecutter.json").read_text())
    assert recorded["team"] == "Analytics"
    assert recorded["executor"] == "local_dask"
    assert recorded["sentry_team"] == "analytics"
    assert recorded["_template_version"] == baking.template_version()
    assert not [
        key for key in recorded if key.startswith("__") or key in {"_output_dir", "_repo_dir"}
    ]


def test_the_recorded_answers_bake_the_same_project_again(bake: Bake, tmp_path: Path) -> None:
    """`.cookiecutter.json` is valid extra context: what `cruft link` is given."""
    first = bake(team="Analytics", executor="local_dask", run_config="docker")
    recorded = json.loads((first.project_path / ".cookiecutter.json").read_text())

    second = bake(**recorded)

    assert second.exception is None, second.exception
    again, before = BakedProject(second.project_path), BakedProject(first.project_path)
    assert again.contents() == before.contents()


def test_an_answer_recorded_by_an_older_release_for_a_python_gone_is_dropped(
    bake: Bake,
) -> None:
    """Releases up to 0.6 recorded `python_version` 3.9 or 3.10: cookiecutter ignores a key
    the template no longer has, so such a project bakes again on the default Python."""
    result = bake(python_version="3.10")

    assert result.exception is None, result.exception
    recorded = json.loads((result.project_path / ".cookiecutter.json").read_text())
    assert "python_version" not in recorded
    assert recorded["python"] == "3.13"
    assert (result.project_path / ".python-version").read_text() == "3.13\n"


def test_free_text_survives_every_format(bake: Bake) -> None:
    result = bake(**HOSTILE)
    project = result.project_path

    assert result.exception is None, result.exception
    assert python_constant(project / "src/hostile_flow/flow.py", "FLOW_NAME") == HOSTILE_TEXT
    assert (
        tomllib.loads((project / "pyproject.toml").read_text())["project"]["description"]
        == HOSTILE_TEXT
    )
    assert json.loads((project / ".cookiecutter.json").read_text())["description"] == HOSTILE_TEXT
    for workflow in (project / ".github/workflows").glob("*.yml"):
        yaml.safe_load(workflow.read_text())
    for module in project.rglob("*.py"):
        ast.parse(module.read_text(), filename=str(module))


def python_constant(module: Path, name: str) -> object:
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {module}")


@pytest.mark.slow
@pytest.mark.parametrize("answers", [*COMBINATIONS, pytest.param(HOSTILE, id="hostile-free-text")])
def test_the_baked_project_passes_its_own_tests_and_the_template_checks(
    bake: Bake, answers: dict, tmp_path: Path
) -> None:
    """The baked README's `make test`, in a fresh .venv on the image's Python; then, in
    that .venv, the template's checks of the project (tests/baked), in one pytest run."""
    result = bake(**answers)
    project = result.project_path
    readme = (project / "README.md").read_text()
    assert "make test" in readme
    baked = BakedProject(project, result.context)
    python = baking.python_interpreter(result.context["python"])

    completed = baked.make_test(python)

    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert re.search(r"\b\d+ passed\b", completed.stdout), completed.stdout[-2000:]
    assert " failed" not in completed.stdout.splitlines()[-1]
    # pendulum 2's import-time DeprecationWarning on 3.12+ is filtered, not shown or raised.
    assert "utcfromtimestamp" not in completed.stdout + completed.stderr

    report = tmp_path / "checks.xml"
    checks = baked.run(
        str(project / ".venv/bin/python"),
        *("-m", "pytest", "-c", str(BAKED_CHECKS / "pytest.ini"), "--rootdir", str(BAKED_CHECKS)),
        *("--numprocesses=2", "--dist=worksteal", f"--junitxml={report}", str(BAKED_CHECKS)),
        env={"UV_PYTHON": python, "BAKED_PROJECT": str(project)},
    )

    assert checks.returncode == 0, checks.stdout[-6000:] + checks.stderr[-3000:]
    assert checks_run(report) == expected_checks(result.context), checks.stdout[-2000:]


BAKED_CHECKS = Path(__file__).resolve().parent / "baked"
# The checks of files that only some answers bake (tests/baked/conftest.py leaves them out).
BAKED_FOR = {
    "test_dask_cluster": lambda context: context["executor"] == "dask_cluster",
    "test_schedule": lambda context: context["orchestrator"] == "none",
    "test_registration": lambda context: context["orchestrator"] == "prefect_server",
}


def expected_checks(context: dict) -> set[str]:
    """The modules of tests/baked that run against a project baked with `context`."""
    modules = {path.stem for path in BAKED_CHECKS.glob("test_*.py")}
    return {name for name in modules if BAKED_FOR.get(name, lambda _: True)(context)}


def checks_run(report: Path) -> set[str]:
    """The modules whose tests passed, from pytest's JUnit XML report; none may skip."""
    cases = ElementTree.parse(report).getroot().iter("testcase")
    modules = set()
    for case in cases:
        assert not list(case), f"{case.get('classname')}.{case.get('name')} did not pass"
        modules.add(case.get("classname").split(".")[0])  # <module>[.<class>], from rootdir
    return modules


@pytest.mark.slow
def test_a_formatting_error_says_make_format_fixes_it(bake: Bake) -> None:
    """`make test` stops at the format check: its output names the command that fixes it."""
    result = bake()
    project = BakedProject(result.project_path)
    python = baking.python_interpreter(result.context["python"])
    tasks = project.path / PACKAGE / "tasks.py"
    tasks.write_text(tasks.read_text() + "\nUNFORMATTED = {  'a':1 }\n")

    failed = project.run("make", "lint", env={"UV_PYTHON": python})
    fixed = project.run("make", "format", env={"UV_PYTHON": python})
    linted = project.run("make", "lint", env={"UV_PYTHON": python})

    assert failed.returncode != 0
    assert "'make format' reformats these files" in failed.stdout, failed.stdout + failed.stderr
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert 'UNFORMATTED = {"a": 1}' in tasks.read_text()


@pytest.mark.parametrize("orchestrator", ["prefect_server", "prefect_cloud"])
def test_the_longest_answers_pass_the_baked_lint(bake: Bake, orchestrator: str) -> None:
    """Every free-text answer at its longest (the benchmarks' largest bake): ruff, with
    the baked project's own settings, finds nothing (a 500-character Prefect project
    once made a line too long for the baked `make lint`)."""
    result = bake(**{**LARGEST, "orchestrator": orchestrator})
    assert result.exception is None, result.exception

    for check in (["check"], ["format", "--check"]):
        ruff = subprocess.run(
            [str(Path(sys.executable).parent / "ruff"), *check, "."],
            cwd=result.project_path,
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr
