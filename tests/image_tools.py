"""Build and run a baked project's image here, with buildah and podman (no Docker daemon).

The base images are Debian trixie made by debootstrap from Debian's mirror (no container
registry is reachable here): `debian:trixie-slim` plus Debian's `python3.13`, and for
Python 3.12, which trixie does not package, a stand-in for `python:3.12-slim-trixie`:
the same Debian with this machine's pyenv CPython 3.12 copied into /usr/local, where the
official image keeps its Python. Both are built once, under a file lock (pytest-xdist
workers share them), and kept with every image layer in a folder of the user's cache
that outlives the test run: a second run rebuilds only what changed.

The flags are the ones that work on these machines (../shared/facts.md): the overlay
storage driver, chroot isolation, runc with cgroupfs. `check_command()` is how the
baked `make check-image` runs the image here instead of with Docker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import baking

CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "cookiecutter-prefect-flow"
    / "images"
)
# buildah and podman share one store, apart from the machine's own.
STORAGE = [
    "--root",
    str(CACHE / "storage"),
    "--runroot",
    str(CACHE / "run"),
    "--storage-driver",
    "overlay",
]
MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP = [
    "debootstrap",
    "--variant=minbase",
    "--include=python3.13,python3.13-venv,ca-certificates",
    "trixie",
]
# Files of pyenv's CPython that python:3.12-slim does not ship, or that belong to this
# machine (a .pth its sandbox adds).
PYENV_EXCLUDED = ["lib/python3.12/test", "lib/python3.12/site-packages/*.pth", "*.a"]
# What the baked Dockerfile reads: the CA bundle of this machine, whose TLS to the
# package index is intercepted. Mounted for the build only.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# How the image runs here: the default runtime crun refuses this machine's cgroups.
PODMAN = ["podman", *STORAGE, "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
RUN_OPTIONS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    """Run a command; on failure raise with what it printed."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """One process at a time in this block, across pytest-xdist workers and test runs."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def image_exists(name: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", name]).returncode == 0


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def _debootstrap_tree() -> Path:
    """Debian trixie with Debian's python3.13, as debootstrap makes it (kept, keyed)."""
    tree = CACHE / f"rootfs-{_key(DEBOOTSTRAP, MIRROR)}"
    if not (tree / "usr/bin/python3.13").exists():
        shutil.rmtree(tree, ignore_errors=True)
        partial = tree.with_name(tree.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run([*DEBOOTSTRAP, str(partial), MIRROR])
        # What the slim images leave out: downloaded packages and the package lists.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (partial / folder).glob("*"):
                if path.is_file():
                    path.unlink()
        partial.rename(tree)
    return tree


def _pyenv_prefix(python: str) -> Path:
    interpreter = baking.python_interpreter(python)
    prefix = run([interpreter, "-c", "import sys; print(sys.base_prefix)"]).stdout.strip()
    return Path(prefix)


def _import(tree: Path, name: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(tree), "-c", "."], stdout=subprocess.PIPE)
    run([*PODMAN, "import", "-", name], stdin=tar.stdout)
    if tar.wait() != 0:
        raise RuntimeError(f"tar of {tree} failed")


def base_image(python: str) -> str:
    """The local trixie base for Python `python` ("3.13" or "3.12"), made once."""
    if python == "3.13":
        name = f"localhost/trixie-python3.13:{_key(DEBOOTSTRAP, MIRROR)}"
    else:
        prefix = _pyenv_prefix(python)
        version = run([str(prefix / "bin/python3"), "--version"]).stdout.split()[1]
        name = f"localhost/trixie-python{python}-standin:{_key(DEBOOTSTRAP, MIRROR, version)}"
    with file_lock("base"):
        if image_exists(name):
            return name
        tree = _debootstrap_tree()
        if python == "3.13":
            _import(tree, name)
            return name
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            copy = Path(scratch) / "rootfs"
            run(["cp", "-a", str(tree), str(copy)])
            excluded = [f"--exclude={pattern}" for pattern in PYENV_EXCLUDED]
            packed = subprocess.Popen(
                ["tar", "-C", str(prefix), *excluded, "-c", "bin", "include", "lib"],
                stdout=subprocess.PIPE,
            )
            run(["tar", "-C", str(copy / "usr/local"), "-x"], stdin=packed.stdout)
            packed.wait()
            # As in python:3.12-slim: `python3` and `python` are this Python.
            for link in ("python3", "python"):
                target = copy / "usr/local/bin" / link
                target.unlink(missing_ok=True)
                target.symlink_to(f"python{python}")
            run(["chroot", str(copy), "ldconfig"])
            _import(copy, name)
        return name


def build_command(
    project: Path, tag: str, base: str, *build_args: str, ca_bundle: Path | None = CA_BUNDLE
) -> list[str]:
    """buildah's command that builds `project`'s Dockerfile on `base` as image `tag`.

    Cached layers are reused (`--layers`): images with the same dependencies share them.
    """
    arguments = ["--build-arg", f"BASE_IMAGE={base}"]
    for build_arg in build_args:
        arguments += ["--build-arg", build_arg]
    if ca_bundle is not None:  # as the Dockerfile says: a build secret, in no layer
        arguments += [
            "--secret",
            f"id=ca-bundle,src={ca_bundle}",
            "--build-arg",
            "SSL_CERT_FILE=/run/secrets/ca-bundle",
        ]
    return [
        "buildah",
        *STORAGE,
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--pull=never",
        *arguments,
        "--tag",
        tag,
        str(project),
    ]


def build(project: Path, tag: str, base: str, *build_args: str) -> None:
    """Build `project`'s image `tag` on `base`."""
    run(build_command(project, tag, base, *build_args))


def image_size(name: str) -> int:
    """The image's size in bytes, as `podman image inspect` reports it."""
    return int(run([*PODMAN, "image", "inspect", "--format", "{{.Size}}", name]).stdout)


def container_engine() -> str:
    """What CONTAINER_ENGINE must be for the baked `make check-image` to use podman here."""
    return shlex.join(PODMAN)


def container_run_options() -> str:
    """CONTAINER_RUN_OPTIONS for the baked check: the limits podman needs here."""
    return shlex.join(RUN_OPTIONS)


def remove_image(name: str) -> None:
    subprocess.run([*PODMAN, "rmi", "--force", name], capture_output=True)
