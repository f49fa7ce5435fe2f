"""Baked repositories take template updates: cruft end to end, and stable re-bakes."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import cruft
import pytest
import yaml

import baking
from baking import TEMPLATE_DIR, TOOL_FOLDERS
from scripts import lock
from tests.answers import COMBINATIONS

TEAM_EDIT = "\n# The team's own note, which a template update must keep.\n"
TEMPLATE_EDIT = "\n# A change made in the template, which the update must bring.\n"
TEAM_DEPENDENCY = "team-package>=1.2"
OLD_PIN, NEW_PIN = "boto3>=1.35,<2", "boto3>=1.40,<2"
NOT_TEMPLATE = shutil.ignore_patterns(*TOOL_FOLDERS)


def git(directory: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", *args],
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
    )
    return completed.stdout


def commit_all(directory: Path, message: str) -> None:
    git(directory, "add", "-A")
    git(directory, "commit", "-q", "-m", message)


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of the template as it is on disk now."""
    repo = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, repo, ignore=NOT_TEMPLATE)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "Template as it is")
    return repo


def test_cruft_update_brings_template_changes_and_keeps_team_edits(
    template_repo: Path, tmp_path: Path
) -> None:
    output = tmp_path / "projects"
    project = Path(
        cruft.create(
            str(template_repo),
            output_dir=output,
            no_input=True,
            extra_context={"team": "Analytics"},
        )
    )
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Baked with cruft")
    flow_module = project / "src/daily_sales_report/flow.py"
    flow_module.write_text(flow_module.read_text() + TEAM_EDIT)
    team_lock = (project / "uv.lock").read_text() + TEAM_EDIT  # as Dependabot moves it
    (project / "uv.lock").write_text(team_lock)
    # The README's way to add a dependency: into the team's block of `dependencies`.
    added = baking.BakedProject(project).run("uv", "add", "--frozen", TEAM_DEPENDENCY)
    assert added.returncode == 0, added.stderr
    commit_all(project, "The team's work")

    owned = template_repo / "{{cookiecutter.flow_slug}}/Makefile"
    owned.write_text(owned.read_text() + TEMPLATE_EDIT)
    template_lock = template_repo / lock.template_lock("3.13").relative_to(TEMPLATE_DIR)
    template_lock.write_text(template_lock.read_text() + TEMPLATE_EDIT)
    # The pin next to the team's block: the change whose diff comes closest to it.
    pyproject = template_repo / "{{cookiecutter.flow_slug}}/pyproject.toml"
    assert pyproject.read_text().count(f'"{OLD_PIN}",') == 1
    pyproject.write_text(pyproject.read_text().replace(f'"{OLD_PIN}",', f'"{NEW_PIN}",'))
    commit_all(template_repo, "Template-owned files change, and the template re-locks")
    assert not cruft.check(project)

    assert cruft.update(project, skip_apply_ask=True)

    assert (project / "Makefile").read_text().endswith(TEMPLATE_EDIT)
    assert flow_module.read_text().endswith(TEAM_EDIT)
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert dependencies["dependencies"][-2:] == [NEW_PIN, TEAM_DEPENDENCY]
    assert (project / "uv.lock").read_text() == team_lock  # the workflow re-locks instead
    assert not list(project.rglob("*.rej"))
    assert cruft.check(project)


def test_a_project_baked_with_cookiecutter_links_with_its_recorded_answers(
    template_repo: Path, tmp_path: Path
) -> None:
    """The README's `cruft link --extra-context "$(cat .cookiecutter.json)"` path."""
    answers = {"team": "Analytics", "executor": "dask_cluster", "schedule": ""}
    project = baking.bake(answers, tmp_path, template=template_repo).path
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Baked with cookiecutter")
    recorded = json.loads((project / ".cookiecutter.json").read_text())

    assert cruft.link(
        str(template_repo), project_dir=project, no_input=True, extra_context=recorded
    )

    assert cruft.check(project)
    linked = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert {key: linked[key] for key in answers} == answers
    # The README's `cruft diff`: nothing differs, though git has more in the team's .git.
    commit_all(project, "Link to the template")
    git(project, "remote", "add", "origin", "https://github.invalid/org/flow.git")
    assert cruft.diff(project, exit_code=True)


def test_cruft_create_makes_no_git_repository_and_says_so(
    template_repo: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """cruft bakes again for link, diff and update: a .git of the hook's would differ."""
    project = Path(cruft.create(str(template_repo), output_dir=tmp_path / "out", no_input=True))

    assert not (project / ".git").exists()
    assert "Git: baked by cruft" in capfd.readouterr().out


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_baking_over_a_project_with_the_same_answers_changes_nothing(
    answers: dict, tmp_path: Path
) -> None:
    project = baking.bake(answers, tmp_path, overwrite=True)
    before = project.contents()
    baking.bake(answers, tmp_path, overwrite=True)

    assert project.contents() == before


def test_the_linters_and_updaters_are_configured_validly(bake) -> None:
    project = bake().project_path

    subprocess.run(
        ["pre-commit", "validate-config", ".pre-commit-config.yaml"], cwd=project, check=True
    )
    subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        cwd=project,
        check=True,
    )
    dependabot = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    [python] = [update for update in dependabot["updates"] if update["package-ecosystem"] == "uv"]
    held_back = {rule["dependency-name"]: rule["versions"] for rule in python["ignore"]}
    assert held_back["prefect"] == [">=2"]
