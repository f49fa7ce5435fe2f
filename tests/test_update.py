"""Baked repositories take template updates: cruft end to end, and stable re-bakes.

The updates from the template's own history run cruft 2.16.0 the way a deployed
repository's workflow does (`uvx cruft@2.16.0`): in a tool environment of its own, so
that nothing of this development environment (which puts the template folder on
`sys.path`) reaches the renders, and with bytecode written, as on a runner.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import cruft
import pytest
import yaml
from cookiecutter.environment import StrictEnvironment

import baking
import prefect_flow_filters
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


# ---------------------------------------------------------------------------------------
# Updates across the template's own history, run as a repository's workflow runs them.

BAKED = "{{cookiecutter.flow_slug}}"
UPDATE_SCRIPT = Path(BAKED, "scripts", "template_update.py")
TEAM_TASK = '''

@task
def count_rows(rows: List[Row]) -> int:
    """The team's own task: how many rows there are."""
    return len(rows)
'''
TEAM_TEST = """from daily_sales_report.tasks import count_rows


def test_count_rows() -> None:
    assert count_rows.run([{"amount": 1}, {"amount": 2}]) == 2
"""
TEAM_README = "\\nOn call: the data platform team's rota.\\n"
TEAM_BLOCK = "# Your dependencies:"
TEAM_PACKAGE = "python-dateutil>=2.8"  # in every lock already: locks offline
IDENTITY = {
    "GIT_AUTHOR_NAME": "Team",
    "GIT_AUTHOR_EMAIL": "team@example.invalid",
    "GIT_COMMITTER_NAME": "Team",
    "GIT_COMMITTER_EMAIL": "team@example.invalid",
}


def update_script():
    """The baked update script, imported from the template (it is copied unrendered)."""
    spec = importlib.util.spec_from_file_location("template_update", TEMPLATE_DIR / UPDATE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lifecycle_releases(template: Path = TEMPLATE_DIR) -> dict[str, str]:
    """Each release of the template that a repository can be updated from: version to
    commit. The template has no tags; a release is the first commit that carries a new
    `version` in pyproject.toml and can be updated (it bakes the template-update
    workflow, its lifecycle support: answers recorded for cruft)."""
    listed = subprocess.run(
        ["git", "log", "--reverse", "--format=%H", "--", "pyproject.toml", BAKED],
        cwd=template,
        capture_output=True,
        text=True,
    )
    releases: dict[str, str] = {}
    for commit in listed.stdout.split():
        files = subprocess.run(
            ["git", "show", f"{commit}:pyproject.toml"],
            cwd=template,
            capture_output=True,
            text=True,
        ).stdout
        version = re.search(r'^version = "([^"]+)"', files, re.MULTILINE)
        workflow = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}:{BAKED}/.github/workflows/template-update.yml"],
            cwd=template,
        )
        current = version and version[1] == baking.template_version()  # the update's target
        if version and workflow.returncode == 0 and version[1] not in releases and not current:
            releases[version[1]] = commit
    return releases


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


RELEASES = lifecycle_releases()
# `make test` after the update costs a minute each: the oldest and the newest release.
MAKE_TEST = {*list(RELEASES)[:1], *list(RELEASES)[-1:]}


def test_the_template_history_is_here() -> None:
    """The updates below start from the template's own releases, in its git history."""
    assert RELEASES, (
        f"no release found in the git history of {TEMPLATE_DIR}: these tests need the "
        "template's own clone with its history (git clone, not a copy or a shallow clone)"
    )
    assert len(RELEASES) >= 7 and list(RELEASES)[0] == "0.1.0", RELEASES


@pytest.fixture(scope="session")
def cruft_command(tmp_path_factory: pytest.TempPathFactory) -> str:
    """cruft 2.16.0 in a tool environment of its own, as `uvx cruft@2.16.0` runs it."""
    tool = tmp_path_factory.mktemp("cruft-tool")
    env = baking.clean_environment()
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(tool)], env=env, check=True)
    installed = subprocess.run(
        ["uv", "pip", "install", "-q", "--python", str(tool / "bin/python")]
        + ["cruft==2.16.0", "cookiecutter==2.7.1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    return str(tool / "bin/cruft")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the template with its history, and the template as it is on disk as
    its newest commit: the release the updates go to."""
    clone = tmp_path_factory.mktemp("history") / "template"
    cloned = subprocess.run(["git", "clone", "-q", str(TEMPLATE_DIR), str(clone)])
    assert cloned.returncode == 0, f"{TEMPLATE_DIR} is not a git clone of the template"
    on_disk = git(TEMPLATE_DIR, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    git(clone, "rm", "-rq", ".")
    for name in filter(None, on_disk.split("\0")):
        if (TEMPLATE_DIR / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_DIR / name, clone / name)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "--allow-empty", "-m", "The template as it is on disk")
    return clone


def tool_environment(home: Path, cruft_command: str) -> dict[str, str]:
    """What a workflow's runner has: bytecode written, and no home config of ours. uv
    locks from its cache, and asks the package index only for what it lacks, as the
    baked projects' `make test` does."""
    return baking.clean_environment(HOME=str(home), CRUFT=cruft_command, **IDENTITY)


def cruft_create(
    cruft_command: str, template: Path, commit: str, output: Path, **answers: str
) -> Path:
    env = tool_environment(output, cruft_command)
    output.mkdir(parents=True, exist_ok=True)
    created = subprocess.run(
        [cruft_command, "create", "--no-input", "--checkout", commit, "--output-dir", str(output)]
        + ["--extra-context", json.dumps(answers), str(template)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    project = output / "daily_sales_report"
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Baked with cruft")
    return project


def team_edits(project: Path) -> dict[str, str]:
    """A team's work in the places that are its own, committed: a task, a test, a README
    line, and a dependency in the team block where the release has one."""
    tasks = project / "src/daily_sales_report/tasks.py"
    tasks.write_text(tasks.read_text() + TEAM_TASK)
    (project / "tests/test_team.py").write_text(TEAM_TEST)
    # Under the description, which each release takes from the answers: the README's
    # closing sections are the template's and change with it.
    readme = project / "README.md"
    title, description, rest = readme.read_text().split("\n\n", 2)
    readme.write_text(f"{title}\n\n{description}\n{TEAM_README}\n{rest}")
    if TEAM_BLOCK in (project / "pyproject.toml").read_text():
        added = baking.BakedProject(project).run("uv", "add", "--frozen", TEAM_PACKAGE)
        assert added.returncode == 0, added.stderr
    commit_all(project, "The team's work")
    return {
        "src/daily_sales_report/tasks.py": TEAM_TASK,
        "tests/test_team.py": TEAM_TEST,
        "README.md": TEAM_README,
    }


def run_update(
    project: Path, template: Path, cruft_command: str, *args: str
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """The baked update script of `template`'s newest commit, in `project`, as the
    workflow runs it; with its step outputs."""
    outputs = project.parent / "github-output"
    outputs.write_text("")
    env = tool_environment(project.parent, cruft_command)
    env.update(GITHUB_OUTPUT=str(outputs), RUNNER_TEMP=str(project.parent))
    completed = subprocess.run(
        [sys.executable, str(template / UPDATE_SCRIPT), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    return completed, dict(
        line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line
    )


def recorded_context(project: Path) -> dict:
    """The answers in `.cruft.json`, without cookiecutter's private and derived keys."""
    context = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    return {key: value for key, value in context.items() if not key.startswith("_")}


@pytest.mark.slow
@pytest.mark.parametrize("version", RELEASES)
def test_a_repository_baked_at_each_release_updates_with_its_workflow(
    version: str, history: Path, cruft_command: str, tmp_path: Path
) -> None:
    commit = RELEASES[version]
    old_workflow = git(history, "show", f"{commit}:{BAKED}/.github/workflows/template-update.yml")
    script = update_script()
    # Releases before 0.7.0 run cruft itself; later ones run this script (make).
    ran = f"{script.CRUFT} {' '.join(script.UPDATE)}\n", "make template-update\n"
    assert any(command in old_workflow for command in ran), old_workflow
    # The oldest release recorded the Python a release before the 3.12+ images offered.
    answers = {"python_version": "3.9"} if version == list(RELEASES)[0] else {}
    project = cruft_create(cruft_command, history, commit, tmp_path, **answers)
    before = recorded_context(project)
    edits = team_edits(project)

    completed, outputs = run_update(project, history, cruft_command)

    report = completed.stdout + completed.stderr
    assert completed.returncode == 0, report
    assert outputs["changed"] == "true", report
    assert outputs["draft"] == "false", report
    assert prefect_flow_filters.read_template_version() in outputs["title"]
    assert "Traceback" not in report
    unmerged, _ = run_update(project, history, cruft_command, "--check-conflicts")
    assert unmerged.returncode == 0, unmerged.stderr
    for name, edit in edits.items():
        assert edit in (project / name).read_text(), name
    if TEAM_BLOCK in git(project, "show", "HEAD~1:pyproject.toml"):
        dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        assert dependencies["dependencies"][-1] == TEAM_PACKAGE
    assert (
        json.loads((project / ".cruft.json").read_text())["commit"]
        == git(history, "rev-parse", "HEAD").strip()
    )
    after = recorded_context(project)
    body = Path(outputs["body-file"]).read_text()
    for answer in before.keys() - after.keys():
        assert f"`{answer}`: {json.dumps(before[answer])}, no longer asked" in body
    if version_tuple(version) < (0, 7, 0):
        # The Python answer was renamed when 3.9 and 3.10 left its choices (0.7.0): the
        # old answer drops out, and the new one takes its default, the newest Python.
        assert "python_version" in before and "python_version" not in after
        assert after["python"] == baking.choices()["python"][0] == "3.13"
        assert '`python`: new, "3.13"' in body
    else:
        assert "python_version" not in before
        assert after["python"] == before["python"]
        assert "`python`" not in body
    assert '`kubernetes_namespace`: new, "default"' in body
    if version in MAKE_TEST:
        tested = baking.BakedProject(project).run("make", "test")
        assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]


def next_release(history: Path, change: str) -> None:
    """Commit a synthetic next release on top of `history`: `python_string` renamed
    `python_strinG` in the extension and every file using it (the same size, so a stale
    bytecode copy of the module would pass Python's check), plus `change` to Makefile."""
    for path in history.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(errors="surrogateescape")
            if "python_string" in text:
                path.write_text(
                    text.replace("python_string", "python_strinG"), errors="surrogateescape"
                )
    makefile = history / BAKED / "Makefile"
    makefile.write_text(makefile.read_text() + change)
    commit_all(history, "Next release: the extension changes")


@pytest.mark.slow
def test_the_next_release_changing_the_extension_updates(
    history: Path, cruft_command: str, tmp_path: Path
) -> None:
    clone = tmp_path / "template"
    git(tmp_path, "clone", "-q", str(history), str(clone))
    project = cruft_create(cruft_command, clone, "HEAD", tmp_path / "out")
    edits = team_edits(project)
    next_release(clone, TEMPLATE_EDIT)

    completed, outputs = run_update(project, clone, cruft_command)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert outputs["changed"] == "true" and outputs["draft"] == "false", completed.stdout
    assert (project / "Makefile").read_text().endswith(TEMPLATE_EDIT)
    for name, edit in edits.items():
        assert edit in (project / name).read_text(), name


def test_the_update_script_says_how_to_link_a_cookiecutter_bake(
    history: Path, cruft_command: str, tmp_path: Path
) -> None:
    project = baking.bake({}, tmp_path, template=history).path
    commit_all(project, "Baked with cookiecutter")
    baked = json.loads((project / ".cookiecutter.json").read_text())

    completed, outputs = run_update(project, history, cruft_command)

    assert completed.returncode == 2 and not outputs
    assert completed.stderr.startswith("ERROR: not linked to the template (no .cruft.json)")
    assert f"--checkout {baked['_template_commit']} " in completed.stderr
    assert baked["_template_commit"] == git(TEMPLATE_DIR, "rev-parse", "HEAD").strip()
    assert "Traceback" not in completed.stderr


def test_the_update_script_has_nothing_to_do_when_up_to_date(
    history: Path, cruft_command: str, tmp_path: Path
) -> None:
    project = cruft_create(cruft_command, history, "HEAD", tmp_path)

    completed, outputs = run_update(project, history, cruft_command)

    assert completed.returncode == 0, completed.stderr
    assert outputs == {"changed": "false"}
    assert "nothing to do" in completed.stdout
    assert not git(project, "status", "--porcelain")


def test_the_update_script_reports_a_cruft_error(
    history: Path, cruft_command: str, tmp_path: Path
) -> None:
    clone = tmp_path / "template"
    git(tmp_path, "clone", "-q", str(history), str(clone))
    project = cruft_create(cruft_command, clone, "HEAD", tmp_path / "out")
    shutil.rmtree(clone)  # as a template that cannot be reached

    completed, outputs = run_update(project, history, cruft_command)

    assert completed.returncode == 1 and not outputs
    assert completed.stderr.startswith("ERROR: cruft check failed")
    assert "TEMPLATE_TOKEN" in completed.stderr


@pytest.mark.slow
def test_a_conflicting_team_edit_opens_a_draft_that_lists_the_file(
    history: Path, cruft_command: str, tmp_path: Path
) -> None:
    clone = tmp_path / "template"
    git(tmp_path, "clone", "-q", str(history), str(clone))
    project = cruft_create(cruft_command, clone, "HEAD", tmp_path / "out")
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# The team's line at the end.\n")
    commit_all(project, "The team edits a template-owned file")
    next_release(clone, TEMPLATE_EDIT)

    completed, outputs = run_update(project, clone, cruft_command)

    assert completed.returncode == 0, completed.stderr
    assert outputs["draft"] == "true"
    body = Path(outputs["body-file"]).read_text()
    assert "- `Makefile`\n" in body and "Merge by hand" in body
    unmerged, _ = run_update(project, clone, cruft_command, "--check-conflicts")
    assert unmerged.returncode == 1
    assert unmerged.stderr.startswith("ERROR: unmerged template update in Makefile")


@pytest.mark.slow
def test_changing_an_answer_renders_it_into_every_file_that_uses_it(
    history: Path, cruft_command: str, tmp_path: Path
) -> None:
    answers = {"run_config": "kubernetes", "executor": "dask_cluster"}
    project = cruft_create(cruft_command, history, "HEAD", tmp_path, **answers)
    edits = team_edits(project)

    completed, outputs = run_update(
        project, history, cruft_command, "--set", "kubernetes_namespace=flows"
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert outputs["draft"] == "false"
    assert recorded_context(project)["kubernetes_namespace"] == "flows"
    rbac = list(yaml.safe_load_all((project / "dask-rbac.yaml").read_text()))
    assert {document["metadata"]["namespace"] for document in rbac} == {"flows"}
    assert rbac[1]["subjects"][0]["namespace"] == "flows"
    irsa = (project / "terraform/irsa.tf").read_text()
    assert 'default     = "flows"' in irsa
    assert "-n flows " in (project / "DEPLOY.md").read_text()
    body = Path(outputs["body-file"]).read_text()
    assert '- `kubernetes_namespace`: "default" -> "flows"\n' in body
    for name, edit in edits.items():
        assert edit in (project / name).read_text(), name


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("kubernetes_namespace=Flows_1", "ERROR: kubernetes_namespace: 'Flows_1' is not a"),
        ("namespace=flows", "ERROR: --set 'namespace=flows' is not NAME=VALUE for an answer"),
        ("kubernetes_namespace", "ERROR: --set 'kubernetes_namespace' is not NAME=VALUE"),
    ],
)
def test_a_bad_answer_change_is_refused_and_nothing_changes(
    assignment: str, message: str, history: Path, cruft_command: str, tmp_path: Path
) -> None:
    project = cruft_create(cruft_command, history, "HEAD", tmp_path, run_config="kubernetes")

    completed, outputs = run_update(project, history, cruft_command, "--set", assignment)

    assert completed.returncode == 1 and not outputs
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not git(project, "status", "--porcelain")


def test_the_update_keeps_the_repository_lock_when_the_templates_conflicts(
    tmp_path: Path,
) -> None:
    """uv.lock is the repository's: a merge or a reject of the template's lock is undone,
    and `uv lock` then locks again from pyproject.toml."""
    script = update_script()
    own = "version = 1\n# the repository's own lock\n"
    (tmp_path / "uv.lock").write_text(own)
    git(tmp_path, "init", "-q", "-b", "main")
    commit_all(tmp_path, "The repository's lock")
    (tmp_path / "uv.lock").write_text(f"<<<<<<< ours\n{own}=======\ntheirs\n>>>>>>> theirs\n")
    (tmp_path / "uv.lock.rej").write_text("a hunk the update could not apply\n")

    script.keep_own_lock(tmp_path)

    assert (tmp_path / "uv.lock").read_text() == own
    assert not (tmp_path / "uv.lock.rej").exists()
    assert not script.conflicts(tmp_path)


def test_the_update_leaves_a_lock_it_merged_cleanly_alone(tmp_path: Path) -> None:
    script = update_script()
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    commit_all(tmp_path, "The repository's lock")
    (tmp_path / "uv.lock").write_text("version = 1\n# merged from the template\n")

    script.keep_own_lock(tmp_path)

    assert (tmp_path / "uv.lock").read_text() == "version = 1\n# merged from the template\n"


def test_the_extension_leaves_nothing_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """What keeps every later release's extension its own: once an environment has its
    filters, the module is off sys.modules and its bytecode file is gone."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    sys.modules.pop("prefect_flow_filters", None)
    module = importlib.import_module("prefect_flow_filters")
    assert Path(module.__cached__).is_file()

    environment = StrictEnvironment(
        context={"cookiecutter": {"_extensions": ["prefect_flow_filters.TemplateFilters"]}}
    )

    assert "python_string" in environment.filters
    assert "prefect_flow_filters" not in sys.modules
    assert not Path(module.__cached__).exists()
    assert "pre_gen_project" not in sys.modules
