"""`cd` into a workspace loads the store's environment: real mise and direnv, real shells."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import require_tool


def _bash(script: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], check=False, cwd=cwd,
                          env=env or dict(os.environ), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_store_json_matches_mise_env(make_workspace, devkit, monkeypatch) -> None:
    require_tool("mise")
    monkeypatch.delenv("DEVKIT_HOME")  # both sides derive everything from HOME
    ws = make_workspace("agree")
    code, out, _ = devkit("store", "--json")
    assert code == 0
    expected = json.loads(out)["env"]
    proc = subprocess.run(["mise", "env", "--json"], cwd=ws, capture_output=True, text=True,
                          check=True)
    mise_env = json.loads(proc.stdout)
    assert expected["DEVKIT_HOME"] == os.path.expanduser("~/.local/share/devkit")
    for key, value in expected.items():
        assert mise_env[key] == value, key
    assert mise_env["VIRTUAL_ENV"] == str(ws / ".venv")
    assert not any("\r" in v for v in mise_env.values())


def test_store_json_matches_mise_env_with_overrides(make_workspace, devkit, tmp_path,
                                                    monkeypatch) -> None:
    require_tool("mise")
    monkeypatch.delenv("DEVKIT_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "own-cache"))
    ws = make_workspace("agree2")
    _code, out, _ = devkit("store", "--json")
    expected = json.loads(out)["env"]
    assert expected["DEVKIT_HOME"] == str(tmp_path / "xdg" / "devkit")
    mise_env = json.loads(subprocess.run(["mise", "env", "--json"], cwd=ws, capture_output=True,
                                         text=True, check=True).stdout)
    # mise env lists only what the config changes: UV_CACHE_DIR kept the user's value
    assert "UV_CACHE_DIR" not in mise_env
    assert {k: mise_env.get(k, os.environ.get(k)) for k in expected} == expected


def test_mise_activate_and_cd(make_workspace, store) -> None:
    require_tool("mise")
    ws = make_workspace("act")
    script = f'''
eval "$(mise activate bash)"
cd {ws} && printf '%s\\n' "$UV_CACHE_DIR" "$(command -v python)" "$DEVKIT_PROJECT"
cd / && printf '%s\\n' "${{UV_CACHE_DIR:-unset}}" "${{DEVKIT_PROJECT:-unset}}"
'''
    lines = _bash(script).splitlines()
    assert lines[0] == str(store.uv_cache_dir)
    assert lines[1] == str(ws / ".venv" / "bin" / "python")
    assert lines[2] == "act"
    assert lines[3:] == ["unset", "unset"]


def test_untrusted_config_loads_nothing(make_workspace, monkeypatch) -> None:
    require_tool("mise")
    monkeypatch.delenv("CI", raising=False)  # CI=true makes mise trust everything
    ws = make_workspace("untrusted")
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    proc = subprocess.run(["mise", "env", "--json"], check=False, cwd=ws, capture_output=True, text=True)
    assert proc.returncode != 0 and "not trusted" in proc.stderr
    out = _bash(f'eval "$(mise activate bash)" 2>/dev/null; cd {ws} 2>/dev/null; '
                'printf "%s" "${UV_CACHE_DIR:-unset}"')
    assert out == "unset"


@pytest.mark.parametrize("loader", ["direnv", "both"])
def test_direnv_exec_and_hook(make_workspace, store, loader: str, monkeypatch) -> None:
    require_tool("direnv")
    monkeypatch.delenv("CI", raising=False)
    ws = make_workspace(f"dir-{loader}", loader=loader)
    proc = subprocess.run(["direnv", "exec", str(ws), "sh", "-c", 'printf "%s|%s" "$UV_CACHE_DIR" "$VIRTUAL_ENV"'], check=False,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # devkit new ran `direnv allow`
    assert proc.stdout == f"{store.uv_cache_dir}|{ws / '.venv'}"
    script = f'''
eval "$(direnv hook bash)"
cd {ws} && _direnv_hook 2>/dev/null && printf '%s\\n' "$UV_CACHE_DIR" "$(command -v python)"
cd / && _direnv_hook 2>/dev/null && printf '%s\\n' "${{UV_CACHE_DIR:-unset}}"
'''
    lines = _bash(script).splitlines()
    assert lines == [str(store.uv_cache_dir), str(ws / ".venv" / "bin" / "python"), "unset"]


def test_direnv_blocks_until_allowed(make_workspace, monkeypatch) -> None:
    require_tool("direnv")
    ws = make_workspace("blocked", loader="direnv")
    with (ws / ".envrc").open("a") as fh:
        fh.write("# edited\n")
    proc = subprocess.run(["direnv", "exec", str(ws), "true"], check=False, capture_output=True, text=True)
    assert proc.returncode != 0 and "is blocked" in proc.stderr


def test_mise_downloads_nothing_and_runs_tasks_offline(make_workspace, monkeypatch) -> None:
    """uv owns Python and .venv: mise has no tool to install, its tasks run with MISE_OFFLINE=1."""
    require_tool("mise")
    monkeypatch.setenv("MISE_OFFLINE", "1")
    ws = make_workspace("offline")
    config = tomllib.loads((ws / ".mise.toml").read_text())
    assert "tools" not in config and "python" not in config["env"]["_"]
    current = subprocess.run(["mise", "ls", "--current", "--json"], cwd=ws, capture_output=True,
                             text=True, check=True)
    assert json.loads(current.stdout) == {}  # no tool: nothing mise would download or miss
    missing = subprocess.run(["mise", "ls", "--current", "--missing"], cwd=ws,
                             capture_output=True, text=True, check=True)
    assert missing.stdout.strip() == ""
    for task in ("sync", "lock"):
        proc = subprocess.run(["mise", "run", task], cwd=ws, capture_output=True, text=True,
                              check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "Failed to install" not in proc.stderr
    # the tasks' uv ran with the store's cache: the venv's files are links into it
    python = subprocess.run(["mise", "exec", "--", "python", "-c", "import sys; print(sys.prefix)"],
                            cwd=ws, capture_output=True, text=True, check=True)
    assert python.stdout.strip() == str(ws / ".venv")


def test_environment_loads_when_the_pinned_python_is_missing(make_workspace, store) -> None:
    """A Python nobody installed (and no .venv yet): `mise env` still gives the store's variables
    at once and creates nothing."""
    require_tool("mise")
    ws = make_workspace("nopython", sync=False)
    (ws / ".python-version").write_text("3.99\n")
    assert not (ws / ".venv").exists()
    proc = subprocess.run(["mise", "env", "--json"], cwd=ws, capture_output=True, text=True,
                          check=False, timeout=10)
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    assert env["UV_CACHE_DIR"] == str(store.uv_cache_dir)
    assert env["UV_PYTHON_INSTALL_DIR"] == str(store.python_install_dir)
    assert env["DEVKIT_PROJECT"] == "nopython"
    assert "VIRTUAL_ENV" not in env
    assert not (ws / ".venv").exists()  # mise never creates .venv with a Python of its own
