"""The generated workspace's own checks pass out of the box, with the real tools from PyPI."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import require_tool

from devkit import uv
from devkit.store import Store

pytestmark = pytest.mark.network


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The real package index; one uv cache for these tests so each tool downloads once."""
    monkeypatch.delenv("UV_OFFLINE")
    monkeypatch.delenv("UV_DEFAULT_INDEX")
    monkeypatch.delenv("MISE_OFFLINE")
    cache = tmp_path_factory.getbasetemp() / "network-uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))


def _mise(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = Store().subprocess_env({"MISE_OFFLINE": "1"})  # mise itself needs nothing online
    return subprocess.run(["mise", *args], cwd=ws, env=env, capture_output=True, text=True,
                          check=False, timeout=600)


@pytest.mark.usefixtures("online")
def test_check_passes_on_a_fresh_default_workspace(devkit, tmp_path: Path) -> None:
    require_tool("mise")
    ws = tmp_path / "fresh"
    code, _out, err = devkit("new", ws, "--defaults")
    assert code == 0, err
    proc = _mise(ws, "run", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    for evidence in ("All checks passed!", "Success: no issues found", "2 passed",
                     "Required test coverage"):
        assert evidence in output, evidence
    # formatting is stable: `mise run fmt` changes nothing in a fresh workspace
    assert _mise(ws, "run", "fmt").returncode == 0
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ws, capture_output=True,
                            text=True, check=True)
    assert status.stdout == ""


@pytest.mark.usefixtures("online")
def test_every_option_on_passes_its_checks_and_hooks(devkit, tmp_path: Path) -> None:
    require_tool("mise")
    ws = tmp_path / "allon"
    code, _out, err = devkit(
        "new", ws, "--defaults", "-d", "package=true", "-d", "cli_name=allon",
        "-d", "git_hooks=pre-commit", "-d", "type_checker=pyright", "-d", "cooldown_days=7",
        "-d", "description=rocket 🚀 \"quoted\" back\\slash", "-d", "author_name=Zoë \"Z\" Ø",
        "-d", "repository_url=https://github.com/team/allon", "-d", "license=Apache-2.0",
    )
    assert code == 0, err
    lock = tomllib.loads((ws / "uv.lock").read_text())
    assert lock["options"]["exclude-newer-span"] == "P7D"
    proc = _mise(ws, "run", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors" in proc.stdout + proc.stderr  # pyright
    hooks = _mise(ws, "run", "hooks")
    assert hooks.returncode == 0, hooks.stdout + hooks.stderr
    cli = subprocess.run([uv.find_uv(), "run", "--locked", "allon", "team"], cwd=ws,
                         env=Store().subprocess_env(), capture_output=True, text=True, check=False)
    assert cli.stdout == "Hello, team!\n", cli.stderr
