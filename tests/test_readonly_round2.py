"""Hostile repositories, second round: a workspace's own git config, a committed ``.venv`` and a
path dependency with an in-tree build backend never run anything in read-only commands, ``devkit
sync`` or ``devkit update`` (real git, uv, copier; a payload that touches a witness file)."""

from __future__ import annotations

import json
import os
import shutil
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
