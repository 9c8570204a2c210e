"""`devkit adopt`: an existing uv project or a plain `copier copy` joins the store, files kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from devkit import template, uv
from devkit.store import Store


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts}


def _registered(devkit) -> list[str]:
    return [p["path"] for p in json.loads(devkit("projects", "list", "--json")[1])["projects"]]


def test_adopt_a_plain_uv_project(devkit, tmp_path: Path, store: Store) -> None:
    proj = tmp_path / "plain"
    env = store.subprocess_env()
    subprocess.run([uv.find_uv(), "init", "-q", "--app", "--no-package", "--vcs", "none", "--name", "plain", str(proj)],
                   env=env, check=True)
    subprocess.run([uv.find_uv(), "add", "-q", "--no-sync", "tinyshared"], cwd=proj, env=env,
                   check=True)
    (proj / ".gitattributes").write_text("*.png binary")  # no final newline: kept, appended to
    before = _tree(proj)

    code, out, err = devkit("adopt", proj)
    assert code == 0, (out, err)
    after = _tree(proj)
    for name in ("pyproject.toml", "main.py", "uv.lock", ".python-version", "README.md"):
        assert after[name] == before[name], name  # the user's files are untouched
    # uv owns the Python: the project's own .python-version (kept above) is what it uses
    assert '_.source = "./.envrc.sh"' in after[".mise.toml"].decode()
    assert 'DEVKIT_PROJECT="${DEVKIT_PROJECT:-plain}"' in after[".envrc.sh"].decode()
    assert ".envrc" not in after and ".copier-answers.yml" not in after
    assert after[".gitattributes"].decode().splitlines() == [
        "*.png binary", "# A CRLF shell script silently puts \"\\r\" into every exported value.",
        "*.sh text eol=lf", ".envrc text eol=lf"]
    assert ".envrc.local.sh" in after[".gitignore"].decode().splitlines()
    assert str(proj) in _registered(devkit)
    assert "Synced .venv (Python 3." in out
    assert " 0 of " not in out.split("Synced .venv")[1].splitlines()[0]
    assert "devkit doctor" in out

    # adopting again changes nothing and says so
    code, out, err = devkit("adopt", proj, "--no-sync")
    assert code == 0, err
    assert _tree(proj) == after and "Already registered" in out and "wrote" not in out


def test_adopt_a_plain_copier_workspace(devkit, tmp_path: Path, store: Store) -> None:
    current = template.ensure_template_repo(store)
    ws = tmp_path / "cw"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # the one uv finds offline
    subprocess.run([sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", "-d",
                    "project_name=cw", "-d", "env_loader=both", "-d", f"python_version={python}",
                    "-r", current.tag, str(current.repo), str(ws)],
                   check=True, capture_output=True)
    envrc_sh = ws / ".envrc.sh"
    envrc_sh.write_text(envrc_sh.read_text() + "export MINE=1\n")  # the user's own edit
    (ws / ".envrc").unlink()  # and one file lost since
    before = _tree(ws)

    code, out, err = devkit("adopt", ws)
    assert code == 0, (out, err)
    after = _tree(ws)
    assert after[".envrc.sh"] == before[".envrc.sh"] and "kept your .envrc.sh" in out
    assert after[".mise.toml"] == before[".mise.toml"]
    assert "source_env ./.envrc.sh" in after[".envrc"].decode()  # env_loader=both kept
    assert after[".copier-answers.yml"] == before[".copier-answers.yml"]
    assert yaml.safe_load(after[".copier-answers.yml"])["project_name"] == "cw"
    assert after["pyproject.toml"] == before["pyproject.toml"]
    assert "(answers from .copier-answers.yml)" in out
    assert str(ws) in _registered(devkit)
    assert (ws / "uv.lock").is_file() and (ws / ".venv").is_dir()  # uv sync created the lock


def test_adopt_refuses_a_directory_without_pyproject(devkit, tmp_path: Path) -> None:
    empty = tmp_path / "my dir"
    empty.mkdir()
    code, _, err = devkit("adopt", empty)
    assert code == 1 and err.count("\n") == 1
    assert "no pyproject.toml" in err and f"devkit new '{empty}'" in err
    assert list(empty.iterdir()) == [] and _registered(devkit) == []


def test_adopt_keeps_and_never_approves_a_foreign_config(devkit, tmp_path: Path,
                                                         store: Store) -> None:
    """A cloned project's own .mise.toml may run code: it is kept, never recorded or trusted."""
    proj = tmp_path / "cloned"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "cloned"\nversion = "0"\n'
                                         'requires-python = ">=3.12.1"\n')
    hostile = '[env]\n_.source = "./payload.sh"\n'
    (proj / ".mise.toml").write_text(hostile)
    (proj / ".gitignore").symlink_to(tmp_path / "elsewhere")
    code, out, err = devkit("adopt", proj, "--no-sync")
    assert code == 0, err
    assert (proj / ".mise.toml").read_text() == hostile and "kept your .mise.toml" in out
    assert 'add `_.source = "./.envrc.sh"` to its [env] table' in out
    assert (proj / ".gitignore").is_symlink() and not (tmp_path / "elsewhere").exists()
    assert "Ran `mise trust`" not in out and f"mise trust {proj}" in out
    # only what adopt itself wrote (.envrc.sh) is recorded as devkit's render
    assert str(proj / ".mise.toml") not in store.rendered_file.read_text()
    assert "environment loaded by mise" in out  # no venv yet (--no-sync): no Python claimed
