"""Take the template's changes: what `make template-update` and the weekly workflow run.

    python3 scripts/template_update.py           # check, update, lock, describe
    python3 scripts/template_update.py --check-conflicts   # what `make lint` runs
    python3 scripts/template_update.py --set kubernetes_namespace=flows  # change an answer

The update: `cruft check` tells an up-to-date repository (nothing to do) from one that
is out of date, one that is not linked to the template (no `.cruft.json`: how to link
it at the version it was baked from) and an error (network, token: cruft's message).
Out of date: `cruft update`, then `uv lock` for the updated `pyproject.toml`, then a
search for git conflict markers and `.rej` files (cruft may leave markers and still
report success). It writes the pull request's title, its body (answers that changed,
files to merge by hand) and whether it must be a draft: to $GITHUB_OUTPUT in GitHub
Actions, and the body to a file outside the repository. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

CRUFT = os.environ.get("CRUFT", "uvx cruft@2.16.0")
UPDATE = ["update", "--skip-apply-ask", "--allow-untracked-files"]
OUT_OF_DATE = "FAILURE: Project's cruft is out of date"
# The lines git writes around a conflict: `<<<<<<< ours`, `>>>>>>> theirs`.
MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)
NOT_LINKED, FAILED = 2, 1


class UpdateError(Exception):
    """The update cannot go on: the message says why and what to do."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def run(command: list[str], project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=project, capture_output=True, text=True)


def git_files(project: Path) -> list[str]:
    """Every file git tracks, and every untracked file it does not ignore."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], project)
    if listed.returncode != 0:
        raise UpdateError(f"git ls-files failed: {listed.stderr.strip()}")
    return sorted({name for name in listed.stdout.split("\0") if name})


def conflicts(project: Path) -> list[str]:
    """The files that hold git conflict markers, and the `.rej` files cruft left."""
    found = []
    for name in git_files(project):
        path = project / name
        if name.endswith(".rej"):
            found.append(name)
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):  # deleted, unreadable, or binary
            continue
        if MARKER.search(text):
            found.append(name)
    return found


def recorded(project: Path, name: str, revision: str | None = None) -> dict:
    """The JSON file `name` of the working tree, or as committed at `revision`; {} when
    it is missing or not JSON (conflict markers)."""
    try:
        if revision is None:
            return json.loads((project / name).read_text(encoding="utf-8"))
        shown = run(["git", "show", f"{revision}:{name}"], project)
        return json.loads(shown.stdout) if shown.returncode == 0 else {}
    except (OSError, ValueError):
        return {}


def keep_own_lock(project: Path) -> None:
    """The repository's `uv.lock` as committed, if the update merged the template's into
    it: `uv lock` locks again from `pyproject.toml` anyway. Releases before 0.3.0 shipped
    no lock and did not tell cruft to leave it alone."""
    lock = project / "uv.lock"
    rejected = project / "uv.lock.rej"
    merged = lock.is_file() and MARKER.search(lock.read_text(encoding="utf-8", errors="replace"))
    if (merged or rejected.is_file()) and run(
        ["git", "cat-file", "-e", "HEAD:uv.lock"], project
    ).returncode == 0:
        run(["git", "checkout", "HEAD", "--", "uv.lock"], project)
        rejected.unlink(missing_ok=True)


def answers(cruft_state: Mapping) -> dict:
    """The template answers of a `.cruft.json`, without cookiecutter's private keys."""
    context = cruft_state.get("context", {}).get("cookiecutter", {})
    return {key: value for key, value in context.items() if not key.startswith("_")}


def changed_answers(before: Mapping, after: Mapping) -> list[str]:
    """One line per answer the update changed, dropped or added."""
    lines = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if key not in after:
            lines.append(f"- `{key}`: {json.dumps(old)}, no longer asked by the template")
        elif key not in before:
            lines.append(f"- `{key}`: new, {json.dumps(new)}")
        elif old != new:
            lines.append(f"- `{key}`: {json.dumps(old)} -> {json.dumps(new)}")
    return lines


def template_url(template: str) -> str:
    """A template address git can clone: cookiecutter's `gh:` shorthand spelled out."""
    if template.startswith("gh:"):
        return f"https://github.com/{template[3:]}.git"
    return template


def link_instructions(project: Path) -> str:
    """How to link a repository baked with plain cookiecutter, at the template version
    it was baked from: linking at the newest commit would lose every change between."""
    baked = {}
    if (project / ".cookiecutter.json").is_file():
        baked = recorded(project, ".cookiecutter.json")
    version = baked.get("_template_version", "unknown")
    template = template_url(baked.get("_template") or "<template URL>")
    commit = baked.get("_template_commit")
    if not commit:
        commit = "<commit>"
        find = (
            f"\nFind <commit> in a clone of the template: the commit that set version {version}"
            f" in its pyproject.toml,\n  git log --reverse --format=%H -S 'version = \"{version}\"'"
            " -- pyproject.toml | head -1"
        )
    else:
        find = ""
    return (
        "ERROR: not linked to the template (no .cruft.json), so no update can be found - "
        f"link it once, at the template version it was baked from ({version}), and commit:\n"
        f"  uvx cruft@2.16.0 link --no-input --checkout {commit} "
        f'--extra-context "$(cat .cookiecutter.json)" {shlex.quote(template)}\n'
        "  git add .cruft.json && git commit -m 'Link to the template'"
        f"{find}"
    )


def check(project: Path, cruft: list[str]) -> bool:
    """True when the repository is out of date; False when it is up to date."""
    if not (project / ".cruft.json").is_file():
        raise UpdateError(link_instructions(project), NOT_LINKED)
    checked = run([*cruft, "check"], project)
    output = checked.stdout + checked.stderr
    if checked.returncode == 0:
        return False
    if OUT_OF_DATE in output:
        return True
    raise UpdateError(
        "ERROR: cruft check failed, so whether an update exists is unknown - check the "
        "template's address in .cruft.json, the network, and for a private template the "
        f"TEMPLATE_TOKEN secret. cruft said:\n{last_lines(output)}"
    )


def answer_changes(assignments: list[str], project: Path) -> dict[str, str]:
    """`NAME=VALUE` arguments as answers to change; each NAME must be a recorded answer."""
    known = answers(recorded(project, ".cruft.json"))
    changes = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or name not in known:
            raise UpdateError(
                f"ERROR: --set {assignment!r} is not NAME=VALUE for an answer in .cruft.json - "
                "use one of: " + ", ".join(sorted(known))
            )
        changes[name] = value
    return changes


def last_lines(output: str, count: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-count:])


def update(
    project: Path, cruft: list[str], changes: Mapping[str, str] | None = None, uv: str = "uv"
) -> dict[str, object]:
    """Apply the update (with `changes` to the recorded answers) and lock again; what the
    pull request needs to say."""
    before = recorded(project, ".cruft.json")
    baked_before = recorded(project, ".cookiecutter.json", "HEAD")
    new_answers = ["--variables-to-update", json.dumps(dict(changes))] if changes else []
    updated = run([*cruft, *UPDATE, *new_answers], project)
    if updated.returncode != 0:
        raise UpdateError(
            f"ERROR: cruft update failed - nothing is committed; cruft said:\n"
            f"{last_lines(updated.stdout + updated.stderr)}"
        )
    after = recorded(project, ".cruft.json")
    if not changes and after.get("commit") == before.get("commit"):
        raise UpdateError(
            "ERROR: cruft update left .cruft.json at the same template commit - run it by "
            f"hand to see why; cruft said:\n{last_lines(updated.stdout + updated.stderr)}"
        )
    keep_own_lock(project)
    locked = run([uv, "lock"], project)
    problems = conflicts(project)
    baked_after = recorded(project, ".cookiecutter.json")
    versions = (
        baked_before.get("_template_version", "?"),
        baked_after.get("_template_version") or after["commit"][:12],
    )
    return {
        "title": f"Update from the template: {versions[0]} to {versions[1]}",
        "draft": bool(problems) or locked.returncode != 0,
        "body": body(answers(before), answers(after), problems, locked),
    }


def body(
    before: Mapping,
    after: Mapping,
    problems: list[str],
    locked: subprocess.CompletedProcess,
) -> str:
    lines = [
        "`cruft update` applied the template's changes since the commit in `.cruft.json`;",
        "its CHANGELOG says what changed.",
        "",
    ]
    if problems:
        lines += [
            "**Merge by hand before this is ready** (it is a draft until then): the update",
            "and this repository changed the same lines of these files. Resolve each git",
            "conflict marker (`<<<<<<<`, `=======`, `>>>>>>>`), or apply each `.rej` file",
            "and delete it; `make lint` fails while any marker remains.",
            "",
            *(f"- `{name}`" for name in problems),
            "",
        ]
    if migrated := changed_answers(before, after):
        lines += [
            "Answers that changed (`.cruft.json`): a recorded answer the template no longer",
            "offers is dropped, and a new one takes its default.",
            "",
            *migrated,
            "",
        ]
    if locked.returncode == 0:
        lines.append("`uv lock` locked again for the updated `pyproject.toml`.")
    else:
        lines += [
            "**`uv lock` failed** for the updated `pyproject.toml`; run `make install`:",
            "",
            "```",
            last_lines(locked.stdout + locked.stderr),
            "```",
        ]
    return "\n".join(lines) + "\n"


def write_outputs(outputs: Mapping[str, str]) -> None:
    """Step outputs for GitHub Actions; printed when run by hand."""
    target = os.environ.get("GITHUB_OUTPUT")
    text = "".join(f"{key}={value}\n" for key, value in outputs.items())
    if target:
        with open(target, "a", encoding="utf-8") as output:
            output.write(text)
    else:
        print(text, end="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument(
        "--body-file",
        type=Path,
        default=Path(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir()) / "template-update.md",
        help="where the pull request's body goes (outside the repository)",
    )
    parser.add_argument(
        "--check-conflicts",
        action="store_true",
        help="only fail when a file holds conflict markers or a .rej file is left",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a recorded answer and render the template with it (repeatable)",
    )
    arguments = parser.parse_args(argv)
    project = arguments.project.resolve()
    cruft = shlex.split(CRUFT)
    try:
        if arguments.check_conflicts:
            if problems := conflicts(project):
                raise UpdateError(
                    "ERROR: unmerged template update in "
                    + ", ".join(problems)
                    + " - resolve the conflict markers (or apply the .rej files) and"
                    " delete the .rej files"
                )
            return 0
        out_of_date = check(project, cruft)
        changes = answer_changes(arguments.set, project)
        if not out_of_date and not changes:
            print("Up to date with the template: nothing to do.")
            write_outputs({"changed": "false"})
            return 0
        result = update(project, cruft, changes)
    except UpdateError as problem:
        print(problem, file=sys.stderr)
        return problem.code
    arguments.body_file.write_text(str(result["body"]), encoding="utf-8")
    write_outputs(
        {
            "changed": "true",
            "draft": str(result["draft"]).lower(),
            "title": str(result["title"]),
            "body-file": str(arguments.body_file),
        }
    )
    print(f"{result['title']} (draft: {result['draft']}); body in {arguments.body_file}")
    print(result["body"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
