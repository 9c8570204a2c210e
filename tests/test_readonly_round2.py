"""Hostile repositories, second round: a workspace's own git config, a committed ``.venv`` and a
path dependency with an in-tree build backend never run anything in read-only commands, ``devkit
sync`` or ``devkit update`` (real git, uv, copier; a payload that touches a witness file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_doctor import by_id, doctor_json

from devkit import git, template, uv, workspace_code
from devkit.store import Store


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def _plant(ws: Path, key: str, value: str) -> None:
    """Write ``key = value`` into the workspace's own ``.git/config``, as a tarball would ship it."""
    _git("config", "--local", key, value, cwd=ws)


def _dirty_stat(ws: Path) -> None:
    """Move every tracked file's mtime, so ``git status`` re-reads (and cleans) each one."""
    for name in _git("ls-files", "-z", cwd=ws).split("\0"):
        if name and (ws / name).is_file():
            st = (ws / name).stat()
            os.utime(ws / name, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


# -- git: the workspace's own config -------------------------------------------------------------

def test_doctor_runs_no_fsmonitor_or_filter_of_the_workspace(devkit, make_workspace,
                                                            tmp_path) -> None:
    ws = make_workspace("gitcfg", sync=False)
    witness = tmp_path / "pwned"
    (ws / ".gitattributes").write_text("* filter=evil\n")
    _dirty_stat(ws)
    _plant(ws, "core.fsmonitor", f"touch {witness}; false")
    _plant(ws, "filter.evil.clean", f"touch {witness}; cat")
    code, doc = doctor_json(devkit, ws)
    doctor_json(devkit, ws, "--fix")
    assert not witness.exists(), "doctor ran a command from the workspace's .git/config"
    checks = by_id(doc)
    assert checks["workspace.git"]["status"] == "fail"
    assert "sets filter.evil.clean" in checks["workspace.git"]["message"]
    assert str(ws / ".git" / "config") in checks["workspace.git"]["message"]
    assert checks["workspace.gitattributes"]["status"] == "skip"
    assert code == 1


def test_doctor_runs_no_fsmonitor_even_when_the_config_is_otherwise_fine(
        devkit, make_workspace, tmp_path) -> None:
    ws = make_workspace("fsmon", sync=False)
    witness = tmp_path / "pwned"
    _dirty_stat(ws)
    _plant(ws, "core.fsmonitor", f"touch {witness}; false")
    _, doc = doctor_json(devkit, ws)
    assert not witness.exists(), "doctor's git check-attr ran core.fsmonitor"
    assert by_id(doc)["workspace.git"]["status"] == "ok"


def _next_template(bundled: Path, monkeypatch) -> None:
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    monkeypatch.setattr(template, "__version__", "0.2.0")


def test_update_refuses_a_filter_in_the_workspace_config(devkit, bundled, tmp_path,
                                                         monkeypatch) -> None:
    ws = tmp_path / "filtered"
    code, out, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    witness = tmp_path / "pwned"
    with (ws / ".gitattributes").open("a") as fh:
        fh.write("* filter=evil\n")
    _git("commit", "-qam", "attributes", cwd=ws)
    _dirty_stat(ws)
    _plant(ws, "filter.evil.clean", f"touch {witness}; cat")
    _next_template(bundled, monkeypatch)
    code, out, err = devkit("update", ws, "--json")
    assert not witness.exists(), "devkit update ran the workspace's filter"
    [project] = json.loads(out)["projects"]
    assert project["status"] == "skipped"
    assert project["reason"].startswith(f"{ws / '.git' / 'config'} sets filter.evil.clean, ")
    assert f"git -C {ws} config --unset filter.evil.clean" in project["reason"]
    assert "DEVKIT_NEXT" not in (ws / ".envrc.sh").read_text()


def test_update_runs_no_hook_of_the_workspace(devkit, bundled, tmp_path, monkeypatch) -> None:
    """A repository received as a tarball brings ``.git/hooks/``: git's index hook runs whenever
    git writes the index (``git status`` refreshes it; copier adds files)."""
    ws = tmp_path / "hooked"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    witness = tmp_path / "pwned"
    hook = ws / ".git" / "hooks" / "post-index-change"
    hook.write_text(f"#!/bin/sh\ntouch {witness}\n")
    _dirty_stat(ws)
    hook.chmod(0o755)
    _next_template(bundled, monkeypatch)
    code, out, err = devkit("update", ws, "--json")
    [project] = json.loads(out)["projects"]
    assert project["status"] == "updated", project
    assert not witness.exists(), "a hook of the workspace ran during devkit update"


@pytest.mark.parametrize(("key", "value"), [
    ("filter.x.smudge", "sh -c id"), ("filter.x.process", "evil"), ("diff.x.textconv", "evil"),
    ("diff.external", "evil"), ("merge.x.driver", "evil %O"), ("include.path", "../cfg"),
    ("includeIf.gitdir:/.path", "../cfg"), ("core.sshCommand", "evil"),
    ("credential.helper", "!evil"), ("gpg.program", "evil"), ("remote.origin.uploadpack", "evil"),
])
def test_code_running_keys_are_named(tmp_path, key, value) -> None:
    repo = tmp_path / "r"
    (repo / "sub").mkdir(parents=True)
    _git("init", "-q", cwd=repo)
    assert git.unsafe_config(repo / "sub") is None
    _plant(repo, key, value)
    reason = git.unsafe_config(repo / "sub")
    assert reason is not None and f"sets {key.lower()}, which " in reason
    assert reason.startswith(str(repo / ".git" / "config"))
    with pytest.raises(Exception, match="sets "):
        git.status(repo)


def test_included_config_is_read_and_git_lfs_is_accepted(tmp_path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    for key, value in (("filter.lfs.clean", "git-lfs clean -- %f"),
                       ("filter.lfs.smudge", "git-lfs smudge -- %f"),
                       ("filter.lfs.process", "git-lfs filter-process"),
                       ("filter.lfs.required", "true"), ("core.fsmonitor", "evil")):
        _plant(repo, key, value)
    assert git.unsafe_config(repo) is None  # fsmonitor is overridden, git-lfs is no repo code
    env = git.environment({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b",
                           "GIT_CONFIG_VALUE_0": "c"})
    assert env["GIT_CONFIG_KEY_0"] == "a.b"  # the caller's own entries are kept, ours come after
    assert env["GIT_CONFIG_KEY_1"] == "core.hooksPath"
    seen = subprocess.run(["git", "config", "--get", "core.fsmonitor"], cwd=repo, env=env,
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seen == "false"


# -- a .venv devkit did not create ---------------------------------------------------------------

def _plant_venv(ws: Path, witness: Path) -> None:
    """A ``.venv`` as a clone or an archive ships it: a link to a real interpreter outside the
    workspace, a ``pyvenv.cfg``, and a ``.pth`` that runs when that interpreter starts."""
    python = Path(os.path.realpath(sys.executable))
    site = ws / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" \
        / "site-packages"
    site.mkdir(parents=True)
    (ws / ".venv" / "bin").mkdir()
    (ws / ".venv" / "bin" / "python").symlink_to(python)
    (ws / ".venv" / "pyvenv.cfg").write_text(
        f"home = {python.parent}\nimplementation = CPython\nuv = 0.13.9\n"
        f"version_info = {'.'.join(map(str, sys.version_info[:3]))}\n"
        "include-system-site-packages = false\n")
    (site / "zz.pth").write_text(f"import os; os.system('touch {witness}')\n")


def _uv_runs_it(ws: Path, witness: Path) -> None:
    """uv itself runs the planted ``.pth`` (the reason devkit must not call uv there)."""
    # a throw-away cache: uv caches what it learnt about an interpreter
    env = Store().subprocess_env({"UV_CACHE_DIR": str(ws.parent / "throwaway-cache")})
    subprocess.run([uv.find_uv(), "lock", "--check", "--offline", "--no-build"], cwd=ws, env=env,
                   capture_output=True, check=False)
    assert witness.exists(), "uv no longer runs the .venv's interpreter"
    witness.unlink()


@pytest.mark.parametrize("how", ["committed", "unpacked"])
def test_doctor_never_runs_a_venv_devkit_did_not_create(devkit, make_workspace, tmp_path,
                                                       how) -> None:
    ws = make_workspace("shipped", deps=("tinyshared",), sync=False)
    witness = tmp_path / "pwned"
    _plant_venv(ws, witness)
    _uv_runs_it(ws, witness)
    if how == "committed":
        _git("add", "-f", ".venv", cwd=ws)
        _git("commit", "-qm", "ship a venv", cwd=ws)
    _, doc = doctor_json(devkit, ws)
    doctor_json(devkit, ws, "--fix")
    assert not witness.exists(), "doctor ran the interpreter of a .venv devkit did not create"
    checks = by_id(doc)
    venv = checks["workspace.venv"]
    assert venv["status"] == "warn"
    assert ("tracked by git" if how == "committed" else "not created by devkit") in venv["message"]
    untrack = f"git -C {ws} rm -r -q --cached .venv && " if how == "committed" else ""
    assert venv["fix"] == f"{untrack}rm -rf {ws}/.venv && devkit sync {ws}"
    for check_id in ("workspace.lock", "workspace.venv-current"):
        assert checks[check_id]["status"] == "skip", checks[check_id]
        assert "cannot check without" in checks[check_id]["message"]


def test_sync_replaces_an_unpacked_venv_without_running_it(devkit, make_workspace,
                                                          tmp_path) -> None:
    ws = make_workspace("unpacked", deps=("tinyshared",), sync=False)
    witness = tmp_path / "pwned"
    _plant_venv(ws, witness)
    code, out, _ = devkit("sync", ws, "--json")
    assert not witness.exists(), "devkit sync ran the interpreter of a .venv it did not create"
    [result] = json.loads(out)["workspaces"]
    assert code == 0 and result["status"] == "synced" and result["rebuilt"] is True, result
    assert any(n.startswith("rebuilt .venv without running it:") for n in result["notes"])
    assert not list((ws / ".venv").glob("lib/python*/site-packages/zz.pth"))
    assert not list(ws.glob(".venv.devkit-old-*"))
    assert workspace_code.foreign_venv(ws, Store()) is None  # devkit's own now
    code, out, _ = devkit("sync", ws, "--json")
    assert json.loads(out)["workspaces"][0]["status"] == "current"
    # doctor runs uv against devkit's venv again
    _, doc = doctor_json(devkit, ws)
    assert by_id(doc)["workspace.venv-current"]["status"] == "ok"


def test_sync_refuses_a_committed_venv(devkit, make_workspace, tmp_path) -> None:
    ws = make_workspace("committed", deps=("tinyshared",), sync=False)
    witness = tmp_path / "pwned"
    _plant_venv(ws, witness)
    _git("add", "-f", ".venv", cwd=ws)
    _git("commit", "-qm", "ship a venv", cwd=ws)
    code, out, _ = devkit("sync", ws, "--json")
    assert not witness.exists(), "devkit sync ran a committed .venv"
    [result] = json.loads(out)["workspaces"]
    assert code == 1 and result["status"] == "failed"
    assert "tracked by git" in result["reason"] and "\n" not in result["reason"]
    assert f"git -C {ws} rm -r -q --cached .venv && rm -rf {ws}/.venv" in result["reason"]
    assert (ws / ".venv" / "pyvenv.cfg").is_file()  # left for the user to review
    fix = result["reason"].rpartition("review it, then: ")[2]
    subprocess.run(fix.removesuffix(f" && devkit sync {ws}"), shell=True, check=True)
    code, out, _ = devkit("sync", ws, "--json")
    assert code == 0 and json.loads(out)["workspaces"][0]["status"] == "synced"
    assert not witness.exists()
    assert workspace_code.foreign_venv(ws, Store()) is None


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_align_read_only_never_runs_a_foreign_venv(devkit, make_workspace, tmp_path,
                                                   flag) -> None:
    ws = make_workspace("alignvenv", deps=("tinyshared",), sync=False)
    witness = tmp_path / "pwned"
    _plant_venv(ws, witness)
    code, out, _ = devkit("align", flag, "--json", ws)
    assert not witness.exists(), f"align {flag} ran the interpreter of a foreign .venv"
    assert code == 1
    [project] = json.loads(out)["projects"]
    assert "cannot check without building" in project["error"], project


# -- align --dry-run/--check: a path dependency with an in-tree backend, not yet locked -----------

def _evil_path_dependency(ws: Path, witness: Path) -> None:
    """``pyproject.toml`` gains ``evil = { path = "vendor/evil" }`` (a pull): an in-tree build
    backend computing dynamic metadata, which touches ``witness`` as soon as it is imported."""
    vendor = ws / "vendor" / "evil"
    (vendor / "_backend").mkdir(parents=True)
    (vendor / "pyproject.toml").write_text(
        '[project]\nname = "evil"\ndynamic = ["version", "dependencies"]\n'
        '\n[build-system]\nrequires = []\nbuild-backend = "evilbackend"\n'
        'backend-path = ["_backend"]\n')
    (vendor / "_backend" / "evilbackend.py").write_text(
        f"import pathlib\npathlib.Path({str(witness)!r}).touch()\n"
        "def _any(*a, **k):\n    raise RuntimeError('no')\n"
        + "".join(f"{n} = _any\n" for n in (
            "get_requires_for_build_wheel", "prepare_metadata_for_build_wheel", "build_wheel",
            "get_requires_for_build_editable", "prepare_metadata_for_build_editable",
            "build_editable", "get_requires_for_build_sdist", "build_sdist")))
    text = (ws / "pyproject.toml").read_text()
    assert "dependencies = [" in text
    text = text.replace("dependencies = [", 'dependencies = [\n    "evil",', 1)
    (ws / "pyproject.toml").write_text(text + '\n[tool.uv.sources]\nevil = { path = "vendor/evil" }\n')


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_read_only_never_builds_an_unlocked_path_dependency(devkit, make_workspace, tmp_path,
                                                            flag) -> None:
    ws = make_workspace("pathdep", deps=("tinyshared",), sync=False)
    witness = tmp_path / "pwned"
    _evil_path_dependency(ws, witness)
    assert "evil" not in (ws / "uv.lock").read_text()
    # the `uv lock --check` align ran before: uv builds the dependency to learn its metadata
    env = Store().subprocess_env({"UV_CACHE_DIR": str(ws.parent / "throwaway-cache")})
    probe = subprocess.run([uv.find_uv(), "lock", "--check"], cwd=ws, env=env,
                           capture_output=True, check=False)
    assert witness.exists() and probe.returncode != 0, "uv no longer builds it"
    witness.unlink()
    code, out, _ = devkit("align", flag, "--json", ws)
    assert code == 1
    assert not witness.exists(), f"align {flag} ran a path dependency's build backend"
    [project] = json.loads(out)["projects"]
    assert project["status"] == "failed" and "cannot check without building" in project["error"]
    assert "evil declares dependencies, version dynamic" in project["error"]
    _, doc = doctor_json(devkit, ws)
    assert not witness.exists(), "doctor ran a path dependency's build backend"
    assert by_id(doc)["workspace.lock"]["status"] == "skip"


def test_declared_sources_are_found(tmp_path) -> None:
    ws = tmp_path / "ws"
    for rel in ("packages/a", "packages/b", "packages/skip", "libs/c", "libs/d"):
        (ws / rel).mkdir(parents=True)
        (ws / rel / "pyproject.toml").write_text(f'[project]\nname = "{Path(rel).name}"\n'
                                                 'version = "1"\n')
    (ws / "libs" / "c" / "pyproject.toml").write_text(
        '[project]\nname = "c"\nversion = "1"\n[tool.uv.sources]\nd = { path = "../d" }\n')
    (ws / "pyproject.toml").write_text(
        '[project]\nname = "ws"\nversion = "1"\n'
        f'dependencies = ["c", "w @ file://{ws}/dist/w-1-py3-none-any.whl"]\n'
        '[tool.uv.workspace]\nmembers = ["packages/*"]\nexclude = ["packages/skip"]\n'
        '[tool.uv.sources]\nc = [{ path = "libs/c", editable = true }]\n')
    found = workspace_code.local_sources(ws)
    assert found == [(ws / "libs" / "c").resolve(), (ws / "packages" / "a").resolve(),
                     (ws / "packages" / "b").resolve(), (ws / "libs" / "d").resolve()]
    assert workspace_code.uv_blocker(ws, "3.11", store=Store()) is None
    with (ws / "pyproject.toml").open("a") as fh:
        fh.write('g = { git = "https://example.invalid/g.git" }\n')
    assert "g comes from git" in workspace_code.uv_blocker(ws, "3.11", store=Store())


def test_doctor_asks_git_each_question_once(devkit, make_workspace, tmp_path,
                                            monkeypatch) -> None:
    """The git directory ``workspace.git`` learns is the one devkit.git's own calls use: a second
    doctor run (the memo filled) starts no git process twice."""
    import shutil

    ws = make_workspace("once")
    doctor_json(devkit, ws)
    real = shutil.which("git")
    bindir = tmp_path / "git-wrapper"
    bindir.mkdir()
    log = tmp_path / "git-calls.txt"
    (bindir / "git").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(git, "_GITDIRS", {})  # as in a new process
    monkeypatch.setattr(git, "_JUDGED", {})
    _, doc = doctor_json(devkit, ws)
    assert by_id(doc)["workspace.gitattributes"]["status"] == "ok"
    calls = log.read_text().splitlines()
    assert sum("--absolute-git-dir" in call for call in calls) == 1, calls
    assert len(calls) == len(set(calls)), calls
