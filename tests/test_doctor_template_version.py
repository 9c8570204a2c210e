"""The "workspace on devkit's current template" check: ok, then warn after a template change."""

from __future__ import annotations

from pathlib import Path

import pytest
from hosts import context, run_one

from devkit.hostfacts import Host
from devkit.store import Store
from devkit.template import commit_version

REPO = Path(__file__).resolve().parents[1]



def test_template_version_ok_then_behind(devkit, tmp_path: Path, bundled: Path) -> None:
    ws = tmp_path / "ws"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    result = run_one(context(ws, Host(), Store()), "workspace.template-version")
    assert result.status == "ok", result
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export NEXT=1\n")
    result = run_one(context(ws, Host(), Store()), "workspace.template-version")
    assert result.status == "warn"
    assert ".post1" in result.message
    assert result.fix == f"devkit update {ws}"
    code, _, err = devkit("update", ws)
    assert code == 0, err
    assert run_one(context(ws, Host(), Store()), "workspace.template-version").status == "ok"


def test_template_version_other_source_and_none(devkit, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".copier-answers.yml").write_text("env_loader: mise\n")
    assert run_one(context(ws, Host(), Store()), "workspace.template-version").status == "skip"
    (ws / ".copier-answers.yml").write_text(
        "_commit: v1.0.0\n_src_path: https://example.com/team/template.git\nenv_loader: mise\n")
    assert run_one(context(ws, Host(), Store()), "workspace.template-version").status == "ok"
    ahead = Store().template_repo
    (ws / ".copier-answers.yml").write_text(
        f"_commit: v999.0.0\n_src_path: {ahead}\nenv_loader: mise\n")
    result = run_one(context(ws, Host(), Store()), "workspace.template-version")
    assert result.status == "warn" and "newer" in result.message


@pytest.mark.parametrize(("commit", "version"), [
    ("v0.1.0", "0.1.0"), ("v0.1.0.post2", "0.1.0.post2"),
    ("v0.1.0-3-gabc1234", "0.1.0.post3.dev0+gabc1234"), ("abc1234", None),
])
def test_commit_version(commit: str, version: str | None) -> None:
    got = commit_version(commit)
    assert (str(got) if got else None) == version
