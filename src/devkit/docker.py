"""The Docker CLI and Compose: the one module that runs ``docker`` / ``docker-compose`` and parses
their output, for ``devkit doctor``'s services checks.

Every call goes through a :class:`devkit.hostfacts.Host` (so a recorded WSL2 or macOS host
replays them in tests), with a bounded timeout: a ``DOCKER_HOST`` that never answers costs
:data:`DAEMON_TIMEOUT` seconds, not a hung doctor. Nothing here starts, stops or creates a
container: compose ``up`` is the workspace's ``mise run services:up``.

Facts relied on:

- Compose command: ``docker compose`` (the v2 CLI plugin) when ``docker compose version`` works,
  else the standalone ``docker-compose`` (v1, e.g. Debian's 1.29)
  (https://docs.docker.com/compose/releases/migrate/).
- Both label the containers they create with ``com.docker.compose.project``,
  ``com.docker.compose.service``, ``com.docker.compose.project.working_dir`` and
  ``com.docker.compose.oneoff`` (``True`` for ``compose run`` containers)
  (https://github.com/docker/compose/blob/v2/pkg/api/labels.go; v1: compose/const.py).
- ``docker ps --format`` takes a Go template; ``{{json (.Label "k")}}`` prints one label as a
  JSON string, ``.State`` is ``running``/``exited``/``created``/…, ``.Status`` the human text with
  the health in brackets (``Up 2 minutes (healthy)``), ``.Ports`` lists ``IP:HOST->PORT/PROTO``
  entries separated by ``, `` (https://docs.docker.com/reference/cli/docker/container/ls/).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from devkit.errors import DevkitError
from devkit.hostfacts import Host, RunResult

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"
LABEL_ONEOFF = "com.docker.compose.oneoff"

#: Seconds to wait for the daemon to answer ``docker version``: a local daemon answers in
#: ~20 ms; a dead TCP ``DOCKER_HOST`` would otherwise hang for the TCP connect timeout.
DAEMON_TIMEOUT = 3.0
#: Seconds for ``docker ps`` and the ``--version`` calls.
CALL_TIMEOUT = 5.0
#: Seconds for ``docker-compose version`` (v1 is a Python program: ~0.7 s to start).
COMPOSE_V1_TIMEOUT = 10.0

#: The daemon the CLI talks to when neither ``DOCKER_HOST`` nor a context says otherwise.
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LOOPBACK = ("127.0.0.1", "::1")

_PS_FORMAT = ("[{{json .ID}},{{json .State}},{{json .Status}},{{json .Ports}},"
              + ",".join(f'{{{{json (.Label "{label}")}}}}'
                         for label in (LABEL_SERVICE, LABEL_PROJECT, LABEL_WORKING_DIR,
                                       LABEL_ONEOFF))
              + "]")


@dataclasses.dataclass(frozen=True)
class Port:
    """One published port: ``host_ip`` (``127.0.0.1``, ``0.0.0.0``, ``::``), ``host_port``
    (None when the container port is exposed but not published), ``container_port`` and
    ``protocol`` (``tcp``/``udp``)."""

    host_ip: str | None
    host_port: int | None
    container_port: int
    protocol: str = "tcp"

    @property
    def on_loopback(self) -> bool:
        """True when published on the loopback address only (``127.0.0.1`` or ``::1``)."""
        return self.host_port is not None and self.host_ip in LOOPBACK

    def __str__(self) -> str:
        if self.host_port is None:
            return f"{self.container_port}/{self.protocol} (not published)"
        ip = f"[{self.host_ip}]" if self.host_ip and ":" in self.host_ip else self.host_ip
        return f"{ip}:{self.host_port}"


@dataclasses.dataclass(frozen=True)
class Container:
    """One container made by compose: its id, compose ``service`` and ``project``, the
    project's ``working_dir`` (as compose recorded it), ``state`` (``running``, ``exited``,
    ``created``, ``restarting``, ``paused``, ``dead``), ``status`` (``Up 3 minutes (healthy)``) and
    its ``ports``."""

    id: str
    service: str
    project: str
    working_dir: str
    state: str
    status: str
    ports: tuple[Port, ...] = ()
    oneoff: bool = False

    @property
    def running(self) -> bool:
        """True when the container runs (``state`` is ``running``)."""
        return self.state == "running"

    @property
    def health(self) -> str | None:
        """``healthy``, ``unhealthy`` or ``starting`` from the status text; None without a
        healthcheck."""
        found = re.search(r"\((healthy|unhealthy|health: starting)\)", self.status)
        if found is None:
            return None
        return "starting" if found.group(1) == "health: starting" else found.group(1)

    def published(self, container_port: int, protocol: str = "tcp") -> list[Port]:
        """The host ports ``container_port`` is published on (none when only exposed)."""
        return [p for p in self.ports if p.container_port == container_port
                and p.protocol == protocol and p.host_port is not None]


@dataclasses.dataclass(frozen=True)
class Daemon:
    """Whether the daemon answered: ``version`` when it did, else ``problem`` (``unreachable``,
    ``permission``, ``timeout`` or ``error``) with ``detail`` (the CLI's own line) and the
    ``endpoint`` asked (``DOCKER_HOST`` or the default socket)."""

    version: str | None
    endpoint: str
    problem: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the daemon answered."""
        return self.version is not None


@dataclasses.dataclass(frozen=True)
class Compose:
    """A compose command: ``argv`` to run (``("/usr/bin/docker", "compose")`` or
    ``("/usr/bin/docker-compose",)``), its ``version`` and ``major`` (1 or 2)."""

    argv: tuple[str, ...]
    version: str
    major: int

    @property
    def display(self) -> str:
        """The command as a user types it: ``docker compose`` or ``docker-compose``."""
        return "docker compose" if self.major >= 2 else "docker-compose"


def find_cli(host: Host) -> str | None:
    """The ``docker`` executable first on the host's ``PATH``, or None. On WSL this may be
    Docker Desktop's Windows-side stand-in under ``/mnt/`` (see :func:`is_windows_path`)."""
    return host.which("docker")


def is_windows_path(path: str) -> bool:
    """True for a ``docker`` reached through the Windows ``PATH`` inside WSL (``/mnt/c/…`` or a
    ``.exe``): without Docker Desktop's WSL integration, ``docker`` resolves there and only
    prints that the integration is off (https://docs.docker.com/desktop/features/wsl/)."""
    return path.startswith("/mnt/") or path.lower().endswith(".exe")


def parse_client_version(text: str) -> str | None:
    """``28.2.2`` from ``Docker version 28.2.2, build e6534b4``, or None."""
    found = re.search(r"version\s+v?([0-9][^\s,]*)", text)
    return found.group(1) if found else None


def endpoint(host: Host) -> str:
    """The daemon the CLI will ask: ``$DOCKER_HOST``, else the context named by
    ``$DOCKER_CONTEXT``, else the default socket (the CLI's own order; a context chosen with
    ``docker context use`` is not read here)."""
    if host.env.get("DOCKER_HOST"):
        return host.env["DOCKER_HOST"]
    if host.env.get("DOCKER_CONTEXT"):
        return f"context {host.env['DOCKER_CONTEXT']}"
    return DEFAULT_SOCKET


def daemon(host: Host, cli: str, *, timeout: float = DAEMON_TIMEOUT) -> Daemon:
    """Ask the daemon for its version (``docker version --format {{.Server.Version}}``), waiting
    at most ``timeout`` seconds. Never raises: a failure is a :class:`Daemon` with ``problem``."""
    where = endpoint(host)
    result = host.run([cli, "version", "--format", "{{.Server.Version}}"], timeout=timeout)
    version = result.stdout.strip()
    if result.ok and version:
        return Daemon(version, where)
    if result.error and "timed out" in result.error:
        return Daemon(None, where, "timeout", f"no answer within {timeout:g} s")
    detail = result.last_line()
    lower = (result.stderr + result.stdout).lower()
    if "permission denied" in lower:
        problem = "permission"
    elif "cannot connect" in lower or "is the docker daemon running" in lower \
            or "error during connect" in lower or "connection refused" in lower \
            or "no such file or directory" in lower:
        problem = "unreachable"
    else:
        problem = "error"
    return Daemon(None, where, problem, detail)


def compose(host: Host, cli: str | None,
            version_of: Callable[[str], RunResult] | None = None) -> Compose | None:
    """The compose command to use: ``docker compose`` when ``docker compose version --short``
    works (needs ``cli``), else ``docker-compose`` from ``PATH`` when ``docker-compose
    --version`` works (``docker-compose version 1.29.2, build unknown``); None when neither does.

    ``version_of(path)`` runs ``path --version`` (default: on ``host``, at most
    :data:`COMPOSE_V1_TIMEOUT` s): doctor passes one that remembers the output per binary file,
    v1 being a Python program that takes ~0.7 s to start. Never raises; never contacts the
    daemon."""
    if cli is not None:
        result = host.run([cli, "compose", "version", "--short"], timeout=CALL_TIMEOUT)
        version = result.stdout.strip().lstrip("v")
        if result.ok and version:
            return Compose((cli, "compose"), version, _major(version, 2))
    standalone = host.which("docker-compose")
    if standalone is None:
        return None
    if version_of is None:
        result = host.run([standalone, "--version"], timeout=COMPOSE_V1_TIMEOUT)
    else:
        result = version_of(standalone)
    found = re.search(r"version\s+v?([0-9][^\s,]*)", result.stdout)
    if result.ok and found:
        return Compose((standalone,), found.group(1), _major(found.group(1), 1))
    return None


def _major(version: str, default: int) -> int:
    found = re.match(r"(\d+)", version)
    return int(found.group(1)) if found else default


_PORT = re.compile(
    r"^(?:(?P<ip>\[[0-9A-Fa-f:.]*\]|[0-9A-Fa-f:.]*?):(?P<host>\d+)(?:-\d+)?->)?"
    r"(?P<port>\d+)(?:-(?P<last>\d+))?/(?P<proto>[a-z]+)$")


def parse_ports(text: str) -> list[Port]:
    """Parse ``docker ps``'s ``.Ports``: ``127.0.0.1:49153->5432/tcp, :::49153->5432/tcp,
    6379/tcp`` (IPv6 as ``:::P`` or ``[::]:P``; a range ``0.0.0.0:8000-8001->8000-8001/tcp``
    gives one :class:`Port` per port). Unparseable entries are skipped."""
    ports: list[Port] = []
    for entry in text.split(","):
        found = _PORT.match(entry.strip())
        if found is None:
            continue
        first = int(found.group("port"))
        last = int(found.group("last") or first)
        ip = found.group("ip")
        ip = ip.strip("[]") if ip is not None else None
        host_first = int(found.group("host")) if found.group("host") else None
        for offset in range(last - first + 1):
            host_port = None if host_first is None else host_first + offset
            ports.append(Port(ip if host_port is not None else None, host_port,
                              first + offset, found.group("proto")))
    return ports


def parse_ps(text: str) -> list[Container]:
    """Parse the lines of ``docker ps --format`` with :data:`_PS_FORMAT` (one JSON array per
    line). Raises DevkitError on a line that is not such an array."""
    found: list[Container] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except ValueError as exc:
            raise DevkitError(f"cannot read `docker ps` output: {line[:200]!r}") from exc
        if not isinstance(fields, list) or len(fields) != 8:
            raise DevkitError(f"cannot read `docker ps` output: {line[:200]!r}")
        cid, state, status, ports, service, project, working_dir, oneoff = (
            str(f or "") for f in fields)
        found.append(Container(cid, service, project, working_dir, state, status,
                               tuple(parse_ports(ports)), oneoff.lower() == "true"))
    return found


def compose_containers(host: Host, cli: str) -> list[Container]:
    """Every container on the daemon made by compose (any state, ``compose run`` ones included):
    ``docker ps -a --no-trunc --filter label=…working_dir``. Raises DevkitError when ``docker ps``
    fails or times out (``CALL_TIMEOUT`` seconds)."""
    result = host.run([cli, "ps", "-a", "--no-trunc", "--filter", f"label={LABEL_WORKING_DIR}",
                       "--format", _PS_FORMAT], timeout=CALL_TIMEOUT)
    if not result.ok:
        raise DevkitError(f"`docker ps` failed: {result.last_line()}")
    return parse_ps(result.stdout)


def same_dir(recorded: str, workspace: str | os.PathLike[str]) -> bool:
    """True when compose's recorded ``working_dir`` and ``workspace`` are the same directory,
    compared by realpath (either may go through a symlink)."""
    if not recorded:
        return False
    return os.path.realpath(recorded) == os.path.realpath(workspace)


def workspace_containers(host: Host, cli: str, workspace: Path) -> list[Container]:
    """The compose containers of ``workspace`` (``working_dir`` label whose realpath is the
    workspace's), ``compose run`` one-offs left out. Raises DevkitError like
    :func:`compose_containers`."""
    return [c for c in compose_containers(host, cli)
            if not c.oneoff and same_dir(c.working_dir, workspace)]


__all__ = ["CALL_TIMEOUT", "DAEMON_TIMEOUT", "DEFAULT_SOCKET", "LABEL_ONEOFF", "LABEL_PROJECT",
           "LABEL_SERVICE", "LABEL_WORKING_DIR", "Compose", "Container", "Daemon", "Port",
           "compose", "compose_containers", "daemon", "endpoint", "find_cli",
           "is_windows_path", "parse_client_version", "parse_ports", "parse_ps", "same_dir",
           "workspace_containers"]
