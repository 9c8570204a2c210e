"""Data safety: nothing a user made is lost to a concurrent or interrupted devkit command.

Real copier, git and uv. Races are made deterministic by holding a workspace's mutex from another
process, or by changing the workspace between ``update``'s up-front check and its job.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import locked_project, locked_versions, run_uv

from devkit import store as store_module
from devkit import template
from devkit.commands import update as update_cmd
from devkit.store import Store


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


# A process holding one workspace's mutex, as another devkit command would. With a trigger, it
# waits until that workspace has uncommitted changes (the update reached it), then runs the action.
_HOLDER = """
import pathlib, subprocess, sys, time
from devkit.store import Store
path, command, trigger, action = sys.argv[1:5]
with Store().workspace_mutex(pathlib.Path(path), command=command):
    print("held", flush=True)
    if trigger:
        deadline = time.monotonic() + 300
        while not subprocess.run(["git", "status", "--porcelain"], cwd=trigger,
                                 capture_output=True, text=True).stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        exec(action)
    else:
        sys.stdin.read()
"""


@contextlib.contextmanager
def holding(path: Path, command: str = "devkit update", *, trigger: Path | None = None,
            action: str = "") -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), command,
                             str(trigger or ""), action], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.wait(timeout=600)


def _next_template(bundled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next devkit: a changed template and a version bump."""
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    monkeypatch.setattr(template, "__version__", "0.2.0")


@pytest.fixture
def two(devkit, tmp_path: Path, bundled: Path) -> tuple[Path, Path]:
    made = []
    for name in ("w1", "w2"):
        ws = tmp_path / name
        code, out, err = devkit("new", ws, "--defaults", "--no-sync")
        assert code == 0, (out, err)
        made.append(ws)
    return made[0], made[1]


def _edit(ws: Path) -> dict[str, str]:
    """A user's work in progress: an edited tracked file and a new untracked module."""
    (ws / "README.md").write_text("my unsaved README edit\n")
    (ws / "src").mkdir(exist_ok=True)
    (ws / "src" / "brand_new.py").write_text("VALUE = 1\n")
    return {"README.md": "my unsaved README edit\n", "src/brand_new.py": "VALUE = 1\n"}


def _kept(ws: Path, work: dict[str, str]) -> bool:
    return all((ws / name).is_file() and (ws / name).read_text() == text
               for name, text in work.items())


# -- case: update --all and an edit made while it runs --------------------------------------------
def test_edit_made_after_the_upfront_check_survives_the_update(two, store, bundled,
                                                               monkeypatch) -> None:
    _, w2 = two
    _next_template(bundled, monkeypatch)
    current = template.ensure_template_repo(store)
    job = update_cmd.plan(w2, "w2", store=store, current=current, vcs_ref=None, dry_run=False)
    assert isinstance(job, update_cmd.Job)  # clean when checked up front
    work = _edit(w2)  # ... then edited before its turn comes
    result = update_cmd.run_job(job)
    assert result.status == "skipped", result
    assert "uncommitted changes" in (result.reason or "")
    assert _kept(w2, work)


def test_update_all_waits_for_the_workspace_and_keeps_the_edit(two, devkit, bundled,
                                                               monkeypatch) -> None:
    w1, w2 = two
    _next_template(bundled, monkeypatch)
    action = ("p = pathlib.Path(path); (p / 'README.md').write_text('my unsaved README edit\\n'); "
              "(p / 'src').mkdir(exist_ok=True); "
              "(p / 'src' / 'brand_new.py').write_text('VALUE = 1\\n')")
    with holding(w2, trigger=w1, action=action):
        _, out, _ = devkit("update", "--all", "--jobs", "1", "--json")
    doc = {p["name"]: p for p in json.loads(out)["projects"]}
    assert doc["w1"]["status"] == "updated", doc
    assert doc["w2"]["status"] == "skipped", doc
    assert _kept(w2, {"README.md": "my unsaved README edit\n", "src/brand_new.py": "VALUE = 1\n"})
    # the undo of w1 reverts the files the update changed, and only them
    (w1 / "notes.txt").write_text("mine\n")
    subprocess.run(doc["w1"]["undo"], shell=True, check=True, capture_output=True)
    assert _git("status", "--porcelain", cwd=w1) == "?? notes.txt\n"


def test_failed_update_restores_only_what_copier_changed(two, store, bundled,
                                                         monkeypatch) -> None:
    w1, _ = two
    _next_template(bundled, monkeypatch)
    # an ignored file of the user's (not in git status, so nothing copier can be blamed for)
    (w1 / ".envrc.local.sh").write_text("export MINE=1\n")
    current = template.ensure_template_repo(store)
    job = update_cmd.plan(w1, "w1", store=store, current=current, vcs_ref=None, dry_run=False)
    assert isinstance(job, update_cmd.Job)
    before = update_cmd.Snapshot.take(w1)
    (w1 / ".envrc.sh").write_text("changed by the update\n")  # what copier wrote, then failed
    (w1 / "new_from_template.txt").write_text("x\n")
    assert update_cmd.restore(w1, before) == [".envrc.sh", "new_from_template.txt"]
    assert _git("status", "--porcelain", cwd=w1) == ""
    assert (w1 / ".envrc.local.sh").read_text() == "export MINE=1\n"


def test_git_status_failure_is_failed_not_skipped(two, devkit, bundled, monkeypatch) -> None:
    w1, _ = two
    _next_template(bundled, monkeypatch)
    (w1 / ".git" / "index").write_bytes(b"not an index")  # git status exits 128
    code, out, _ = devkit("update", w1, "--json")
    (project,) = json.loads(out)["projects"]
    assert (code, project["status"]) == (1, "failed"), project
    assert "cannot read git status" in project["reason"]


# -- case: align and update on one workspace --------------------------------------------------
@pytest.fixture
def behind(devkit, tmp_path: Path, bundled: Path) -> Path:
    """A devkit workspace locked on tinyshared 1.0 while another project uses 2.0."""
    ws = tmp_path / "ws"
    code, out, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, (out, err)
    assert run_uv(ws, "add", "--no-sync", "tinyshared>=1").returncode == 0
    assert run_uv(ws, "lock", "-P", "tinyshared==1.0").returncode == 0
    _git("add", "-A", cwd=ws)
    _git("commit", "-qm", "deps", cwd=ws)
    locked_project(tmp_path, "other", ["tinyshared>=2"])
    return ws


def test_align_lock_written_between_check_and_update_survives(behind, tmp_path, store, devkit,
                                                              bundled, monkeypatch) -> None:
    _next_template(bundled, monkeypatch)
    current = template.ensure_template_repo(store)
    job = update_cmd.plan(behind, "ws", store=store, current=current, vcs_ref=None, dry_run=False)
    assert isinstance(job, update_cmd.Job)
    code, out, err = devkit("align", behind, tmp_path / "other")
    assert code == 0, (out, err)
    assert locked_versions(behind, "tinyshared") == {"2.0"}
    result = update_cmd.run_job(job)
    assert result.status == "skipped", result
    assert locked_versions(behind, "tinyshared") == {"2.0"}  # align's new lock survives


def test_align_waits_for_an_update_of_the_workspace(behind, tmp_path, devkit,
                                                    monkeypatch) -> None:
    monkeypatch.setattr(store_module, "WORKSPACE_WAIT", 0.5)
    with holding(behind, "devkit update"):
        code, _, err = devkit("align", behind, tmp_path / "other")
    assert code == 1
    assert "is busy: `devkit update` (pid" in err
    assert locked_versions(behind, "tinyshared") == {"1.0"}  # align did not interleave


@pytest.mark.parametrize("command", [("sync",), ("adopt", "--no-sync"), ("doctor", "--fix")])
def test_commands_writing_a_workspace_wait_for_its_mutex(command, two, devkit,
                                                         monkeypatch) -> None:
    w1, _ = two
    monkeypatch.setattr(store_module, "WORKSPACE_WAIT", 0.5)
    monkeypatch.setattr("devkit.commands.doctor.FIX_MUTEX_TIMEOUT", 0.5)
    before = _git("status", "--porcelain", cwd=w1)
    with holding(w1, "devkit update"):
        code, out, err = devkit(command[0], w1, *command[1:])
    assert code == 1
    assert "is busy: `devkit update` (pid" in out + err
    assert _git("status", "--porcelain", cwd=w1) == before


# -- case: workspaces inside the store ------------------------------------------------------------
def test_new_refuses_a_path_inside_the_store(devkit, store, tmp_path) -> None:
    store.ensure()
    link = tmp_path / "cache-link"
    link.symlink_to(store.uv_cache_dir)
    for target in (store.template_repo / "ws", store.home / "ws", link / "ws",
                   store.python_install_dir / "ws"):
        code, out, err = devkit("new", target, "--defaults", "--no-sync")
        assert code == 1, (target, out)
        assert err.count("\n") == 1 and "inside" in err, err
        assert not target.exists()
    code, out, _ = devkit("projects", "list", "--json")
    assert json.loads(out)["projects"] == []


def test_adopt_and_projects_add_refuse_a_path_inside_the_store(devkit, store) -> None:
    store.ensure()
    inside = store.home / "proj"
    inside.mkdir()
    (inside / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    for args in (("projects", "add", inside), ("adopt", inside, "--no-sync")):
        code, out, err = devkit(*args)
        assert code == 1, (args, out)
        assert "inside the devkit store" in err
    assert sorted(p.name for p in inside.iterdir()) == ["pyproject.toml"]
    code, out, _ = devkit("projects", "list", "--json")
    assert json.loads(out)["projects"] == []
    assert Store().registry_file.exists() is False or json.loads(
        Store().registry_file.read_text())["projects"] == []


def test_workspace_mutex_file_is_private(store, tmp_path) -> None:
    old = os.umask(0o022)
    try:
        with store.workspace_mutex(tmp_path, command="devkit sync"):
            files = list(store.home.glob(".ws-*.lock"))
    finally:
        os.umask(old)
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600


# -- an interrupted venv rebuild ------------------------------------------------------------------
_KILL_PARENT_ON_SYNC = """#!/bin/sh
# uv, except that the first `uv sync` that is not a check SIGKILLs devkit (its parent) first
case " $* " in
  *" --check "*) ;;
  " sync "*) kill -9 "$PPID"; exit 1 ;;
esac
exec {uv} "$@"
"""


def test_sigkill_during_a_rebuild_is_reported_then_cleaned(make_workspace, devkit, tmp_path,
                                                           store) -> None:
    from devkit import uv

    ws = make_workspace("w", deps=("tinyshared",))
    subprocess.run(["rm", "-rf", str(ws / ".venv")], check=True)
    other = store.subprocess_env({"UV_CACHE_DIR": str(tmp_path / "other-cache")})
    subprocess.run([uv.find_uv(), "sync", "--locked", "-q"], cwd=ws, env=other, check=True)
    committed = ws / ".venv.devkit-old-1"  # not devkit's (no record in the store): never touched
    committed.mkdir()
    (committed / "keep.txt").write_text("mine\n")
    wrapper = tmp_path / "uv-killer"
    wrapper.write_text(_KILL_PARENT_ON_SYNC.format(uv=uv.find_uv()))
    wrapper.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "devkit", "sync", str(ws)],
                          env={**os.environ, "DEVKIT_UV": str(wrapper)},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == -9, proc
    left = [p for p in ws.glob(".venv.devkit-old-*") if p != committed]
    assert len(left) == 1 and not (ws / ".venv").exists()  # the kill window

    code, out, _ = devkit("doctor", ws, "--json")
    venv = next(c for c in json.loads(out)["checks"] if c["id"] == "workspace.venv")
    assert left[0].name in venv["message"] and venv["fix"] == f"devkit sync {ws}"

    code, out, err = devkit("sync", ws, "--json")
    assert code == 0, err
    (result,) = json.loads(out)["workspaces"]
    assert result["status"] == "synced" and result["rebuilt"] is True
    assert any(left[0].name in note for note in result["notes"])
    assert not left[0].exists() and (ws / ".venv" / "pyvenv.cfg").is_file()
    assert (committed / "keep.txt").read_text() == "mine\n"
    assert not list(store.rebuilds_dir.glob("*.json"))


# -- a closed stdout after the workspace is made -----------------------------------------------
def test_new_with_a_closed_stdout_keeps_the_finished_workspace(tmp_path) -> None:
    read, write = os.pipe()
    os.close(read)  # `devkit new X | head -0`: the reader is gone before the first line
    try:
        proc = subprocess.run([sys.executable, "-m", "devkit", "new", str(tmp_path / "X"),
                               "--defaults", "--no-sync"], stdout=write, stderr=subprocess.PIPE,
                              text=True, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr
    ws = tmp_path / "X"
    assert (ws / "pyproject.toml").is_file()
    assert _git("status", "--porcelain", cwd=ws) == ""
    registry = json.loads(Store().registry_file.read_text())
    assert [p["path"] for p in registry["projects"]] == [str(ws)]


# -- Ctrl-C at start-up ---------------------------------------------------------------------------
def test_nothing_runs_before_the_interrupt_guard() -> None:
    """The console script imports ``devkit`` and ``devkit.__main__`` before :func:`run`'s guard:
    they import no other module, so a Ctrl-C cannot land in devkit code outside it."""
    code = ("import sys; before = set(sys.modules); import devkit.__main__; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['devkit', 'devkit.__main__']"


def test_ctrl_c_early_is_one_line_never_a_devkit_traceback() -> None:
    import signal
    import time

    import devkit

    package = str(Path(devkit.__file__).resolve().parent)
    outcomes = []
    for i in range(30):
        proc = subprocess.Popen([sys.executable, "-m", "devkit", "store"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(i / 100)  # 0 to 290 ms: start-up, imports, the command
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
        outcomes.append((proc.returncode, err))
    for code, err in outcomes:
        assert package not in err, err  # no traceback through devkit's code
        if "Traceback" in err or "Fatal Python error" in err:
            continue  # CPython's own start-up (runpy, site), before any devkit code exists
        assert code in (0, 130, -signal.SIGINT), (code, err)
        assert err in ("", "devkit: interrupted\n") or code == 0, err
    assert any(code == 130 and err == "devkit: interrupted\n" for code, err in outcomes)


# -- prune: absent vs unreachable -------------------------------------------------------------
def test_prune_forgets_an_absent_workspace_but_keeps_an_unreachable_one(devkit, tmp_path) -> None:
    gone = tmp_path / "disk" / "gone"
    unmounted = tmp_path / "mnt" / "usb" / "proj"
    for path in (gone, unmounted):
        path.mkdir(parents=True)
        (path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
        assert devkit("projects", "add", path)[0] == 0
    subprocess.run(["rm", "-rf", str(gone), str(tmp_path / "mnt" / "usb")], check=True)
    code, out, err = devkit("projects", "prune")
    assert code == 0
    assert f"Unregistered: {gone}" in out
    assert str(unmounted) in err and "unreachable" in err
    code, out, _ = devkit("projects", "list", "--json")
    assert [p["path"] for p in json.loads(out)["projects"]] == [str(unmounted)]
    code, out, _ = devkit("projects", "list")
    assert "unreachable" in out


# -- an update killed while copier writes ---------------------------------------------------------
_KILL_PARENT_ON_APPLY = """#!/bin/sh
# git, except that copier's `git apply` (after it wrote the new template's files) SIGKILLs devkit
case " $* " in
  *" apply "*) kill -9 "$PPID"; exit 1 ;;
esac
exec {git} "$@"
"""


def test_update_killed_mid_copier_is_named_and_undoable_by_the_next_update(devkit, tmp_path,
                                                                           store) -> None:
    import shutil

    repo = Path(__file__).resolve().parents[1]
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    shutil.copy2(repo / "copier.yml", tpl / "copier.yml")
    shutil.copytree(repo / "templates", tpl / "templates")
    # another template than devkit's own (a copy of it would be moved onto the store's template,
    # updated in a scratch clone that a kill leaves the workspace untouched by)
    (tpl / "templates" / "workspace" / "NOTICE.txt").write_text("a fork of devkit's template\n")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-qm", "v1"), ("tag", "v1.0.0")):
        _git(*args, cwd=tpl)
    ws = tmp_path / "ws"
    code, out, err = devkit("new", ws, "--defaults", "--no-sync", "--template", tpl)
    assert code == 0, (out, err)
    (ws / "notes.txt").write_text("my committed notes\n")
    _git("add", "notes.txt", cwd=ws)
    _git("commit", "-qm", "notes", cwd=ws)
    envrc = tpl / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    _git("commit", "-qam", "v2", cwd=tpl)
    _git("tag", "v2.0.0", cwd=tpl)

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(_KILL_PARENT_ON_APPLY.format(git=shutil.which("git")))
    wrapper.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "devkit", "update", str(ws)],
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == -9, proc
    assert _git("status", "--porcelain", cwd=ws) != ""  # copier's half-done work

    code, out, _ = devkit("update", ws, "--json")
    (project,) = json.loads(out)["projects"]
    assert project["status"] == "skipped"
    reason = project["reason"]
    assert "an interrupted `devkit update` (pid" in reason, reason
    undo = reason.split("undo them with `")[1].split("`")[0]
    (ws / "untracked-mine.txt").write_text("made after the kill\n")
    subprocess.run(undo, shell=True, check=True, capture_output=True)
    assert _git("status", "--porcelain", cwd=ws) == "?? untracked-mine.txt\n"
    assert (ws / "notes.txt").read_text() == "my committed notes\n"
    (ws / "untracked-mine.txt").unlink()
    code, out, _ = devkit("update", ws, "--json")
    (project,) = json.loads(out)["projects"]
    assert project["status"] == "updated", project
    assert "DEVKIT_NEXT=1" in (ws / ".envrc.sh").read_text()
    assert not store.update_record(ws).exists()
