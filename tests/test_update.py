"""The store's template repository and plain `copier update`: immutable tags, ordered versions,
private and hook-free, safe under concurrent `devkit new`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from devkit import template

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def _copier(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "copier", *args], check=False, cwd=cwd,
                          capture_output=True, text=True)


def _template_copy(dst: Path) -> Path:
    dst.mkdir()
    shutil.copy2(REPO / "copier.yml", dst / "copier.yml")
    shutil.copytree(REPO / "templates", dst / "templates")
    _git("init", "-q", "-b", "main", cwd=dst)
    _git("add", "-A", cwd=dst)
    _git("commit", "-qm", "template v1", cwd=dst)
    _git("tag", "v1.0.0", cwd=dst)
    return dst



def _change(bundled: Path, line: str = "export DEVKIT_NEXT=1") -> None:
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + line + "\n")


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
    proc = _copier("update", "--defaults", "--skip-answered", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert "DEVKIT_TEMPLATE_V2=1" in (ws / ".envrc.sh").read_text()
    answers = yaml.safe_load((ws / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v2.0.0"
    assert answers["description"] == "Kept answer"
    assert answers["env_loader"] == "both"
    assert (ws / ".envrc").is_file()
    assert "<<<<<<<" not in (ws / ".envrc.sh").read_text()


def test_store_template_has_an_empty_work_tree_and_one_tag_per_template(
        devkit, tmp_path: Path, store, bundled: Path) -> None:
    code, _, err = devkit("new", tmp_path / "ws", "--defaults", "--no-sync")
    assert code == 0, err
    answers = yaml.safe_load((tmp_path / "ws" / ".copier-answers.yml").read_text())
    assert Path(answers["_src_path"]) == store.template_repo
    assert answers["_commit"] == f"v{template.__version__}"
    assert [p.name for p in store.template_repo.iterdir()] == [".git"]
    assert (store.template_repo / ".git" / "config").read_text() == template.STORE_CONFIG
    # the same template again: the same tag, nothing written
    assert template.ensure_template_repo(store).tag == answers["_commit"]
    assert _git("tag", cwd=store.template_repo).split() == [answers["_commit"]]


def test_plain_copier_update_after_a_devkit_upgrade(devkit, tmp_path: Path, store, bundled,
                                                    monkeypatch) -> None:
    """The store's copy is refreshed by devkit; `copier update` in the workspace then takes the
    newest tag, with no `devkit new` in between."""
    code, _, err = devkit("new", tmp_path / "ws", "--defaults", "--no-sync")
    assert code == 0, err
    ws = tmp_path / "ws"
    _change(bundled, "export DEVKIT_UPGRADED=1")
    monkeypatch.setattr(template, "__version__", "99.0.0")
    assert template.available_version(store).tag == "v99.0.0"  # read-only: not yet written
    assert "v99.0.0" not in _git("tag", cwd=store.template_repo).split()
    assert template.ensure_template_repo(store).tag == "v99.0.0"
    proc = _copier("update", "--defaults", "--skip-answered", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert "DEVKIT_UPGRADED=1" in (ws / ".envrc.sh").read_text()
    assert yaml.safe_load((ws / ".copier-answers.yml").read_text())["_commit"] == "v99.0.0"


@pytest.mark.parametrize(("version", "names"), [
    ("0.1.0", ["v0.1.0", "v0.1.0.post1", "v0.1.0.post2", "v0.1.0.post10"]),
    ("0.2.0.dev3", ["v0.2.0.dev3", "v0.2.0.dev3+1", "v0.2.0.dev3+2", "v0.2.0.dev3+10"]),
    ("1.0.post1", ["v1.0.post1", "v1.0.post1+1", "v1.0.post1+2"]),
    ("0.1.0+g1a2b3c", ["v0.1.0+g1a2b3c", "v0.1.0+g1a2b3c.1", "v0.1.0+g1a2b3c.2"]),
])
def test_tags_of_one_version_only_grow(version: str, names: list[str]) -> None:
    ns = [0, 1, 2, 10][: len(names)]
    got = [template.tag_name(version, n) for n in ns]
    assert got == names
    assert sorted(got, key=Version) == got
    assert [template._series_index(t, version) for t in got] == ns
    # the next release is newer than any development template of this one
    assert Version(got[-1]) < Version(f"{Version(version).base_version}.1")


def test_store_repo_is_private_under_umask_000(tmp_path: Path, store) -> None:
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "devkit", "new", str(tmp_path / "ws"),
                           "--defaults", "--no-sync"], env=env, capture_output=True, text=True,
                          umask=0, check=False)
    assert proc.returncode == 0, proc.stderr
    repo = store.template_repo
    loose = []
    for root, dirs, files in os.walk(repo):
        for name in (*dirs, *files):
            mode = os.lstat(os.path.join(root, name)).st_mode
            if mode & 0o077:
                loose.append((os.path.join(root, name), oct(mode)))
    assert loose == []
    assert repo.stat().st_mode & 0o777 == 0o700


def test_planted_config_never_runs_and_the_repo_is_rebuilt(devkit, tmp_path: Path, store,
                                                           bundled) -> None:
    code, _, err = devkit("new", tmp_path / "ws", "--defaults", "--no-sync")
    assert code == 0, err
    first = template.ensure_template_repo(store).tag
    marker = tmp_path / "pwned"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("post-checkout", "reference-transaction", "pre-commit", "post-commit"):
        shutil.copy2(hook, hooks / name)
    config = store.template_repo / ".git" / "config"
    config.write_text(config.read_text() + f"[core]\n\tfsmonitor = {hook}\n\thooksPath = {hooks}\n")
    # a template change makes devkit write to the repository; `devkit new` renders from it
    _change(bundled)
    code, _, err = devkit("new", tmp_path / "ws2", "--defaults", "--no-sync")
    assert code == 0, err
    assert not marker.exists()
    assert config.read_text() == template.STORE_CONFIG
    tags = _git("tag", cwd=store.template_repo).split()
    assert first in tags  # the tag the first workspace records survives the rebuild
    assert yaml.safe_load((tmp_path / "ws2" / ".copier-answers.yml").read_text())["_commit"] \
        == template.tag_name(template.__version__, 1)
    # a plain `copier update` of the first workspace still works from the rebuilt repository
    proc = _copier("update", "--defaults", "--skip-answered", cwd=tmp_path / "ws")
    assert proc.returncode == 0, proc.stderr
    assert "DEVKIT_NEXT=1" in (tmp_path / "ws" / ".envrc.sh").read_text()
    assert not marker.exists()


def test_an_older_devkits_store_repo_is_migrated(devkit, tmp_path: Path, store, bundled) -> None:
    """An older devkit rendered from the repository's working tree at HEAD, leaving
    `_commit: v0.1.0-1-g<hash>` after an untagged change: the migrated repository tags that commit
    `.post1`, so the next template (`.post2`) is an upgrade, not a downgrade."""
    repo = store.template_repo
    repo.mkdir(parents=True)
    shutil.copy2(bundled / "copier.yml", repo / "copier.yml")
    shutil.copytree(bundled / "templates", repo / "templates")
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "devkit 0.1.0 template", cwd=repo)
    _git("tag", f"v{template.__version__}", cwd=repo)
    _change(repo, "export LEGACY=1")
    _git("commit", "-qam", "devkit 0.1.0 template", cwd=repo)
    ws = tmp_path / "ws"
    proc = _copier("copy", "--defaults", "--vcs-ref", "HEAD", "-d", "project_name=ws", str(repo),
                   str(ws), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "init")):
        _git(*args, cwd=ws)
    legacy = yaml.safe_load((ws / ".copier-answers.yml").read_text())["_commit"]
    assert legacy.startswith(f"v{template.__version__}-1-g")

    current = template.ensure_template_repo(store)
    assert current.tag == template.tag_name(template.__version__, 2)
    assert [p.name for p in repo.iterdir()] == [".git"]
    code, out, err = devkit("update", ws)
    assert code == 0, (out, err)
    assert "LEGACY=1" not in (ws / ".envrc.sh").read_text()  # back to the bundled template
    assert yaml.safe_load((ws / ".copier-answers.yml").read_text())["_commit"] == current.tag


def test_parallel_new_on_one_store_all_complete(tmp_path: Path) -> None:
    """8 concurrent `devkit new` on a fresh store: every workspace has every template file."""
    cmd = [sys.executable, "-m", "devkit", "new"]

    def new(i: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, str(tmp_path / f"ws{i}"), "--defaults", "--no-sync",
                               "-d", "project_name=demo"], capture_output=True, text=True,
                              check=False)

    with ThreadPoolExecutor(8) as pool:
        procs = list(pool.map(new, range(8)))
    assert [p.returncode for p in procs] == [0] * 8, [p.stderr for p in procs]

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and ".git" not in p.relative_to(root).parts}

    expected = files(tmp_path / "ws0")
    assert {".vscode/settings.json", ".envrc.sh", ".mise.toml", ".gitattributes", ".gitignore",
            "pyproject.toml", "README.md", "src/demo/__init__.py",
            ".copier-answers.yml"} <= expected
    # the same answers rendered alone, once the store is settled: every file the template gives
    reference = new(8)
    assert reference.returncode == 0, reference.stderr
    assert files(tmp_path / "ws8") == expected
    for i in range(1, 8):
        assert files(tmp_path / f"ws{i}") == expected
