"""Services checks (PostgreSQL, Redis run by compose), only in a workspace that declares services:
the Docker CLI, its daemon, a compose command, and one check per declared service (running, and its
port published on loopback).

A workspace declares services in its answers file (``services: [postgres]``), else through the
``compose.yaml`` devkit's template rendered (services ``postgres``/``redis`` whose image comes from
``${POSTGRES_IMAGE:-…}``/``${REDIS_IMAGE:-…}``). A workspace that declares none runs no docker
command at all: every check here is not applicable before anything runs.

Every docker call goes through :mod:`devkit.docker` on ``ctx.host`` (memoised in the context), so
the fix texts follow the host facts of :mod:`devkit.hostfacts`: Docker Engine on Linux, Docker
Desktop on macOS, Docker Desktop's WSL integration on WSL2
(https://docs.docker.com/engine/install/, https://docs.docker.com/desktop/features/wsl/,
https://docs.docker.com/engine/install/linux-postinstall/ for the ``docker`` group).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devkit import workspaces
from devkit.checks import tools
from devkit.checks.base import (
    Context,
    Outcome,
    check,
    fail,
    load_yaml,
    ok,
    prefetch,
    warn,
)
from devkit.errors import DevkitError

if TYPE_CHECKING:  # imported where used (~6 ms): only a workspace with services needs it
    from devkit import docker

#: The services devkit's template offers: compose service name → (container port, image variable).
KNOWN: dict[str, tuple[int, str]] = {"postgres": (5432, "POSTGRES_IMAGE"),
                                     "redis": (6379, "REDIS_IMAGE")}
COMPOSE_FILE = "compose.yaml"
DESKTOP_WSL_DOC = "https://docs.docker.com/desktop/features/wsl/"
DESKTOP_MAC_DOC = "https://docs.docker.com/desktop/setup/install/mac-install/"
ENGINE_DOC = "https://docs.docker.com/engine/install/"


# -- what the workspace declares -----------------------------------------------------------------
def _yaml(path: Path, load: Callable[[str], Any]) -> Any:
    try:
        return load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def declared_services(path: Path, load: Callable[[str], Any] = workspaces.load_yaml
                      ) -> tuple[str, ...]:
    """The services the workspace at ``path`` declares, in :data:`KNOWN` order: its answers
    file's ``services`` list when it records one, else the services of the ``compose.yaml``
    devkit's template rendered (a service named ``postgres``/``redis`` with the image from
    ``${POSTGRES_IMAGE…}``/``${REDIS_IMAGE…}``); a compose file of the user's own declares none.
    Never raises."""
    answers = _yaml(path / workspaces.ANSWERS_FILE, load)
    if isinstance(answers, dict) and "services" in answers:
        listed = answers["services"]
        names = {str(s) for s in listed} if isinstance(listed, list) else set()
        return tuple(n for n in KNOWN if n in names)
    compose = _yaml(path / COMPOSE_FILE, load)
    services = compose.get("services") if isinstance(compose, dict) else None
    if not isinstance(services, dict):
        return ()
    found = []
    for name, (_, variable) in KNOWN.items():
        spec = services.get(name)
        image = spec.get("image") if isinstance(spec, dict) else None
        if isinstance(image, str) and image.startswith("${" + variable):
            found.append(name)
    return tuple(found)


def declared(ctx: Context) -> tuple[str, ...]:
    """:func:`declared_services` of the context's workspace (memoised; () outside one)."""
    ws = ctx.workspace
    if ws is None:
        return ()
    return ctx.memo(("services.declared", str(ws.path)),
                    lambda: declared_services(ws.path, lambda text: load_yaml(ctx.store, text)))


def _applies(ctx: Context) -> str | None:
    return None if declared(ctx) else "the workspace declares no services"


def _applies_to(name: str) -> Callable[[Context], str | None]:
    def applies(ctx: Context) -> str | None:
        services = declared(ctx)
        if not services:
            return "the workspace declares no services"
        return None if name in services else f"the workspace does not declare {name}"

    return applies


# -- docker facts, memoised ----------------------------------------------------------------------
def cli(ctx: Context) -> str | None:
    """The docker CLI on the host's PATH (memoised)."""
    from devkit import docker

    return ctx.memo(("docker.cli",), lambda: docker.find_cli(ctx.host))


def daemon(ctx: Context, path: str) -> docker.Daemon:
    """:func:`devkit.docker.daemon` through ``path`` (memoised)."""
    from devkit import docker

    return ctx.memo(("docker.daemon", path), lambda: docker.daemon(ctx.host, path))


def compose(ctx: Context) -> docker.Compose | None:
    """:func:`devkit.docker.compose` (memoised)."""
    from devkit import docker

    return ctx.memo(("docker.compose",), lambda: docker.compose(
        ctx.host, _linux_cli(ctx), lambda path: tools.version_run(ctx, path)))


def containers(ctx: Context, path: str) -> list[docker.Container]:
    """The workspace's compose containers (memoised). Raises DevkitError when ``docker ps``
    fails."""
    from devkit import docker

    assert ctx.workspace is not None
    ws = ctx.workspace.path
    return ctx.memo(("docker.containers", path, str(ws)),
                    lambda: docker.workspace_containers(ctx.host, path, ws))


def _linux_cli(ctx: Context) -> str | None:
    from devkit import docker

    found = cli(ctx)
    return None if found is None or (ctx.wsl and docker.is_windows_path(found)) else found


@prefetch
def _start_compose_probe(ctx: Context) -> None:
    """Start the compose probe first: ``docker-compose --version`` (v1, a Python program) is the
    slowest docker call (~0.7 s) when not remembered yet. Only in a workspace that declares
    services."""
    if declared(ctx):
        compose(ctx)


@prefetch
def _start_docker_probes(ctx: Context) -> None:
    """Start the daemon and ``docker ps`` calls before the checks wait on each other (only in a
    workspace that declares services)."""
    if not declared(ctx):
        return
    path = _linux_cli(ctx)
    if path is not None and daemon(ctx, path).ok:
        try:
            containers(ctx, path)
        except DevkitError:
            pass  # reported by the service checks


# -- host-specific fixes -------------------------------------------------------------------------
def _distro(ctx: Context) -> str:
    return ctx.host.env.get("WSL_DISTRO_NAME") or "this distribution"


def _wsl_integration(ctx: Context) -> str:
    return (f"in Docker Desktop on Windows, turn on Settings > Resources > WSL integration for "
            f"{_distro(ctx)}, then open a new WSL terminal ({DESKTOP_WSL_DOC})")


def install_fix(ctx: Context) -> str:
    """How to get the docker CLI (and an engine) on this host."""
    if ctx.platform.get("system") == "macos":
        return (f"install Docker Desktop ({DESKTOP_MAC_DOC}, or `brew install --cask docker`) "
                "and start it once")
    if ctx.wsl:
        return _wsl_integration(ctx)
    if ctx.host.is_debian_like():
        return ("sudo apt-get install docker.io docker-compose && sudo usermod -aG docker "
                f"{_user(ctx)}   # then log out and back in")
    return f"install Docker Engine and the compose plugin: {ENGINE_DOC}"


def _user(ctx: Context) -> str:
    return ctx.host.env.get("USER") or ctx.host.env.get("LOGNAME") or "$USER"


def daemon_fix(ctx: Context, found: docker.Daemon) -> str:
    """How to get the daemon to answer, from what went wrong and the host."""
    if ctx.host.env.get("DOCKER_HOST"):
        return (f"DOCKER_HOST={found.endpoint} does not answer: start the daemon it names, or "
                "`unset DOCKER_HOST` to use the default one")
    if ctx.platform.get("system") == "macos":
        return "start Docker Desktop: open -a Docker   # then wait for it to say it is running"
    if ctx.wsl:
        return f"start Docker Desktop on Windows; {_wsl_integration(ctx)}"
    if found.problem == "permission":
        return (f"sudo usermod -aG docker {_user(ctx)}   # then log out and back in (or run "
                "`newgrp docker`) so your shell is in the docker group")
    if ctx.host.has_systemd():
        return "sudo systemctl enable --now docker"
    return "sudo service docker start"


def compose_fix(ctx: Context) -> str:
    """How to get a compose command on this host."""
    if ctx.platform.get("system") == "macos":
        return "update Docker Desktop (it ships `docker compose`), or `brew install docker-compose`"
    if ctx.wsl:
        return f"update Docker Desktop (it ships `docker compose`); {_wsl_integration(ctx)}"
    if ctx.host.is_debian_like():
        return "sudo apt-get install docker-compose"
    return f"install the compose plugin: {ENGINE_DOC}"


def up_fix(ctx: Context) -> str:
    """The command that starts the workspace's services: its ``services:up`` task (mise), or
    compose itself in a direnv-only workspace (no ``.mise.toml``, so no tasks), then
    ``direnv reload`` so the shell's ``DATABASE_URL``/``REDIS_URL`` get the new ports."""
    assert ctx.workspace is not None
    q = shlex.quote(str(ctx.workspace.path))
    if ctx.workspace.uses_mise:
        return f"cd {q} && mise run services:up"
    found = compose(ctx)
    command = found.display if found else "docker compose"
    return f"cd {q} && {command} up -d && direnv reload"


# -- the checks ----------------------------------------------------------------------------------
@check("services.docker", "Docker CLI", workspace=True, applies=_applies)
def docker_cli(ctx: Context) -> Outcome:
    """``docker`` on PATH, a Linux one on WSL (not Docker Desktop's Windows stand-in)."""
    from devkit import docker

    path = cli(ctx)
    if path is None:
        return fail(f"docker not found on PATH: the workspace's services ({', '.join(declared(ctx))})"
                    " need it", install_fix(ctx))
    if ctx.wsl and docker.is_windows_path(path):
        return fail(f"docker resolves to {path}, Docker Desktop's Windows side: its WSL "
                    f"integration is off for {_distro(ctx)}", _wsl_integration(ctx))
    result = tools.version_run(ctx, path)  # `docker --version`, remembered per binary file
    if not result.ok:
        return fail(f"`{path} --version` failed: {result.last_line()}", install_fix(ctx))
    version = docker.parse_client_version(result.stdout)
    return ok(f"docker {version or '(version unknown)'} ({path})")


@check("services.daemon", "Docker daemon answers", requires=("services.docker",), workspace=True,
       applies=_applies)
def docker_daemon(ctx: Context) -> Outcome:
    """``docker version`` reaches the daemon within :data:`devkit.docker.DAEMON_TIMEOUT` s."""
    path = _linux_cli(ctx)
    assert path is not None  # services.docker passed
    found = daemon(ctx, path)
    if found.ok:
        return ok(f"Docker Engine {found.version} at {found.endpoint}")
    why = {"permission": "permission denied (your user is not in the docker group)",
           "unreachable": "cannot connect (is it running?)",
           "timeout": found.detail}.get(found.problem or "", found.detail)
    return fail(f"the Docker daemon at {found.endpoint} does not answer: {why}",
                daemon_fix(ctx, found))


@check("services.compose", "compose command", workspace=True, applies=_applies)
def compose_command(ctx: Context) -> Outcome:
    """``docker compose`` (v2) or ``docker-compose`` (v1): the workspace's tasks use the first
    that works."""
    found = compose(ctx)
    if found is None:
        return fail("no compose command: neither `docker compose version` nor "
                    "`docker-compose version` works", compose_fix(ctx))
    return ok(f"{found.display} {found.version} ({' '.join(found.argv)})")


def service_outcome(ctx: Context, name: str) -> Outcome:
    """The outcome of the check of service ``name``: its container runs (and is not unhealthy)
    and its port is published on loopback."""
    path = _linux_cli(ctx)
    assert path is not None and ctx.workspace is not None  # services.daemon passed
    port, _ = KNOWN[name]
    try:
        mine = [c for c in containers(ctx, path) if c.service == name]
    except DevkitError as exc:
        return warn(f"cannot tell whether {name} runs: {exc}",
                    "run `docker ps` to see what the daemon says, then `devkit doctor` again")
    running = [c for c in mine if c.running]
    if not mine:
        return fail(f"{name} is not running (no container for this workspace)", up_fix(ctx))
    if not running:
        return fail(f"{name} is not running: {mine[0].state} ({mine[0].status})", up_fix(ctx))
    container = running[0]
    q = shlex.quote(str(ctx.workspace.path))
    logs = (f"cd {q} && mise run services:logs" if ctx.workspace.uses_mise
            else f"cd {q} && docker logs {container.id[:12]}")
    if container.health == "unhealthy":
        return fail(f"{name} runs but its healthcheck fails ({container.status})",
                    f"read why: {logs}; then {up_fix(ctx)}")
    published = container.published(port)
    loopback = [p for p in published if p.on_loopback]
    health = f", {container.health}" if container.health else ""
    if loopback:
        if container.health == "starting":
            return warn(f"{name} is starting on {loopback[0]} (health: starting)",
                        "wait a few seconds, then run `devkit doctor` again")
        return ok(f"{name} running on {loopback[0]} (port {port}{health})")
    layout = f'ports: ["127.0.0.1::{port}"]'
    if published:
        return warn(f"{name} is published on {published[0]}, reachable from other machines, "
                    "not on loopback only",
                    f"publish it on loopback in {COMPOSE_FILE} ({layout} under {name}), then "
                    f"{up_fix(ctx)}")
    return fail(f"{name} runs but its port {port} is not published on the host",
                f"publish it in {COMPOSE_FILE} ({layout} under {name}), then {up_fix(ctx)}")


def _service_check(name: str) -> None:
    @check(f"services.{name}", f"service {name} running on loopback",
           requires=("services.daemon",), workspace=True, applies=_applies_to(name))
    def run(ctx: Context) -> Outcome:
        return service_outcome(ctx, name)

    run.__doc__ = f"The {name} container of the workspace runs and publishes its port on loopback."


for _name in KNOWN:
    _service_check(_name)

