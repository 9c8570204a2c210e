"""A real Docker engine and locally built service images for the services tests.

No image registry is reachable where these tests run, so ``postgres:17``/``redis:7`` cannot be
pulled. Instead one root filesystem holding Debian's ``postgresql`` and ``redis-server`` packages is
built with ``mmdebstrap`` (from Debian's own archive, which is reachable), imported with
``docker import``, and given the entry points of the official images (the same environment
variables, data directories and ports), so a workspace's ``compose.yaml`` runs them unchanged once
``POSTGRES_IMAGE``/``REDIS_IMAGE`` point at them. The images are built once per Docker data root and
reused while their ``devkit.test-images`` label matches :data:`IMAGES_VERSION`.

Use the fixtures ``docker_engine`` and ``service_images`` (registered in conftest.py). They skip
the test, with the reason, when no engine can be reached or the images cannot be built; in CI
(``CI=true``) they fail instead, since ``.ci/run`` installs and starts the engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IMAGES_VERSION = "1"
POSTGRES_IMAGE = "devkit-test/postgres:15"
REDIS_IMAGE = "devkit-test/redis:7"
BASE_IMAGE = "devkit-test/services-base:1"
BUILD_TIMEOUT = 900.0  # seconds for mmdebstrap (about 60 s on a 2-core machine)

# The official postgres image's contract: POSTGRES_USER (default postgres), POSTGRES_PASSWORD
# (required), POSTGRES_DB (default: the user), data in /var/lib/postgresql/data, port 5432.
POSTGRES_ENTRYPOINT = r"""#!/bin/sh
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "POSTGRES_PASSWORD is required" >&2
  exit 1
fi
BIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/data
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  umask 077
  printf '%s\n' "$POSTGRES_PASSWORD" > /run/postgresql/pwfile
  chown postgres /run/postgresql/pwfile
  runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --no-locale \
    --pwfile=/run/postgresql/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f /run/postgresql/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    runuser -u postgres -- "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null <<EOF
CREATE DATABASE "$POSTGRES_DB";
EOF
  fi
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*'
"""

# The official redis image's contract: data in /data, port 6379, no password.
REDIS_ENTRYPOINT = r"""#!/bin/sh
set -eu
mkdir -p /data
chown redis:redis /data
exec runuser -u redis -- redis-server --bind 0.0.0.0 --protected-mode no --dir /data "$@"
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def _unavailable(reason: str) -> None:
    """Skip the test with ``reason`` (fail in CI, where the engine must be there)."""
    if _in_ci():
        pytest.fail(f"Docker is required in CI: {reason}")
    pytest.skip(reason)


def _docker(*args: str, timeout: float = 60.0, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def engine_problem() -> str | None:
    """None when ``docker info`` answers within 20 s, else why not (one line)."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (apt-get install docker.io docker-compose)"
    try:
        proc = _docker("info", "--format", "{{.ServerVersion}}", timeout=20.0)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers (`docker info`: {last}); start dockerd"
    return None


def compose_command() -> list[str] | None:
    """``["docker", "compose"]`` when the v2 plugin works, else ``["docker-compose"]``, else None."""
    if shutil.which("docker") and _docker("compose", "version", timeout=20.0).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _current(image: str) -> bool:
    proc = _docker("image", "inspect", "--format", '{{index .Config.Labels "devkit.test-images"}}',
                   image)
    return proc.returncode == 0 and proc.stdout.strip() == IMAGES_VERSION


def _build_base(workdir: Path) -> None:
    """mmdebstrap a Debian root filesystem with both servers and import it as BASE_IMAGE."""
    if shutil.which("mmdebstrap") is None:
        _unavailable("mmdebstrap is not installed (apt-get install mmdebstrap): "
                     "it builds the test images, no registry being reachable")
    scripts = {"devkit-postgres": POSTGRES_ENTRYPOINT, "devkit-redis": REDIS_ENTRYPOINT}
    hooks: list[str] = []
    for name, text in scripts.items():
        (workdir / name).write_text(text)
        hooks += [f"--customize-hook=upload {workdir / name} /usr/local/bin/{name}",
                  f'--customize-hook=chmod 755 "$1/usr/local/bin/{name}"']
    rootfs = workdir / "rootfs.tar"
    cmd = ["mmdebstrap", "--variant=apt", "--include=postgresql-15,redis-server",
           "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*", *hooks, "bookworm", str(rootfs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        _unavailable(f"mmdebstrap did not finish within {BUILD_TIMEOUT:.0f} s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        _unavailable(f"mmdebstrap could not build the service images' root filesystem: {last}")
    proc = _docker("import", str(rootfs), BASE_IMAGE, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        _unavailable(f"`docker import` failed: {proc.stderr.strip()}")


def _derive(image: str, entrypoint: str, port: int, volume: str) -> None:
    """Tag BASE_IMAGE as ``image`` with the official image's entry point, port and volume."""
    created = _docker("create", BASE_IMAGE, "true")
    if created.returncode != 0:
        _unavailable(f"`docker create {BASE_IMAGE}` failed: {created.stderr.strip()}")
    container = created.stdout.strip()
    try:
        changes = [f'ENTRYPOINT ["{entrypoint}"]', "CMD []", f"EXPOSE {port}", f'VOLUME ["{volume}"]',
                   f"LABEL devkit.test-images={IMAGES_VERSION}"]
        args = [arg for change in changes for arg in ("--change", change)]
        proc = _docker("commit", *args, container, image)
        if proc.returncode != 0:
            _unavailable(f"`docker commit` of {image} failed: {proc.stderr.strip()}")
    finally:
        _docker("rm", "-f", container)


def build_service_images() -> dict[str, str]:
    """Build (or reuse) the test images; returns ``{"POSTGRES_IMAGE": ..., "REDIS_IMAGE": ...}``.

    Skips (fails in CI) when the engine is unreachable or the images cannot be built.
    """
    problem = engine_problem()
    if problem:
        _unavailable(problem)
    if not (_current(POSTGRES_IMAGE) and _current(REDIS_IMAGE)):
        with tempfile.TemporaryDirectory(prefix="devkit-test-images-") as tmp:
            started = time.monotonic()
            _build_base(Path(tmp))
            _derive(POSTGRES_IMAGE, "/usr/local/bin/devkit-postgres", 5432, "/var/lib/postgresql/data")
            _derive(REDIS_IMAGE, "/usr/local/bin/devkit-redis", 6379, "/data")
            print(f"built the service test images in {time.monotonic() - started:.0f} s")
    return {"POSTGRES_IMAGE": POSTGRES_IMAGE, "REDIS_IMAGE": REDIS_IMAGE}


def remove_compose_project(project: str, env: dict[str, str] | None = None) -> None:
    """Remove every container, volume and network of the compose project named ``project``
    (``COMPOSE_PROJECT_NAME``): cleanup after a test; errors are ignored."""
    label = f"label=com.docker.compose.project={project}"
    containers = _docker("ps", "-aq", "--filter", label, env=env).stdout.split()
    if containers:
        _docker("rm", "-f", "-v", *containers, env=env)
    for kind in ("volume", "network"):
        ids = _docker(kind, "ls", "-q", "--filter", label, env=env).stdout.split()
        if ids:
            _docker(kind, "rm", *ids, env=env)
