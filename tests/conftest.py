"""Shared fixtures: every test runs with its own HOME, store and git identity, offline."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import build_wheel, template_dev_stubs, write_simple_index

from devkit.main import main
from devkit.store import Store

# Variables of the developer's own set-up that must not leak into tests.
_LEAKY = (
    "UV_CACHE_DIR", "UV_PYTHON_INSTALL_DIR", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX",
    "UV_FIND_LINKS", "UV_PROJECT_ENVIRONMENT", "UV_LINK_MODE", "VIRTUAL_ENV", "DEVKIT_TEMPLATE",
    "MISE_SHELL", "__MISE_DIFF", "__MISE_SESSION", "__MISE_ORIG_PATH", "MISE_TRUSTED_CONFIG_PATHS",
    "DIRENV_DIR", "DIRENV_FILE", "DIRENV_DIFF", "DIRENV_WATCHES", "XDG_DATA_HOME",
    "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "PYTHONPATH",
)


@dataclasses.dataclass(frozen=True)
class LocalIndex:
    """A PEP 503 index on disk: ``url`` is its file:// URL, ``root`` its directory."""

    root: Path
    url: str


@pytest.fixture(scope="session")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    """tinyshared 1.0/1.1/2.0, tinyother 1.0/2.0 and stubs of the template's dev tools (pytest, …)."""
    base = tmp_path_factory.mktemp("index")
    wheels = [build_wheel(base / "wheels", "tinyshared", v, payload=20_000) for v in ("1.0", "1.1", "2.0")]
    wheels += [build_wheel(base / "wheels", "tinyother", v, payload=5_000) for v in ("1.0", "2.0")]
    wheels += template_dev_stubs(base / "wheels")
    root = base / "simple"
    return LocalIndex(root, write_simple_index(root, wheels))


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_index: LocalIndex
) -> Iterator[Path]:
    """Point HOME, DEVKIT_HOME, git and uv's index into ``tmp_path``; uv runs offline."""
    home = tmp_path / "home"
    home.mkdir()
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    # The test venv's scripts (uv, copier, devkit) come first, so tests and the tools they start
    # (`mise run` in a generated workspace) find them without the venv being activated.
    scripts = sysconfig.get_path("scripts")
    monkeypatch.setenv("PATH", os.pathsep.join([scripts, os.environ.get("PATH", "")]))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DEVKIT_HOME", str(tmp_path / "devkit-home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("UV_DEFAULT_INDEX", local_index.url)
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_NO_PROGRESS", "1")
    monkeypatch.setenv("MISE_OFFLINE", "1")
    settings = tmp_path / "copier-settings.yml"
    settings.write_text("{}\n")
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))
    yield tmp_path


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of devkit's bundled template that the test may change."""
    from devkit import template

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "bundled"
    root.mkdir()
    shutil.copy2(repo / "copier.yml", root / "copier.yml")
    shutil.copytree(repo / "templates", root / "templates")
    monkeypatch.setattr(template, "bundled_template_dir", lambda: root)
    return root


@pytest.fixture
def store() -> Store:
    """The store the isolated environment points at."""
    return Store()


def in_ci() -> bool:
    """CI sets CI=true: there a missing tool fails the run instead of skipping."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def require_tool(name: str) -> str:
    """Path of ``name``; skip the test when missing, except in CI where that is a failure."""
    path = shutil.which(name)
    if path is None:
        if in_ci():
            pytest.fail(f"{name} is required in CI but is not on PATH")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def devkit(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``devkit ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def make_workspace(
    tmp_path: Path, devkit: Callable[..., tuple[int, str, str]]
) -> Callable[..., Path]:
    """``make_workspace(name, deps=("tinyshared>=1",), loader="mise")``: devkit new + add deps."""
    import subprocess

    from devkit import uv

    def make(name: str, deps: tuple[str, ...] = (), loader: str = "mise", sync: bool = True) -> Path:
        path = tmp_path / "ws" / name
        code, out, err = devkit("new", path, "--defaults", "--data", f"env_loader={loader}",
                                *(() if sync else ("--no-sync",)))
        assert code == 0, (out, err)
        if deps:
            env = Store().subprocess_env()
            flag = [] if sync else ["--no-sync"]
            subprocess.run([uv.find_uv(), "add", "-q", *flag, *deps], cwd=path, env=env, check=True)
            subprocess.run(["git", "commit", "-qam", "deps"], cwd=path, check=True)
        return path

    return make


@pytest.fixture(scope="session")
def docker_engine() -> list[str]:
    """A reachable Docker engine; returns the compose command (``docker compose`` or
    ``docker-compose``). Skips with the reason when there is none (fails in CI)."""
    import docker_fixtures

    problem = docker_fixtures.engine_problem()
    if problem:
        docker_fixtures._unavailable(problem)
    compose = docker_fixtures.compose_command()
    if compose is None:
        docker_fixtures._unavailable("no compose command: install docker-compose "
                                     "(or the `docker compose` plugin)")
    assert compose is not None
    return compose


@pytest.fixture(scope="session")
def service_images(docker_engine: list[str]) -> dict[str, str]:
    """``{"POSTGRES_IMAGE": ..., "REDIS_IMAGE": ...}``: local images with real PostgreSQL 15 and
    Redis 7 servers, built once (see tests/docker_fixtures.py)."""
    import docker_fixtures

    return docker_fixtures.build_service_images()
