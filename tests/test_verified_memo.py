"""The memo of verified states: no uv run for a project nothing changed in, uv again otherwise.

uv is a ``DEVKIT_UV`` wrapper (also first on PATH, for the doctor) that logs every invocation and
can claim another version; everything else is the real uv against the local index.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import uv
from devkit.store import Store


class UvLog:
    """The wrapper's log and version switch."""

    def __init__(self, root: Path) -> None:
        self.log = root / "uv-calls.txt"
        self.version_file = root / "uv-version.txt"

    def calls(self, *words: str) -> list[str]:
        """Logged invocations containing every one of ``words``, then the log is cleared."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.write_text("")
        return [ln for ln in lines if all(w in ln.split() for w in words)]

    def claim_version(self, version: str) -> None:
        """Make ``uv --version`` print ``version`` from now on, as an upgrade would: the binary
        is another file (its identity changes: devkit asks it again)."""
        self.version_file.write_text(f"uv {version}\n")
        script = self.version_file.parent / "uv-wrapper" / "uv"
        script.write_text(script.read_text() + "# upgraded\n")
        uv._version_of.cache_clear()


@pytest.fixture
def uv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UvLog]:
    real = uv.find_uv()
    bindir = tmp_path / "uv-wrapper"
    bindir.mkdir()
    log = UvLog(tmp_path)
    script = bindir / "uv"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log.log}"\n'
        f'if [ "$1" = --version ] && [ -f "{log.version_file}" ]; then '
        f'cat "{log.version_file}"; exit 0; fi\n'
        f'exec "{real}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("DEVKIT_UV", str(script))
    monkeypatch.setenv("PATH", os.pathsep.join([str(bindir), os.environ["PATH"]]))
    uv.find_uv.cache_clear()
    uv._version_of.cache_clear()
    yield log
    uv.find_uv.cache_clear()
    uv._version_of.cache_clear()


def _warm(devkit, uv_log: UvLog) -> None:
    """One run of align --dry-run and sync --all: uv says "locked" and "current"."""
    code, out, err = devkit("align", "--dry-run")
    assert code == 0, (out, err)
    code, out, err = devkit("sync", "--all")
    assert code == 0, (out, err)
    uv_log.calls()


def _unchanged_runs_no_uv(devkit, uv_log: UvLog) -> None:
    code, out, err = devkit("align", "--dry-run")
    assert code == 0, (out, err)
    code, out, err = devkit("sync", "--all")
    assert code == 0, (out, err)
    assert "current" in out
    assert uv_log.calls("--check") == []


def test_unchanged_projects_run_no_uv(make_workspace, devkit, uv_log: UvLog, store: Store) -> None:
    make_workspace("a", deps=("tinyshared>=1",))
    make_workspace("b", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    _unchanged_runs_no_uv(devkit, uv_log)
    code, _, _ = devkit("align", "--check")
    assert code == 0
    assert uv_log.calls("--check") == []
    memo = store.verified_file
    assert stat.S_IMODE(memo.stat().st_mode) == 0o600
    entries = json.loads(memo.read_text())["entries"]
    verdicts = [slot for slot in entries if slot.split()[0] in ("lock", "sync")]
    assert len(verdicts) == 4  # lock and sync, per project


def test_changed_lock_runs_uv_again(make_workspace, devkit, uv_log: UvLog) -> None:
    ws = make_workspace("a", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    _unchanged_runs_no_uv(devkit, uv_log)
    # a project edit that makes the lock stale: uv must be asked, and says so
    pyproject = ws / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("dependencies = [", 'dependencies = [\n    "tinyother>=1",'))
    code, out, _ = devkit("align", "--check")
    assert uv_log.calls("lock", "--check"), "uv lock --check did not run on a changed project"
    assert code == 1, out  # the stale lock is reported, not hidden by the memo
    # uv.lock itself changes (uv writes it): both checks run again
    (ws / "pyproject.toml").write_text(pyproject.read_text().replace('    "tinyother>=1",\n', ""))
    lock = ws / "uv.lock"
    lock.write_bytes(lock.read_bytes() + b"\n")
    devkit("sync", "--all")
    assert uv_log.calls("sync", "--check"), "uv sync --check did not run on a changed uv.lock"
    devkit("align", "--dry-run")
    assert uv_log.calls("lock", "--check"), "uv lock --check did not run on a changed uv.lock"


def test_changed_venv_runs_uv_again(make_workspace, devkit, uv_log: UvLog) -> None:
    ws = make_workspace("a", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    _unchanged_runs_no_uv(devkit, uv_log)
    site = next((ws / ".venv").glob("lib/python*/site-packages"))
    shutil.rmtree(next(site.glob("tinyshared-*.dist-info")))  # a package half-removed by hand
    code, out, err = devkit("sync", "--all", "--json")
    assert code == 0, (out, err)
    assert uv_log.calls("sync", "--check"), "uv sync --check did not run on a changed venv"
    assert json.loads(out)["workspaces"][0]["status"] == "synced"
    # uv synced it; once uv says "current" again, the next run is free again
    devkit("sync", "--all")
    uv_log.calls()
    _unchanged_runs_no_uv(devkit, uv_log)


def test_unchanged_venv_runs_no_git_and_is_not_walked_again(
        make_workspace, devkit, uv_log: UvLog, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit import git, usage

    ws = make_workspace("a", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    code, before, err = devkit("sync", "--all", "--json")
    assert code == 0, (before, err)
    spied: list[str] = []
    real_tracked, real_census = git.tracked, usage.link_census

    def tracked(path: Path, pathspec: str) -> list[str]:
        spied.append("git ls-files")
        return real_tracked(path, pathspec)

    def census(venv: Path, cache: usage.CacheInodes) -> usage.LinkCensus:
        spied.append("census")
        return real_census(venv, cache)

    monkeypatch.setattr(git, "tracked", tracked)
    monkeypatch.setattr(usage, "link_census", census)
    code, out, err = devkit("sync", "--all", "--json")
    assert code == 0, (out, err)
    assert spied == [], "an unchanged workspace ran git or walked its venv again"
    code, _, err = devkit("align", "--dry-run")  # which opens its memo after the build checks
    assert code == 0, err
    assert spied == [], "align --dry-run asked git again about an unchanged workspace"
    assert uv_log.calls("--check") == []
    entry, old = json.loads(out)["workspaces"][0], json.loads(before)["workspaces"][0]
    assert entry["status"] == "current"
    assert (entry["files"], entry["linked_files"]) == (old["files"], old["linked_files"]) != (0, 0)
    # another command holds the workspace's mutex: sync waits for it, vouched or not
    from devkit import store as store_module

    monkeypatch.setattr(store_module, "WORKSPACE_WAIT", 0.5)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import pathlib, sys\nfrom devkit.store import Store\n"
         "with Store().workspace_mutex(pathlib.Path(sys.argv[1]), command='devkit update'):\n"
         "    print('held', flush=True); sys.stdin.read()"), str(ws)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out, err = devkit("sync", "--all")
        assert code == 1 and "is busy: `devkit update`" in out + err, (out, err)
    finally:
        holder.communicate("")
    assert spied == []
    # uv unpacks a wheel into the cache (or a prune removes one): the venv is counted again
    (store.uv_cache_dir / "archive-v0" / "new-archive").mkdir()
    devkit("sync", "--all")
    assert spied == ["census"], spied
    spied.clear()
    # .venv is added to git: git is asked again and the venv refused, memo or not
    subprocess.run(["git", "add", "-f", ".venv/pyvenv.cfg"], cwd=ws, check=True)
    code, out, err = devkit("sync", "--all")
    assert "git ls-files" in spied
    assert code == 1 and "tracked by git" in out, (out, err)


def test_new_uv_version_runs_uv_again(make_workspace, devkit, uv_log: UvLog) -> None:
    make_workspace("a", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    _unchanged_runs_no_uv(devkit, uv_log)
    uv_log.claim_version("99.0.0")
    code, out, err = devkit("align", "--dry-run")
    assert code == 0, (out, err)
    checks = uv_log.calls("--check")
    assert [c for c in checks if c.startswith("lock")], "a new uv version reused the old verdict"
    assert [c for c in checks if c.startswith("sync")], "a new uv version reused the old verdict"
    # what the new uv said is remembered for the new uv
    _unchanged_runs_no_uv(devkit, uv_log)


def test_unreadable_memo_is_ignored(make_workspace, devkit, uv_log: UvLog, store: Store) -> None:
    make_workspace("a", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    store.verified_file.write_text("{not json")
    code, out, err = devkit("align", "--dry-run")
    assert code == 0, (out, err)
    assert uv_log.calls("lock", "--check")
    assert json.loads(store.verified_file.read_text())["version"] == 1  # rewritten whole


def test_doctor_reuses_verdicts_until_a_file_changes(make_workspace, devkit, uv_log: UvLog) -> None:
    ws = make_workspace("a", deps=("tinyshared>=1",))
    uv_log.calls()
    code, out, err = devkit("doctor", ws)
    assert "uv.lock matches pyproject.toml" in out and ".venv holds exactly" in out, (out, err)
    assert len(uv_log.calls("--check")) == 2  # uv lock --check and uv sync --check, once each
    code, out, err = devkit("doctor", ws)
    assert "uv.lock matches pyproject.toml" in out and ".venv holds exactly" in out, (out, err)
    assert uv_log.calls("--check") == []
    # the doctor and align share the verdicts (same uv, same variables)
    code, out, err = devkit("align", "--dry-run")
    assert code == 0, (out, err)
    assert uv_log.calls("--check") == []
    lock = ws / "uv.lock"
    lock.write_bytes(lock.read_bytes() + b"\n")
    devkit("doctor", ws)
    checks = uv_log.calls("--check")
    assert [c for c in checks if c.startswith("lock")] and [c for c in checks if c.startswith("sync")]


def test_malformed_entries_are_ignored_one_by_one_and_forget_wins(tmp_path: Path,
                                                                   store: Store) -> None:
    """Entries are checked as they are used: a malformed one (not a dict, no ``uv``, a slot
    without a path) neither hides the valid ones nor breaks a save; a forgotten verdict is gone
    although the file still holds it."""
    from devkit.verified import Verified

    store.ensure()
    project = tmp_path / "proj"
    project.mkdir()
    (project / "uv.lock").write_text("version = 1\n")
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\nversion = '0'\n")
    memo = Verified(store, uv_version="1.0.0", env={})
    key = memo.key("lock", project)
    assert key is not None
    store.verified_file.write_text(json.dumps({"version": 1, "entries": {
        f"lock {project.absolute()}": {"key": key, "uv": "1.0.0"},
        f"sync {project.absolute()}": ["not", "a", "dict"],
        f"git {project.absolute()}": {"key": "k"},
        "no-path-here": {"key": "k", "uv": "1.0.0"},
    }}))
    memo = Verified(store, uv_version="1.0.0", env={})
    assert memo.known("lock", project, key)
    assert not memo.known("sync", project, key)
    memo.forget("lock", project)
    assert not memo.known("lock", project, key)
    memo.remember("lock", project, key)
    memo.save()
    kept = json.loads(store.verified_file.read_text())["entries"]
    assert kept == {f"lock {project.absolute()}": {"key": key, "uv": "1.0.0"}}


def test_uv_version_is_asked_once_per_binary(make_workspace, devkit, uv_log: UvLog,
                                             store: Store) -> None:
    """Commands read uv's version from the store's memo of ``--version`` outputs while uv's
    binary is the same file; an upgraded binary is asked again."""
    make_workspace("a", deps=("tinyshared>=1",))
    _warm(devkit, uv_log)
    for argv in (("align", "--dry-run"), ("sync", "--all")):
        uv._version_of.cache_clear()
        code, out, err = devkit(*argv)
        assert code == 0, (out, err)
        assert uv_log.calls("--version") == [], argv
    uv_log.claim_version("99.0.0")
    code, out, err = devkit("sync", "--all")
    assert code == 0, (out, err)
    assert len(uv_log.calls("--version")) == 1
    tools = json.loads(store.tool_versions_file.read_text())["tools"]
    assert any("uv 99.0.0" in entry["stdout"] for entry in tools.values())


def test_a_run_for_some_projects_parses_only_their_lines(tmp_path: Path, store: Store) -> None:
    """The saved memo is one JSON document with one entry per line; a memo opened for some
    projects (doctor: its workspace) reads their entries only, and a file of another layout
    (one line, as written by hand or by an older devkit) is still read whole."""
    from devkit.verified import Verified

    store.ensure()
    projects = []
    for name in ("p", "p2", "ünï \"q\""):
        project = tmp_path / name
        project.mkdir()
        (project / "uv.lock").write_text(f"version = 1\n# {name}\n")
        (project / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
        projects.append(project)
    memo = Verified(store, uv_version="1.0.0", env={})
    keys = [memo.key("lock", project) for project in projects]
    for project, key in zip(projects, keys, strict=True):
        memo.remember("lock", project, key)
    memo.save()
    text = store.verified_file.read_text()
    assert len(text.splitlines()) == 2 + len(projects)
    assert len(json.loads(text)["entries"]) == len(projects)
    for i, project in enumerate(projects):
        only = Verified(store, uv_version="1.0.0", env={}, projects=[project])
        assert [only.known("lock", p, k) for p, k in zip(projects, keys, strict=True)] == \
            [j == i for j in range(len(projects))]
    store.verified_file.write_text(json.dumps(json.loads(text)))  # one line
    only = Verified(store, uv_version="1.0.0", env={}, projects=[projects[0]])
    assert only.known("lock", projects[0], keys[0])
    Verified(store, uv_version="1.0.0", env={}).save()  # nothing pending: the file is unchanged
    lines = text.splitlines(keepends=True)
    lines[1] = lines[1].replace("}", "]")  # a broken entry line: the file is read whole, in vain
    store.verified_file.write_text("".join(lines))
    assert not Verified(store, uv_version="1.0.0", env={}, projects=[projects[0]]).known(
        "lock", projects[0], keys[0])
