"""`devkit sync`: venvs linked from the shared cache, whatever the calling shell has."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import build_wheel, locked_project, run_uv, sdist_only, write_simple_index

from devkit import uv, workspace_code
from devkit.store import Store
from devkit.uv import Change, parse_changes


def _doc(devkit, *args: object) -> tuple[int, dict]:
    code, out, err = devkit("sync", *args, "--json")
    assert out, err
    return code, json.loads(out)


def test_parse_changes() -> None:
    out = ("Resolved 3 packages in 2ms\nUninstalled 1 package in 1ms\nInstalled 2 packages in 3ms\n"
           " - tinyshared==1.0\n + tinyshared==2.0\n + tiny-other.x==1.0rc1\n"
           " ~ demo==0.1.0 (from file:///tmp/demo)\nwarning: `VIRTUAL_ENV=x` does not match\n")
    assert parse_changes(out) == [Change("-", "tinyshared", "1.0"), Change("+", "tinyshared", "2.0"),
                                  Change("+", "tiny-other.x", "1.0rc1"), Change("~", "demo", "0.1.0")]
    assert str(Change("+", "a", "1")) == "+ a==1"


def test_venv_from_another_cache_is_rebuilt(make_workspace, devkit, tmp_path: Path,
                                            store: Store) -> None:
    ws = make_workspace("w", deps=("tinyshared",))
    subprocess.run(["rm", "-rf", str(ws / ".venv")], check=True)
    # built by a shell whose uv used another cache (e.g. uv's default ~/.cache/uv)
    other = store.subprocess_env({"UV_CACHE_DIR": str(tmp_path / "other-cache")})
    subprocess.run([uv.find_uv(), "sync", "--locked", "-q"], cwd=ws, env=other, check=True)
    workspace_code.record_venv(ws, store)  # as if devkit had made it (else: a foreign .venv)

    code, doc = _doc(devkit, ws)
    assert code == 0 and doc["version"] == 1
    [result] = doc["workspaces"]
    assert result["status"] == "synced" and result["rebuilt"] is True
    assert result["linked_files"] > 0 and result["foreign_files"] == 0
    assert "another uv cache" in result["notes"][0]
    assert not list(ws.glob(".venv.devkit-old-*"))
    # the second run only checks, offline
    code, doc = _doc(devkit, ws)
    assert code == 0 and doc["workspaces"][0]["status"] == "current"
    assert doc["workspaces"][0]["rebuilt"] is False and doc["summary"]["current"] == 1


def test_stale_venv_after_a_lock_change(make_workspace, devkit, monkeypatch,
                                        store: Store) -> None:
    ws = make_workspace("s", deps=("tinyshared",))
    subprocess.run([uv.find_uv(), "add", "-q", "--no-sync", "tinyother"], cwd=ws,
                   env=store.subprocess_env(), check=True)
    (ws / "src" / "deeper").mkdir()
    monkeypatch.chdir(ws / "src" / "deeper")  # PATH defaults to the workspace containing the cwd
    code, out, err = devkit("sync")
    assert code == 0, err
    assert out.startswith(f"synced   {ws}") and "+ tinyother==2.0" in out
    assert "files are links into the shared cache" in out
    code, out, _ = devkit("sync")
    assert code == 0 and out.startswith("current")


def test_one_failure_never_stops_the_others(make_workspace, devkit, tmp_path: Path) -> None:
    good = make_workspace("good", deps=("tinyshared",))
    (good / ".venv").rename(good / "old-venv")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pyproject.toml").write_text('[project]\nname = "bad"\nversion = "0"\n'
                                        'dependencies = ["tinyshared"]\n')
    (bad / "uv.lock").write_text("version = 1\nthis is not a lock\n")
    nolock = tmp_path / "nolock"
    nolock.mkdir()
    (nolock / "pyproject.toml").write_text('[project]\nname = "nolock"\nversion = "0"\n')
    gone = tmp_path / "gone"
    code, doc = _doc(devkit, bad, good, nolock, gone)
    assert code == 1
    statuses = {Path(w["path"]).name: w["status"] for w in doc["workspaces"]}
    assert statuses == {"bad": "failed", "good": "synced", "nolock": "skipped", "gone": "skipped"}
    reasons = {Path(w["path"]).name: w["reason"] for w in doc["workspaces"]}
    assert "uv.lock" in reasons["bad"] and "\n" not in reasons["bad"]
    assert reasons["nolock"].endswith(f"cd {nolock} && uv lock")
    assert doc["summary"] == {"synced": 1, "current": 0, "failed": 1, "skipped": 2}


def test_sync_all_and_outside_a_project(make_workspace, devkit, monkeypatch, tmp_path) -> None:
    make_workspace("a", deps=("tinyshared",))
    code, doc = _doc(devkit, "--all", "--jobs", "2")
    assert code == 0 and [w["status"] for w in doc["workspaces"]] == ["current"]
    monkeypatch.chdir(tmp_path)
    code, _, err = devkit("sync")
    assert code == 1 and "not inside a Python project" in err and err.count("\n") == 1


@pytest.mark.parametrize("flag", ["--jobs=x", "--frobnicate"])
def test_sync_usage_errors(devkit, flag: str) -> None:
    code, _, err = devkit("sync", flag)
    assert code == 2 and err.startswith("devkit sync: error: ")


def test_private_copies_are_reported_not_rebuilt(make_workspace, devkit, store: Store) -> None:
    ws = make_workspace("c", deps=("tinyshared",))
    subprocess.run(["rm", "-rf", str(ws / ".venv")], check=True)
    copy = store.subprocess_env({"UV_LINK_MODE": "copy"})
    subprocess.run([uv.find_uv(), "sync", "--locked", "-q"], cwd=ws, env=copy, check=True)
    workspace_code.record_venv(ws, store)  # as if devkit had made it (else: a foreign .venv)
    code, doc = _doc(devkit, ws)
    [result] = doc["workspaces"]
    assert code == 0 and result["status"] == "current" and result["rebuilt"] is False
    assert result["linked_files"] == 0 and result["private_files"] == result["files"]
    assert result["notes"][0].endswith(f"rm -rf {ws}/.venv && devkit sync {ws}")


def test_cache_inodes_see_wheels_unpacked_after_the_first_lookup(tmp_path: Path) -> None:
    """A venv rebuilt into an empty cache is counted against what the rebuild unpacked."""
    from devkit.usage import CacheInodes

    cache = tmp_path / "cache"
    inodes = CacheInodes(cache)
    assert inodes.inodes_for(["tinyshared-1.0.dist-info"]) == frozenset()  # empty cache
    archive = cache / "archive-v0" / "abc"
    (archive / "tinyshared-1.0.dist-info").mkdir(parents=True)
    (archive / "tinyshared").mkdir()
    data = archive / "tinyshared" / "data.py"
    data.write_text("x")
    st = data.stat()
    assert (st.st_dev, st.st_ino) in inodes.inodes_for(["tinyshared-1.0.dist-info"])


def test_a_lock_needing_an_sdist_build_is_synced_not_failed(tmp_path: Path, devkit,
                                                             monkeypatch) -> None:
    """The up-to-date check never builds (``--no-build``): a lock that now needs a package only
    an sdist provides makes that check fail, which means "not current", and the real sync
    builds it as plain ``uv sync`` does."""
    wheels = [build_wheel(tmp_path / "wheels", "tinyshared", "1.0"), sdist_only(tmp_path / "wheels")]
    monkeypatch.setenv("UV_DEFAULT_INDEX", write_simple_index(tmp_path / "simple", wheels))
    project = locked_project(tmp_path / "p", "built", ["tinyshared"])
    assert devkit("projects", "add", project)[0] == 0
    code, doc = _doc(devkit, project)
    assert code == 0 and doc["workspaces"][0]["status"] == "synced", doc["workspaces"]
    assert run_uv(project, "add", "-q", "--no-sync", "tinysdist").returncode == 0

    env = Store().subprocess_env()
    with pytest.raises(uv.UvError, match=r"without building tinysdist==1\.0 \(no wheel"):
        uv.sync_check(project, env=env)  # doctor's check: it never builds, so it cannot tell
    assert uv.sync_check(project, env=env, build=True) == (False, ["+ tinysdist==1.0"])
    code, doc = _doc(devkit, project)
    assert code == 0 and doc["workspaces"][0]["status"] == "synced", doc["workspaces"]
    assert list((project / ".venv").glob("lib/python*/site-packages/tinysdist-1.0.dist-info"))
    code, doc = _doc(devkit, project)
    assert code == 0 and doc["workspaces"][0]["status"] == "current", doc["workspaces"]
    with pytest.raises(uv.UvError, match="without building"):
        uv.sync_check(project, env=env)  # even with the package installed (uv 0.13.9)
    assert uv.sync_check(project, env=env, build=True) == (True, [])
