"""The image of every combination that ships one, built for real and run as production runs it.

Built with buildah on a local Debian trixie base (tests/image_tools.py), run with podman:
non-root, read-only root, /tmp on tmpfs, no capabilities. The runs and the comparison
with uv.lock are the baked project's own `make check-image` (tests/template/check_image.py),
which its CI runs with Docker before deploy pushes the image.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import baking
from tests import image_tools

pytestmark = pytest.mark.slow

# run_config local ships no image. Images whose dependencies are the same (Python and
# extra) share their base and dependency layers: only the project's layer differs.
IMAGES = {
    "ecs-local-py3.13": {},
    "docker-dask_cluster-py3.13": {"run_config": "docker", "executor": "dask_cluster"},
    "kubernetes-local_dask-py3.13": {
        "run_config": "kubernetes",
        "executor": "local_dask",
        "orchestrator": "prefect_cloud",
    },
    "ecs-dask_cluster-py3.13": {"run_config": "ecs", "executor": "dask_cluster"},
    "kubernetes-dask_cluster-py3.13": {"run_config": "kubernetes", "executor": "dask_cluster"},
    "ecs-local-py3.12": {"python": "3.12", "orchestrator": "none"},
}
# What each extra must make importable: the cluster class the flow run names.
CLUSTER_MODULES = {
    "ecs-dask_cluster-py3.13": "dask_cloudprovider.aws",
    "kubernetes-dask_cluster-py3.13": "dask_kubernetes.operator",
}


class Built:
    """A baked project, its image and its own check module (tests/template/check_image.py)."""

    def __init__(self, id: str, baked: baking.BakedProject, base: str) -> None:
        self.id, self.baked, self.project, self.base = id, baked, baked.path, base
        self.check = load_baked(baked.path, "check_image")
        self.image = f"localhost/cookiecutter-prefect-flow-test:{id}"

    def run(self, *command: str, **kwargs: object) -> subprocess.CompletedProcess:
        return self.check.run_image(self.image, list(command) or None, **kwargs)


def load_baked(project: Path, name: str) -> ModuleType:
    """The baked project's module tests/template/<name>.py (its `tests` is not ours)."""
    path = project / "tests" / "template" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"baked_{name}_{abs(hash(project))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def container_environment() -> Iterator[None]:
    """What the baked check reads to run podman here. `uv run` sets UV, the uv it reads
    the lock with (a pyenv shim for `uv` may not run in a baked project's folder)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CONTAINER_ENGINE", image_tools.container_engine())
    patch.setenv("CONTAINER_RUN_OPTIONS", image_tools.container_run_options())
    yield
    patch.undo()


@pytest.fixture(scope="session", params=list(IMAGES))
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, container_environment
) -> Built:
    answers = IMAGES[request.param]
    baked = baking.bake(answers, tmp_path_factory.mktemp(request.param))
    base = image_tools.base_image(answers.get("python", "3.13"))
    built = Built(request.param, baked, base)
    with image_tools.file_lock(f"build-{request.param}"):
        image_tools.build(baked.path, built.image, base)
    return built


def test_make_check_image_passes(built: Built) -> None:
    # What the baked CI runs before deploy: a run that succeeds (exit 0), one that fails
    # (exit 1), `prefect execute flow-run --help`, and the installed set against uv.lock.
    done = built.baked.run(
        "make",
        "check-image",
        f"IMAGE={built.image}",
        env={
            "CONTAINER_ENGINE": image_tools.container_engine(),
            "CONTAINER_RUN_OPTIONS": image_tools.container_run_options(),
        },
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{built.image}: runs, fails and installs as uv.lock says" in done.stdout


def test_the_check_sees_a_package_missing_or_not_locked(
    built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = built.check.locked

    def other_lock(markers: dict, extras: list) -> dict:
        wanted = locked(markers, extras)
        del wanted["sentry-sdk"]
        return {**wanted, "left-pad": "1.0", "boto3": "0.0.1"}

    monkeypatch.setattr(built.check, "locked", other_lock)
    problems = built.check.differences(built.image)

    assert problems[0] == "missing: left-pad==1.0"
    assert problems[1].startswith("not in uv.lock: sentry-sdk==")
    assert problems[2].startswith("boto3: 1.") and problems[2].endswith("0.0.1 in uv.lock")
    assert len(problems) == 3


def test_a_failing_task_reaches_sentry_from_inside_the_container(built: Built) -> None:
    # The failing run of `make check-image`, given a DSN: the loopback endpoint is the
    # host's, reached from inside the container over the host's network.
    sentry = load_baked(built.project, "sentry_endpoint").SentryEndpoint().start()
    try:
        done = built.run(
            *built.check.failing_run_command(),
            network="host",
            options=["--env", f"SENTRY_DSN={sentry.dsn}", "--env", "SENTRY_RELEASE=test"],
        )
        events = sentry.events(expected=1)
    finally:
        sentry.stop()

    assert done.returncode == 1, done.stderr
    assert events, done.stderr
    values = [value for event in events for value in event["exception"]["values"]]
    assert any("fails on purpose" in value["value"] for value in values)
    assert {event["release"] for event in events} == {"test"}
    assert {event["environment"] for event in events} == {"production"}


def test_the_image_runs_as_a_numeric_user_from_tini(built: Built) -> None:
    config = json.loads(
        image_tools.run([*image_tools.PODMAN, "image", "inspect", built.image]).stdout
    )[0]["Config"]

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/bin/tini", "-g", "--"]
    assert any(entry.startswith("SENTRY_DSN_SSM_PARAMETER_NAME=/") for entry in config["Env"])


def test_no_compiler_uv_or_build_secret_is_left_in_the_image(built: Built) -> None:
    script = (
        "for path in /usr/bin/gcc /usr/bin/cc /opt/uv /root/.cache/uv /run/secrets/ca-bundle "
        "/opt/venv/bin/pip /var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease; "
        'do [ -e "$path" ] && echo "$path"; done; '
        "sha256sum /etc/ssl/certs/ca-certificates.crt"
    )
    image = built.run("sh", "-c", script)
    base = built.check.run_image(built.base, ["sha256sum", "/etc/ssl/certs/ca-certificates.crt"])

    left = image.stdout.splitlines()[:-1]
    assert left == []
    # The CA bundle the build was given is this machine's, not the base's: it stayed out.
    assert image.stdout.splitlines()[-1] == base.stdout.strip()
    given = hashlib.sha256(image_tools.CA_BUNDLE.read_bytes()).hexdigest()
    assert not image.stdout.splitlines()[-1].startswith(given)


def test_a_stop_signal_ends_a_run_at_once(built: Built) -> None:
    # As the ECS agent starts a flow run: through `/bin/sh -c`, which ignores SIGTERM as
    # PID 1. tini forwards it to the run's process group: exit 143, not a kill after the
    # stop timeout (137).
    name = f"stop-{built.id}"
    podman = image_tools.PODMAN
    hardened = [option for option in built.check.HARDENED if option != "--rm"]
    sleep = "python -c 'import time; time.sleep(120)'"
    subprocess.run([*podman, "rm", "--force", name], capture_output=True)
    try:
        image_tools.run(
            [*podman, "run", "--detach", "--name", name, *hardened, "--network", "none"]
            + [*image_tools.RUN_OPTIONS, built.image, "/bin/sh", "-c", sleep]
        )
        image_tools.run([*podman, "stop", "--time", "60", name])
        code = image_tools.run([*podman, "wait", name]).stdout.strip()
    finally:
        subprocess.run([*podman, "rm", "--force", name], capture_output=True)

    assert code == "143"


def test_the_image_has_the_dask_extra_of_its_run_config_and_no_other(built: Built) -> None:
    # Imported, not only found: an extra whose dependencies are broken fails here.
    probe = (
        "import importlib\n"
        "for name in NAMES:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        print(name)\n"
        "    except ImportError:\n"
        "        pass\n"
    )
    names = sorted(set(CLUSTER_MODULES.values()) | {"distributed"})
    done = built.run("python", "-c", f"NAMES = {names!r}\n{probe}")

    assert done.returncode == 0, done.stderr
    expected = {"distributed", CLUSTER_MODULES.get(built.id, "distributed")}
    assert set(done.stdout.split()) == expected
