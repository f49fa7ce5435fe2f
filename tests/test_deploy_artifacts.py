"""The deploy artefacts of a baked project: Dockerfile, Terraform, GitHub Actions.

Every bake is checked by the real tools: hadolint, dockerfile-parse, python-hcl2,
`terraform fmt`, check-jsonschema's GitHub workflow schema and checkov. Nothing here
reaches the network at test time: checkov runs from uv's cache (installed from the registry on
first use), Terraform only formats.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

import baking
from tests.answers import COMBINATIONS, HOSTILE_DEPLOY, HOSTILE_PREFECT_PROJECT
from tests.deploy_tools import (
    CHECKOV_FRAMEWORKS,
    blocks,
    checkov,
    docker_label,
    hcl_literal,
    load_terraform,
    locals_of,
    run,
    tool,
    venv_tool,
)

RUN_CONFIGS = baking.choices()["run_config"]
PYTHON_VERSIONS = baking.choices()["python"]
WITH_IMAGE_REPOSITORY = {"ecs", "docker"}  # the run configs whose image goes to ECR
HOSTILE = HOSTILE_DEPLOY

BAKES = {
    **{
        f"{run_config}-py{python}": {"run_config": run_config, "python": python}
        for run_config in RUN_CONFIGS
        for python in PYTHON_VERSIONS
    },
    "hostile-ecs-py3.13": HOSTILE,
    **{
        f"cloud-{run_config}-py3.13": {"orchestrator": "prefect_cloud", "run_config": run_config}
        for run_config in RUN_CONFIGS
    },
    "none-ecs-py3.13": {"orchestrator": "none", "run_config": "ecs"},
    **{
        f"dask-{run_config}-py3.13": {"run_config": run_config, "executor": "dask_cluster"}
        for run_config in ("ecs", "kubernetes")
    },
}
ALL_BAKES = list(BAKES)
# Every combination of tests/answers.py, for the checks that must hold for each one.
COMBINATION_BAKES = [f"answers-{param.id}" for param in COMBINATIONS]
BAKES.update({f"answers-{param.id}": param.values[0] for param in COMBINATIONS})
# checkov takes seconds to start: one run covers one bake of each run config.
CHECKOV_BAKES = [
    "hostile-ecs-py3.13",
    "kubernetes-py3.12",
    "docker-py3.13",
    "local-py3.12",
    "none-ecs-py3.13",
    "dask-ecs-py3.13",
    "dask-kubernetes-py3.13",
]

TERRAFORM_ALWAYS = {
    "alerts.tf",
    "backend.tf",
    "crons.tf",
    "iam.tf",
    "main.tf",
    "outputs.tf",
    "sentry.tf",
    "ssm.tf",
    "variables.tf",
    "versions.tf",
}
TERRAFORM_BY_RUN_CONFIG = {
    "ecs": {"ecr.tf", "deploy_role.tf", "task_role.tf"},
    "docker": {"ecr.tf", "deploy_role.tf"},
    "kubernetes": {"irsa.tf"},
    "local": set(),
}
ACTION_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")


@pytest.fixture(scope="session")
def baked(tmp_path_factory: pytest.TempPathFactory):
    """Bake each answer set once per session; `baked(id)` gives its project folder."""
    bakes_root = tmp_path_factory.mktemp("deploy-bakes")
    projects: dict[str, Path] = {}

    def get(bake_id: str) -> Path:
        if bake_id not in projects:
            projects[bake_id] = baking.bake(BAKES[bake_id], bakes_root / bake_id).path
        return projects[bake_id]

    return get


def answers_of(bake_id: str) -> dict[str, str]:
    answers = {
        "orchestrator": "prefect_server",
        "run_config": "ecs",
        "python": "3.13",
        "executor": "local",
        **BAKES[bake_id],
    }
    if bake_id.startswith("hostile"):
        answers["prefect_project"] = HOSTILE_PREFECT_PROJECT
    return answers


def structure(parser: DockerfileParser) -> list[tuple[str, str]]:
    return [(item["instruction"], item["value"]) for item in parser.structure]


def workflow(project: Path, name: str) -> dict:
    return yaml.safe_load((project / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def steps_of(document: dict) -> list[dict]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def run_lines(document: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps_of(document))


# Dockerfile


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_hadolint_passes_the_dockerfile(baked, bake_id: str) -> None:
    dockerfile = baked(bake_id) / "Dockerfile"

    result = run(venv_tool("hadolint"), "--no-color", str(dockerfile))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_the_image_carries_the_monitoring_settings_and_no_secret(baked, bake_id: str) -> None:
    project = baked(bake_id)
    answers = answers_of(bake_id)
    parser = DockerfileParser(path=str(project / "Dockerfile"))
    locals_ = locals_of(load_terraform(project / "terraform"))

    # The base is a build argument whose default is the official image, pinned by digest
    # on a FROM line of its own, which is what Dependabot reads and moves.
    froms = [value for instruction, value in structure(parser) if instruction == "FROM"]
    assert re.fullmatch(
        rf"python:{re.escape(answers['python'])}-slim-trixie@sha256:[0-9a-f]{{64}} AS python-base",
        froms[0],
    )
    assert froms[1:] == ["${BASE_IMAGE} AS build", "${BASE_IMAGE} AS runtime"]
    assert ("ARG", "BASE_IMAGE=python-base") in structure(parser)
    env = parser.envs
    assert env["SENTRY_ENVIRONMENT"] == hcl_literal(locals_["environment"])
    assert env["SENTRY_REGION"] == hcl_literal(locals_["aws_region"])
    assert env["SENTRY_DSN_SSM_PARAMETER_NAME"] == hcl_literal(locals_["sentry_dsn_parameter"])
    assert "SENTRY_DSN" not in env
    assert not re.search(r"https?://[^\s\"]+@", parser.content), "a DSN-like URL in the Dockerfile"
    instructions = structure(parser)
    assert ("ARG", 'SENTRY_RELEASE=""') in instructions
    assert 'SENTRY_RELEASE="${SENTRY_RELEASE}"' in parser.content
    user = [value for instruction, value in instructions if instruction == "USER"][-1]
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), (
        f"USER {user} is not a numeric non-root user"
    )


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_the_build_context_is_only_what_the_image_installs(baked, bake_id: str) -> None:
    project = baked(bake_id)
    copied = [
        source
        for instruction, value in structure(DockerfileParser(path=str(project / "Dockerfile")))
        if instruction == "COPY" and not value.startswith("--from=")
        for source in value.split()[:-1]
    ]
    lines = (project / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]

    assert patterns[:5] == ["*", "!pyproject.toml", "!uv.lock", "!README.md", "!src/"]
    assert sorted(copied) == ["README.md", "pyproject.toml", "src/", "uv.lock"]
    assert all((project / path).exists() for path in copied)


def test_free_text_labels_round_trip_through_docker(baked) -> None:
    labels = DockerfileParser(path=str(baked("hostile-ecs-py3.13") / "Dockerfile")).labels

    assert docker_label(labels["org.opencontainers.image.title"]) == HOSTILE["project_name"]
    assert docker_label(labels["org.opencontainers.image.description"]) == HOSTILE["description"]
    assert docker_label(labels["org.opencontainers.image.vendor"]) == HOSTILE["team"]


# Terraform


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_terraform_parses_and_has_the_files_of_its_run_config(baked, bake_id: str) -> None:
    folder = baked(bake_id) / "terraform"
    answers = answers_of(bake_id)

    terraform = load_terraform(folder)

    scheduled = {"schedule.tf"} if answers["orchestrator"] == "none" else set()
    # An ECS agent starts the runs unless EventBridge Scheduler does.
    agent = {"ecs_agent.tf"} if answers["run_config"] == "ecs" and not scheduled else set()
    dask = {
        ("ecs", "dask_cluster"): {"dask.tf"},
        ("kubernetes", "dask_cluster"): {"dask_irsa.tf"},
    }.get((answers["run_config"], answers["executor"]), set())
    assert set(terraform) == TERRAFORM_ALWAYS | TERRAFORM_BY_RUN_CONFIG[answers["run_config"]] | (
        scheduled | agent | dask
    )


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_terraform_fmt_passes(baked, bake_id: str) -> None:
    result = run(
        tool("terraform"),
        "fmt",
        "-check",
        "-recursive",
        "-no-color",
        cwd=baked(bake_id) / "terraform",
    )

    assert result.returncode == 0, f"not formatted: {result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    "bake_id", [f"{r}-py3.13" for r in RUN_CONFIGS] + ["none-ecs-py3.13", "dask-ecs-py3.13"]
)
def test_every_reference_names_something_declared(baked, bake_id: str) -> None:
    # `terraform validate` needs the providers, which cannot be downloaded here.
    folder = baked(bake_id) / "terraform"
    terraform = load_terraform(folder)
    code = "\n".join(
        line
        for path in sorted(folder.glob("*.tf"))
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    declared = {
        "var": {name for (name,) in blocks(terraform, "variable")},
        "local": set(locals_of(terraform)),
        "data": {".".join(labels) for labels in blocks(terraform, "data")},
        "resource": {".".join(labels) for labels in blocks(terraform, "resource")},
    }

    for kind in ("var", "local"):
        for name in re.findall(rf"\b{kind}\.(\w+)", code):
            assert name in declared[kind], f"{kind}.{name} is not declared"
    for name in re.findall(r"\bdata\.(\w+\.\w+)", code):
        assert name in declared["data"], f"data.{name} is not declared"
    for name in re.findall(r"(?<![.\w])((?:aws|sentry)_\w+\.\w+)\.", code):
        assert name in declared["resource"], f"{name} is not declared"


@pytest.mark.parametrize("run_config", RUN_CONFIGS)
def test_providers_and_terraform_are_pinned(baked, run_config: str) -> None:
    versions = load_terraform(baked(f"{run_config}-py3.13") / "terraform")["versions.tf"][
        "terraform"
    ][0]

    assert re.fullmatch(r'">= 1\.\d+\.\d+, < 2\.0\.0"', versions["required_version"])
    providers = versions["required_providers"][0]
    assert providers["sentry"] == {"source": '"jianyuan/sentry"', "version": '"~> 0.15.0"'}
    assert providers["aws"]["source"] == '"hashicorp/aws"'
    assert re.fullmatch(r'"~> \d+\.\d+"', providers["aws"]["version"])


@pytest.mark.parametrize("bake_id", [f"{r}-py3.13" for r in RUN_CONFIGS] + ["dask-ecs-py3.13"])
def test_every_variable_is_described_and_validated(baked, bake_id: str) -> None:
    variables = blocks(load_terraform(baked(bake_id) / "terraform"), "variable")

    assert variables
    for (name,), body in variables.items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("validation"), f"variable {name} has no validation"


def test_the_sentry_provider_is_authenticated_from_ssm(baked) -> None:
    terraform = load_terraform(baked("ecs-py3.13") / "terraform")

    provider = terraform["versions.tf"]["provider"]
    sentry = next(entry['"sentry"'] for entry in provider if '"sentry"' in entry)
    assert sentry["token"] == "${data.aws_ssm_parameter.sentry_token.value}"
    assert ("aws_ssm_parameter", "sentry_token") in blocks(terraform, "data")


def test_sentry_resources_use_the_current_provider_schema(baked) -> None:
    terraform = load_terraform(baked("ecs-py3.13") / "terraform")
    resources = blocks(terraform, "resource")
    data = blocks(terraform, "data")

    project = resources[("sentry_project", "flow")]
    assert project["teams"] == ["${var.sentry_team}"] and "team" not in project
    assert not {kind for kind, _ in resources} & {
        "sentry_plugin",
        "sentry_issue_alert",
        "sentry_rule",
    }
    key = data[("sentry_key", "flow")]
    assert key["first"] is True
    dsn = resources[("aws_ssm_parameter", "sentry_dsn")]
    assert dsn["value"] == '${data.sentry_key.flow.dsn["public"]}'
    assert dsn["type"] == '"SecureString"'
    assert dsn["key_id"] == "${aws_kms_key.sentry_dsn.arn}"
    assert resources[("aws_kms_key", "sentry_dsn")]["enable_key_rotation"] is True


def test_the_slack_alert_watches_the_project_and_shows_where_errors_come_from(baked) -> None:
    terraform = load_terraform(baked("ecs-py3.13") / "terraform")
    data = blocks(terraform, "data")
    alert = blocks(terraform, "resource")[("sentry_alert", "slack")]

    assert data[("sentry_organization_integration", "slack")]["provider_key"] == '"slack"'
    assert ("sentry_project_error_monitor", "flow") in data
    assert "data.sentry_project_error_monitor.flow.id" in alert["monitor_ids"]
    assert alert["environment"] == "${local.environment}"
    triggers = {key for condition in alert["trigger_conditions"] for key in condition}
    assert triggers == {"first_seen_event", "regression_event", "reappeared_event"}
    (action_filter,) = alert["action_filters"]
    (action,) = action_filter["actions"]
    slack = action["slack"]
    assert slack["integration_id"] == "${data.sentry_organization_integration.slack.id}"
    assert slack["channel_name"] == "${var.slack_channel}"
    assert set(hcl_literal(slack["tags"]).split(",")) == {"region", "environment", "release"}


def test_the_slack_channel_defaults_to_the_answer(baked) -> None:
    variables = blocks(load_terraform(baked("ecs-py3.13") / "terraform"), "variable")

    assert hcl_literal(variables[("slack_channel",)]["default"]) == "#data-platform-alerts"


def test_the_flow_may_read_exactly_its_parameter_and_key(baked) -> None:
    terraform = load_terraform(baked("ecs-py3.13") / "terraform")
    policy = blocks(terraform, "data")[("aws_iam_policy_document", "flow")]

    grants = {
        (tuple(statement["actions"]), tuple(statement["resources"]))
        for statement in policy["statement"]
    }
    assert grants == {
        (('"ssm:GetParameter"',), ("${aws_ssm_parameter.sentry_dsn.arn}",)),
        (('"kms:Decrypt"',), ("${aws_kms_key.sentry_dsn.arn}",)),
    }
    task_role = blocks(terraform, "resource")[("aws_iam_role_policy_attachment", "task_flow")]
    assert task_role["policy_arn"] == "${aws_iam_policy.flow.arn}"


@pytest.mark.parametrize("run_config", RUN_CONFIGS)
def test_the_image_repository_exists_only_where_an_image_is_pulled_from_ecr(
    baked, run_config: str
) -> None:
    terraform = load_terraform(baked(f"{run_config}-py3.13") / "terraform")
    resources = blocks(terraform, "resource")
    outputs = {name for (name,) in blocks(terraform, "output")}

    expected_outputs = {
        "sentry_dsn_parameter_name",
        "sentry_dsn_kms_key_arn",
        "flow_policy_arn",
        "sentry_project_slug",
    }
    if run_config in WITH_IMAGE_REPOSITORY:
        repository = resources[("aws_ecr_repository", "flow")]
        assert repository["image_tag_mutability"] == '"IMMUTABLE"'
        assert repository["image_scanning_configuration"][0]["scan_on_push"] is True
        assert repository["encryption_configuration"][0]["encryption_type"] in {'"KMS"', '"AES256"'}
        expected_outputs |= {
            "image_repository_url",
            "image_pull_policy_arn",
            "deploy_role_arn",
            "ecr_registry",
        }
    else:
        assert not any(kind.startswith("aws_ecr") for kind, _ in resources)
    if run_config == "ecs":
        expected_outputs |= {
            "task_role_arn",
            "execution_role_arn",
            "ecs_agent_policy_arn",
            "ecs_cluster_arn",
        }
    if run_config == "kubernetes":
        expected_outputs |= {"flow_role_arn", "kubernetes_namespace"}
    assert outputs == expected_outputs


@pytest.mark.parametrize("bake_id", ["docker-py3.13", "none-ecs-py3.13"])
def test_only_the_deploy_environment_of_one_repository_may_assume_the_deploy_role(
    baked, bake_id: str
) -> None:
    project = baked(bake_id)
    trust = blocks(load_terraform(project / "terraform"), "data")[
        ("aws_iam_policy_document", "deploy_trust")
    ]
    locals_ = locals_of(load_terraform(project / "terraform"))

    conditions = {
        condition["variable"]: condition["values"]
        for condition in trust["statement"][0]["condition"]
    }
    assert conditions['"token.actions.githubusercontent.com:sub"'] == [
        '"repo:${var.github_repository}:environment:${local.environment}"'
    ]
    assert conditions['"token.actions.githubusercontent.com:aud"'] == ['"sts.amazonaws.com"']
    # The job whose token that is: it runs in the environment named by the same answer.
    job = workflow(project, "deploy.yml")["jobs"]["deploy"]
    assert job["environment"] == hcl_literal(locals_["environment"])


def test_the_schedule_starts_the_task_definition_that_runs_the_flow(baked) -> None:
    terraform = load_terraform(baked("none-ecs-py3.13") / "terraform")
    resources = blocks(terraform, "resource")
    locals_ = locals_of(terraform)

    schedule = resources[("aws_scheduler_schedule", "flow")]
    assert hcl_literal(locals_["schedule_expression"]) == "cron(0 6 * * ? *)"
    assert schedule["schedule_expression"] == "${local.schedule_expression}"
    assert schedule["schedule_expression_timezone"] == '"UTC"'
    target = schedule["target"][0]
    parameters = target["ecs_parameters"][0]
    assert parameters["task_definition_arn"] == "${aws_ecs_task_definition.flow.arn}"
    assert parameters["launch_type"] == '"FARGATE"'
    assert target["role_arn"] == "${aws_iam_role.scheduler.arn}"
    definition = resources[("aws_ecs_task_definition", "flow")]
    assert definition["task_role_arn"] == "${aws_iam_role.task.arn}"
    assert definition["execution_role_arn"] == "${aws_iam_role.execution.arn}"
    assert [hcl_literal(word) for word in locals_["flow_command"]] == [
        "python",
        "-m",
        "daily_sales_report.deployment.run",
    ]
    assert set(locals_["flow_environment"]) == {
        "SENTRY_DSN_SSM_PARAMETER_NAME",
        "SENTRY_ENVIRONMENT",
        "SENTRY_REGION",
        "SENTRY_TRACES_SAMPLE_RATE",
    }
    outputs = {name for (name,) in blocks(terraform, "output")}
    assert {"schedule_name", "log_group_name", "task_role_arn", "deploy_role_arn"} <= outputs
    assert {"ecs_cluster_arn", "run_task_network_configuration"} <= outputs  # "run it now"


def test_ecs_hands_the_flow_its_dsn_from_ssm_with_the_execution_role(baked) -> None:
    """SENTRY_DSN comes from the parameter as the task starts: the flow imports no boto3."""
    terraform = load_terraform(baked("none-ecs-py3.13") / "terraform")
    assert locals_of(terraform)["flow_secrets"] == {
        "SENTRY_DSN": "${aws_ssm_parameter.sentry_dsn.arn}"
    }
    definition = blocks(terraform, "resource")[("aws_ecs_task_definition", "flow")]
    container = definition["container_definitions"]
    assert "secrets = [for name, arn in local.flow_secrets : {name = name, valueFrom = arn}]" in (
        " ".join(container.split())
    ), container
    policy = blocks(terraform, "data")[("aws_iam_policy_document", "execution_secrets")]
    grants = {
        (tuple(statement["actions"]), tuple(statement["resources"]))
        for statement in policy["statement"]
    }
    assert grants == {
        (('"ssm:GetParameters"',), ("${aws_ssm_parameter.sentry_dsn.arn}",)),
        (('"kms:Decrypt"',), ("${aws_kms_key.sentry_dsn.arn}",)),
    }
    attached = blocks(terraform, "resource")[("aws_iam_role_policy", "execution_secrets")]
    assert attached["role"] == "${aws_iam_role.execution.id}"
    assert attached["policy"] == "${data.aws_iam_policy_document.execution_secrets.json}"


def test_free_text_round_trips_through_hcl(baked) -> None:
    terraform = load_terraform(baked("hostile-ecs-py3.13") / "terraform")
    resources = blocks(terraform, "resource")

    assert hcl_literal(resources[("sentry_project", "flow")]["name"]) == HOSTILE["project_name"]
    assert (
        hcl_literal(resources[("sentry_alert", "slack")]["name"])
        == HOSTILE["project_name"] + " errors and missed runs to Slack"
    )


# GitHub Actions


@pytest.fixture(scope="session")
def schema_errors(baked) -> dict[str, list[str]]:
    """check-jsonschema's GitHub workflow schema over every bake's workflows, in one run."""
    workflows = [
        path
        for bake_id in ALL_BAKES
        for path in (baked(bake_id) / ".github" / "workflows").glob("*.yml")
    ]
    result = run(
        venv_tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        "--output-format",
        "json",
        *map(str, workflows),
    )
    report = json.loads(result.stdout)
    errors: dict[str, list[str]] = {}
    for error in report["errors"] + report.get("parse_errors", []):
        errors.setdefault(error["filename"], []).append(
            f"{error.get('path', '')}: {error['message']}"
        )
    assert (result.returncode == 0) == (report["status"] == "ok") == (not errors), (
        result.stdout + result.stderr
    )
    return errors


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_workflows_match_the_github_schema(
    baked, schema_errors: dict[str, list[str]], bake_id: str
) -> None:
    workflows = sorted((baked(bake_id) / ".github" / "workflows").glob("*.yml"))

    assert {"ci.yml", "deploy.yml"} <= {path.name for path in workflows}
    for path in workflows:
        assert not schema_errors.get(str(path)), "\n".join(schema_errors[str(path)])


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_actions_are_pinned_to_commits(baked, bake_id: str) -> None:
    for path in sorted((baked(bake_id) / ".github" / "workflows").glob("*.yml")):
        for line in path.read_text().splitlines():
            # A workflow of this repository (deploy.yml calls ci.yml) is not an action.
            if re.match(r"^\s*(-\s+)?uses:", line) and "uses: ./" not in line:
                assert ACTION_PIN.match(line), (
                    f"{path.name}: not pinned to a commit with its version: {line.strip()}"
                )


@pytest.mark.parametrize("bake_id", ALL_BAKES)
def test_workflows_use_the_python_of_the_image(baked, bake_id: str) -> None:
    project = baked(bake_id)

    for name in ("ci.yml", "deploy.yml"):
        assert workflow(project, name)["env"]["UV_PYTHON"] == answers_of(bake_id)["python"]


def test_ci_runs_every_check_without_publishing(baked) -> None:
    project = baked("ecs-py3.13")
    ci = workflow(project, "ci.yml")
    commands = run_lines(ci)
    makefile = (project / "Makefile").read_text()

    assert set(ci[True]) == {"pull_request", "push", "workflow_call"}  # PyYAML: `on` is True
    # deploy.yml's call gets the ID of the image that ran, saved as the artifact `image`.
    assert ci[True]["workflow_call"]["outputs"]["image-id"]["value"] == (
        "${{ jobs.image.outputs.image-id }}"
    )
    image_steps = ci["jobs"]["image"]["steps"]
    upload = next(step for step in image_steps if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["name"] == "image" and upload["with"]["path"] == "image.tar"
    assert ci["permissions"] == {"contents": "read"}
    assert ci["concurrency"]["cancel-in-progress"] is True
    for command in (
        "make test",
        "make build",
        "terraform fmt -check -recursive",
        "terraform init -backend=false",
        "terraform validate",
        "docker build",
        'make check-image IMAGE="flow:$GITHUB_SHA"',
        'docker save --output image.tar "flow:$GITHUB_SHA"',
    ):
        assert command in commands, command
    assert "check-image: ##" in makefile
    # `make test` lints first, and the lint runs hadolint.
    assert re.search(r"^test: lint\b", makefile, re.MULTILINE)
    assert "$(UV) run hadolint Dockerfile" in makefile
    assert "docker push" not in commands
    assert "astral-sh/setup-uv" in {step.get("uses", "").split("@")[0] for step in steps_of(ci)}


DEPLOY_BAKES = [
    *(f"{run_config}-py3.13" for run_config in RUN_CONFIGS),
    *(f"cloud-{run_config}-py3.13" for run_config in RUN_CONFIGS),
    "none-ecs-py3.13",
    "dask-ecs-py3.13",
    "dask-kubernetes-py3.13",
]
# What `make register` gets from the workflow, by orchestrator.
REGISTER_ENV = {
    "prefect_server": {
        "PREFECT__BACKEND": "server",
        "PREFECT__SERVER__ENDPOINT": "${{ vars.PREFECT_SERVER_ENDPOINT }}",
        "PREFECT__SERVER__UI__ENDPOINT": "${{ vars.PREFECT_SERVER_UI_URL }}",
        "PREFECT_SERVER_PROXY_HEADER": "${{ secrets.PREFECT_SERVER_PROXY_HEADER }}",
    },
    "prefect_cloud": {"PREFECT__CLOUD__API_KEY": "${{ secrets.PREFECT_API_KEY }}"},
    "none": {},
}


@pytest.mark.parametrize("bake_id", DEPLOY_BAKES)
def test_deploy_ships_the_commit_it_tests(baked, bake_id: str) -> None:
    project = baked(bake_id)
    answers = answers_of(bake_id)
    run_config, orchestrator = answers["run_config"], answers["orchestrator"]
    deploy = workflow(project, "deploy.yml")
    text = (project / ".github" / "workflows" / "deploy.yml").read_text()
    steps = steps_of(deploy)
    actions = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    commands = run_lines(deploy)
    job = deploy["jobs"]["deploy"]

    assert deploy[True] == {"push": {"branches": ["main"]}}
    assert deploy["permissions"] == {}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert job["environment"] == "production"
    # The deploy job tests nothing again: it installs exactly the lock, after `ci` passed.
    assert "make test" not in commands and "uv sync --locked" in commands
    # CI runs first, in this workflow: its checks, and the image the deploy job pushes.
    assert deploy["jobs"]["ci"] == {
        "name": "CI",
        "uses": "./.github/workflows/ci.yml",
        "permissions": {"contents": "read"},
    }
    assert job["needs"] == "ci"
    # The one place that ships the flow, which the baked tests run too.
    [register] = [step for step in steps if step.get("run") == "make register"]
    makefile = (project / "Makefile").read_text()
    assert "$(UV) run python -m $(PACKAGE).deployment.register" in makefile
    release = actions["getsentry/action-release"]
    assert release["with"]["release"] == "${{ github.sha }}"
    assert release["with"]["environment"] == "${{ env.SENTRY_ENVIRONMENT }}"
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    expected_env = dict(REGISTER_ENV[orchestrator])
    if run_config != "local":
        expected_env["FLOW_IMAGE"] = "${{ steps.image.outputs.image }}"
    if run_config == "ecs" and orchestrator != "none":
        expected_env["FLOW_TASK_ROLE_ARN"] = "${{ vars.FLOW_TASK_ROLE_ARN }}"
    if answers_of(bake_id)["executor"] == "dask_cluster":
        expected_env["DASK_ENVIRONMENT"] = "${{ vars.DASK_ENVIRONMENT }}"
    assert register["env"] == expected_env
    if orchestrator == "prefect_server":  # a runner inside the network of the server
        assert job["runs-on"] == "${{ fromJSON(vars.DEPLOY_RUNNER_LABELS || '[\"self-hosted\"]') }}"
    else:
        assert job["runs-on"] == "ubuntu-24.04"
    job_permissions = job["permissions"]

    if run_config == "local":
        assert "docker" not in commands
        assert job_permissions == {"contents": "read"}
        return
    # The image CI ran, never a rebuild: loaded from CI's artifact, its ID checked, pushed,
    # and registered by the digest the registry gave it.
    assert "docker build" not in commands
    assert actions["actions/download-artifact"]["with"] == {"name": "image"}
    [push] = [step for step in steps if step.get("id") == "image"]
    assert push["env"]["TESTED_IMAGE_ID"] == "${{ needs.ci.outputs.image-id }}"
    assert "docker load --input image.tar" in push["run"]
    assert '"$(docker image ls --no-trunc --quiet "$tested")" != "$TESTED_IMAGE_ID"' in push["run"]
    assert 'docker push "$image" > registry.log' in push["run"]
    assert 'echo "image=${image%:*}@${digest}" >> "$GITHUB_OUTPUT"' in push["run"]
    if run_config in WITH_IMAGE_REPOSITORY:
        assert job_permissions == {"contents": "read", "id-token": "write"}
        credentials = actions["aws-actions/configure-aws-credentials"]["with"]
        assert credentials == {
            "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
            "aws-region": "${{ env.AWS_REGION }}",
        }
        assert "aws-actions/amazon-ecr-login" in actions
        assert 'image="${REGISTRY}/${ECR_REPOSITORY}:${GITHUB_SHA}"' in commands
    else:
        assert job_permissions == {"contents": "read", "packages": "write"}
        assert not any(name.startswith("aws-actions/") for name in actions)
        assert 'image="ghcr.io/${GITHUB_REPOSITORY,,}:${GITHUB_SHA}"' in commands


@pytest.mark.parametrize("bake_id", DEPLOY_BAKES)
def test_the_settings_check_requires_what_the_deploy_cannot_do_without(baked, bake_id: str) -> None:
    answers = answers_of(bake_id)
    check = steps_of(workflow(baked(bake_id), "deploy.yml"))[0]

    required = {name.removeprefix("REQUIRED_") for name in check["env"]}
    expected = {"SENTRY_AUTH_TOKEN"}
    expected |= {
        "prefect_server": {"PREFECT_SERVER_ENDPOINT"},
        "prefect_cloud": {"PREFECT_API_KEY"},
        "none": set(),
    }[answers["orchestrator"]]
    if answers["run_config"] in WITH_IMAGE_REPOSITORY:
        expected.add("AWS_DEPLOY_ROLE_ARN")
    if answers["run_config"] == "ecs" and answers["orchestrator"] != "none":
        expected.add("FLOW_TASK_ROLE_ARN")
    if answers["run_config"] == "ecs" and answers["executor"] == "dask_cluster":
        expected.add("DASK_ENVIRONMENT")
    assert required == expected
    assert all(name.startswith("REQUIRED_") for name in check["env"])


@pytest.mark.parametrize("bake_id", DEPLOY_BAKES)
def test_deploy_names_what_terraform_creates(baked, bake_id: str) -> None:
    project = baked(bake_id)
    run_config = answers_of(bake_id)["run_config"]
    env = workflow(project, "deploy.yml")["env"]
    terraform = load_terraform(project / "terraform")
    locals_ = locals_of(terraform)

    assert env["SENTRY_ORG"] == hcl_literal(locals_["sentry_organization"])
    assert env["SENTRY_PROJECT"] == hcl_literal(locals_["sentry_project"])
    assert env["SENTRY_ENVIRONMENT"] == hcl_literal(locals_["environment"])
    if run_config in WITH_IMAGE_REPOSITORY:
        repository = blocks(terraform, "resource")[("aws_ecr_repository", "flow")]
        assert repository["name"] == "${local.sentry_project}"
        assert env["ECR_REPOSITORY"] == hcl_literal(locals_["sentry_project"])
        assert env["AWS_REGION"] == hcl_literal(locals_["aws_region"])


@pytest.mark.parametrize("bake_id", DEPLOY_BAKES)
def test_deploy_md_names_exactly_the_settings_and_outputs_that_exist(baked, bake_id: str) -> None:
    project = baked(bake_id)
    deploy = (project / ".github" / "workflows" / "deploy.yml").read_text()
    guide = (project / "DEPLOY.md").read_text()
    outputs = {name for (name,) in blocks(load_terraform(project / "terraform"), "output")}

    settings = set(re.findall(r"\b(?:secrets|vars)\.([A-Z_]+)\b", deploy))
    listed = set(re.findall(r"^\| `([A-Z_]+)` \| (?:secret|variable) \|", guide, re.MULTILINE))
    assert "SENTRY_AUTH_TOKEN" in settings
    assert listed == settings, "DEPLOY.md's table and deploy.yml's settings differ"
    named_outputs = {name for name, _ in outputs_named_in(guide)}
    assert named_outputs <= outputs, f"not Terraform outputs: {named_outputs - outputs}"
    steps = re.findall(r"^## (\d+)\. ", guide, re.MULTILINE)
    assert steps == [str(number) for number in range(1, len(steps) + 1)] and len(steps) >= 5


def test_free_text_round_trips_through_the_registration(baked) -> None:
    register = baked("hostile-ecs-py3.13") / "src/hostile_flow/deployment/register.py"

    assert python_constant(register, "PREFECT_PROJECT") == HOSTILE_PREFECT_PROJECT


def python_constant(module: Path, name: str) -> object:
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {module}")


# checkov, once for one bake of each run config


@pytest.fixture(scope="session")
def checkov_run(
    baked, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, list[dict], str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("checkov")
    projects = {}
    for bake_id in CHECKOV_BAKES:  # copies: checkov does not follow symlinks
        projects[bake_id] = Path(shutil.copytree(baked(bake_id), root / bake_id))
    code, reports, stderr = checkov(root)
    return code, reports, stderr, projects


def test_checkov_passes_every_run_config(checkov_run) -> None:
    code, reports, stderr, _ = checkov_run
    failures = [
        f"{check['check_id']} {check['file_path']}: {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]

    assert code == 0 and not failures, "\n".join(failures) or stderr[-3000:]


@pytest.mark.parametrize("bake_id", CHECKOV_BAKES)
def test_checkov_checked_every_framework_of_the_bake(checkov_run, bake_id: str) -> None:
    _, reports, _, projects = checkov_run
    folder = str(projects[bake_id]) + "/"

    for framework in CHECKOV_FRAMEWORKS:
        report = next(report for report in reports if report["check_type"] == framework)
        passed = [
            check
            for check in report["results"]["passed_checks"]
            if check["file_abs_path"].startswith(folder)
        ]
        assert passed, f"checkov ran no {framework} check on {bake_id}"
        skipped = [
            check
            for check in report["results"]["skipped_checks"]
            if check["file_abs_path"].startswith(folder)
        ]
        assert all(check["check_result"].get("suppress_comment") for check in skipped), (
            "a skip without a reason"
        )


# The per-run Dask cluster (executor=dask_cluster)


def test_the_flow_may_start_and_stop_dask_tasks_in_its_own_cluster_only(baked) -> None:
    terraform = load_terraform(baked("dask-ecs-py3.13") / "terraform")
    policy = blocks(terraform, "data")[("aws_iam_policy_document", "dask_cluster")]
    statements = {statement["sid"]: statement for statement in policy["statement"]}

    run = statements['"StartDaskTasks"']
    assert run["actions"] == ['"ecs:RunTask"']
    assert run["condition"][0]["values"] == ["${aws_ecs_cluster.dask.arn}"]
    assert statements['"WatchAndStopDaskTasks"']["resources"] == ["${local.dask_task_arns}"]
    passed = statements['"HandTheDaskTasksTheirRoles"']
    assert passed["resources"] == [
        "${aws_iam_role.dask_task.arn}",
        "${aws_iam_role.dask_execution.arn}",
    ]
    anywhere = [s for s in policy["statement"] if s["resources"] == ['"*"']]
    assert [s["sid"] for s in anywhere] == ['"DefineDaskTasks"']
    attached = blocks(terraform, "resource")[("aws_iam_role_policy", "task_dask_cluster")]
    assert attached["role"] == "${aws_iam_role.task.id}"


def test_the_dask_scheduler_answers_the_flow_and_its_own_tasks_only(baked) -> None:
    terraform = load_terraform(baked("dask-ecs-py3.13") / "terraform")
    group = blocks(terraform, "resource")[("aws_security_group", "dask")]

    ingress = {(rule["from_port"], rule["to_port"]): rule for rule in group["ingress"]}
    assert ingress[(8786, 8787)]["security_groups"] == "${var.flow_security_group_ids}"
    assert "cidr_blocks" not in ingress[(8786, 8787)]
    assert ingress[(0, 65535)]["self"] is True
    assert all("cidr_blocks" not in rule for rule in group["ingress"])


def test_the_dask_environment_holds_every_setting_fargate_needs_and_no_secret(baked) -> None:
    project = baked("dask-ecs-py3.13")
    output = blocks(load_terraform(project / "terraform"), "output")[("dask_environment",)]
    names = set(output["value"])
    module = project / "src/daily_sales_report/deployment/dask_cluster.py"

    assert names >= {
        "DASK_CLUSTER",
        "DASK_ECS_CLUSTER_ARN",
        "DASK_EXECUTION_ROLE_ARN",
        "DASK_TASK_ROLE_ARN",
        "DASK_SUBNETS",
        "DASK_SECURITY_GROUPS",
        "DASK_LOG_GROUP",
    }
    assert all(f'"{name}"' in module.read_text() for name in names)
    assert not any("SENTRY" in name or "SECRET" in name for name in names)


def test_the_image_installs_the_lock_with_the_extra_of_its_dask_cluster(baked) -> None:
    for bake_id, extra in (
        ("dask-ecs-py3.13", " --extra fargate"),
        ("dask-kubernetes-py3.13", " --extra kubernetes"),
        ("ecs-py3.13", ""),
    ):
        dockerfile = (baked(bake_id) / "Dockerfile").read_text()
        syncs = re.findall(r"^    (uv sync [^\\\n]*)", dockerfile, re.MULTILINE)
        dependencies = "--no-install-project --compile-bytecode"
        assert syncs == [
            f"uv sync --frozen --no-dev --no-editable {dependencies}{extra}",
            f"uv sync --frozen --no-dev --no-editable{extra} ",
        ], bake_id
        assert "none" not in "".join(syncs)


def test_the_dask_rbac_manifest_is_valid_kubernetes(baked) -> None:
    import kubernetes_validate

    manifest = baked("dask-kubernetes-py3.13") / "dask-rbac.yaml"
    for document in yaml.safe_load_all(manifest.read_text()):
        kubernetes_validate.validate(document, "1.30", strict=True)
    assert not (baked("kubernetes-py3.13") / "dask-rbac.yaml").exists()


# Issue 23: every deploy path complete on paper


def outputs_named_in(guide: str) -> list[tuple[str, int]]:
    """(output name, position) of every Terraform output DEPLOY.md names."""
    patterns = (
        r"output -(?:raw|json) (\w+)",
        r"`(\w+)` output",
        r"<(\w+) output",
    )
    return sorted(
        (match.group(1), match.start())
        for pattern in patterns
        for match in re.finditer(pattern, guide)
    )


@pytest.mark.parametrize("bake_id", COMBINATION_BAKES + DEPLOY_BAKES)
def test_deploy_md_names_each_output_after_the_apply_that_makes_it(baked, bake_id: str) -> None:
    guide = (baked(bake_id) / "DEPLOY.md").read_text()
    outputs = {name for (name,) in blocks(load_terraform(baked(bake_id) / "terraform"), "output")}
    apply_at = guide.index("\nterraform apply\n")

    named = outputs_named_in(guide)
    early = sorted({name for name, at in named if at < apply_at})
    assert not early, f"DEPLOY.md names {early} before the step that applies the Terraform"
    assert {name for name, _ in named} <= outputs
    # Step 2 is the one that applies it: no earlier step can have its outputs.
    steps = [match.start() for match in re.finditer(r"^## \d+\. ", guide, re.MULTILINE)]
    assert steps[1] < apply_at < steps[2]


AGENT_COMMAND = {
    "ecs": "prefect agent ecs start",
    "kubernetes": "prefect agent kubernetes install",
    "docker": "prefect agent docker start",
    "local": "prefect agent local start",
}


@pytest.mark.parametrize("bake_id", COMBINATION_BAKES + DEPLOY_BAKES)
def test_deploy_md_starts_the_agent_of_its_run_config(baked, bake_id: str) -> None:
    answers = answers_of(bake_id)
    guide = (baked(bake_id) / "DEPLOY.md").read_text()
    commands = set(re.findall(r"prefect agent \w+ \w+", guide))

    if answers["orchestrator"] == "none":
        assert not commands  # EventBridge Scheduler starts the runs
        assert "aws ecs run-task" in guide  # and a run can start by hand
        return
    assert commands == {AGENT_COMMAND[answers["run_config"]]}
    assert "--label production" in guide


def test_the_scheduler_may_decrypt_its_own_schedule_key(baked) -> None:
    terraform = load_terraform(baked("none-ecs-py3.13") / "terraform")
    resources = blocks(terraform, "resource")
    documents = blocks(terraform, "data")
    schedule = resources[("aws_scheduler_schedule", "flow")]

    key = schedule["kms_key_arn"]
    assert key == "${aws_kms_key.schedule.arn}"
    # The key policy leaves access to IAM policies, so the role's policy is enough.
    key_policy = resources[("aws_kms_key", "schedule")]["policy"]
    assert "AccountAdministersKeyThroughIam" in key_policy and ":root" in key_policy
    assert resources[("aws_kms_key", "schedule")]["enable_key_rotation"] is True
    # The role the schedule starts its target with ...
    assert schedule["target"][0]["role_arn"] == "${aws_iam_role.scheduler.arn}"
    policy = resources[("aws_iam_role_policy", "scheduler")]
    assert policy["role"] == "${aws_iam_role.scheduler.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.scheduler.json}"
    # ... may decrypt with that key, and with no other.
    decrypting = [
        statement
        for statement in documents[("aws_iam_policy_document", "scheduler")]["statement"]
        if any("kms:" in action for action in statement["actions"])
    ]
    assert [(s["actions"], s["resources"]) for s in decrypting] == [(['"kms:Decrypt"'], [key])]
    # The key encrypts the schedule only: the flow's logs keep a key of their own.
    keys_used = {
        value
        for (kind, _), body in resources.items()
        for name, value in body.items()
        if name in {"kms_key_arn", "kms_key_id", "key_id"} and "aws_kms_key.schedule" in str(value)
    }
    assert keys_used == {key}


def trust_conditions(document: dict) -> dict[str, tuple[str, list[str]]]:
    [statement] = document["statement"]
    return {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}


IRSA_ROLES = {
    # (role, its trust document, the local naming its service account)
    "flow": ("flow_service_account", "flow_service_account_trust", "flow_service_account"),
    "dask": (
        "dask_worker_service_account",
        "dask_worker_service_account_trust",
        "dask_worker_service_account",
    ),
}


@pytest.mark.parametrize(
    "bake_id, roles",
    [
        ("kubernetes-py3.13", ["flow"]),
        ("cloud-kubernetes-py3.13", ["flow"]),
        ("dask-kubernetes-py3.13", ["flow", "dask"]),
        ("answers-cloud-kubernetes-dask_cluster-py3.13", ["flow", "dask"]),
    ],
)
def test_each_irsa_role_trusts_exactly_one_service_account_and_reads_the_dsn(
    baked, bake_id: str, roles: list[str]
) -> None:
    project = baked(bake_id)
    terraform = load_terraform(project / "terraform")
    resources, documents = blocks(terraform, "resource"), blocks(terraform, "data")
    locals_ = locals_of(terraform)
    variables = blocks(terraform, "variable")
    namespace = hcl_literal(variables[("kubernetes_namespace",)]["default"])
    provider = documents[("aws_iam_openid_connect_provider", "eks")]
    assert provider["url"] == "${data.aws_eks_cluster.flow.identity[0].oidc[0].issuer}"
    issuer = locals_["eks_oidc_issuer"]
    assert "data.aws_eks_cluster.flow.identity[0].oidc[0].issuer" in issuer
    run_config = project / "src/daily_sales_report/deployment/run_config.py"
    accounts = {"flow": python_constant(run_config, "SERVICE_ACCOUNT")}
    if "dask" in roles:
        manifests = list(yaml.safe_load_all((project / "dask-rbac.yaml").read_text()))
        [worker_account] = [m for m in manifests if m["kind"] == "ServiceAccount"]
        accounts["dask"] = worker_account["metadata"]["name"]
        assert worker_account["metadata"]["namespace"] == namespace
        binding = next(m for m in manifests if m["kind"] == "RoleBinding")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": accounts["flow"], "namespace": namespace}
        ]
        dask_cluster = project / "src/daily_sales_report/deployment/dask_cluster.py"
        assert python_constant(dask_cluster, "DEFAULT_WORKER_SERVICE_ACCOUNT") == accounts["dask"]
    else:
        assert not any(name.startswith("dask") for (name,) in blocks(terraform, "output"))

    for role in roles:
        role_name, trust_name, account_local = IRSA_ROLES[role]
        trust = documents[("aws_iam_policy_document", trust_name)]
        [statement] = trust["statement"]
        assert statement["actions"] == ['"sts:AssumeRoleWithWebIdentity"']
        assert statement["principals"] == [
            {
                "type": '"Federated"',
                "identifiers": ["${data.aws_iam_openid_connect_provider.eks.arn}"],
                "__is_block__": True,
            }
        ]
        account = hcl_literal(locals_[account_local])
        assert account == accounts[role] and account != "default"
        assert trust_conditions(trust) == {
            '"${local.eks_oidc_issuer}:sub"': (
                '"StringEquals"',
                [
                    f'"system:serviceaccount:${{var.kubernetes_namespace}}:${{local.{account_local}}}"'
                ],
            ),
            '"${local.eks_oidc_issuer}:aud"': ('"StringEquals"', ['"sts.amazonaws.com"']),
        }
        assert resources[("aws_iam_role", role_name)]["assume_role_policy"] == (
            f"${{data.aws_iam_policy_document.{trust_name}.json}}"
        )
        attachment = resources[("aws_iam_role_policy_attachment", role_name)]
        assert attachment["role"] == f"${{aws_iam_role.{role_name}.name}}"
        assert attachment["policy_arn"] == "${aws_iam_policy.flow.arn}"


def test_the_ecs_agent_may_start_the_flow_runs_and_nothing_more(baked) -> None:
    terraform = load_terraform(baked("ecs-py3.13") / "terraform")
    document = blocks(terraform, "data")[("aws_iam_policy_document", "ecs_agent")]
    grants = {
        action: statement for statement in document["statement"] for action in statement["actions"]
    }

    # What Prefect 1.4.1's ECSAgent.deploy_flow calls, and iam:PassRole for the roles.
    assert set(grants) == {
        '"ecs:RegisterTaskDefinition"',
        '"ecs:DeregisterTaskDefinition"',
        '"ecs:TagResource"',
        '"ecs:RunTask"',
        '"iam:PassRole"',
    }
    run_task = grants['"ecs:RunTask"']
    assert run_task["condition"][0]["values"] == ["${var.ecs_cluster_arn}"]
    assert grants['"iam:PassRole"']["resources"] == [
        "${aws_iam_role.task.arn}",
        "${aws_iam_role.execution.arn}",
    ]
