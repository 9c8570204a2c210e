"""``devkit update --data KEY=VALUE``: new answers passed to copier's update (real copier and git),
checked before any workspace changes; workspaces made before the ``services`` question."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def _answers(ws: Path) -> dict:
    return yaml.safe_load((ws / ".copier-answers.yml").read_text())


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def _without_question(text: str, name: str) -> str:
    """``copier.yml`` text without the top-level question ``name`` (its block of lines)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(f"{name}:"):
            skipping = True
            continue
        if skipping and line.strip() and not line[0].isspace():
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)


class Template:
    """The test's private copy of devkit's template, before and after the ``services``
    question."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.copier_yml = (root / "copier.yml").read_text()
        assert "services" in (yaml.safe_load(self.copier_yml) or {})

    def before(self) -> None:
        """The template as it was before the question (devkit's earlier versions)."""
        (self.root / "copier.yml").write_text(_without_question(self.copier_yml, "services"))

    def after(self) -> None:
        """The template with the question."""
        (self.root / "copier.yml").write_text(self.copier_yml)


@pytest.fixture
def tpl(bundled: Path) -> Template:
    return Template(bundled)


def _new(devkit, path: Path) -> Path:
    code, out, err = devkit("new", path, "--defaults", "--no-sync")
    assert code == 0, (out, err)
    assert _git("status", "--porcelain", cwd=path) == ""
    return path


def _update(devkit, *args) -> tuple[int, dict]:
    code, out, err = devkit("update", *args, "--json")
    assert code != 0 or err == "", err
    return code, json.loads(out)


def test_data_adds_services_to_a_workspace_made_before_the_question(devkit, tmp_path, tpl) -> None:
    tpl.before()
    ws = _new(devkit, tmp_path / "shop")
    assert "services" not in _answers(ws)
    assert not (ws / "compose.yaml").exists()
    tpl.after()
    before = _snapshot(ws)
    code, doc = _update(devkit, ws, "--data", "services=[postgres]", "--dry-run")
    assert code == 0 and "compose.yaml" in doc["projects"][0]["files"], doc
    assert _snapshot(ws) == before  # a dry run writes nothing
    code, doc = _update(devkit, ws, "--data", "services=[postgres]")
    (project,) = doc["projects"]
    assert code == 0, project
    assert project["status"] == "updated", project
    assert {"compose.yaml", ".envrc.sh", ".copier-answers.yml"} <= set(project["files"])
    assert _answers(ws)["services"] == ["postgres"]
    compose = yaml.safe_load((ws / "compose.yaml").read_text())
    assert list(compose["services"]) == ["postgres"]
    assert compose["services"]["postgres"]["ports"] == ["127.0.0.1::5432"]
    assert "DATABASE_URL" in (ws / ".envrc.sh").read_text()


def test_update_without_data_keeps_an_old_workspace_without_services(devkit, tmp_path,
                                                                     tpl) -> None:
    tpl.before()
    ws = _new(devkit, tmp_path / "old")
    tpl.after()
    code, doc = _update(devkit, ws)
    (project,) = doc["projects"]
    assert code == 0, project
    assert project["status"] == "updated", project
    assert _answers(ws).get("services", []) == []
    assert not (ws / "compose.yaml").exists()
    # and --data on the now current workspace re-answers at the same template version
    _git("commit", "-qam", "update", cwd=ws)
    code, doc = _update(devkit, ws, "-d", "services=postgres,redis")  # as `devkit new` takes it
    (project,) = doc["projects"]
    assert code == 0, project
    assert project["status"] == "updated"
    assert project["to_version"] == project["from_version"]
    assert _answers(ws)["services"] == ["postgres", "redis"]
    assert set(yaml.safe_load((ws / "compose.yaml").read_text())["services"]) == {"postgres",
                                                                                   "redis"}


@pytest.mark.parametrize(("value", "says"), [
    ("services=[mysql]", "'mysql' is not in"),
    ("services=[postgres", "a multiple-choice answer is a YAML list, e.g. services=[postgres]"),
    ("services=postgres,mysql",
     "--data services=postgres,mysql refused: Invalid choice for 'services': 'mysql' is not in"),
    ("servics=[postgres]", "unknown --data key(s): servics (did you mean services?)"),
    ("services", "--data expects KEY=VALUE"),
])
def test_bad_data_is_one_line_and_changes_nothing(devkit, tmp_path, tpl, value, says) -> None:
    tpl.before()
    ws = _new(devkit, tmp_path / "shop")
    tpl.after()
    before = _snapshot(ws)
    head = _git("rev-parse", "HEAD", cwd=ws)
    code, _, err = devkit("update", ws, "--data", value)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("devkit: error: "), err
    assert says in err
    assert _snapshot(ws) == before
    assert _git("status", "--porcelain", cwd=ws) == ""
    assert _git("rev-parse", "HEAD", cwd=ws) == head


def test_new_refuses_a_list_that_is_not_yaml_with_one_line(devkit, tmp_path) -> None:
    code, _, err = devkit("new", tmp_path / "x", "--defaults", "--no-sync", "--data",
                          "services=[postgres")
    assert code == 1
    assert err.startswith("devkit: error: cannot render the template: ") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
