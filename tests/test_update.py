"""`copier update` of a generated workspace: the template change arrives, the answers stay."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def _template_copy(dst: Path) -> Path:
    dst.mkdir()
    shutil.copy2(REPO / "copier.yml", dst / "copier.yml")
    shutil.copytree(REPO / "templates", dst / "templates")
    _git("init", "-q", "-b", "main", cwd=dst)
    _git("add", "-A", cwd=dst)
    _git("commit", "-qm", "template v1", cwd=dst)
    _git("tag", "v1.0.0", cwd=dst)
    return dst


def test_copier_update_from_tagged_template(devkit, tmp_path: Path) -> None:
    tpl = _template_copy(tmp_path / "tpl")
    code, _, err = devkit("new", tmp_path / "ws", "--defaults", "--no-sync", "--template", tpl,
                          "-d", "description=Kept answer", "-d", "env_loader=both")
    assert code == 0, err
    ws = tmp_path / "ws"
    assert yaml.safe_load((ws / ".copier-answers.yml").read_text())["_commit"] == "v1.0.0"

    # the template changes and is tagged again
    envrc = tpl / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_TEMPLATE_V2=1\n")
    _git("commit", "-qam", "template v2", cwd=tpl)
    _git("tag", "v2.0.0", cwd=tpl)

    # from inside the workspace, as a user would (copier#335: relative sources break this)
    proc = subprocess.run(["copier", "update", "--defaults", "--skip-answered"], check=False, cwd=ws,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "DEVKIT_TEMPLATE_V2=1" in (ws / ".envrc.sh").read_text()
    answers = yaml.safe_load((ws / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v2.0.0"
    assert answers["description"] == "Kept answer"
    assert answers["env_loader"] == "both"
    assert (ws / ".envrc").is_file()
    assert "<<<<<<<" not in (ws / ".envrc.sh").read_text()


def test_default_template_is_updatable_from_the_workspace(devkit, tmp_path: Path,
                                                          store) -> None:
    code, _, err = devkit("new", tmp_path / "ws", "--defaults", "--no-sync")
    assert code == 0, err
    ws = tmp_path / "ws"
    answers = yaml.safe_load((ws / ".copier-answers.yml").read_text())
    assert Path(answers["_src_path"]) == store.template_repo
    # a newer devkit adds a tagged commit to the store's template repository
    readme = store.template_repo / "templates" / "workspace" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nNew in the next devkit.\n")
    _git("commit", "-qam", "next", cwd=store.template_repo)
    _git("tag", "v99.0.0", cwd=store.template_repo)
    proc = subprocess.run(["copier", "update", "--defaults", "--skip-answered"], check=False, cwd=ws,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "New in the next devkit." in (ws / "README.md").read_text()
