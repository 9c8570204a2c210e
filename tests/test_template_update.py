"""A workspace made with an older template gains the new files through `copier update`."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import copier
import pytest
import yaml
from conftest import in_ci

REPO = Path(__file__).resolve().parents[1]
# The template before the license/lint/types/coverage/hooks/CI questions (11 files, mise pinned
# Python and uv): workspaces made with it exist and must update cleanly.
OLD_TEMPLATE_COMMIT = "47ff2ad0bff1c55256efc75a0fc1a8c4fd592c69"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _commit_template(repo: Path, tag: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", f"template {tag}")
    _git(repo, "tag", tag)


@pytest.fixture
def old_template(tmp_path: Path) -> Path:
    """A git repository holding the old template, tagged v0.1.0."""
    probe = subprocess.run(["git", "cat-file", "-e", f"{OLD_TEMPLATE_COMMIT}^{{commit}}"],
                           cwd=REPO, check=False, capture_output=True)
    if probe.returncode != 0:
        message = f"the old template's commit {OLD_TEMPLATE_COMMIT} is not in this clone"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    repo = tmp_path / "template-repo"
    repo.mkdir()
    archive = subprocess.run(["git", "archive", OLD_TEMPLATE_COMMIT, "copier.yml", "templates"],
                             cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x"], input=archive, cwd=repo, check=True)
    _git(repo, "init", "-q")
    _commit_template(repo, "v0.1.0")
    return repo


def test_update_from_the_old_template(old_template: Path, tmp_path: Path, store) -> None:
    ws = tmp_path / "old-ws"
    copier.run_copy(str(old_template), str(ws), data={"project_name": "oldws",
                                                      "python_version": "3.11"},
                    defaults=True, unsafe=False, quiet=True, vcs_ref="v0.1.0")
    before = tomllib.loads((ws / ".mise.toml").read_text())
    assert before["tools"]["python"] == "3.11"  # what the old template did
    assert not (ws / "LICENSE").exists()
    _git(ws, "init", "-q")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "old workspace")

    # the new template, as the next release of the same repository
    for child in old_template.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copy2(REPO / "copier.yml", old_template / "copier.yml")
    shutil.copytree(REPO / "templates", old_template / "templates",
                    ignore=shutil.ignore_patterns("__pycache__"))
    _commit_template(old_template, "v0.2.0")

    copier.run_update(str(ws), defaults=True, overwrite=True, skip_answered=True, unsafe=False,
                      quiet=True)

    status = _git(ws, "status", "--porcelain")
    assert not [line for line in status.splitlines() if line[:2] in ("UU", "AA", "DU", "UD")]
    assert not list(ws.rglob("*.rej"))
    for path in ws.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert "<<<<<<<" not in path.read_text(errors="replace"), path
    for new in ("LICENSE", ".editorconfig", ".github/workflows/ci.yml"):
        assert (ws / new).is_file(), new
    answers = yaml.safe_load((ws / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0"
    assert answers["python_version"] == "3.11" and answers["min_python"] == "3.11"
    assert answers["lint"] is True and answers["coverage"] is True
    assert answers["type_checker"] == "mypy" and answers["ci"] == "github"
    mise = tomllib.loads((ws / ".mise.toml").read_text())
    assert "tools" not in mise and "check" in mise["tasks"]
    pyproject = tomllib.loads((ws / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    assert "ruff" in pyproject["tool"] and "mypy" in pyproject["tool"]
    # and the updated workspace locks and syncs (offline, the dev tools as stubs)
    from devkit import uv

    env = store.subprocess_env()
    for args in (["lock"], ["sync", "--locked"]):
        proc = subprocess.run([uv.find_uv(), *args], cwd=ws, env=env, capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, proc.stderr
