"""The copier template, rendered with pytest-copie (real copier, no trust needed)."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

LOADERS = ("mise", "direnv", "both")
NAMES = ("demo", "My.Project-2", "a", "x_y", "9lives", "Über-Tool".replace("Ü", "U"))


def _copy(copie, **answers):
    result = copie.copy(extra_answers=answers)
    assert result.exit_code == 0, result.exception
    return result.project_dir


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", NAMES)
def test_answer_matrix(copie, loader: str, name: str) -> None:
    root = _copy(copie, project_name=name, env_loader=loader)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == name
    pkg = yaml.safe_load((root / ".copier-answers.yml").read_text())["package_name"]
    assert pkg.isidentifier()
    assert (root / "src" / pkg / "__init__.py").is_file()
    assert (root / "tests" / f"test_{pkg}.py").is_file()
    assert (root / ".mise.toml").exists() == (loader != "direnv")
    assert (root / ".envrc").exists() == (loader != "mise")
    subprocess.run(["bash", "-n", root / ".envrc.sh"], check=True)
    if loader != "direnv":
        mise = tomllib.loads((root / ".mise.toml").read_text())
        assert mise["env"]["_"]["source"] == "./.envrc.sh"
        assert mise["env"]["_"]["python"]["venv"] == {"path": ".venv", "create": True}
        assert set(mise["tasks"]) >= {"sync", "lock", "test", "doctor", "align"}
        # mise's own templating survives jinja (escaped with raw blocks)
        assert mise["tasks"]["test"]["dir"] == "{{config_root}}"


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "-bad"}, "Invalid project name"),
        ({"project_name": "has space"}, "Invalid project name"),
        ({"project_name": "$(touch pwned)"}, "Invalid project name"),
        ({"project_name": "ok", "package_name": "1abc"}, "Invalid package name"),
        ({"project_name": "ok", "package_name": "class"}, "is a Python keyword"),
        ({"project_name": "ok", "author_email": "nope"}, "Invalid e-mail"),
        ({"project_name": "ok", "uv_version": "1.x"}, "Invalid uv version"),
        ({"project_name": "ok", "description": "two\nlines"}, "single line"),
    ],
)
def test_invalid_answers_are_rejected(copie, answers: dict[str, str], message: str) -> None:
    result = copie.copy(extra_answers=answers)
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_files_and_pins(copie) -> None:
    root = _copy(copie, project_name="pins", python_version="3.13", uv_version="0.13.9")
    mise = tomllib.loads((root / ".mise.toml").read_text())
    assert mise["tools"] == {"python": "3.13", "uv": "0.13.9"}
    assert (root / ".python-version").read_text().strip() == "3.13"
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.13"
    assert pyproject["dependency-groups"]["dev"] == ["pytest>=8"]
    assert "build-system" not in pyproject
    assert ".envrc.local.sh" in (root / ".gitignore").read_text().splitlines()
    attrs = (root / ".gitattributes").read_text()
    assert "*.sh text eol=lf" in attrs
    assert b"\r" not in (root / ".envrc.sh").read_bytes()
    vscode = json.loads((root / ".vscode" / "settings.json").read_text())
    assert vscode["python.defaultInterpreterPath"] == "${workspaceFolder}/.venv/bin/python"
    readme = (root / "README.md").read_text()
    for words in ("WSL2", "/mnt/c", "macOS", "mise trust"):
        assert words in readme


def test_package_option_adds_build_backend(copie) -> None:
    root = _copy(copie, project_name="pkg-demo", package=True)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "uv_build"
    assert pyproject["tool"]["uv"]["build-backend"]["module-name"] == "pkg_demo"


HOSTILE = "$(touch pwned1) `touch pwned2` \"q\" 'q' ; touch pwned3 \\"


def test_hostile_answers_are_inert(copie, tmp_path: Path) -> None:
    root = _copy(copie, project_name="safe", description=HOSTILE, author_name=HOSTILE,
                 author_email="a'b@c.d")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == HOSTILE
    assert pyproject["project"]["authors"] == [{"name": HOSTILE, "email": "a'b@c.d"}]
    probe = subprocess.run(
        ["bash", "-c", 'set -eu; . ./.envrc.sh; printf "%s" "$DEVKIT_PROJECT"'],
        cwd=root, env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=True,
    )
    assert probe.stdout == "safe"
    assert not list(root.glob("pwned*"))
    assert not list(tmp_path.glob("pwned*"))
    # the docstring holding the description still compiles
    compile((root / "src/safe/__init__.py").read_text(), "__init__.py", "exec")


def test_envrc_sh_defaults_and_overrides(copie, tmp_path: Path) -> None:
    root = _copy(copie, project_name="envs")
    script = 'set -eu; . ./.envrc.sh; printf "%s|%s|%s" "$DEVKIT_HOME" "$UV_CACHE_DIR" "$UV_PYTHON_INSTALL_DIR"'
    base = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}

    def run(**env: str) -> list[str]:
        out = subprocess.run(["bash", "-c", script], cwd=root, env={**base, **env},
                             capture_output=True, text=True, check=True)
        return out.stdout.split("|")

    home = f"{tmp_path}/.local/share/devkit"
    assert run() == [home, f"{home}/uv/cache", f"{home}/uv/python"]
    assert run(XDG_DATA_HOME="/x")[0] == "/x/devkit"
    assert run(DEVKIT_HOME="/d") == ["/d", "/d/uv/cache", "/d/uv/python"]
    assert run(DEVKIT_HOME="/d", UV_CACHE_DIR="/c")[1] == "/c"
    (root / ".envrc.local.sh").write_text('export UV_CACHE_DIR="/local"\n')
    assert run()[1] == "/local"


def test_copier_copy_needs_no_trust(tmp_path: Path) -> None:
    """`copier copy` of the repo itself, as a user would, without --trust."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        ["copier", "copy", "--defaults", "--vcs-ref", "HEAD", "-d", "project_name=plain",
         str(repo), str(tmp_path / "plain")], check=False,
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "plain" / ".copier-answers.yml").is_file()
