"""Make the baked folder a git repository, and say what to do next.

The repository is initialised on branch `main` with nothing committed: the team
reviews and makes the first commit (with its own name and signing rules). Under cruft
(its context has `_commit`) nothing is initialised: cruft bakes the template again for
`link`, `diff` and `update` with these hooks and diffs the results against the project
or each other, `.git` included, so a `.git` of the hook's own shows up as a change
(`.git/config` without the team's remote; with a commit, binary objects that
`cruft update` cannot read). Nothing here touches the network. Cookiecutter renders
this file (template variables only in NEXT_STEPS and the last line); the tests import it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

BRANCH = "main"

NEXT_STEPS = """
Created {{ cookiecutter.flow_slug }}. Next:

    cd {folder}
    make test    # install everything with uv, then lint and test
    make run     # run the flow once on this machine
    git add -A && git commit -m "Bake from cookiecutter-prefect-flow"

Then read README.md: where to write tasks, how monitoring works, how to deploy.
"""


def git_environment() -> dict[str, str]:
    """This environment without GIT_* variables: a bake run from inside a git hook would
    otherwise initialise the repository those name (GIT_DIR), not this folder."""
    return {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}


def init_repository(project: Path, cruft_commit: str = "") -> str:
    """Make `project` a git repository on branch main, committing nothing; one line
    that says what was done, or why not. `cruft_commit`: the template commit cruft
    bakes, empty under plain cookiecutter."""
    if cruft_commit:
        return (
            "Git: baked by cruft, which bakes again to compare, so no repository is made "
            f"here: `git init -b {BRANCH}` in a new project before `uv run pre-commit install`."
        )
    if (project / ".git").exists():
        return "Git: this folder was a git repository already; it is left as it was."
    git = shutil.which("git")
    if git is None:
        return (
            "Git: git was not found, so this folder is not a repository yet: "
            f"`git init -b {BRANCH}` in it before `uv run pre-commit install`."
        )
    env = git_environment()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([git, *args], cwd=project, env=env, capture_output=True, text=True)

    outer = run("rev-parse", "--show-toplevel")
    initialised = run("init", "-q")
    if initialised.returncode != 0:
        return f"Git: `git init` failed ({initialised.stderr.strip()}); run it yourself."
    # Not `git init -b`: git before 2.28 has no -b, and this works with every version.
    run("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
    note = f"Git: initialised a repository on branch {BRANCH}, with nothing committed yet."
    if outer.returncode == 0:
        note += (
            f" It sits inside the repository {outer.stdout.strip()}: "
            "delete its .git to keep it in that one."
        )
    return note


def folder_to_enter(project: Path, start: str | None) -> str:
    """How to `cd` into `project` from `start`, the folder the bake was started in
    (cookiecutter runs this hook inside the project, so that folder comes from PWD):
    a relative path below it, else the absolute one (`-o` elsewhere, or no PWD)."""
    # Real paths on both sides: PWD keeps the symlinks the shell followed.
    if not start or Path(start).resolve() not in project.resolve().parents:
        return str(project)
    return str(project.resolve().relative_to(Path(start).resolve()))


def main(project: Path, cruft_commit: str = "") -> int:
    """Never fails the bake: the project is complete without a repository."""
    print(init_repository(project, cruft_commit))
    print(
        NEXT_STEPS.replace("{folder}", shlex.quote(folder_to_enter(project, os.environ.get("PWD"))))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path.cwd(), cruft_commit="{{ cookiecutter.get('_commit', '') }}"))
