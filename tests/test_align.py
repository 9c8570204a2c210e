"""``devkit align`` end to end: real uv against the local index of tiny wheels, no mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import build_wheel, write_simple_index

from devkit import uv
from devkit.align import engine, lockfile
from devkit.store import Store


def _uv(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([uv.find_uv(), *args], cwd=path, env=Store().subprocess_env(),
                          capture_output=True, text=True, check=False)


def _project(root: Path, name: str, deps: list[str], pin: str | None = None) -> Path:
    """A plain uv project (no template: fast), locked, optionally steered to ``pin``."""
    path = root / name
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {json.dumps(deps)}\n")
    args = ["lock"] + (["-P", pin] if pin else [])
    proc = _uv(path, *args)
    assert proc.returncode == 0, proc.stderr
    return path


def _register(devkit, *paths: Path) -> None:
    code, out, err = devkit("projects", "add", *paths)
    assert code == 0, (out, err)


def _version(path: Path, name: str) -> set[str]:
    return lockfile.read(path / "uv.lock").versions(name)


def _check_passes(path: Path) -> bool:
    return _uv(path, "lock", "--check").returncode == 0


def test_generated_workspaces_align_and_one_is_blocked(make_workspace, devkit) -> None:
    low = make_workspace("low", deps=("tinyshared<1.1",), sync=False)
    mid = make_workspace("mid", deps=("tinyshared>=1",), sync=False)
    assert _uv(mid, "lock", "-P", "tinyshared==1.1").returncode == 0
    top = make_workspace("top", deps=("tinyshared",), sync=False)
    assert _version(mid, "tinyshared") == {"1.1"} and _version(top, "tinyshared") == {"2.0"}

    code, out, _ = devkit("align", "--check")
    assert code == 1, out

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert _version(low, "tinyshared") == {"1.0"}
    assert _version(mid, "tinyshared") == {"2.0"}
    assert _version(top, "tinyshared") == {"2.0"}
    assert doc["before"]["spread"]["tinyshared"] == ["1.0", "1.1", "2.0"]
    assert doc["after"]["spread"]["tinyshared"] == ["1.0", "2.0"]
    assert doc["after"]["distinct_pairs"] == doc["before"]["distinct_pairs"] - 1
    [blocked] = doc["blocked"]
    assert blocked["project"] == "low" and blocked["name"] == "tinyshared"
    assert "project low requires tinyshared<1.1" in blocked["reason"]
    assert all(_check_passes(p) for p in (low, mid, top))
    manifest = json.loads(Store().manifest_file.read_text())
    assert manifest["version"] == 1 and manifest["targets"][0]["version"] == "2.0"

    before = {p: (p / "uv.lock").read_bytes() for p in (low, mid, top)}
    code, out, _ = devkit("align", "--check")
    assert code == 0, out
    code, out, _ = devkit("align")
    assert code == 0, out
    assert before == {p: (p / "uv.lock").read_bytes() for p in (low, mid, top)}


@pytest.fixture
def dep_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An index where ``tinydep`` 1.0 needs ``tinyshared<1.1``: a conflict only uv can see."""
    wheels = tmp_path / "dep-wheels"
    built = [build_wheel(wheels, "tinyshared", v) for v in ("1.0", "1.1", "2.0")]
    built += [build_wheel(wheels, "tinyother", v) for v in ("1.0", "2.0")]
    built.append(build_wheel(wheels, "tinydep", "1.0", requires=("tinyshared<1.1",)))
    url = write_simple_index(tmp_path / "dep-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


def test_transitive_conflict_falls_back_and_reports_uv_reason(tmp_path, devkit, dep_index) -> None:
    root = tmp_path / "p"
    held = _project(root, "held", ["tinydep", "tinyshared", "tinyother"], pin="tinyother==1.0")
    mid = _project(root, "mid", ["tinyshared"], pin="tinyshared==1.1")
    top = _project(root, "top", ["tinyshared", "tinyother"])
    _register(devkit, held, mid, top)

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert _version(held, "tinyshared") == {"1.0"}  # tinydep 1.0 needs tinyshared<1.1
    assert _version(held, "tinyother") == {"2.0"}  # the other pin of the set still landed
    assert _version(mid, "tinyshared") == {"2.0"}
    [blocked] = [b for b in doc["blocked"] if b["project"] == "held"]
    assert blocked["kind"] == "conflict" and "tinydep" in blocked["reason"]
    assert all(_check_passes(p) for p in (held, mid, top))

    # the next run remembers what uv refused while the files are unchanged, and that uv said
    # "locked" after the run (the verified-state memo): no uv run at all
    code, out, _ = devkit("align", "--check", "--json")
    again = json.loads(out)
    assert code == 0 and not again["changed"]
    assert {p["name"]: p["uv_runs"] for p in again["projects"]} == {"held": 0, "mid": 0, "top": 0}
    assert [b["reason"] for b in again["blocked"]] == [blocked["reason"]]


def test_next_best_version_when_target_is_out_of_reach(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    low = _project(root, "low", ["tinyshared<2"], pin="tinyshared==1.0")
    mid = _project(root, "mid", ["tinyshared"], pin="tinyshared==1.1")
    top = _project(root, "top", ["tinyshared"])
    _register(devkit, low, mid, top)
    code, out, _ = devkit("align")
    assert code == 0, out
    assert _version(low, "tinyshared") == {"1.1"}
    assert {*_version(mid, "tinyshared"), *_version(top, "tinyshared")} == {"2.0"}
    assert "project low requires tinyshared<2" in out


def test_dry_run_writes_nothing_and_predicts(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", ["tinyshared"], pin="tinyshared==1.0")
    b = _project(root, "b", ["tinyshared"])
    _register(devkit, a, b)
    before = (a / "uv.lock").read_bytes()
    code, out, _ = devkit("align", "--dry-run", "--json")
    assert code == 0
    doc = json.loads(out)
    assert (a / "uv.lock").read_bytes() == before
    assert not Store().manifest_file.exists()
    [change] = next(p for p in doc["projects"] if p["name"] == "a")["changes"]
    assert change == {"name": "tinyshared", "before": ["1.0"], "after": ["2.0"]}
    assert doc["after"]["excess_pairs"] == 0 and doc["changed"] is True


def test_malformed_lock_is_reported_and_the_rest_proceed(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", ["tinyshared"], pin="tinyshared==1.0")
    b = _project(root, "b", ["tinyshared"])
    bad = _project(root, "bad", ["tinyshared"], pin="tinyshared==1.1")
    (bad / "uv.lock").write_text("version = 1\n[[package]\nname = broken\n")
    _register(devkit, a, b, bad)
    code, out, _ = devkit("align")
    assert code == 1
    assert "[bad] skipped:" in out and "not a readable uv.lock" in out
    assert _version(a, "tinyshared") == {"2.0"}
    assert (bad / "uv.lock").read_text().startswith("version = 1\n[[package]\n")


def test_unreachable_index_fails_one_project_only(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", ["tinyshared"], pin="tinyshared==1.0")
    b = _project(root, "b", ["tinyshared"])
    gone = _project(root, "gone", ["tinyshared"], pin="tinyshared==1.1")
    with (gone / "pyproject.toml").open("a") as fh:
        fh.write('\n[[tool.uv.index]]\nname = "gone"\nurl = "file:///nonexistent/simple"\n'
                 'explicit = true\n[tool.uv.sources]\ntinyshared = { index = "gone" }\n')
    lock_before = (gone / "uv.lock").read_bytes()
    _register(devkit, a, b, gone)
    code, out, _ = devkit("align", "--json")
    doc = json.loads(out)
    assert code == 1, json.dumps(doc["projects"], indent=1)
    failed = {f["path"] for f in doc["failed"]}
    assert failed == {str(gone)}
    assert (gone / "uv.lock").read_bytes() == lock_before
    assert _version(a, "tinyshared") == {"2.0"}


def test_stale_lock_is_reported_and_relocked(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", ["tinyshared"], pin="tinyshared==1.0")
    b = _project(root, "b", ["tinyshared"])
    text = (a / "pyproject.toml").read_text().replace('["tinyshared"]', '["tinyshared", "tinyother"]')
    (a / "pyproject.toml").write_text(text)
    _register(devkit, a, b)
    code, out, _ = devkit("align", "--json")
    assert code == 0, out
    project = next(p for p in json.loads(out)["projects"] if p["name"] == "a")
    assert project["stale"] is True and project["status"] == "aligned"
    assert _check_passes(a) and _version(a, "tinyshared") == {"2.0"}


def test_sync_resyncs_changed_projects(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", ["tinyshared"], pin="tinyshared==1.0")
    b = _project(root, "b", ["tinyshared"])
    assert devkit("sync", a)[0] == 0  # a .venv devkit made: align checks and syncs only those
    _register(devkit, a, b)
    code, out, _ = devkit("align", "--sync")
    assert code == 0, out
    init = a / ".venv/lib/python3.11/site-packages/tinyshared/__init__.py"
    assert '"2.0"' in init.read_text()


def test_stale_venvs_are_listed_then_all_synced(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", ["tinyshared"], pin="tinyshared==1.0")
    b = _project(root, "b", ["tinyshared"])
    c = _project(root, "c", ["tinyother"])  # its lock never changes here
    for path in (a, c):  # venvs devkit made: align checks and syncs only those
        assert devkit("sync", path)[0] == 0
    python = str(c / ".venv/bin/python")
    assert _uv(c, "pip", "install", "-q", "--python", python, "tinyother==1.0").returncode == 0
    _register(devkit, a, b, c)

    code, out, _ = devkit("align", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert {v["name"] for v in doc["stale_venvs"]} == {"a", "c"}  # b has no .venv
    assert doc["sync_command"] == f"devkit sync {a} {c}"

    code, out, _ = devkit("align", "--sync", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["stale_venvs"] == [] and doc["sync_command"] == ""
    site = "lib/python3.11/site-packages"
    assert '"2.0"' in (a / ".venv" / site / "tinyshared/__init__.py").read_text()
    assert '"2.0"' in (c / ".venv" / site / "tinyother/__init__.py").read_text()


def test_new_project_is_born_aligned(tmp_path, devkit, store) -> None:
    root = tmp_path / "p"
    old = _project(root, "old", ["tinyshared"], pin="tinyshared==1.1")
    _register(devkit, old)
    fresh = _project(root, "fresh", ["tinyshared", "tinyother"])
    assert _version(fresh, "tinyshared") == {"2.0"}
    engine.align_new_project(fresh, store=store)
    assert _version(fresh, "tinyshared") == {"1.1"}
    assert _check_passes(fresh)


def test_new_project_conflict_just_skips_the_pin(tmp_path, devkit, store) -> None:
    root = tmp_path / "p"
    old = _project(root, "old", ["tinyshared"], pin="tinyshared==1.0")
    _register(devkit, old)
    fresh = _project(root, "fresh", ["tinyshared>=1.1"])
    before = (fresh / "uv.lock").read_bytes()
    engine.align_new_project(fresh, store=store)
    assert (fresh / "uv.lock").read_bytes() == before


def _slow_uv(tmp_path: Path) -> tuple[Path, Path]:
    """A uv wrapper: every pinned ``uv lock`` (``--upgrade-package``) writes ``start.<pid>`` into
    the returned marker directory, runs real uv slowly, then writes ``done.<pid>``."""
    markers = tmp_path / "markers"
    markers.mkdir()
    script = tmp_path / "slow-uv"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" --upgrade-package "*)\n'
        f'  touch "{markers}/start.$$"; sleep 0.5; "{uv.find_uv()}" "$@"; rc=$?\n'
        f'  touch "{markers}/done.$$"; exit $rc;;\n'
        "esac\n"
        f'exec "{uv.find_uv()}" "$@"\n')
    script.chmod(0o755)
    return script, markers


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` (a marker file appearing), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _spawn_align(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    script, markers = _slow_uv(tmp_path)
    env = {**os.environ, "DEVKIT_UV": str(script)}
    proc = subprocess.Popen([sys.executable, "-m", "devkit", "align", "--jobs", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # past the checks, inside the pinned `uv lock` runs
    _wait_for(lambda: any(markers.glob("start.*")), "a pinned uv lock to start")
    return proc, markers


def _kill_setup(tmp_path: Path, devkit) -> tuple[list[Path], dict[Path, bytes]]:
    root = tmp_path / "p"
    projects = [_project(root, f"p{i}", ["tinyshared", "tinyother"], pin=pin)
                for i, pin in enumerate(["tinyshared==1.0", "tinyshared==1.1", "tinyother==1.0",
                                         None])]
    _register(devkit, *projects)
    return projects, {p: (p / "uv.lock").read_bytes() for p in projects}


def test_sigterm_mid_run_restores_every_lock(tmp_path, devkit) -> None:
    projects, before = _kill_setup(tmp_path, devkit)
    proc, _ = _spawn_align(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert {p: (p / "uv.lock").read_bytes() for p in projects} == before
    assert not list(Store().align_backup_dir.glob("*.json"))


def test_sigkill_mid_run_leaves_old_or_new_locks(tmp_path, devkit) -> None:
    projects, _before = _kill_setup(tmp_path, devkit)
    proc, markers = _spawn_align(tmp_path)
    proc.kill()
    proc.wait(timeout=30)

    def settled() -> bool:  # every orphaned uv child has written its lock (atomically)
        started = {m.name.split(".")[1] for m in markers.glob("start.*")}
        return started <= {m.name.split(".")[1] for m in markers.glob("done.*")}

    _wait_for(settled, "the orphaned uv runs to finish")
    assert list(Store().align_backup_dir.glob("*.json"))  # the killed run left its backups
    for path in projects:
        lockfile.read(path / "uv.lock")
        assert _check_passes(path)
    # the next run finds the backups of the killed one and settles everything
    code, out, _ = devkit("align")
    assert code == 0, out
    assert "interrupted" in out
    assert all(_version(p, "tinyshared") == {"2.0"} for p in projects)
    assert not list(Store().align_backup_dir.glob("*.json"))


def test_recovery_after_a_kill_does_not_recreate_a_deleted_project(tmp_path, devkit) -> None:
    import shutil

    projects, _before = _kill_setup(tmp_path, devkit)
    proc, markers = _spawn_align(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    _wait_for(lambda: {m.name.split(".")[1] for m in markers.glob("start.*")}
              <= {m.name.split(".")[1] for m in markers.glob("done.*")}, "uv runs to finish")
    backed_up = [json.loads(f.read_text())["path"] for f in Store().align_backup_dir.glob("*.json")]
    assert backed_up
    gone = Path(backed_up[0]).parent
    shutil.rmtree(gone)
    (Store().align_backup_dir / ".leftover.json.abc.tmp").write_text("torn")
    code, out, _ = devkit("align", *[str(p) for p in projects if p != gone])
    assert code == 0, out
    assert not gone.exists()
    assert "is gone" in out
    assert list(Store().align_backup_dir.iterdir()) == []


def test_exclude_newer_options_are_read_like_uv_records_them(tmp_path: Path) -> None:
    import datetime as dt

    now = dt.datetime(2026, 8, 22, tzinfo=dt.UTC)
    text = ('version = 1\nrequires-python = ">=3.11"\n[options]\n'
            'exclude-newer = "0001-01-01T00:00:00Z"\nexclude-newer-span = "P3W"\n'
            '[options.exclude-newer-package]\nDjango = "2026-08-04T15:05:00Z"\n')
    lock = lockfile.parse(text.encode(), tmp_path / "uv.lock", now=now)
    assert lock.exclude_newer == now - dt.timedelta(weeks=3)
    assert lock.exclude_newer_package == (("django", dt.datetime(2026, 8, 4, 15, 5, tzinfo=dt.UTC)),)
    fixed = 'version = 1\n[options]\nexclude-newer = "2024-06-02T00:00:00Z"\n'
    assert lockfile.parse(fixed.encode(), tmp_path / "uv.lock", now=now).exclude_newer == \
        dt.datetime(2024, 6, 2, tzinfo=dt.UTC)


def test_conflict_reason_names_the_project() -> None:
    output = ("error: No solution found when resolving dependencies\n  cause: Because your project "
              "depends on tinyshared<1.1 and tinyshared==2.0, we can conclude that your project's "
              "requirements are unsatisfiable.\n")
    assert uv.conflict_reason(output, "low") == (
        "Because project low depends on tinyshared<1.1 and tinyshared==2.0, we can conclude "
        "that project low's requirements are unsatisfiable.")


def test_second_concurrent_run_is_refused(make_workspace, devkit) -> None:
    make_workspace("solo", deps=("tinyshared",))
    with Store().mutex("align", timeout=1):
        code, _, err = devkit("align")
        assert code == 1 and "another `devkit align` is running" in err
        code, _, err = devkit("align", "--dry-run")  # read-only runs need no lock
        assert code == 0, err
