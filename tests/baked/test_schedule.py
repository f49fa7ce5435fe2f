"""With no Prefect backend: the scheduled ECS task, run as EventBridge Scheduler starts it,
and the deploy's move of the schedule to a new image.

The task's command and environment are read from terraform/schedule.tf, so the test runs
what the task definition runs. Sentry is the loopback endpoint, SSM and ECS/Scheduler
are moto's: nothing leaves 127.0.0.1. What only AWS can show: that Fargate pulls the
image, that the roles allow what the task does, and that the schedule fires on time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, Dict, List

import boto3
import hcl2
import pytest

from .fixtures import aws_session
from .project import PACKAGE, PROJECT, SentryEndpoint, module

register = module("deployment.register")
TERRAFORM = PROJECT / "terraform"
# Breaks the flow's last task, then starts the task's module as `python -m` does.
WITH_A_FAILING_TASK = """
import runpy
from BAKED_PACKAGE import tasks
def broken(rows):
    raise RuntimeError("the destination refused the rows")
tasks.load.run = broken
runpy.run_module(MODULE, run_name="__main__", alter_sys=True)
""".replace("BAKED_PACKAGE", PACKAGE)


def terraform_locals() -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            for block in hcl2.load(handle).get("locals", []):
                found.update({k: v for k, v in block.items() if not k.startswith("__")})
    return found


def resolve(value: Any, names: Dict[str, Any]) -> Any:
    """A value as Terraform computes it, for the literals and `local.` references here."""
    if isinstance(value, list):
        return [resolve(item, names) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, names) for key, item in value.items()}
    reference = re.fullmatch(r"\$\{local\.(\w+)\}", value)
    if reference:
        return resolve(names[reference.group(1)], names)
    assert value.startswith('"') and "${" not in value, f"not a literal: {value}"
    return json.loads(value)


def scheduled_task() -> Dict[str, Any]:
    """The task definition's command and environment, from the Terraform."""
    names = terraform_locals()
    return {
        "command": resolve(names["flow_command"], names),
        "environment": resolve(names["flow_environment"], names),
    }


def run_as_scheduled(
    monkeypatch: pytest.MonkeyPatch, aws: str, sentry: SentryEndpoint, code: str = ""
) -> subprocess.CompletedProcess:
    task = scheduled_task()
    assert task["command"][:2] == ["python", "-m"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    ssm = aws_session().client("ssm")
    ssm.put_parameter(
        Name=task["environment"]["SENTRY_DSN_SSM_PARAMETER_NAME"],
        Value=sentry.dsn,
        Type="SecureString",
        Overwrite=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PREFECT"))}
    env.update(task["environment"])
    env.update(AWS_ENDPOINT_URL=aws, SENTRY_RELEASE="0123abc")  # the image sets the release
    command = [sys.executable, *task["command"][1:]]
    if code:
        command = [sys.executable, "-c", code.replace("MODULE", repr(task["command"][2]))]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def statuses(check_ins: List[Dict[str, Any]]) -> List[str]:
    return [check_in["status"] for check_in in check_ins]


def test_the_scheduled_task_runs_the_flow_once_and_checks_in(
    monkeypatch: pytest.MonkeyPatch, aws: str, sentry: SentryEndpoint
) -> None:
    completed = run_as_scheduled(monkeypatch, aws, sentry)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert statuses(sentry.check_ins(expected=2)) == ["in_progress", "ok"]
    assert sentry.events() == []


def test_a_failing_run_exits_non_zero_with_one_event_and_an_error_check_in(
    monkeypatch: pytest.MonkeyPatch, aws: str, sentry: SentryEndpoint
) -> None:
    completed = run_as_scheduled(monkeypatch, aws, sentry, WITH_A_FAILING_TASK)

    assert completed.returncode == 1, completed.stderr[-3000:]
    [event] = sentry.events(expected=1)
    assert "the destination refused the rows" in json.dumps(event["exception"])
    assert statuses(sentry.check_ins(expected=2)) == ["in_progress", "error"]


def test_the_names_the_deploy_uses_are_the_terraform_ones() -> None:
    names = terraform_locals()
    schedule = (TERRAFORM / "schedule.tf").read_text()

    assert json.loads(names["name"]) == register.TASK_FAMILY == register.SCHEDULE_NAME
    assert "family                   = local.name" in schedule
    assert re.search(
        r'resource "aws_scheduler_schedule" "flow" \{\n  name += local\.name\n', schedule
    )
    assert f'name                   = "{register.CONTAINER_NAME}"' in schedule
    assert f'group_name                   = "{register.SCHEDULE_GROUP}"' in schedule


@pytest.fixture
def deployed(aws: str, monkeypatch: pytest.MonkeyPatch) -> boto3.session.Session:
    """The task definition and the disabled schedule, as `terraform apply` leaves them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    session = aws_session()
    ecs, scheduler = session.client("ecs"), session.client("scheduler")
    task = scheduled_task()
    definition = ecs.register_task_definition(
        family=register.TASK_FAMILY,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="512",
        memory="1024",
        taskRoleArn="arn:aws:iam::123456789012:role/task",
        executionRoleArn="arn:aws:iam::123456789012:role/execution",
        containerDefinitions=[
            {
                "name": register.CONTAINER_NAME,
                "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flow:unreleased",
                "command": task["command"],
                "environment": [{"name": k, "value": v} for k, v in task["environment"].items()],
            }
        ],
    )["taskDefinition"]
    for schedule in scheduler.list_schedules().get("Schedules", []):
        scheduler.delete_schedule(Name=schedule["Name"], GroupName=schedule["GroupName"])
    scheduler.create_schedule(
        Name=register.SCHEDULE_NAME,
        GroupName=register.SCHEDULE_GROUP,
        ScheduleExpression="cron(0 6 * * ? *)",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        State="DISABLED",
        Target={
            "Arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/flows",
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "EcsParameters": {"TaskDefinitionArn": definition["taskDefinitionArn"]},
        },
    )
    return session


def test_a_deploy_points_the_schedule_at_the_new_image(deployed: boto3.session.Session) -> None:
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flow:0123456789abcdef"

    revision = register.release(image, deployed)

    ecs, scheduler = deployed.client("ecs"), deployed.client("scheduler")
    definition = ecs.describe_task_definition(taskDefinition=revision)["taskDefinition"]
    [container] = definition["containerDefinitions"]
    assert container["image"] == image
    assert container["command"] == scheduled_task()["command"]
    assert definition["taskRoleArn"].endswith("role/task")
    schedule = scheduler.get_schedule(
        Name=register.SCHEDULE_NAME, GroupName=register.SCHEDULE_GROUP
    )
    assert schedule["Target"]["EcsParameters"]["TaskDefinitionArn"] == revision
    assert schedule["State"] == "ENABLED"
    assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert register.release(image, deployed) == revision  # the same commit again: no new revision
