"""A workspace made with plain `copier copy` from a clone of devkit's template: `devkit update`
moves it onto the store's template (so the clone may go), and doctor says what update does."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hosts import context, run_one

from devkit import template
from devkit.hostfacts import Host
from devkit.store import Store


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def _answers(ws: Path) -> dict:
    return yaml.safe_load((ws / ".copier-answers.yml").read_text())


def _update(devkit, *args) -> tuple[int, dict]:
    code, out, err = devkit("update", *args, "--json")
    assert err == "" or code != 0, err
    (project,) = json.loads(out)["projects"]
    return code, project


@pytest.fixture
def copied(tmp_path: Path, bundled: Path, store: Store) -> tuple[Path, Path]:
    """(clone, workspace): an untagged git clone of devkit's template, as devkit was installed
    from it (the store holds the same template), and a committed workspace that plain copier
    copied from it, with a local edit of the user's."""
    clone = tmp_path / "devkit-clone"
    shutil.copytree(bundled, clone)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "devkit")):
        _git(*args, cwd=clone)
    template.ensure_template_repo(store)  # what `devkit new --demo` (README command 1) does
    ws = tmp_path / "ws"
    done = subprocess.run([sys.executable, "-m", "copier", "copy", "--defaults", "--quiet",
                           "--data", "description=Kept words", str(clone), str(ws)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "No git tags found" in done.stderr
    assert _answers(ws)["_src_path"] == str(clone)
    readme = ws / "README.md"
    readme.write_text(readme.read_text() + "\nMy own notes.\n")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "copied")):
        _git(*args, cwd=ws)
    return clone, ws


def _doctor(ws: Path):
    return run_one(context(ws, Host(), Store()), "workspace.template-version")


def test_update_moves_a_clone_copy_onto_the_store_and_the_clone_may_go(
        devkit, copied, bundled: Path, store: Store) -> None:
    clone, ws = copied
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")  # the next devkit
    before = _doctor(ws)
    assert before.status == "warn", before
    assert "`devkit update` moves it onto devkit's template" in before.message
    assert before.fix == f"devkit update {ws}"

    code, dry = _update(devkit, ws, "--dry-run")
    assert code == 0, dry
    assert dry["status"] == "updated" and dry["reason"].startswith("would move from the template")
    assert _answers(ws)["_src_path"] == str(clone) and _git("status", "--porcelain", cwd=ws) == ""

    code, project = _update(devkit, ws)
    assert code == 0, project
    new_tag = template.ensure_template_repo(store).tag
    assert project["status"] == "updated", project
    assert project["reason"].startswith(f"moved from the template {clone}")
    assert project["to_version"] == new_tag and new_tag.endswith(".post1")
    answers = _answers(ws)
    assert (answers["_src_path"], answers["_commit"]) == (str(store.template_repo), new_tag)
    assert "export DEVKIT_NEXT=1" in (ws / ".envrc.sh").read_text()
    assert "My own notes." in (ws / "README.md").read_text()  # the 3-way merge kept the edit
    assert "<<<<<<<" not in (ws / ".copier-answers.yml").read_text()

    _git("add", "-A", cwd=ws)
    _git("commit", "-qm", "update", cwd=ws)
    shutil.rmtree(clone)
    code, project = _update(devkit, ws)
    assert (code, project["status"]) == (0, "current"), project
    assert _doctor(ws).status == "ok"


def test_gone_clone_update_and_doctor_give_the_same_command_and_it_works(
        devkit, copied, store: Store) -> None:
    clone, ws = copied
    shutil.rmtree(clone)
    code, project = _update(devkit, ws)
    assert (code, project["status"]) == (0, "skipped"), project
    command = template.repoint_command(ws, store, template.ensure_template_repo(store).tag)
    assert project["reason"].startswith(f"its template {clone} no longer exists")
    assert project["reason"].endswith(f"with `{command}`")
    result = _doctor(ws)
    assert (result.status, result.fix) == ("warn", command), result
    assert result.message.startswith(f"its template {clone} no longer exists")

    done = subprocess.run(shlex.split(command), check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _answers(ws)["_src_path"] == str(store.template_repo)
    assert _answers(ws)["description"] == "Kept words"  # the recorded answers were reused
    _git("add", "-A", cwd=ws)
    _git("commit", "-qm", "re-pointed", cwd=ws)
    code, project = _update(devkit, ws)
    assert (code, project["status"]) == (0, "current"), project
    assert _doctor(ws).status == "ok"
