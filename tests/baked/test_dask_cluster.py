"""The Dask cluster executor: an operator's cluster, per-run clusters, and their monitoring.

The module's cluster is started the way operators start
one: `dask scheduler` and two `dask worker` processes on 127.0.0.1, with AWS (moto) but
no SENTRY_* settings of their own. The flow's executor gives them those settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import dask
import pytest
import sentry_sdk
import yaml
from distributed import Client, LocalCluster
from distributed.core import Status
from prefect.executors import LocalExecutor
from prefect.utilities.importtools import import_object

from .fixtures import DSN_PARAMETER, REGION, outcome, use_monitoring
from .project import PACKAGE, PROJECT, TEMPLATE_DIR, SentryEndpoint, module
from .sample_tasks import (
    add_one,
    capture_errors,
    end_worker,
    invert,
    process_id,
    workers_now,
)

dask_cluster = module("deployment.dask_cluster")
executor = module("deployment.executor")
worker_monitoring = module("deployment.worker_monitoring")
SettingsError = dask_cluster.SettingsError
cluster_spec = dask_cluster.cluster_spec
read_settings = dask_cluster.read_settings
registration_env = dask_cluster.registration_env
FlowRunDaskExecutor = executor.FlowRunDaskExecutor
MonitoredFlow = module("monitoring").MonitoredFlow
init_sentry = module("monitoring").init_sentry
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flow:0123abc"
SECRET_DSN = "https://secret-key@o1.ingest.sentry.io/2"
FLOW_SETTINGS = {
    "SENTRY_DSN": SECRET_DSN,
    "SENTRY_DSN_SSM_PARAMETER_NAME": DSN_PARAMETER,
    "SENTRY_REGION": REGION,
    "SENTRY_ENVIRONMENT": "test",
    "SENTRY_RELEASE": "0123abc",
}
FARGATE = {
    **FLOW_SETTINGS,
    "DASK_CLUSTER": "fargate",
    "DASK_MIN_WORKERS": "2",
    "DASK_MAX_WORKERS": "10",
    "DASK_ECS_CLUSTER_ARN": "arn:aws:ecs:eu-west-1:123456789012:cluster/flow-dask",
    "DASK_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/flow-dask-execution",
    "DASK_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/flow-dask-task",
    "DASK_SUBNETS": "subnet-0123abcd, subnet-4567ef01",
    "DASK_SECURITY_GROUPS": "sg-0123abcd",
    "DASK_LOG_GROUP": "/flows/flow-dask",
}


@dataclass
class ExternalCluster:
    address: str
    pids: Set[int]


@pytest.fixture(scope="module")
def external_cluster(aws: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A scheduler and two workers started with the distributed CLI, apart from the flow."""
    logs = tmp_path_factory.mktemp("dask-cli")
    env = {name: value for name, value in os.environ.items() if not name.startswith("SENTRY_")}
    # PYTHONPATH: where the workers find the tasks of sample_tasks.py.
    env.update(AWS_ENDPOINT_URL=aws, PYTHONPATH=str(TEMPLATE_DIR))
    scheduler_file = logs / "scheduler.json"
    command = [sys.executable, "-m", "dask"]
    processes = [
        start(
            [*command, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
            env,
            logs / "scheduler.log",
        )
    ]
    try:
        address = json.loads(wait_for(scheduler_file).read_text())["address"]
        for number in range(2):
            processes.append(
                start(
                    [*command, "worker", address, "--host", "127.0.0.1", "--nthreads", "1"]
                    + ["--no-dashboard", "--name", f"external-{number}"],
                    env,
                    logs / f"worker-{number}.log",
                )
            )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            pids = set(client.run(os.getpid).values())
        yield ExternalCluster(address, pids)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def start(command: List[str], env: Dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def wait_for(path: Path, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path


def failing_flow(executor_: Any) -> MonitoredFlow:
    with MonitoredFlow("Dask cluster", executor=executor_) as flow:
        add_one.map(invert.map([1, 0, 2, 0]))
    return flow


# An existing scheduler (DASK_SCHEDULER_ADDRESS)


def test_tasks_run_in_the_worker_processes_of_an_existing_scheduler(
    external_cluster: ExternalCluster,
    endpoint: SentryEndpoint,
    aws: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_monitoring(monkeypatch, endpoint.dsn, aws)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", external_cluster.address)
    with MonitoredFlow("Where", executor=FlowRunDaskExecutor()) as flow:
        ran_in = process_id.map(list(range(8)))

    state = flow.run()

    assert state.is_successful()
    pids = set(state.result[ran_in].result)
    assert pids <= external_cluster.pids
    assert os.getpid() not in pids


def test_each_failure_on_the_workers_reaches_sentry_once_with_the_flow_runs_tags(
    external_cluster: ExternalCluster,
    endpoint: SentryEndpoint,
    aws: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_monitoring(monkeypatch, endpoint.dsn, aws)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", external_cluster.address)
    endpoint.clear()
    flow = failing_flow(FlowRunDaskExecutor())
    context = {"flow_run_name": "nightly-42", "flow_run_version": 7}

    state = flow.run(context=context)

    assert state.is_failed()
    endpoint.events(expected=3, timeout=10)  # one more than expected: none may come
    reported = sorted(
        (
            event["exception"]["values"][-1]["type"],
            event["tags"]["task_name"],
            event["tags"].get("map_index"),
            event["tags"]["region"],
            event["tags"]["flow_name"],
            event["tags"]["flow_run_name"],
            event["tags"]["flow_run_version"],
            event["environment"],
            event["release"],
        )
        for event in endpoint.events()
    )
    tags = (REGION, "Dask cluster", "nightly-42", "7", "test", "0123abc")
    assert reported == [
        ("ZeroDivisionError", "invert", "1", *tags),
        ("ZeroDivisionError", "invert", "3", *tags),
    ]
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    local = failing_flow(LocalExecutor())
    assert outcome(flow, state) == outcome(local, local.run(context=context))


# A temporary cluster per flow run


def test_a_run_with_an_image_gets_the_run_configs_cluster_and_one_without_a_local_one() -> None:
    unchosen = {name: value for name, value in FARGATE.items() if name != "DASK_CLUSTER"}

    assert read_settings(unchosen, flow_image=IMAGE).cluster == dask_cluster.DEFAULT_CLUSTER
    assert read_settings(unchosen).cluster == "local"
    assert read_settings({"DASK_CLUSTER": "local"}, flow_image=IMAGE).cluster == "local"


def test_a_fargate_cluster_gets_the_flow_runs_image_bounds_and_monitoring_but_no_dsn() -> None:
    settings = read_settings(FARGATE, flow_image=IMAGE)

    cluster_class, kwargs, adapt = cluster_spec(settings)

    assert cluster_class == "dask_cloudprovider.aws.FargateCluster"
    assert kwargs["image"] == IMAGE
    assert kwargs["n_workers"] == 2
    assert adapt == {"minimum": 2, "maximum": 10}
    assert kwargs["cluster_arn"] == FARGATE["DASK_ECS_CLUSTER_ARN"]
    assert kwargs["task_role_arn"] == FARGATE["DASK_TASK_ROLE_ARN"]
    assert kwargs["execution_role_arn"] == FARGATE["DASK_EXECUTION_ROLE_ARN"]
    assert kwargs["subnets"] == ["subnet-0123abcd", "subnet-4567ef01"]
    assert kwargs["security_groups"] == ["sg-0123abcd"]
    assert kwargs["cloudwatch_logs_group"] == "/flows/flow-dask"
    assert kwargs["fargate_use_private_ip"] is True
    assert kwargs["environment"] == {
        name: value for name, value in FLOW_SETTINGS.items() if name != "SENTRY_DSN"
    }
    assert "secret-key" not in repr(kwargs)


def test_a_kubernetes_cluster_gets_the_same_and_its_namespace() -> None:
    environ = {**FLOW_SETTINGS, "DASK_CLUSTER": "kubernetes", "DASK_MAX_WORKERS": "6"}
    environ["DASK_KUBERNETES_NAMESPACE"] = "flows"
    environ["DASK_IMAGE"] = "ghcr.io/org/flow:feedbeef"

    cluster_class, kwargs, adapt = cluster_spec(read_settings(environ, flow_image=IMAGE))

    assert import_object(cluster_class) is dask_cluster.kubernetes_cluster
    assert kwargs["image"] == "ghcr.io/org/flow:feedbeef"  # DASK_IMAGE wins
    assert kwargs["namespace"] == "flows"
    assert kwargs["n_workers"] == 1
    assert adapt == {"minimum": 1, "maximum": 6}
    assert kwargs["env"]["SENTRY_DSN_SSM_PARAMETER_NAME"] == DSN_PARAMETER
    assert "SENTRY_DSN" not in kwargs["env"] and "secret-key" not in repr(kwargs)


def worker_service_account_of_the_manifest() -> str:
    """The service account dask-rbac.yaml creates for the workers (Kubernetes bakes)."""
    manifests = list(yaml.safe_load_all((PROJECT / "dask-rbac.yaml").read_text()))
    [account] = [item for item in manifests if item["kind"] == "ServiceAccount"]
    return account["metadata"]["name"]


def test_the_kubernetes_workers_run_as_their_own_service_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never the namespace's `default`: the workers' AWS role must be theirs alone."""
    made: Dict[str, Any] = {}

    def make_cluster_spec(name: str, **kwargs: Any) -> Dict[str, Any]:
        # The shape of dask_kubernetes.operator.make_cluster_spec's resource (2024.5-2026.3).
        made["arguments"] = {"name": name, **kwargs}
        pod = {"containers": [{"name": "worker", "image": kwargs["image"]}]}
        return {
            "apiVersion": "kubernetes.dask.org/v1",
            "kind": "DaskCluster",
            "metadata": {"name": name},
            "spec": {"worker": {"replicas": kwargs["n_workers"], "spec": pod}, "scheduler": {}},
        }

    def kube_cluster(**kwargs: Any) -> str:
        made["cluster"] = kwargs
        return "cluster"

    operator = types.ModuleType("dask_kubernetes.operator")
    operator.make_cluster_spec = make_cluster_spec
    operator.KubeCluster = kube_cluster
    monkeypatch.setitem(sys.modules, "dask_kubernetes", types.ModuleType("dask_kubernetes"))
    monkeypatch.setitem(sys.modules, "dask_kubernetes.operator", operator)
    environ = {**FLOW_SETTINGS, "DASK_CLUSTER": "kubernetes", "DASK_KUBERNETES_NAMESPACE": "flows"}
    settings = read_settings(environ, flow_image=IMAGE)

    cluster_class, kwargs, _ = cluster_spec(settings)
    assert import_object(cluster_class)(**kwargs) == "cluster"

    spec = made["cluster"]["custom_cluster_spec"]
    worker_account = spec["spec"]["worker"]["spec"]["serviceAccountName"]
    assert worker_account == settings.worker_service_account
    assert worker_account not in ("", "default")
    if (PROJECT / "dask-rbac.yaml").exists():
        assert worker_account == worker_service_account_of_the_manifest()
    assert made["cluster"]["namespace"] == "flows"
    assert made["cluster"]["shutdown_on_close"] is True
    assert made["arguments"]["image"] == IMAGE
    assert spec["metadata"]["name"].startswith("dask-")
    override = {**environ, "DASK_KUBERNETES_SERVICE_ACCOUNT": "team-dask"}
    assert read_settings(override, flow_image=IMAGE).worker_service_account == "team-dask"


@pytest.mark.parametrize(
    "environ, named",
    [
        ({"DASK_CLUSTER": "yarn"}, "DASK_CLUSTER='yarn'"),
        ({"DASK_MAX_WORKERS": "many"}, "DASK_MAX_WORKERS='many'"),
        ({"DASK_MIN_WORKERS": "-1"}, "DASK_MIN_WORKERS='-1'"),
        ({"DASK_MIN_WORKERS": "5", "DASK_MAX_WORKERS": "2"}, "DASK_MIN_WORKERS=5"),
        ({**FARGATE, "DASK_IMAGE": IMAGE, "DASK_LOG_GROUP": ""}, "needs DASK_LOG_GROUP"),
        ({"DASK_CLUSTER": "kubernetes"}, "set DASK_IMAGE"),
    ],
)
def test_a_bad_setting_is_named_with_how_to_fix_it(environ: Dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace("(", r"\(")):
        read_settings(environ)


def test_the_deploy_hands_the_settings_to_the_run_config_as_json() -> None:
    settings = {"DASK_CLUSTER": "fargate", "DASK_SUBNETS": "subnet-0123abcd"}

    assert registration_env({"DASK_ENVIRONMENT": json.dumps(settings)}) == settings
    assert registration_env({}) == {}
    with pytest.raises(SettingsError, match="DASK_ENVIRONMENT"):
        registration_env({"DASK_ENVIRONMENT": '{"SENTRY_DSN": "x"}'})


def test_the_registered_run_config_carries_the_deploy_s_settings() -> None:
    """DASK_ENVIRONMENT at registration ends up in the run config that each run starts with."""
    settings = {"DASK_CLUSTER": "fargate", "DASK_SUBNETS": "subnet-0123abcd"}
    script = (
        f"import json; from {PACKAGE}.deployment import RUN_CONFIG; "
        "print(json.dumps(RUN_CONFIG.env))"
    )
    environ = {**os.environ, "DASK_ENVIRONMENT": json.dumps(settings)}

    completed = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=True
    )

    env = json.loads(completed.stdout.strip().splitlines()[-1])
    assert {name: env[name] for name in settings} == settings


def test_the_local_cluster_scales_between_its_bounds_and_is_closed_after_a_failed_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: List[LocalCluster] = []
    asked: List[int] = []  # the worker counts adaptive scaling asked for

    class RecordedCluster(LocalCluster):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

        def scale(self, n: int = 0, **kwargs: Any) -> Any:
            asked.append(n)
            return super().scale(n, **kwargs)

    def recorded_spec(settings: Any) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
        cluster_class, kwargs, adapt = cluster_spec(settings)
        assert cluster_class is LocalCluster
        return RecordedCluster, kwargs, adapt

    monkeypatch.setattr(executor, "cluster_spec", recorded_spec)
    monkeypatch.setenv("DASK_CLUSTER", "local")
    monkeypatch.setenv("DASK_MIN_WORKERS", "1")
    monkeypatch.setenv("DASK_MAX_WORKERS", "2")
    with MonitoredFlow("Scaling", executor=FlowRunDaskExecutor()) as flow:
        counts = workers_now.map(list(range(24)))
        invert(0)

    # Adaptive scaling asks for enough workers to finish the waiting work in 1 s, checking
    # every 0.2 s: five seconds of work always asks for the most it may have.
    adaptive = {
        "distributed.adaptive.target-duration": "1s",
        "distributed.adaptive.interval": "200ms",
    }
    with dask.config.set(adaptive):
        state = flow.run()

    assert state.is_failed()
    assert 1 <= min(state.result[counts].result) <= max(state.result[counts].result) <= 2
    # Whether the second worker joins before the run ends depends on how busy the machine
    # is: what adaptive scaling asked for does not. 0 is the cluster closing.
    assert max(asked) == 2 and set(asked) <= {0, 1, 2}, asked
    [cluster] = made
    assert cluster.status == Status.closed


# Monitoring on the workers


def test_the_worker_plugin_fills_in_settings_and_never_overrides_the_workers_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "environ", {**os.environ, "SENTRY_ENVIRONMENT": "the-workers-own"})
    flow_settings = {
        **FLOW_SETTINGS,
        "SENTRY_ENVIRONMENT": "test",
        "SENTRY_TRACES_SAMPLE_RATE": "0.25",
    }
    plugin = worker_monitoring.SentryWorkerPlugin(dask_cluster.worker_environment(flow_settings))

    plugin.setup(worker=None)

    assert os.environ["SENTRY_REGION"] == REGION
    assert os.environ["SENTRY_TRACES_SAMPLE_RATE"] == "0.25"  # the flow's traces reach workers
    assert os.environ["SENTRY_ENVIRONMENT"] == "the-workers-own"
    assert "SENTRY_DSN" not in plugin.environment


def test_a_worker_sends_what_it_captured_before_it_is_retired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sentry answers each event after half a second: the later ones wait in the queue."""
    slow = SentryEndpoint(delay=0.5).start()
    try:
        monkeypatch.setenv("SENTRY_DSN", slow.dsn)
        assert init_sentry()
        for number in range(3):
            sentry_sdk.capture_message(f"captured on a worker {number}", level="error")
        plugin = worker_monitoring.SentryWorkerPlugin({})

        plugin.teardown(worker=None)

        assert len(slow.events(timeout=0)) == 3
    finally:
        slow.stop()


def test_a_worker_retired_from_its_cluster_sends_its_queued_events_first(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As adaptive scaling retires a worker. The plugin flushes as the worker closes; a
    worker process that then exits normally would also flush at exit (monitoring.transport)."""
    slow = SentryEndpoint(delay=0.3).start()
    try:
        use_monitoring(monkeypatch, slow.dsn, aws, parameter="/test/retired/sentry-dsn")
        local = cluster_spec(read_settings({"DASK_MIN_WORKERS": "1"}))[1]
        with LocalCluster(**local) as cluster, Client(cluster) as client:
            environment = dask_cluster.worker_environment(os.environ)
            assert worker_monitoring.register_worker_monitoring(client, environment)
            client.submit(capture_errors, 3).result()

            client.retire_workers(close_workers=True)

        assert len(slow.events(expected=3, timeout=5)) == 3
    finally:
        slow.stop()


def test_a_worker_that_dies_does_not_multiply_the_failures_it_held(
    endpoint: SentryEndpoint, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task ends its worker's process, twice: each time Dask computes again what the dead
    worker held, another task's failure among it. That failure is one event, the flow
    run's failure (KilledWorker) one more, and the scheduler's log lines none."""
    use_monitoring(monkeypatch, endpoint.dsn, aws, parameter="/test/dying/sentry-dsn")
    monkeypatch.setenv("DASK_CLUSTER", "local")
    monkeypatch.setenv("DASK_MIN_WORKERS", "1")
    monkeypatch.setenv("DASK_MAX_WORKERS", "1")
    endpoint.clear()
    with MonitoredFlow("Dying worker", executor=FlowRunDaskExecutor()) as flow:
        end_worker(invert.map([0, 1]))

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        state = flow.run()
    sentry_sdk.flush()

    assert state.is_failed()
    events = endpoint.events(expected=3, timeout=10)  # one more than expected: none may come
    reported = sorted(
        (
            event["exception"]["values"][-1]["type"] if event.get("exception") else "",
            event.get("logger", ""),
            event["tags"].get("task_name", ""),
            event["tags"].get("map_index", ""),
        )
        for event in events
    )
    assert reported == [  # noqa: SIM300
        ("KilledWorker", "", "", ""),
        ("ZeroDivisionError", "", "invert", "0"),
    ], reported


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
@pytest.mark.filterwarnings("ignore:The `context` parameter is deprecated")
def test_workers_report_with_the_dsn_given_to_the_flow_itself_which_prefect_never_sees(
    endpoint: SentryEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SENTRY_DSN in the flow's environment, no SSM parameter: the workers of an operator's
    cluster (started before, without it) report too, and the DSN reaches them through the
    scheduler, not through anything the flow registers with Prefect."""
    local = cluster_spec(read_settings({"DASK_MIN_WORKERS": "2"}))[1]
    with LocalCluster(**local) as cluster:  # started with no SENTRY_* variable at all
        monkeypatch.setenv("SENTRY_DSN", endpoint.dsn)
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        endpoint.clear()
        executor_ = FlowRunDaskExecutor()
        flow = failing_flow(executor_)

        state = flow.run()
        with Client(cluster) as client:  # what the scheduler noted, forgotten after the run
            notes = client.get_metadata([worker_monitoring.PLUGIN_NAME])

    assert state.is_failed()
    assert list(notes.values()) == [None]
    events = endpoint.events(expected=2)
    assert sorted((e["tags"]["task_name"], e["tags"]["map_index"]) for e in events) == [
        ("invert", "1"),
        ("invert", "3"),
    ]
    assert len({e["tags"]["flow_run_id"] for e in events}) == 1
    registered = json.dumps(flow.serialize(build=False), default=repr)
    run_config = module("deployment").RUN_CONFIG
    assert endpoint.dsn not in registered + repr(vars(executor_)) + repr(run_config.env)
