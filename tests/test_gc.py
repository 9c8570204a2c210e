"""``devkit gc``: real uv against the local index; what locks need stays, the rest goes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers import locked_project, run_uv

from devkit import uv
from devkit.store import Store


def _tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file (symlinks by their target)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            out[rel] = ("-> " + os.readlink(path)) if path.is_symlink() else \
                hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _packages(tree: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tree.items() if k.startswith(("wheels-", "archive-", "simple-"))}


def _dist_infos(cache: Path, dist: str) -> list[Path]:
    return sorted(cache.glob(f"archive-v0/*/{dist}.dist-info"))


def _fresh_sync(project: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = {**Store().subprocess_env(), "UV_PROJECT_ENVIRONMENT": str(target)}
    return subprocess.run([uv.find_uv(), "sync", "--locked", "--offline"], cwd=project, env=env,
                          capture_output=True, text=True, check=False)


@pytest.fixture
def projects(tmp_path: Path, devkit):
    """a (tinyshared 1.0) and b (tinyshared 2.0) registered; x (tinyshared 1.1 + tinyother 2.0)
    synced into the same cache, then unregistered: its versions are what gc should remove."""
    root = tmp_path / "p"
    a = locked_project(root, "a", ["tinyshared"], "tinyshared==1.0")
    b = locked_project(root, "b", ["tinyshared"])
    x = locked_project(root, "x", ["tinyshared", "tinyother"], "tinyshared==1.1")
    assert devkit("projects", "add", a, b, x)[0] == 0
    code, out, err = devkit("sync", "--all", "--jobs", "1")
    assert code == 0, (out, err)
    assert devkit("projects", "remove", x)[0] == 0
    return a, b, x


def test_gc_keeps_exactly_what_locks_need(projects, store: Store, devkit, tmp_path: Path,
                                          local_index) -> None:
    a, b, x = projects
    cache = store.uv_cache_dir
    assert _dist_infos(cache, "tinyshared-1.1") and _dist_infos(cache, "tinyother-2.0")
    venvs = {p: _tree(p / ".venv") for p in (a, b, x)}

    code, out, err = devkit("gc", "--dry-run", "--json")
    assert code == 0, err
    before = _tree(cache)
    plan = json.loads(out)
    assert [(v["name"], v["version"]) for v in plan["versions"]] == [("tinyshared", "1.1")]
    assert plan["names"] == ["tinyother"]
    # x's venv still links tinyshared 1.1 and tinyother: their bytes are not freed
    assert plan["linked_bytes"] >= 20_000
    assert _tree(cache) == before  # dry run: nothing changed

    code, out, err = devkit("gc")
    assert code == 0, err
    assert "freed" in out
    assert _dist_infos(cache, "tinyshared-1.0") and _dist_infos(cache, "tinyshared-2.0")
    assert not _dist_infos(cache, "tinyshared-1.1")
    assert not _dist_infos(cache, "tinyother-2.0")
    for project, tree in venvs.items():  # no venv lost (or changed) a file
        assert _tree(project / ".venv") == tree, project
    code, out, err = devkit("gc", "--json")  # a second run finds nothing
    assert code == 0, err
    doc = json.loads(out)
    assert doc["versions"] == [] and doc["names"] == []

    # each registered project still builds a fresh venv offline, from the cache alone: the
    # local index (a file:// index, which --offline still reads) is moved away meanwhile
    aside = local_index.root.with_name("simple-away")
    local_index.root.rename(aside)
    try:
        for project in (a, b):
            proc = _fresh_sync(project, tmp_path / f"fresh-{project.name}")
            assert proc.returncode == 0, proc.stderr
        assert _fresh_sync(x, tmp_path / "fresh-x").returncode != 0  # x's versions are gone
    finally:
        aside.rename(local_index.root)



def test_build_requirements_are_kept(tmp_path: Path, devkit, store: Store) -> None:
    root = tmp_path / "p"
    used = locked_project(root, "used", ["tinyshared", "tinyother"])
    assert devkit("projects", "add", used)[0] == 0
    assert devkit("sync", "--all")[0] == 0
    # a package built by a backend that needs tinyother; static metadata: uv locks it unbuilt
    built = root / "built"
    built.mkdir()
    (built / "pyproject.toml").write_text(
        '[project]\nname = "built"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinyshared"]\n\n[build-system]\nrequires = ["tinyother>=1"]\n'
        'build-backend = "tinyother.backend"\n')
    assert run_uv(built, "lock").returncode == 0
    assert 'editable = "."' in (built / "uv.lock").read_text()
    assert devkit("projects", "remove", used)[0] == 0
    assert devkit("projects", "add", built)[0] == 0
    code, out, err = devkit("gc", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert "tinyother" in plan["build_requirements"]
    assert "tinyother" not in plan["names"]
    assert all(v["name"] != "tinyother" for v in plan["versions"])


def test_unknown_cache_layout_is_refused(projects, store: Store, devkit) -> None:
    cache = store.uv_cache_dir
    (cache / "wheels-v99").mkdir()
    before = _tree(cache)
    code, _out, err = devkit("gc")
    assert code == 1
    assert "unknown uv cache layout" in err and "wheels-v99" in err
    assert len(err.strip().splitlines()) == 1
    assert _tree(cache) == before


def test_unreadable_lock_stops_gc(projects, store: Store, devkit) -> None:
    a, _b, _x = projects
    (a / "uv.lock").write_text("version = 1\n[[package]]\nname = 5\n")
    before = _tree(store.uv_cache_dir)
    code, _out, err = devkit("gc")
    assert code == 1
    assert "cannot tell what" in err and str(a) in err
    assert len(err.strip().splitlines()) == 1
    assert _tree(store.uv_cache_dir) == before


def test_gc_without_registered_projects_keeps_everything(projects, store: Store, devkit) -> None:
    a, b, _x = projects
    assert devkit("projects", "remove", a, b)[0] == 0
    before = _tree(store.uv_cache_dir)
    code, _out, err = devkit("gc")
    assert code == 1 and "no registered projects" in err
    assert _tree(store.uv_cache_dir) == before


def _lock_held(lock_file: Path) -> bool:
    import fcntl

    with open(lock_file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def test_gc_waits_for_a_busy_cache_then_says_who(projects, store: Store, devkit,
                                                  monkeypatch) -> None:
    a, _b, _x = projects
    cache = store.uv_cache_dir
    # `uv run` holds the cache lock for as long as its child lives (uv 0.8.20+)
    runner = subprocess.Popen(
        [uv.find_uv(), "run", "--offline", "--frozen", "python", "-c",
         "import time; time.sleep(60)"],
        cwd=a, env=Store().subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if _lock_held(cache / ".lock"):
                break
            time.sleep(0.05)
        assert _lock_held(cache / ".lock")
        before = _tree(cache)
        monkeypatch.setenv("UV_LOCK_TIMEOUT", "1")
        code, _out, err = devkit("gc")
        assert code == 1
        assert "cache in use by" in err and "uv" in err, err
        assert _packages(_tree(cache)) == _packages(before)  # `uv run` itself writes elsewhere
    finally:
        runner.kill()
        runner.wait()
    assert devkit("gc")[0] == 0  # once it is gone, gc runs


def test_gc_usage(devkit) -> None:
    code, out, _err = devkit("gc", "--help")
    assert code == 0 and "--dry-run" in out


def test_align_store_and_doctor_report_what_gc_frees(projects, store: Store, devkit) -> None:
    import shutil

    from devkit.align import manifest

    _a, _b, x = projects
    shutil.rmtree(x / ".venv")  # nothing links tinyshared 1.1 / tinyother any more: all freed
    code, out, err = devkit("align", "--json")
    assert code == 0, err
    figure = json.loads(out)["gc"]
    # align moved a to tinyshared 2.0: 1.0 goes too, but a's venv still links it until re-synced
    assert figure["reclaimable_bytes"] >= 20_000 and figure["linked_bytes"] >= 20_000
    recorded = manifest.gc_figure(store)
    assert recorded is not None and recorded["reclaimable_bytes"] == figure["reclaimable_bytes"]
    assert recorded["by"] == "align"
    code, out, err = devkit("align")
    assert "`devkit gc` would free" in out

    code, out, err = devkit("doctor", "--json")
    check = next(c for c in json.loads(out)["checks"] if c["id"] == "store.gc")
    assert check["status"] == "ok" and "would free" in check["message"]

    code, out, err = devkit("store", "--json")
    before = json.loads(out)
    assert before["gc"]["reclaimable_bytes"] == figure["reclaimable_bytes"]
    assert before["saving_vs_uv_bytes"] < 0  # the cache holds versions no lock uses
    assert devkit("gc")[0] == 0
    after = json.loads(devkit("store", "--json")[1])
    assert after["gc"]["reclaimable_bytes"] == 0
    assert after["saving_vs_uv_bytes"] - before["saving_vs_uv_bytes"] >= 20_000
    assert manifest.gc_figure(store)["by"] == "gc"


def test_unused_managed_pythons_are_uninstalled(projects, store: Store, devkit,
                                                monkeypatch, tmp_path: Path) -> None:
    a, _b, _x = projects
    root = store.python_install_dir
    keys = {v: f"cpython-{v}-linux-x86_64-gnu" for v in ("3.12.99", "3.13.98", "3.11.97")}
    for key in keys.values():  # uv cannot download Pythons here: installs laid out as uv does
        (root / key / "bin").mkdir(parents=True)
        (root / key / "bin" / "python3").write_text("")
    (root / "cpython-3.11-linux-x86_64-gnu").symlink_to(root / keys["3.11.97"])  # minor alias
    (a / ".python-version").write_text("3.13\n")  # a pins 3.13: 3.13.98 stays
    tools = tmp_path / "tools"  # a uv tool env using 3.11.97 through the minor alias
    (tools / "sometool").mkdir(parents=True)
    (tools / "sometool" / "pyvenv.cfg").write_text(
        f"home = {root / 'cpython-3.11-linux-x86_64-gnu' / 'bin'}\nversion_info = 3.11.97\n")
    monkeypatch.setenv("UV_TOOL_DIR", str(tools))
    code, out, err = devkit("gc", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert [p["key"] for p in plan["pythons"]] == [keys["3.12.99"]]
    assert set(plan["kept_pythons"]) == {keys["3.13.98"], keys["3.11.97"]}
    assert "pins 3.13" in plan["kept_pythons"][keys["3.13.98"]]
    assert "sometool" in plan["kept_pythons"][keys["3.11.97"]]
    assert (root / keys["3.12.99"]).is_dir()  # dry run
    code, out, err = devkit("gc")
    assert code == 0, err
    assert not (root / keys["3.12.99"]).exists()
    assert (root / keys["3.13.98"]).is_dir() and (root / keys["3.11.97"]).is_dir()
