"""`devkit update`: real copier and git on real workspaces, one status per workspace."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devkit import template
from devkit.commands.update import undo_command

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout



def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _answers(ws: Path) -> dict:
    return yaml.safe_load((ws / ".copier-answers.yml").read_text())


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def _update(devkit, *args) -> tuple[int, dict]:
    code, out, err = devkit("update", *args, "--json")
    assert err == "" or code != 0, err
    return code, json.loads(out)


def _by_name(doc: dict) -> dict[str, dict]:
    return {p["name"]: p for p in doc["projects"]}


@pytest.fixture
def three(devkit, tmp_path: Path, bundled: Path) -> dict[str, Path]:
    """clean (a local edit elsewhere, committed), dirty (uncommitted), collide (a committed edit
    on the line the template will change)."""
    made = {}
    for name in ("clean", "dirty", "collide"):
        ws = tmp_path / name
        code, out, err = devkit("new", ws, "--defaults", "--no-sync", "-d", "description=Kept",
                                "-d", "env_loader=both")
        assert code == 0, (out, err)
        made[name] = ws
    readme = made["clean"] / "README.md"
    readme.write_text(readme.read_text() + "\nMy own notes.\n")
    _git("commit", "-qam", "notes", cwd=made["clean"])
    (made["dirty"] / "README.md").write_text("work in progress\n")
    _edit(made["collide"] / ".gitignore", "# personal overrides and secrets, sourced by .envrc.sh",
          "# my own comment")
    _git("commit", "-qam", "mine", cwd=made["collide"])
    # the next devkit: a changed template and a version bump
    _edit(bundled / "templates" / "workspace" / ".gitignore",
          "# personal overrides and secrets, sourced by .envrc.sh", "# the template's new comment")
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    return made


def test_update_clean_dirty_and_conflicting(devkit, three, monkeypatch) -> None:
    monkeypatch.setattr(template, "__version__", "0.2.0")
    dirty_before = _snapshot(three["dirty"])
    code, doc = _update(devkit, *three.values(), "--jobs", "2")
    assert code == 1  # one workspace has conflicts
    assert doc["version"] == 1
    assert doc["template"]["version"] == "v0.2.0"
    by = _by_name(doc)
    assert {n: p["status"] for n, p in by.items()} == {
        "clean": "updated", "dirty": "skipped", "collide": "conflicts"}
    assert doc["summary"] == {"updated": 1, "current": 0, "conflicts": 1, "skipped": 1,
                              "failed": 0}

    clean = three["clean"]
    assert by["clean"]["from_version"] != "v0.2.0"
    assert by["clean"]["to_version"] == "v0.2.0"
    assert set(by["clean"]["files"]) == {".copier-answers.yml", ".envrc.sh", ".gitignore"}
    assert "DEVKIT_NEXT=1" in (clean / ".envrc.sh").read_text()
    assert "My own notes." in (clean / "README.md").read_text()
    assert _answers(clean)["description"] == "Kept"
    assert _answers(clean)["env_loader"] == "both"
    assert _answers(clean)["_commit"] == "v0.2.0"
    assert _git("log", "--oneline", cwd=clean).count("\n") == 2  # nothing committed for the user

    assert _snapshot(three["dirty"]) == dirty_before
    assert "uncommitted changes" in by["dirty"]["reason"]
    assert by["dirty"]["files"] == ["README.md"]

    collide = three["collide"]
    assert by["collide"]["conflicts"] == [".gitignore"]
    text = (collide / ".gitignore").read_text()
    assert "# my own comment" in text
    assert "<<<<<<< before updating" in text
    assert "DEVKIT_NEXT=1" in (collide / ".envrc.sh").read_text()
    assert by["collide"]["undo"] == undo_command(collide, by["collide"]["files"])
    subprocess.run(by["collide"]["undo"], shell=True, check=True, capture_output=True)
    assert _git("status", "--porcelain", cwd=collide) == ""  # unmerged entries undone too

    # a second run: the clean one (committed) is current, the dirty one still skipped
    _git("commit", "-qam", "update", cwd=clean)
    code, doc = _update(devkit, clean, three["dirty"])
    assert code == 0
    assert [p["status"] for p in doc["projects"]] == ["current", "skipped"]


def test_human_output_says_how_to_review_and_undo(devkit, three, monkeypatch) -> None:
    monkeypatch.setattr(template, "__version__", "0.2.0")
    code, out, _ = devkit("update", three["clean"], three["dirty"])
    assert code == 0
    assert "updated" in out and "skipped" in out
    assert "git -C PATH diff HEAD" in out
    ws = three["clean"]
    files = ".copier-answers.yml .envrc.sh .gitignore"
    undo = (f"git -C {ws} --literal-pathspecs reset -q -- {files} && "
            f"git -C {ws} --literal-pathspecs checkout -- {files}")
    assert f"undo: {undo}\n" in out
    assert f"git -C {three['dirty']} stash" in out
    # the undo command given really restores the workspace, conflicts included
    subprocess.run(undo, shell=True, check=True, capture_output=True)
    assert _git("status", "--porcelain", cwd=ws) == ""


def test_dry_run_writes_nothing(devkit, three, monkeypatch) -> None:
    monkeypatch.setattr(template, "__version__", "0.2.0")
    before = {n: _snapshot(p) for n, p in three.items()}
    code, doc = _update(devkit, *three.values(), "--dry-run")
    assert code == 1
    assert doc["dry_run"] is True
    by = _by_name(doc)
    assert by["clean"]["status"] == "updated"
    assert ".envrc.sh" in by["clean"]["files"]
    assert by["collide"]["conflicts"] == [".gitignore"]
    assert {n: _snapshot(p) for n, p in three.items()} == before
    for name in ("clean", "collide"):
        assert _git("status", "--porcelain", cwd=three[name]) == ""


def test_development_install_updates_without_downgrade(devkit, tmp_path: Path, bundled) -> None:
    """Same devkit version, changed template (an editable install): tags .post1, .post2…"""
    ws = tmp_path / "ws"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    version = template.__version__
    for n in (1, 2):
        envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
        envrc.write_text(envrc.read_text() + f"export DEV_CHANGE_{n}=1\n")
        code, doc = _update(devkit, ws)
        assert code == 0, doc
        (project,) = doc["projects"]
        assert project["status"] == "updated", project
        assert project["to_version"] == f"v{version}.post{n}"
        assert f"DEV_CHANGE_{n}=1" in (ws / ".envrc.sh").read_text()
        _git("commit", "-qam", f"update {n}", cwd=ws)
    code, doc = _update(devkit, ws)
    assert doc["projects"][0]["status"] == "current"


def test_other_template_source_is_updated_from_that_source(devkit, tmp_path: Path) -> None:
    tpl = tmp_path / "team-template"
    (tpl / "tpl").mkdir(parents=True)
    (tpl / "copier.yml").write_text("_subdirectory: tpl\nname:\n  type: str\n  default: team\n")
    (tpl / "tpl" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers|to_nice_yaml -}}\n")
    (tpl / "tpl" / "hello.txt.jinja").write_text("hello {{ name }}\n")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "v1"),
                 ("tag", "v1.0.0")):
        _git(*args, cwd=tpl)
    ws = tmp_path / "ws"
    code, out, err = devkit("new", ws, "--template", tpl, "--defaults", "--no-sync",
                            "-d", "name=kept")
    assert code == 0, (out, err)
    assert _answers(ws)["_commit"] == "v1.0.0"
    (tpl / "tpl" / "bye.txt.jinja").write_text("bye {{ name }}\n")
    for args in (("add", "-A"), ("commit", "-qm", "v2"), ("tag", "v2.0.0")):
        _git(*args, cwd=tpl)
    code, doc = _update(devkit, ws)
    assert code == 0, doc
    (project,) = doc["projects"]
    assert (project["status"], project["source"]) == ("updated", str(tpl))
    assert (project["from_version"], project["to_version"]) == ("v1.0.0", "v2.0.0")
    assert (ws / "bye.txt").read_text() == "bye kept\n"


def test_unusable_workspaces_are_skipped_with_the_reason(devkit, tmp_path: Path, store) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".copier-answers.yml").write_text("_commit: v1\n_src_path: /nowhere/at/all\n")
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / ".copier-answers.yml").write_text(
        f"_commit: v1.0.0\n_src_path: 'ext::sh -c touch% {marker}'\n")
    nogit = tmp_path / "nogit"
    code, _, err = devkit("new", nogit, "--defaults", "--no-sync")
    assert code == 0, err
    shutil.rmtree(nogit / ".git")
    ahead = tmp_path / "ahead"
    code, _, err = devkit("new", ahead, "--defaults", "--no-sync")
    assert code == 0, err
    _edit(ahead / ".copier-answers.yml", f"_commit: v{template.__version__}", "_commit: v999.0")
    _git("commit", "-qam", "from a newer devkit", cwd=ahead)
    missing = tmp_path / "gone"
    code, doc = _update(devkit, plain, hostile, nogit, ahead, missing)
    assert code == 0
    reasons = {Path(p["path"]).name: (p["status"], p["reason"]) for p in doc["projects"]}
    assert reasons["plain"][0] == "skipped" and "foreign template" in reasons["plain"][1]
    assert reasons["hostile"][0] == "skipped" and "unsupported" in reasons["hostile"][1]
    assert reasons["nogit"][0] == "skipped" and "not a git repository" in reasons["nogit"][1]
    assert reasons["gone"][0] == "skipped" and "missing directory" in reasons["gone"][1]
    assert reasons["ahead"][0] == "skipped" and "upgrade devkit" in reasons["ahead"][1]
    assert not marker.exists()


def test_all_takes_every_registered_workspace_and_a_failure_stops_nothing(
        devkit, tmp_path: Path, bundled, monkeypatch) -> None:
    for name in ("one", "two", "three"):
        code, _, err = devkit("new", tmp_path / name, "--defaults", "--no-sync")
        assert code == 0, err
    # a workspace whose recorded template version no longer exists fails alone
    _edit(tmp_path / "two" / ".copier-answers.yml", f"_commit: v{template.__version__}",
          "_commit: v0.0.1")
    _git("commit", "-qam", "break", cwd=tmp_path / "two")
    (bundled / "templates" / "workspace" / "NEW.md").write_text("new file\n")
    monkeypatch.setattr(template, "__version__", "5.0.0")
    code, doc = _update(devkit, "--all", "--jobs", "3")
    assert code == 1
    by = _by_name(doc)
    assert by["one"]["status"] == by["three"]["status"] == "updated"
    assert "NEW.md" in by["one"]["files"]
    assert by["two"]["status"] == "failed"
    assert by["two"]["reason"] and "\n" not in by["two"]["reason"]
    assert _git("status", "--porcelain", cwd=tmp_path / "two") == ""  # put back as it was


def test_no_workspace_here_is_one_clear_error(devkit, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = devkit("update")
    assert code == 1
    assert err.startswith("devkit: error:") and "--all" in err
    code, _, err = devkit("update", "--all")
    assert code == 1 and "no registered workspaces" in err
    ws = tmp_path / "ws"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    monkeypatch.chdir(ws / "tests")  # any directory inside the workspace
    code, doc = _update(devkit)
    assert code == 0
    assert [(p["path"], p["status"]) for p in doc["projects"]] == [(str(ws), "current")]
    code, _, err = devkit("update", ws, "--all")
    assert code == 1 and "not both" in err


def test_changed_loader_config_is_retrusted_only_when_devkit_rendered_it(
        devkit, tmp_path: Path, bundled, monkeypatch) -> None:
    ws = tmp_path / "ws"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    mise = next((bundled / "templates" / "workspace").glob("*.mise.toml*"))
    mise.write_text(mise.read_text() + '\n[tasks.hello]\nrun = "echo hello"\n')
    calls: list[Path] = []
    from devkit.commands import update as update_cmd

    original = update_cmd.retrust
    monkeypatch.setattr(update_cmd, "retrust", lambda w, s: calls.append(w) or ["trusted"])
    code, doc = _update(devkit, ws)
    assert code == 0
    assert doc["projects"][0]["trust"] == ["trusted"]
    assert calls == [ws]
    # a local edit merged into the new config: not what devkit rendered, so not trusted
    monkeypatch.setattr(update_cmd, "retrust", original)
    _git("commit", "-qam", "update", cwd=ws)
    _edit(ws / ".mise.toml", "[env]\n", "[env]\n# my own line\n")
    _git("commit", "-qam", "mine", cwd=ws)
    mise.write_text(mise.read_text() + '\n[tasks.bye]\nrun = "echo bye"\n')
    code, doc = _update(devkit, ws)
    assert doc["projects"][0]["status"] == "updated"
    assert calls == [ws]
    assert "review it" in doc["projects"][0]["trust"][0]
