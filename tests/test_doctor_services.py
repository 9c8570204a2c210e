"""``devkit doctor``'s services checks: a real Docker engine and compose for the live cases, recorded
hosts (tests/hosts/*.json) for WSL2 and macOS, and a docker stub only to prove that a workspace
without services runs no docker command."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from hosts import context, load, run_one

from devkit import docker
from devkit.checks import services as services_checks
from devkit.checks.base import run_checks
from devkit.commands import doctor as doctor_cmd
from devkit.hostfacts import Host

SERVICE_IDS = ("services.docker", "services.daemon", "services.compose", "services.postgres",
               "services.redis")

# compose.yaml as the services contract gives it (loopback, a port chosen at start, images from
# variables): what tells a compose.yaml devkit rendered from the user's own.
CONTRACT_COMPOSE = """\
services:
  postgres:
    image: ${POSTGRES_IMAGE:-postgres:17}
    environment:
      POSTGRES_USER: ${POSTGRES_USER:-app}
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-app}
      POSTGRES_DB: ${POSTGRES_DB:-app}
    ports: ["127.0.0.1::5432"]
    volumes: ["pgdata:/var/lib/postgresql/data"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U $${POSTGRES_USER:-app}"]
      interval: 1s
      timeout: 3s
      retries: 60
  redis:
    image: ${REDIS_IMAGE:-redis:7}
    ports: ["127.0.0.1::6379"]
    volumes: ["redisdata:/data"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      timeout: 3s
      retries: 60
volumes:
  pgdata: {}
  redisdata: {}
"""


def services_workspace(devkit, path: Path, services: list[str]) -> Path:
    """A committed workspace declaring ``services``, rendered by devkit's template."""
    code, out, err = devkit("new", path, "--defaults", "--no-sync", "--data",
                            f"services=[{', '.join(services)}]")
    assert code == 0, (out, err)
    return path


def plain_workspace(root: Path, services: list[str] | None) -> Path:
    """A workspace made of files only (for recorded hosts); ``services`` None: no answer at all."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".copier-answers.yml").write_text(
        "_commit: v0.1.0\nenv_loader: mise\nproject_name: proj\n"
        + (f"services: [{', '.join(services)}]\n" if services is not None else ""))
    (root / ".envrc.sh").write_text("export DEVKIT_PROJECT=x\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    return root


def live_host(**env: str) -> Host:
    return Host({**os.environ, **env})


def results(ws: Path, host: Host, ids=SERVICE_IDS) -> dict:
    return {r.id: r for r in run_checks(context(ws, host), list(ids))}


@pytest.fixture
def project() -> str:
    """A compose project name of this test's own; its containers and volumes are removed after."""
    import docker_fixtures

    name = f"devkith2{uuid.uuid4().hex[:10]}"
    yield name
    docker_fixtures.remove_compose_project(name)


def compose_up(compose: list[str], ws: Path, project: str, images: dict[str, str]) -> None:
    env = {**os.environ, **images, "COMPOSE_PROJECT_NAME": project}
    proc = subprocess.run([*compose, "up", "-d"], cwd=ws, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr


def wait_ok(ws: Path, check_id: str, deadline: float = 180.0):
    """Run ``check_id`` until it is ok (the healthcheck needs a few seconds); its last result."""
    end = time.monotonic() + deadline
    while True:
        result = run_one(context(ws, live_host()), check_id)
        if result.status == "ok" or time.monotonic() > end:
            return result
        time.sleep(1.0)


# -- real Docker ---------------------------------------------------------------------------------
def test_services_down_then_up(devkit, tmp_path, docker_engine, service_images, project) -> None:
    ws = services_workspace(devkit, tmp_path / "shop", ["postgres", "redis"])
    down = results(ws, live_host())
    assert {i: down[i].status for i in SERVICE_IDS} == {
        "services.docker": "ok", "services.daemon": "ok", "services.compose": "ok",
        "services.postgres": "fail", "services.redis": "fail"}
    assert down["services.postgres"].message == (
        "postgres is not running (no container for this workspace)")
    assert down["services.postgres"].fix == f"cd {ws} && mise run services:up"
    assert down["services.redis"].fix == f"cd {ws} && mise run services:up"

    compose_up(docker_engine, ws, project, service_images)
    env = {**os.environ, **service_images, "COMPOSE_PROJECT_NAME": project}
    for service, port in (("postgres", 5432), ("redis", 6379)):
        result = wait_ok(ws, f"services.{service}")
        published = subprocess.run([*docker_engine, "port", service, str(port)], cwd=ws, env=env,
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert published.startswith("127.0.0.1:")
        assert result.status == "ok", result
        assert result.message.startswith(f"{service} running on {published} (port {port}")

    # the same workspace reached through a symlink: compose's working_dir is compared by realpath
    link = tmp_path / "link"
    link.symlink_to(ws)
    assert run_one(context(link, live_host()), "services.postgres").status == "ok"

    # stopped (container kept): the check says so and gives the same fix
    subprocess.run([*docker_engine, "stop", "postgres"], cwd=ws, env=env, check=True,
                   capture_output=True, timeout=120)
    stopped = run_one(context(ws, live_host()), "services.postgres")
    assert stopped.status == "fail"
    assert stopped.message.startswith("postgres is not running: exited")
    assert stopped.fix == f"cd {ws} && mise run services:up"


def test_other_workspace_with_the_same_name_is_not_ours(devkit, tmp_path, docker_engine,
                                                        service_images, project) -> None:
    """Containers are matched by the workspace's own directory, not by its name."""
    ours = services_workspace(devkit, tmp_path / "a" / "shop", ["postgres"])
    theirs = services_workspace(devkit, tmp_path / "b" / "shop", ["postgres"])
    compose_up(docker_engine, theirs, project, service_images)
    assert wait_ok(theirs, "services.postgres").status == "ok"
    assert run_one(context(ours, live_host()), "services.postgres").status == "fail"


def test_dead_docker_host_fails_the_daemon_check_only(devkit, tmp_path, store) -> None:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    ws = services_workspace(devkit, tmp_path / "shop", ["postgres"])
    out = io.StringIO()
    code = doctor_cmd.doctor(ws, store=store, as_json=True, out=out,
                             host=live_host(DOCKER_HOST="unix:///nonexistent"))
    doc = json.loads(out.getvalue())
    by = {c["id"]: c for c in doc["checks"]}
    assert code == 1
    assert by["services.docker"]["status"] == "ok"
    assert by["services.daemon"]["status"] == "fail"
    assert "unix:///nonexistent" in by["services.daemon"]["message"]
    assert by["services.daemon"]["fix"] == (
        "DOCKER_HOST=unix:///nonexistent does not answer: start the daemon it names, or "
        "`unset DOCKER_HOST` to use the default one")
    assert by["services.postgres"]["status"] == "skip"
    assert "services.redis" not in by or by["services.redis"]["status"] == "skip"
    # the other checks ran as usual
    assert by["tools.git"]["status"] == "ok"
    assert by["workspace.git"]["status"] == "ok"
    assert by["workspace.lock"]["status"] != "skip" or "lock" in by["workspace.lock"]["message"]


def _bin_with(tmp_path: Path, **tools: str) -> Path:
    """A directory holding only the named executables (symlinks or scripts)."""
    bin_dir = tmp_path / "only-bin"
    bin_dir.mkdir(exist_ok=True)
    for name, target in tools.items():
        path = bin_dir / name
        if target.startswith("#!"):
            path.write_text(target)
            path.chmod(0o755)
        else:
            path.symlink_to(target)
    return bin_dir


def test_docker_cli_absent(tmp_path) -> None:
    ws = plain_workspace(tmp_path / "ws", ["postgres"])
    bin_dir = _bin_with(tmp_path)
    got = results(ws, live_host(PATH=str(bin_dir)))
    assert got["services.docker"].status == "fail"
    assert got["services.docker"].message.startswith("docker not found on PATH")
    assert got["services.daemon"].status == "skip"
    assert got["services.postgres"].status == "skip"
    assert got["services.compose"].status == "fail"
    host = Host({**os.environ, "PATH": str(bin_dir)})
    if host.is_debian_like():
        assert got["services.docker"].fix.startswith("sudo apt-get install docker.io docker-compose")


def test_no_compose_command(tmp_path) -> None:
    real = shutil.which("docker")
    if real is None:
        pytest.skip("the docker CLI is not installed")
    # a docker without the compose plugin, and no docker-compose on PATH
    stub = f"#!/bin/sh\n[ \"$1\" = compose ] && {{ echo \"unknown command: docker compose\" >&2; exit 1; }}\nexec {real} \"$@\"\n"
    bin_dir = _bin_with(tmp_path, docker=stub)
    ws = plain_workspace(tmp_path / "ws", ["redis"])
    got = results(ws, live_host(PATH=str(bin_dir)), ["services.docker", "services.compose"])
    assert got["services.docker"].status == "ok"
    assert got["services.compose"].status == "fail"
    assert got["services.compose"].message.startswith("no compose command")
    if Host().is_debian_like():
        assert got["services.compose"].fix == "sudo apt-get install docker-compose"


def test_workspace_without_services_runs_no_docker_command(devkit, tmp_path, store) -> None:
    witness = tmp_path / "witness"
    stub = f"#!/bin/sh\necho \"$0 $*\" >> {witness}\nexit 1\n"
    bin_dir = tmp_path / "stubs"
    bin_dir.mkdir()
    for name in ("docker", "docker-compose"):
        (bin_dir / name).write_text(stub)
        (bin_dir / name).chmod(0o755)
    host = live_host(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    plain = tmp_path / "plain"
    code, out, err = devkit("new", plain, "--defaults", "--no-sync")
    assert code == 0, (out, err)
    doc = io.StringIO()
    doctor_cmd.doctor(plain, store=store, as_json=True, host=host, out=doc)
    ids = {c["id"] for c in json.loads(doc.getvalue())["checks"]}
    assert not witness.exists()
    assert not ids & set(SERVICE_IDS) or all(
        c["status"] == "skip" for c in json.loads(doc.getvalue())["checks"] if c["id"] in SERVICE_IDS)
    # the same doctor in a workspace that declares services does call docker (the stub works)
    ws = services_workspace(devkit, tmp_path / "shop", ["postgres"])
    doctor_cmd.doctor(ws, store=store, as_json=True, host=host, out=io.StringIO())
    assert witness.exists()


# -- recorded hosts: WSL2, macOS, Linux -------------------------------------------------------------
PS_FORMAT_KEY = " ".join(["ps", "-a", "--no-trunc", "--filter",
                          f"label={docker.LABEL_WORKING_DIR}", "--format", docker._PS_FORMAT])


def _host_with_docker(name: str, cli: str, *, daemon: dict, extra_run: dict | None = None,
                      dirs: tuple[str, ...] = ()):
    host = load(name)
    data = host.derive(run={f"{cli} --version": {"returncode": 0,
                                                "stdout": "Docker version 27.3.1, build ce12230\n"},
                            f"{cli} version --format {{{{.Server.Version}}}}": daemon,
                            **(extra_run or {})})
    data.data["executables"] = [*data.data.get("executables", []), cli]
    data.data["dirs"] = [*data.data.get("dirs", []), *dirs]
    return data


def test_wsl2_without_docker_desktop_integration(tmp_path) -> None:
    ws = plain_workspace(tmp_path / "ws", ["postgres"])
    got = results(ws, load("wsl2"))
    fix = ("in Docker Desktop on Windows, turn on Settings > Resources > WSL integration for "
           "Ubuntu-24.04, then open a new WSL terminal (https://docs.docker.com/desktop/features/wsl/)")
    assert got["services.docker"].status == "fail"
    assert got["services.docker"].fix == fix
    assert got["services.compose"].fix.endswith(fix)
    # docker reached through the Windows PATH: Docker Desktop's stand-in, integration off
    windows = "/mnt/c/Program Files/Docker/Docker/resources/bin/docker"
    path = load("wsl2").env["PATH"] + ":/mnt/c/Program Files/Docker/Docker/resources/bin"
    host = load("wsl2").derive(env={"PATH": path})
    host.data["executables"].append(windows)
    got = results(ws, host)
    assert got["services.docker"].status == "fail"
    assert got["services.docker"].message.startswith(f"docker resolves to {windows}")
    assert got["services.docker"].fix == fix


def test_wsl2_daemon_down_says_start_docker_desktop(tmp_path) -> None:
    ws = plain_workspace(tmp_path / "ws", ["postgres"])
    host = _host_with_docker("wsl2", "/usr/bin/docker", daemon={
        "returncode": 1, "stderr": "Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?\n"})
    got = results(ws, host)
    assert got["services.docker"].status == "ok"
    assert got["services.daemon"].status == "fail"
    assert got["services.daemon"].fix.startswith(
        "start Docker Desktop on Windows; in Docker Desktop on Windows, turn on Settings > "
        "Resources > WSL integration for Ubuntu-24.04")


def test_macos_fixes_name_docker_desktop(tmp_path) -> None:
    ws = plain_workspace(tmp_path / "ws", ["redis"])
    got = results(ws, load("macos"))
    assert got["services.docker"].fix == (
        "install Docker Desktop (https://docs.docker.com/desktop/setup/install/mac-install/, or "
        "`brew install --cask docker`) and start it once")
    host = _host_with_docker("macos", "/usr/local/bin/docker", daemon={
        "returncode": 1, "stderr": "Cannot connect to the Docker daemon at "
        "unix:///Users/me/.docker/run/docker.sock. Is the docker daemon running?\n"})
    got = results(ws, host)
    assert got["services.daemon"].status == "fail"
    assert got["services.daemon"].fix == (
        "start Docker Desktop: open -a Docker   # then wait for it to say it is running")
    assert got["services.compose"].fix == (
        "update Docker Desktop (it ships `docker compose`), or `brew install docker-compose`")


def test_linux_daemon_fixes(tmp_path) -> None:
    ws = plain_workspace(tmp_path / "ws", ["postgres"])
    down = {"returncode": 1, "stderr": "Cannot connect to the Docker daemon at "
            "unix:///var/run/docker.sock. Is the docker daemon running?\n"}
    got = results(ws, _host_with_docker("linux", "/usr/bin/docker", daemon=down,
                                        dirs=("/run/systemd/system",)))
    assert got["services.daemon"].fix == "sudo systemctl enable --now docker"
    got = results(ws, _host_with_docker("linux", "/usr/bin/docker", daemon=down))
    assert got["services.daemon"].fix == "sudo service docker start"
    denied = {"returncode": 1, "stderr": "permission denied while trying to connect to the "
              "Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun"
              "%2Fdocker.sock/v1.24/version\": dial unix /var/run/docker.sock: connect: "
              "permission denied\n"}
    got = results(ws, _host_with_docker("linux", "/usr/bin/docker", daemon=denied))
    assert "not in the docker group" in got["services.daemon"].message
    assert got["services.daemon"].fix.startswith("sudo usermod -aG docker me ")


def test_recorded_service_states(tmp_path) -> None:
    """The service check reads ``docker ps``: running on loopback, on every address, unhealthy."""
    ws = plain_workspace(tmp_path / "ws", ["postgres", "redis"])
    real = os.path.realpath(ws)

    def line(service: str, state: str, status: str, ports: str) -> str:
        return json.dumps(["abc123", state, status, ports, service, "proj-1", real, "False"])

    ps = "\n".join([line("postgres", "running", "Up 1 minute (healthy)",
                         "127.0.0.1:49153->5432/tcp"),
                    line("redis", "running", "Up 1 minute (unhealthy)", "0.0.0.0:49154->6379/tcp")])
    up = {"returncode": 0, "stdout": "27.3.1\n"}
    host = _host_with_docker("linux", "/usr/bin/docker", daemon=up, extra_run={
        f"/usr/bin/docker {PS_FORMAT_KEY}": {"returncode": 0, "stdout": ps + "\n"}})
    got = results(ws, host)
    assert got["services.postgres"].status == "ok"
    assert got["services.postgres"].message == "postgres running on 127.0.0.1:49153 (port 5432, healthy)"
    assert got["services.redis"].status == "fail"
    assert got["services.redis"].fix.startswith(f"read why: cd {ws} && mise run services:logs")
    ps = line("redis", "running", "Up 1 minute", "0.0.0.0:49154->6379/tcp")
    host = _host_with_docker("linux", "/usr/bin/docker", daemon=up, extra_run={
        f"/usr/bin/docker {PS_FORMAT_KEY}": {"returncode": 0, "stdout": ps + "\n"}})
    got = results(ws, host)
    assert got["services.redis"].status == "warn"
    assert "0.0.0.0:49154" in got["services.redis"].message
    # `docker ps` itself failing: a warning, not a silent pass
    host = _host_with_docker("linux", "/usr/bin/docker", daemon=up, extra_run={
        f"/usr/bin/docker {PS_FORMAT_KEY}": {"returncode": 1, "stderr": "Error: broken\n"}})
    got = results(ws, host)
    assert got["services.postgres"].status == "warn"
    assert "Error: broken" in got["services.postgres"].message


def test_direnv_only_workspace_is_told_to_run_compose(tmp_path) -> None:
    """Without .mise.toml there is no services:up task: the fix is compose itself."""
    ws = plain_workspace(tmp_path / "ws", ["postgres"])
    answers = ws / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("env_loader: mise", "env_loader: direnv"))
    up = {"returncode": 0, "stdout": "27.3.1\n"}
    host = _host_with_docker("linux", "/usr/bin/docker", daemon=up, extra_run={
        f"/usr/bin/docker {PS_FORMAT_KEY}": {"returncode": 0, "stdout": ""},
        "/usr/bin/docker compose version --short": {"returncode": 0, "stdout": "2.29.7\n"}})
    got = results(ws, host)
    assert got["services.compose"].message.startswith("docker compose 2.29.7")
    assert got["services.postgres"].fix == f"cd {ws} && docker compose up -d && direnv reload"


# -- what a workspace declares --------------------------------------------------------------------
def test_declared_services(tmp_path) -> None:
    ws = plain_workspace(tmp_path / "a", ["redis", "postgres"])
    assert services_checks.declared_services(ws) == ("postgres", "redis")
    none = plain_workspace(tmp_path / "b", [])
    (none / "compose.yaml").write_text(CONTRACT_COMPOSE)
    assert services_checks.declared_services(none) == ()  # the answer wins
    old = plain_workspace(tmp_path / "c", None)
    assert services_checks.declared_services(old) == ()
    (old / "compose.yaml").write_text(CONTRACT_COMPOSE)
    assert services_checks.declared_services(old) == ("postgres", "redis")
    (old / "compose.yaml").write_text("services:\n  postgres:\n    image: postgres:16\n")
    assert services_checks.declared_services(old) == ()  # the user's own compose file


def test_parse_ports_and_ps() -> None:
    ports = docker.parse_ports("127.0.0.1:49153->5432/tcp, :::49153->5432/tcp, 6379/tcp, "
                               "0.0.0.0:8000-8001->8000-8001/tcp, [::1]:5->6/udp")
    assert [str(p) for p in ports] == ["127.0.0.1:49153", "[::]:49153",
                                       "6379/tcp (not published)", "0.0.0.0:8000",
                                       "0.0.0.0:8001", "[::1]:5"]
    assert [p.on_loopback for p in ports] == [True, False, False, False, False, True]
    (c,) = docker.parse_ps(json.dumps(["id", "running", "Up 3 seconds (health: starting)",
                                       "127.0.0.1:1->5432/tcp", "postgres", "p", "/w", "False"]))
    assert (c.health, c.running, c.published(5432)[0].host_port) == ("starting", True, 1)
    assert docker.same_dir("/w/../w", "/w")


def test_private_workspace_declares_the_services_of_its_compose_file(devkit, tmp_path) -> None:
    """``adopt --private --data services=…`` writes compose.yaml and no answers file: the
    compose.yaml devkit rendered declares the services."""
    from devkit import uv
    from devkit.store import Store

    repo = tmp_path / "client"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "client"\nversion = "0"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n")
    subprocess.run([uv.find_uv(), "lock", "-q"], cwd=repo, env=Store().subprocess_env(),
                   check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "client"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    code, out, err = devkit("adopt", "--private", "--no-sync", "--data", "services=postgres", repo)
    assert code == 0, (out, err)
    assert services_checks.declared_services(repo) == ("postgres",)
    got = results(repo, live_host(PATH=str(_bin_with(tmp_path))))
    assert got["services.docker"].status == "fail"
    assert got["services.postgres"].status == "skip" and got["services.postgres"].relevant
    assert not got["services.redis"].relevant  # not declared
