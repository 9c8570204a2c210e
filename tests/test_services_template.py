"""The template's services option (compose.yaml, the URLs in the environment, the services:* mise
tasks), with real copier, devkit, mise, direnv, Docker and Compose.

The services run from images built locally (tests/docker_fixtures.py: real PostgreSQL 15 and
Redis 7 from Debian packages); tests needing an engine skip with the fixture's reason when none can
start. Tests that read the environment unset CI (CI=true makes mise trust every config), so the
trust devkit recorded is what lets mise load `.envrc.sh`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import require_tool

REPO = Path(__file__).resolve().parents[1]
TASKS = {"services:up", "services:down", "services:reset", "services:logs", "services:url"}

Devkit = Callable[..., tuple[int, str, str]]


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(root).parts)


def _copier(dst: Path, *data: str) -> subprocess.CompletedProcess[str]:
    """Plain `copier copy` of this repository's template, as a user would run it."""
    args = [a for d in data for a in ("--data", d)]
    return subprocess.run([sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD",
                           *args, str(REPO), str(dst)], capture_output=True, text=True, check=False)


def _new(devkit: Devkit, path: Path, *data: str, loader: str = "mise") -> Path:
    args = [a for d in (f"env_loader={loader}", *data) for a in ("--data", d)]
    code, out, err = devkit("new", path, "--defaults", "--no-sync", *args)
    assert code == 0, (out, err)
    return path


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _mise_env(ws: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment mise computes for ``ws`` (what `cd` gives with the hook): stderr must be
    empty and the exit status 0."""
    proc = subprocess.run(["mise", "env", "--json"], cwd=ws, env=env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def _direnv_env(ws: Path, env: dict[str, str]) -> dict[str, str]:
    """What direnv exports for ``ws``: no error output (only its "loading" lines)."""
    proc = subprocess.run(["direnv", "export", "json"], cwd=ws, env=env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc
    lines = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr).splitlines()
    noise = [ln for ln in lines if not ln.startswith("direnv: ")]
    assert noise == [], proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def _mise_run(ws: Path, env: dict[str, str], *task: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["mise", "run", *task], cwd=ws, env=env, capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc
    return proc


def _published(project: str, service: str, port: int) -> int:
    """The host port Docker published for ``service`` of compose project ``project``."""
    proc = subprocess.run(
        ["docker", "ps", "--filter", f"label=com.docker.compose.project={project}", "--filter",
         f"label=com.docker.compose.service={service}", "--format", "{{.Ports}}"],
        capture_output=True, text=True, check=True)
    host = proc.stdout.strip().split("->")[0]
    assert proc.stdout.strip().endswith(f"->{port}/tcp") and host.startswith("127.0.0.1:"), proc
    return int(host.rsplit(":", 1)[1])


def _psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, check=False, timeout=60)


def _redis_ping(url: str) -> bytes:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


@pytest.fixture
def services_env(service_images: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[dict[str, str]]:
    """The environment for the Docker tests: the local images, CI unset (trust is devkit's);
    every compose project started in ``tmp_path`` is removed afterwards (also when a test fails)."""
    import docker_fixtures

    monkeypatch.delenv("CI", raising=False)
    require_tool("mise")
    yield _env(**service_images)
    here = os.path.realpath(tmp_path)
    listing = subprocess.run(["docker", "ps", "-a", "--format",
                              ('{{.Label "com.docker.compose.project"}}|'
                              '{{.Label "com.docker.compose.project.working_dir"}}')],
                             capture_output=True, text=True, check=False).stdout
    for project in {p for p, _, where in (ln.partition("|") for ln in listing.splitlines())
                    if p and os.path.realpath(where or "/").startswith(here + os.sep)}:
        docker_fixtures.remove_compose_project(project)


# --- rendering -----------------------------------------------------------------------------------


def test_no_services_no_compose_and_no_docker_call(tmp_path: Path) -> None:
    proc = _copier(tmp_path / "plain")
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "plain"
    assert "services:up" not in proc.stdout + proc.stderr
    assert not (root / "compose.yaml").exists()
    assert "docker" not in (root / ".envrc.sh").read_text()
    assert "COMPOSE_PROJECT_NAME" not in (root / ".envrc.sh").read_text()
    assert "services:" not in (root / ".mise.toml").read_text()
    assert "## Services" not in (root / "README.md").read_text()
    assert yaml.safe_load((root / ".copier-answers.yml").read_text())["services"] == []


@pytest.mark.parametrize("services", [["postgres"], ["postgres", "redis"], ["redis"]])
def test_services_render(tmp_path: Path, services: list[str]) -> None:
    import tomllib

    root = tmp_path / "My.App-2"
    proc = _copier(root, f"services=[{', '.join(services)}]")
    assert proc.returncode == 0, proc.stderr
    assert f"mise run services:up   # start {', '.join(services)}" in proc.stdout + proc.stderr
    assert yaml.safe_load((root / ".copier-answers.yml").read_text())["services"] == services
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    assert set(compose) == {"services", "volumes"}  # no `name:` (v1 rejects it), no `version:`
    assert list(compose["services"]) == services
    expected = {"postgres": ("${POSTGRES_IMAGE:-postgres:17}", 5432, "pg_isready"),
                "redis": ("${REDIS_IMAGE:-redis:7}", 6379, "redis-cli")}
    for name in services:
        service = compose["services"][name]
        image, port, probe = expected[name]
        assert service["image"] == image
        assert service["ports"] == [f"127.0.0.1::{port}"]
        volume = service["volumes"][0].split(":")[0]
        assert volume in compose["volumes"]
        assert probe in " ".join(service["healthcheck"]["test"])
    envrc = (root / ".envrc.sh").read_text()
    assert 'COMPOSE_PROJECT_NAME="my-app-2-${_devkit_crc%% *}"' in envrc
    assert ("DATABASE_URL" in envrc) == ("postgres" in services)
    assert ("REDIS_URL" in envrc) == ("redis" in services)
    assert envrc.count("\n  _devkit_ps=$(docker ") == 1  # one docker call
    for shell in ("bash", "sh"):
        subprocess.run([shell, "-n", root / ".envrc.sh"], check=True)
    mise = tomllib.loads((root / ".mise.toml").read_text())
    assert TASKS <= set(mise["tasks"])
    for task in TASKS:
        assert mise["tasks"][task]["dir"] == "{{config_root}}"
    assert "deletes" not in mise["tasks"]["services:down"]["description"].lower()
    assert "DELETE" in mise["tasks"]["services:reset"]["description"]
    assert "Delete the volumes" in mise["tasks"]["services:reset"]["confirm"]
    assert "--volumes" in mise["tasks"]["services:reset"]["run"]
    assert "--volumes" not in mise["tasks"]["services:down"]["run"]
    readme = (root / "README.md").read_text()
    for words in ("## Services", "Docker Engine", "Docker Desktop", "WSL integration",
                  "mise run services:up", ".envrc.local.sh"):
        assert words in readme


def test_invalid_service_is_refused_in_one_line(devkit: Devkit, tmp_path: Path) -> None:
    for value in ("[mysql]", "mysql", "postgres,mysql"):
        code, _out, err = devkit("new", tmp_path / "bad", "--defaults", "--no-sync",
                                "--data", f"services={value}")
        assert code != 0
        assert err.strip().splitlines() == [
            ("devkit: error: cannot render the template: Invalid choice for 'services': "
            "'mysql' is not in ['postgres', 'redis']")], err
        assert not (tmp_path / "bad").exists()
    proc = _copier(tmp_path / "bad", "services=[mysql]")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "ValueError: Invalid choice for 'services': 'mysql' is not in ['postgres', 'redis']")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("value", ["[postgres, redis]", "postgres,redis"])
def test_devkit_new_and_copier_copy_give_the_same_files(devkit: Devkit, tmp_path: Path,
                                                        value: str) -> None:
    from devkit import uv

    pins = [f"python_version={sys.version_info.major}.{sys.version_info.minor}",
            f"uv_version={'.'.join(uv.version().split('.')[:2])}"]
    plain = tmp_path / "a" / "same"
    proc = _copier(plain, "services=[postgres, redis]", *pins)
    assert proc.returncode == 0, proc.stderr
    via_devkit = _new(devkit, tmp_path / "b" / "same", f"services={value}")
    assert (via_devkit / "compose.yaml").is_file()
    assert _files(plain) == _files(via_devkit)
    for rel in _files(plain):
        if rel != ".copier-answers.yml":
            assert (plain / rel).read_bytes() == (via_devkit / rel).read_bytes(), rel
    answers = [{k: v for k, v in yaml.safe_load((root / ".copier-answers.yml").read_text()).items()
                if not k.startswith("_")} for root in (plain, via_devkit)]
    assert answers[0] == answers[1]
    assert answers[0]["services"] == ["postgres", "redis"]


def test_compose_file_is_valid_for_compose_v1_and_v2(tmp_path: Path) -> None:
    compose_v1 = require_tool("docker-compose")
    root = tmp_path / "ws"
    assert _copier(root, "services=[postgres, redis]").returncode == 0
    env = _env(COMPOSE_PROJECT_NAME="ws-1")
    commands = [[compose_v1]]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        commands.append([docker, "compose"])
    for command in commands:
        proc = subprocess.run([*command, "config"], cwd=root, env=env, capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, (command, proc.stderr)
        config = yaml.safe_load(proc.stdout)
        assert config["services"]["postgres"]["image"] == "postgres:17"
        assert config["services"]["redis"]["image"] == "redis:7"
        assert config["services"]["postgres"]["environment"]["POSTGRES_DB"] == "ws"
    # Images and credentials come from the environment (.envrc.local.sh, a team, a test).
    env.update(POSTGRES_IMAGE="mirror/pg:17", POSTGRES_PASSWORD="s3cret")
    proc = subprocess.run([compose_v1, "config"], cwd=root, env=env, capture_output=True,
                          text=True, check=True)
    config = yaml.safe_load(proc.stdout)
    assert config["services"]["postgres"]["image"] == "mirror/pg:17"
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"


# --- no Docker: the environment still loads, silently ---------------------------------------------


def _path_without_docker(tmp_path: Path) -> str:
    """PATH with every directory of the current one, minus any docker command (links to the rest)."""
    bin_dir = tmp_path / "no-docker-bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = bin_dir / entry.name
            if not entry.name.startswith("docker") and not target.exists():
                target.symlink_to(entry.path)
    return str(bin_dir)


def test_env_loads_silently_without_docker_or_its_daemon(devkit: Devkit, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("mise")
    require_tool("direnv")
    require_tool("docker")
    monkeypatch.delenv("CI", raising=False)
    ws = _new(devkit, tmp_path / "ws" / "app", "services=[postgres, redis]", loader="both")
    no_cli = _env(PATH=_path_without_docker(tmp_path))
    assert shutil.which("docker", path=no_cli["PATH"]) is None
    dead = _env(DOCKER_HOST=f"unix://{tmp_path}/no-such-docker.sock")
    for env in (no_cli, dead):
        for loaded in (_mise_env(ws, env), _direnv_env(ws, env)):
            assert loaded["COMPOSE_PROJECT_NAME"].startswith("app-")
            assert loaded["POSTGRES_USER"] == "postgres"
            assert "DATABASE_URL" not in loaded
            assert "REDIS_URL" not in loaded
    proc = subprocess.run(["mise", "run", "services:url"], cwd=ws, env=dead, capture_output=True,
                          text=True, check=True)
    assert "postgres is not running: mise run services:up" in proc.stdout


# --- with a Docker engine --------------------------------------------------------------------------


@pytest.mark.docker
def test_two_workspaces_with_the_same_folder_name_run_side_by_side(
        devkit: Devkit, tmp_path: Path, services_env: dict[str, str]) -> None:
    require_tool("psql")
    workspaces = [_new(devkit, tmp_path / parent / "app", "services=[postgres, redis]")
                  for parent in ("client-a", "client-b")]
    for ws in workspaces:
        _mise_run(ws, services_env, "services:up")
    loaded = [_mise_env(ws, services_env) for ws in workspaces]
    projects = [env["COMPOSE_PROJECT_NAME"] for env in loaded]
    assert projects[0] != projects[1]
    assert all(p.startswith("app-") for p in projects)
    ports = set()
    for env, project in zip(loaded, projects, strict=True):
        pg = _published(project, "postgres", 5432)
        redis = _published(project, "redis", 6379)
        ports |= {pg, redis}
        assert env["DATABASE_URL"] == f"postgresql://postgres:postgres@127.0.0.1:{pg}/app"
        assert env["REDIS_URL"] == f"redis://127.0.0.1:{redis}/0"
        query = _psql(env["DATABASE_URL"], "select 40 + 2")
        assert query.returncode == 0 and query.stdout.strip() == "42", query
        assert _redis_ping(env["REDIS_URL"]) == b"+PONG\r\n"
    assert len(ports) == 4
    # services:url prints the same, looked up now
    out = _mise_run(workspaces[0], services_env, "services:url").stdout
    assert f"DATABASE_URL={loaded[0]['DATABASE_URL']}" in out
    assert f"REDIS_URL={loaded[0]['REDIS_URL']}" in out


@pytest.mark.docker
def test_down_up_moves_the_port_and_the_url_follows_data_survives_until_reset(
        devkit: Devkit, tmp_path: Path, services_env: dict[str, str]) -> None:
    require_tool("psql")
    ws = _new(devkit, tmp_path / "ws" / "shop", "services=[postgres]")
    _mise_run(ws, services_env, "services:up")
    first = _mise_env(ws, services_env)
    project = first["COMPOSE_PROJECT_NAME"]
    assert _psql(first["DATABASE_URL"], "create table orders (id int); "
                                        "insert into orders values (7)").returncode == 0
    _mise_run(ws, services_env, "services:down")
    assert "DATABASE_URL" not in _mise_env(ws, services_env)
    _mise_run(ws, services_env, "services:up")
    second = _mise_env(ws, services_env)
    port = _published(project, "postgres", 5432)
    assert second["DATABASE_URL"].endswith(f"@127.0.0.1:{port}/shop")
    assert second["DATABASE_URL"] != first["DATABASE_URL"]
    # An old URL inherited from elsewhere (a shell that loaded it by hand, an IDE) does not stick.
    stale = _mise_env(ws, {**services_env, "DATABASE_URL": first["DATABASE_URL"]})
    assert stale["DATABASE_URL"] == second["DATABASE_URL"]
    kept = _psql(second["DATABASE_URL"], "select id from orders")
    assert kept.returncode == 0 and kept.stdout.strip() == "7", kept  # down kept the volume

    def volumes() -> list[str]:
        return subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                               f"label=com.docker.compose.project={project}"],
                              capture_output=True, text=True, check=True).stdout.split()

    assert volumes() == [f"{project}_postgres-data"]
    # reset asks first: without a terminal it refuses, and deletes nothing
    refused = subprocess.run(["mise", "run", "services:reset"], cwd=ws, env=services_env,
                             capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert volumes() == [f"{project}_postgres-data"]
    done = _mise_run(ws, services_env, "--yes", "services:reset")
    assert "volumes deleted" in done.stdout
    assert volumes() == []
    assert "DATABASE_URL" not in _mise_env(ws, services_env)


@pytest.mark.docker
@pytest.mark.parametrize("hook", ["mise", "direnv"])
def test_an_activated_shell_follows_the_new_port_at_its_next_prompt(
        devkit: Devkit, tmp_path: Path, services_env: dict[str, str], hook: str) -> None:
    """The tasks touch .envrc.sh, which both loaders watch: the prompt hook (called here as the
    prompt would) reloads, with no `direnv reload` or `cd` by hand."""
    ws = _new(devkit, tmp_path / "ws" / "live", "services=[redis]", loader="both")
    prompt = "_mise_hook" if hook == "mise" else "_direnv_hook 2>/dev/null"
    script = textwrap.dedent(f"""\
        eval "$({hook} {'activate' if hook == 'mise' else 'hook'} bash)"
        cd {ws}
        {prompt}
        echo "before=${{REDIS_URL-}}"
        mise run services:up >/dev/null 2>&1 || exit 3
        {prompt}
        echo "up=${{REDIS_URL-}}"
        mise run services:down >/dev/null 2>&1 || exit 4
        {prompt}
        echo "down=${{REDIS_URL-}}"
        mise run services:up >/dev/null 2>&1 || exit 5
        {prompt}
        echo "again=${{REDIS_URL-}}"
        """)
    # mise also re-reads the environment when a directory it searches for configs changes (any
    # file created in it): stop that search at the workspace, so that only the touch can work.
    env = {**services_env, "MISE_CEILING_PATHS": str(ws.parent)}
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc
    seen = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    project = _mise_env(ws, services_env)["COMPOSE_PROJECT_NAME"]
    assert seen["before"] == ""
    assert seen["up"].startswith("redis://127.0.0.1:")
    assert seen["down"] == ""
    assert seen["again"] == f"redis://127.0.0.1:{_published(project, 'redis', 6379)}/0"
    assert seen["again"] != seen["up"]
    assert subprocess.run(["git", "status", "--porcelain"], cwd=ws, capture_output=True,
                          text=True, check=True).stdout == ""
