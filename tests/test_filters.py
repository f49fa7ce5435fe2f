"""The Jinja filters of prefect_flow_filters.py, each on the text it quotes or reads."""

from __future__ import annotations

import ast
import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import FailedHookException

from tests.conftest import TEMPLATE_DIR


def load_filters(path: Path = TEMPLATE_DIR / "prefect_flow_filters.py") -> types.ModuleType:
    """A private copy of the extension module (it takes itself off sys.modules when used)."""
    spec = importlib.util.spec_from_file_location("filters_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filters = load_filters()


def git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@invalid", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# (text, the Python literal `ruff format` keeps): one line per branch of the quoting.
PYTHON_STRINGS = [
    pytest.param("Daily Sales", '"Daily Sales"', id="plain"),
    pytest.param("", '""', id="empty"),
    pytest.param("Bob's report", '"Bob\'s report"', id="single quote: double quotes"),
    pytest.param('The "big" one', "'The \"big\" one'", id="more double quotes: single quotes"),
    pytest.param('Bob\'s "big" one', "'Bob\\'s \"big\" one'", id="both, more double"),
    pytest.param("Bob's \"x", '"Bob\'s \\"x"', id="as many of each: double quotes"),
    pytest.param("a\\b\nc", '"a\\\\b\\nc"', id="backslash and newline escaped"),
    pytest.param("Café ✓", '"Café ✓"', id="non-ASCII kept readable"),
]


@pytest.mark.parametrize(("text", "literal"), PYTHON_STRINGS)
def test_python_string_quotes_as_ruff_format_leaves_it(text: str, literal: str) -> None:
    assert filters.python_string(text) == literal
    assert ast.literal_eval(literal) == text


def test_python_string_round_trips_every_random_text_and_ruff_format_keeps_it(
    tmp_path: Path,
) -> None:
    rng = random.Random(21)
    alphabet = "ab '\"\\\n\t{}$é"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(300)]
    source = "".join(f"X{index} = {filters.python_string(t)}\n" for index, t in enumerate(texts))
    module = tmp_path / "names.py"
    module.write_text(source, encoding="utf-8")

    namespace: dict[str, object] = {}
    exec(compile(source, module, "exec"), namespace)
    assert [namespace[f"X{index}"] for index in range(len(texts))] == texts
    subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", str(module)], check=True
    )


def test_hcl_string_escapes_and_leaves_nothing_to_interpolate() -> None:
    assert filters.hcl_string('a "b" ${var.x} %{if y} $ % é\n') == (
        '"a \\"b\\" $${var.x} %%{if y} $ % é\\n"'
    )


def test_dockerfile_string_escapes_every_dollar() -> None:
    assert filters.dockerfile_string('a "b" $HOME ${X} é') == '"a \\"b\\" \\$HOME \\${X} é"'


def test_verbatim_is_the_file_unrendered_without_its_final_newline() -> None:
    name = "deploy/steps-test.yml"
    text = (TEMPLATE_DIR / "templates" / name).read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert filters.verbatim(name) == text.rstrip("\n")
    assert "\n" in filters.verbatim(name)


def test_eventbridge_schedule_ignores_surrounding_spaces() -> None:
    assert filters.eventbridge_schedule("  0 6 * * 1-5 \n") == "cron(0 6 ? * MON,TUE,WED,THU,FRI *)"


def test_checked_is_empty_for_a_good_answer_and_stops_the_bake_for_a_bad_one() -> None:
    assert filters.checked({"flow_slug": "sales"}, "flow_slug") == ""
    assert filters.checked({"flow_slug": "class", "aws_region": "us-east-1"}, "aws_region") == ""

    with pytest.raises(FailedHookException) as raised:
        filters.checked({"schedule": "0 6 32 13 *"}, "schedule")

    lines = str(raised.value).split("\n")
    assert len(lines) == 2
    assert all(line.startswith("ERROR: schedule: ") for line in lines)


def test_the_hook_is_compiled_once_from_its_source() -> None:
    hook = filters._load_hook()
    assert filters._load_hook() is hook
    assert hook.__file__ == str(TEMPLATE_DIR / "hooks" / "pre_gen_project.py")
    assert hook.__name__ == "pre_gen_project"


def test_the_template_version_is_the_one_in_pyproject() -> None:
    pyproject = tomllib.loads((TEMPLATE_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    assert filters.read_template_version() == pyproject["project"]["version"]


def template_copy(folder: Path) -> types.ModuleType:
    """The extension module copied to `folder`, where it reads its template."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE_DIR / "prefect_flow_filters.py", folder)
    return load_filters(folder / "prefect_flow_filters.py")


def test_the_template_commit_is_head_of_the_template_checkout(tmp_path: Path) -> None:
    template = tmp_path / "template"
    module = template_copy(template)
    git(template, "init", "-q")
    git(template, "add", "-A")
    git(template, "commit", "-qm", "release")

    assert module.read_template_commit() == git(template, "rev-parse", "HEAD")


def test_a_template_inside_another_repository_or_none_has_no_commit(tmp_path: Path) -> None:
    outside = template_copy(tmp_path / "plain")
    assert outside.read_template_commit() is None

    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "not the template")
    assert template_copy(tmp_path / "nested").read_template_commit() is None


def test_git_variables_of_a_calling_git_do_not_change_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    git(other, "commit", "-q", "--allow-empty", "-m", "another repository")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))

    assert template_copy(tmp_path / "plain").read_template_commit() is None


def test_without_git_there_is_no_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = template_copy(tmp_path / "template")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    assert module.read_template_commit() is None


def test_the_recorded_answers_drop_private_keys_and_add_the_template(tmp_path: Path) -> None:
    context = {
        "flow_slug": "sales",
        "sentry_crons": False,
        "_template": "gh:team/template",
        "_output_dir": str(tmp_path),
        "__package": "sales",
    }

    recorded = filters.recorded_answers(context)

    assert recorded == {
        "flow_slug": "sales",
        "sentry_crons": False,
        "_template": "gh:team/template",
        "_template_version": filters.read_template_version(),
        "_template_commit": filters.read_template_commit(),
    }
    assert recorded["_template_commit"] == git(TEMPLATE_DIR, "rev-parse", "HEAD")


def test_the_environment_gets_the_filters_the_choices_and_readable_json() -> None:
    environment = StrictEnvironment(
        context={"cookiecutter": {"_extensions": ["prefect_flow_filters.TemplateFilters"]}}
    )

    rendered = environment.from_string("{{ {'b': 'é', 'a': 1} | tojson }}").render()
    assert json.loads(rendered) == {"a": 1, "b": "é"}
    assert rendered.index('"a"') < rendered.index('"b"') and "é" in rendered
    offered = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    assert environment.globals["template_choices"] == {
        name: tuple(value)
        for name, value in offered.items()
        if isinstance(value, list) and not name.startswith("_")
    }
    assert environment.globals["template_version"] == filters.read_template_version()
    names = ["checked", "dockerfile_string", "eventbridge_schedule", "hcl_string"]
    names += ["python_string", "recorded_answers", "verbatim"]
    assert all(environment.filters[name].__name__ == name for name in names)
