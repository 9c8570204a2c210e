"""`devkit new` interrupted at points synchronised on observable state: complete or absent.

A wrapper given as ``DEVKIT_UV`` runs the real uv, except for one subcommand (``lock`` or
``sync``): there it creates a file and blocks until it is killed. The test waits for that file,
then sends the signal, so the kill lands at a known step, never after a guessed delay.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import uv
from devkit.commands import new
from devkit.store import Store

TEMPLATE_FILES = ("pyproject.toml", "README.md", ".gitignore", ".copier-answers.yml")


@pytest.fixture
def blocking_uv(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(wrapper script, file it creates when it blocks); the block point is ``DEVKIT_TEST_BLOCK``."""
    blocked = tmp_path / "uv-blocked"
    script = tmp_path / "uv-wrapper"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "$DEVKIT_TEST_BLOCK" ]; then\n'
        f'  : > "{blocked}"\n'
        "  exec sleep 600\n"  # blocks until the process group is killed, never waited on
        "fi\n"
        f'exec "{uv.find_uv()}" "$@"\n'
    )
    script.chmod(0o755)
    yield script, blocked


def _start(dst: Path, script: Path, block: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DEVKIT_UV": str(script), "DEVKIT_TEST_BLOCK": block}
    return subprocess.Popen([sys.executable, "-m", "devkit", "new", str(dst), "--defaults"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Wait until ``path`` exists; fails if the process exits first (no fixed delay)."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)  # type: ignore[arg-type]
        while not path.exists():
            if proc.poll() is not None:
                pytest.fail(f"devkit exited {proc.returncode} before blocking: "
                            f"{proc.stderr.read() if proc.stderr else ''}")
            sel.select(timeout=0.05)


def _kill(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    os.kill(proc.pid, sig)
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the wrapper, if devkit did not reap it
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err


def _registered(store: Store) -> list[str]:
    if not store.registry_file.exists():
        return []
    return [p["path"] for p in json.loads(store.registry_file.read_text())["projects"]]


def _temps(dst: Path) -> list[Path]:
    return sorted(dst.parent.glob(f".{dst.name}{new.TEMP_INFIX}*"))


def _assert_complete(dst: Path, store: Store) -> None:
    for name in TEMPLATE_FILES:
        assert (dst / name).is_file(), name
    assert (dst / ".git").is_dir() and (dst / "uv.lock").is_file() and (dst / ".venv").is_dir()
    assert str(dst.resolve()) in _registered(store)
    assert not _temps(dst)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("block", ["lock", "sync"])
def test_interrupt_removes_everything(sig: int, block: str, blocking_uv, tmp_path: Path,
                                      store: Store, devkit) -> None:
    script, blocked = blocking_uv
    dst = tmp_path / "ws" / "victim"
    proc = _start(dst, script, block)
    _wait_for(blocked, proc)
    if block == "sync":
        assert dst.is_dir(), "sync runs in place, after the rename"
    code, err = _kill(proc, sig)
    assert code == 130, err
    assert err.strip() == "devkit: interrupted", err
    assert not dst.exists(), "an interrupted devkit new must leave nothing behind"
    assert not _temps(dst)
    assert str(dst) not in _registered(store)
    code, _out, err = devkit("new", dst, "--defaults")
    assert code == 0, err
    _assert_complete(dst, store)


def test_sigkill_before_the_rename_leaves_only_a_marked_temp_removed_by_the_rerun(
        blocking_uv, tmp_path: Path, store: Store, devkit) -> None:
    script, blocked = blocking_uv
    dst = tmp_path / "ws" / "killed"
    proc = _start(dst, script, "lock")
    _wait_for(blocked, proc)
    code, _ = _kill(proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not dst.exists() and str(dst) not in _registered(store)
    [temp] = _temps(dst)
    assert json.loads((temp / new.MARKER).read_text())["destination"] == str(dst)
    code, out, err = devkit("new", dst, "--defaults")
    assert code == 0, err
    assert "left by an interrupted devkit new" in out
    _assert_complete(dst, store)


def test_sigkill_after_the_rename_is_replaced_only_with_force(blocking_uv, tmp_path: Path,
                                                              store: Store, devkit) -> None:
    script, blocked = blocking_uv
    dst = tmp_path / "ws" / "half"
    proc = _start(dst, script, "sync")
    _wait_for(blocked, proc)
    _kill(proc, signal.SIGKILL)
    assert dst.is_dir() and not (dst / ".venv").exists()
    assert str(dst) not in _registered(store)
    code, _out, err = devkit("new", dst, "--defaults")
    assert code == 1 and "--force" in err and err.count("\n") == 1, err
    assert (dst / "pyproject.toml").is_file(), "refusing must not remove anything"
    code, out, err = devkit("new", dst, "--defaults", "--force")
    assert code == 0, err
    assert "incomplete workspace" in out
    _assert_complete(dst, store)


def test_force_never_replaces_a_users_directory(devkit, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    # even next to a stray directory named like devkit's temporaries, without a live marker
    (tmp_path / f".mine{new.TEMP_INFIX}abc").mkdir()
    code, _, err = devkit("new", mine, "--defaults", "--force")
    assert code == 1 and "not empty" in err
    assert (mine / "keep.txt").read_text() == "mine"


def test_a_running_creation_is_not_taken_for_a_leftover(tmp_path: Path, store: Store) -> None:
    from devkit.registry import Registry

    dst = tmp_path / "busy"
    with new.Creation(dst, Registry(store)) as creation:
        assert creation.temp.is_dir() and creation.temp.parent == tmp_path
        assert new.leftovers(dst) == []  # its lock is held
    assert not creation.temp.exists() and not dst.exists()


def test_concurrent_new_of_one_path_one_wins(tmp_path: Path, store: Store) -> None:
    dst = tmp_path / "same"
    procs = [subprocess.Popen([sys.executable, "-m", "devkit", "new", str(dst), "--defaults",
                               "--no-sync"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0, results
    assert all(code in (0, 1) for code in codes), results
    for code, err in results:
        assert "Traceback" not in err and (code == 0 or err.count("\n") == 1), err
    assert _registered(store) == [str(dst)]
    assert (dst / "pyproject.toml").is_file() and not _temps(dst)


# -- bad input: one line, exit 1, before any work --------------------------------------------

def test_destination_is_a_file(devkit, tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("data")
    for dst in (target, target / "sub"):
        code, _, err = devkit("new", dst, "--defaults")
        assert code == 1 and err.count("\n") == 1 and "not a directory" in err, err
    assert target.read_text() == "data"


def test_unknown_data_key_lists_the_valid_keys(devkit, tmp_path: Path, store: Store) -> None:
    code, _, err = devkit("new", tmp_path / "typo", "--defaults", "-d", "pyhton_version=3.13")
    assert code == 1 and err.count("\n") == 1, err
    assert "pyhton_version (did you mean python_version?)" in err
    assert "project_name" in err and "env_loader" in err
    assert not (tmp_path / "typo").exists() and not _temps(tmp_path / "typo")
    assert not store.home.exists(), "checked before the store is created"
    # a local --template is checked against its own copier.yml
    repo = Path(__file__).resolve().parents[1]
    code, _, err = devkit("new", tmp_path / "typo", "--defaults", "--template", repo,
                          "-d", "colour=blue")
    assert code == 1 and "colour" in err and "env_loader" in err, err


def test_new_help_lists_the_data_keys(capsys) -> None:
    from devkit.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["new", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--data keys of the bundled template: project_name, package_name" in out
    assert "--force" in out


@pytest.mark.parametrize("projects, entry", [
    ('[{"path": 5, "name": "a", "added": "t"}]', "'path'"),
    ("[1]", "not an object"),
    ('[{"path": "/x", "name": null, "added": "t"}]', "'name'"),
    ('[{"path": "rel", "name": "a", "added": "t"}]', "absolute"),
    ('[{"path": "/x", "name": "a"}]', "'added'"),
    ("{}", "not a list"),
])
def test_malformed_registry_is_one_line_everywhere(projects: str, entry: str, devkit,
                                                   store: Store, tmp_path: Path) -> None:
    store.home.mkdir(parents=True)
    store.registry_file.write_text(f'{{"version": 1, "projects": {projects}}}')
    project = tmp_path / "p"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    for argv in (["projects", "list"], ["store"], ["new", tmp_path / "w", "--defaults"],
                 ["projects", "add", project]):
        code, _, err = devkit(*argv)
        assert code == 1, (argv, err)
        assert err.count("\n") == 1 and entry in err and str(store.registry_file) in err, err
    assert not (tmp_path / "w").exists(), "a corrupt registry is found before any work"


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_unusable_devkit_home_is_one_line(where: str, devkit, tmp_path: Path,
                                          monkeypatch) -> None:
    # Tests run as root, which ignores permission bits: a path that is (or is under) a regular
    # file fails for root too.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DEVKIT_HOME", str(blocker if where == "file" else blocker / "store"))
    a = tmp_path / "a"
    a.mkdir()
    (a / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "0"\n')
    for argv in (["projects", "list"], ["store"], ["projects", "add", a],
                 ["new", tmp_path / "w", "--defaults"]):
        code, _, err = devkit(*argv)
        assert code == 1, (argv, err)
        assert err.count("\n") == 1 and "not a directory" in err and "Traceback" not in err, err
    assert blocker.read_text() == "not a directory"
    assert not (tmp_path / "w").exists()


def test_missing_store_is_not_created_by_read_only_commands(devkit, store: Store) -> None:
    code, out, err = devkit("projects", "list")
    assert code == 0, err
    assert "No registered projects" in out
    code, _out, err = devkit("store", "--json")
    assert code == 0, err
    assert not store.home.exists()


# -- a private store whatever the umask -------------------------------------------------------

def test_store_is_private_under_umask_000(devkit, tmp_path: Path, store: Store) -> None:
    old = os.umask(0)
    try:
        code, _, err = devkit("new", tmp_path / "open", "--defaults")
        code2, _, err2 = devkit("projects", "add", tmp_path / "open")
    finally:
        os.umask(old)
    assert code == 0 and code2 == 0, (err, err2)
    for d in (store.home, store.home / "uv", store.uv_cache_dir, store.python_install_dir,
              store.template_repo):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in (store.registry_file, store.lock_file, store.home / "README.txt"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # Whoever made them (the template and registry mutexes included), nothing directly in the
    # store is writable by others, and the store itself, 0700, is not even searchable by them.
    for f in store.home.iterdir():
        assert not f.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH), f


def test_atomic_write_modes_under_umask_000(tmp_path: Path) -> None:
    from devkit.util import atomic_write_text

    old = os.umask(0)
    try:
        atomic_write_text(tmp_path / "made" / "deep" / "new.json", "{}")
        existing = tmp_path / "existing.txt"
        existing.write_text("old")
        existing.chmod(0o640)
        atomic_write_text(existing, "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "made" / "deep" / "new.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640 and existing.read_text() == "new"


def test_log_file_is_private(tmp_path: Path) -> None:
    from devkit.errors import error_handler

    log = tmp_path / "devkit.log"
    old = os.umask(0)
    try:
        with pytest.raises(SystemExit) as exc, error_handler(log):
            raise RuntimeError("boom")
    finally:
        os.umask(old)
    assert exc.value.code == 3
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and "boom" in log.read_text()


# -- Ctrl-C during start-up -----------------------------------------------------------------

@pytest.mark.parametrize("module", ["argparse", "json", "filelock"])
@pytest.mark.parametrize("entry", ["python -m devkit", "console script"])
def test_ctrl_c_while_importing_is_one_line(module: str, entry: str) -> None:
    """SIGINT delivered while devkit's dependencies are imported (synchronised on the import of
    ``module``, which the package itself must not need): exit 130, one line, no traceback."""
    start = ("import runpy; runpy.run_module('devkit', run_name='__main__')"
             if entry == "python -m devkit" else
             "from devkit.__main__ import run; raise SystemExit(run())")
    code = (
        "import builtins, os, signal, sys\n"
        "real = builtins.__import__\n"
        "def hook(name, *args, **kwargs):\n"
        f"    if name == {module!r}:\n"
        "        builtins.__import__ = real\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hook\n"
        "sys.argv = ['devkit', 'projects', 'list']\n"
        f"{start}\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "devkit: interrupted\n"


def test_console_script_entry_is_the_guarded_one() -> None:
    from importlib import metadata

    [entry] = [e for e in metadata.entry_points(group="console_scripts") if e.name == "devkit"]
    assert entry.value == "devkit.__main__:run"
