"""`devkit new` end to end: real copier, git, uv (offline, local index) and mise."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import locked_project

from devkit import usage, uv
from devkit.store import Store


def _site(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def test_two_workspaces_share_the_cache(make_workspace, store: Store, tmp_path: Path) -> None:
    fs = usage.filesystem_type(tmp_path)
    if fs in usage.CLONE_FILESYSTEMS:
        # copy-on-write clones keep st_nlink == 1: only the filesystem's usage shows the sharing
        pytest.skip(f"{fs} clones files: inode sharing is not observable here")
    a = make_workspace("a", deps=("tinyshared",))
    b = make_workspace("b", deps=("tinyshared",))
    fa = _site(a / ".venv") / "tinyshared" / "data.py"
    fb = _site(b / ".venv") / "tinyshared" / "data.py"
    assert fa.read_text() == fb.read_text()
    # uv's default link mode is clone; where the filesystem cannot clone it falls back to
    # hardlinks (https://docs.astral.sh/uv/reference/settings/#link-mode)
    assert fa.stat().st_ino == fb.stat().st_ino
    in_cache = [p for p in store.uv_cache_dir.rglob("tinyshared/data.py")
                if p.stat().st_ino == fa.stat().st_ino]
    assert in_cache, "the venv file is not the cache's inode"
    assert fa.stat().st_nlink >= 3
    env = store.subprocess_env()
    for ws in (a, b):
        uv.lock(ws, env=env, check=True)
        cfg = (ws / ".venv" / "pyvenv.cfg").read_text()
        assert "uv =" in cfg


def test_new_initialises_git_registers_and_records_template(devkit, tmp_path: Path,
                                                            store: Store) -> None:
    code, out, err = devkit("new", tmp_path / "proj", "--defaults", "-d", "description=Hi")
    assert code == 0, err
    assert "Next steps" in out
    ws = tmp_path / "proj"
    log = subprocess.run(["git", "log", "--oneline"], cwd=ws, capture_output=True, text=True,
                         check=True).stdout
    assert len(log.splitlines()) == 1
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ws, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", "the first commit must hold everything, uv.lock included"
    assert (ws / "uv.lock").is_file() and (ws / ".venv").is_dir()
    answers = yaml.safe_load((ws / ".copier-answers.yml").read_text())
    assert Path(answers["_src_path"]).is_absolute()
    assert answers["_commit"].startswith("v")
    assert answers["description"] == "Hi"
    code, out, _ = devkit("projects", "list", "--json")
    assert [p["path"] for p in json.loads(out)["projects"]] == [str(ws.resolve())]


def test_no_sync_leaves_no_venv(devkit, tmp_path: Path) -> None:
    code, out, err = devkit("new", tmp_path / "lazy", "--defaults", "--no-sync")
    assert code == 0, err
    assert not (tmp_path / "lazy" / ".venv").exists()
    assert not (tmp_path / "lazy" / "uv.lock").exists()
    assert "uv sync" in out


def test_invalid_answer_is_one_line_and_leaves_nothing(devkit, tmp_path: Path) -> None:
    code, _out, err = devkit("new", tmp_path / "bad", "--defaults", "-d", "project_name=-x")
    assert code == 1
    assert err.count("\n") == 1 and "Invalid project name" in err
    assert "Traceback" not in err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_refuses_non_empty_destination(devkit, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = devkit("new", tmp_path / "full", "--defaults")
    assert code == 1 and "not empty" in err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_bad_data_flag(devkit, tmp_path: Path) -> None:
    code, _, err = devkit("new", tmp_path / "x", "--data", "novalue")
    assert code == 1 and "KEY=VALUE" in err


def test_missing_template(devkit, tmp_path: Path) -> None:
    code, _, err = devkit("new", tmp_path / "x", "--defaults", "--template", tmp_path / "nope")
    assert code == 1 and "does not exist" in err


def test_explicit_local_template_is_recorded_absolute(devkit, tmp_path: Path,
                                                      monkeypatch) -> None:
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo.parent)
    code, _, err = devkit("new", tmp_path / "t", "--defaults", "--no-sync",
                          "--template", os.path.relpath(repo))
    assert code == 0, err
    answers = yaml.safe_load((tmp_path / "t" / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(repo)


def test_lock_failure_leaves_nothing(devkit, tmp_path: Path) -> None:
    # Python 3.14 cannot be found here and downloads are off: uv lock fails, nothing is made.
    code, out, err = devkit("new", tmp_path / "py314", "--defaults", "-d", "python_version=3.14")
    assert code == 1
    assert "uv python install 3.14" in err and "Traceback" not in err
    assert not (tmp_path / "py314").exists()
    assert "Next steps" not in out


def test_python_m_devkit_entry_point(tmp_path: Path) -> None:
    import sys

    proc = subprocess.run([sys.executable, "-m", "devkit", "--version"], capture_output=True,
                          text=True, check=True)
    assert proc.stdout.startswith("devkit ")


@pytest.mark.network
def test_generated_project_passes_its_own_tests(devkit, tmp_path: Path, monkeypatch) -> None:
    """One real render against the package index: the workspace's own test suite passes."""
    monkeypatch.delenv("UV_OFFLINE")
    monkeypatch.delenv("UV_DEFAULT_INDEX")
    code, _out, err = devkit("new", tmp_path / "real", "--defaults", "-d", "package=true")
    assert code == 0, err
    proc = subprocess.run([uv.find_uv(), "run", "--locked", "pytest", "-q"], check=False, cwd=tmp_path / "real",
                          env=Store().subprocess_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_unreachable_git_template_is_one_line(devkit, tmp_path: Path) -> None:
    url = (tmp_path / "no-such-repo.git").as_uri()
    code, _, err = devkit("new", tmp_path / "x", "--defaults", "--template", url)
    assert code == 1, err
    assert err.startswith("devkit: error: cannot fetch the template") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_new_records_its_render_so_only_that_content_is_trusted(make_workspace, store: Store) -> None:
    from devkit import trust

    ws = make_workspace("proof", sync=False)
    for name in (".mise.toml", ".envrc.sh"):
        assert trust.is_rendered(ws, name, store), name
    config = ws / ".mise.toml"
    config.write_text(config.read_text() + '\n[env]\nX = "{{ exec(command=\'touch pwned\') }}"\n')
    assert not trust.is_rendered(ws, ".mise.toml", store)
    assert any("not trusted" in line for line in trust.trust_if_rendered(ws, store))
    assert not (ws / "pwned").exists()


def test_born_aligned_runs_the_engine_only_when_a_version_differs(
        devkit, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit.align import engine, lockfile
    from devkit.commands import new

    called: list[Path] = []
    monkeypatch.setattr(engine, "align_new_project",
                        lambda path, *, store: called.append(path))
    parsed: list[Path] = []
    real_read = lockfile.read
    monkeypatch.setattr(lockfile, "read", lambda path, **kw: parsed.append(path) or real_read(path, **kw))
    old = locked_project(tmp_path / "p", "old", ["tinyshared"])
    assert devkit("projects", "add", old)[0] == 0
    fresh = locked_project(tmp_path / "p", "fresh", ["tinyshared"])  # the same tinyshared as old
    new._born_aligned(fresh, store)
    assert called == [], "the align engine ran although no version differs"
    assert old / "uv.lock" in parsed
    parsed.clear()
    new._born_aligned(fresh, store)
    assert old / "uv.lock" not in parsed, "an unchanged registered lock was parsed again"
    # uv relocks old onto another version: its lock is read again, and the engine runs
    proc = subprocess.run([uv.find_uv(), "lock", "-P", "tinyshared==1.1"], cwd=old,
                          env=store.subprocess_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    new._born_aligned(fresh, store)
    assert old / "uv.lock" in parsed
    assert called == [fresh]
    assert oct(store.lock_keys_file.stat().st_mode & 0o777) == "0o600"


def test_sync_reuses_the_interpreter_the_lock_chose(devkit, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """uv discovers a project's Python anew in each run without an environment (a pyenv shim on
    PATH costs ~0.2 s per run): devkit new passes the interpreter `uv lock` named to `uv sync`."""
    calls: list[tuple[tuple[str, ...], str]] = []
    real_run = uv.run

    def spy(*args: str, **kwargs: object) -> str:
        out = real_run(*args, **kwargs)  # type: ignore[arg-type]
        calls.append((args, out))
        return out

    monkeypatch.setattr(uv, "run", spy)
    code, _out, err = devkit("new", tmp_path / "proj", "--defaults")
    assert code == 0, err
    [(_, lock_out)] = [(a, o) for a, o in calls if a[0] == "lock"]
    [sync_args] = [a for a, _ in calls if a[0] == "sync"]
    chosen = uv.interpreter_used(lock_out)
    assert chosen is not None, lock_out
    assert sync_args[sync_args.index("--python") + 1] == chosen
    cfg = (tmp_path / "proj" / ".venv" / "pyvenv.cfg").read_text()
    assert f"home = {Path(chosen).parent}" in cfg


@pytest.mark.parametrize(("output", "expected"), [
    ("Using CPython 3.11.7 interpreter at: {python}\nResolved 7 packages in 5ms\n", "{python}"),
    ("Using CPython 3.11.7 interpreter at: /nonexistent/python3.11\n", None),
    ("Resolved 7 packages in 5ms\n", None),
])
def test_interpreter_used(output: str, expected: str | None) -> None:
    import sys

    python = os.path.realpath(sys.executable)
    found = uv.interpreter_used(output.format(python=python))
    assert found == (expected.format(python=python) if expected else None)
