"""The copier template, rendered with real copier exactly as a user's `copier copy` would: answers
as validated data and ``unsafe=False``, so a template that needed ``--trust`` would fail here
(pytest-render's fixture renders with ``unsafe=True`` and unvalidated defaults, which would hide it)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

LOADERS = ("mise", "direnv", "both")
NAMES = ("demo", "My.Project-2", "a", "x_y", "9lives", "Uber-Tool")
REPO = Path(__file__).resolve().parents[1]


class _Renderer:
    """Render the template with real copier as a user would: answers as ``--data``, no trust."""

    def __init__(self, src: Path, base: Path) -> None:
        self.src = src
        self.base = base
        self.count = 0

    def attempt(self, **answers: object) -> tuple[Path, Exception | None]:
        import copier

        self.count += 1
        dst = self.base / f"r{self.count}" / str(answers.get("project_name", "ws")).strip()
        try:
            copier.run_copy(str(self.src), str(dst), data=answers, defaults=True, unsafe=False,
                            quiet=True)
        except Exception as exc:  # noqa: BLE001 - the test inspects copier's error
            return dst, exc
        return dst, None


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's files (copier.yml, templates/) outside git: copier renders them in place
    instead of cloning the repository for every render."""
    import shutil

    src = tmp_path_factory.mktemp("template")
    shutil.copy2(REPO / "copier.yml", src / "copier.yml")
    shutil.copytree(REPO / "templates", src / "templates",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return src


@pytest.fixture
def render(template_dir: Path, tmp_path: Path) -> _Renderer:
    """A renderer of the template into ``tmp_path``: answers go in as data (validated), untrusted."""
    return _Renderer(template_dir, tmp_path / "render")


def _copy(render: _Renderer, **answers: object) -> Path:
    root, error = render.attempt(**answers)
    assert error is None, error
    return root


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("name", "loader"),
                         [(name, LOADERS[i % len(LOADERS)]) for i, name in enumerate(NAMES)])
def test_answer_matrix(render, loader: str, name: str) -> None:
    root = _copy(render, project_name=name, env_loader=loader)
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
        assert "tools" not in mise  # uv owns Python and uv: mise downloads nothing
        assert mise["settings"]["python"] == {"uv_venv_auto": "source"}
        assert mise["env"]["_"] == {"source": "./.envrc.sh"}
        assert set(mise["tasks"]) == {"sync", "lock", "test", "cov", "lint", "fmt", "typecheck",
                                      "check", "doctor", "align"}
        # mise's own templating survives jinja (escaped with raw blocks)
        assert mise["tasks"]["test"]["dir"] == "{{config_root}}"


def test_defaults_give_a_complete_workspace(render) -> None:
    root = _copy(render, project_name="full")
    assert _files(root) == [
        ".copier-answers.yml", ".editorconfig", ".envrc.sh", ".gitattributes",
        ".github/workflows/ci.yml", ".gitignore", ".mise.toml", ".python-version",
        ".vscode/settings.json", "LICENSE", "README.md", "pyproject.toml", "src/full/__init__.py",
        "tests/test_full.py",
    ]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert project["project"]["readme"] == "README.md"
    assert "urls" not in project["project"]
    assert project["dependency-groups"]["dev"] == ["pytest>=8", "pytest-cov>=6", "ruff>=0.9",
                                                   "mypy>=1.15"]
    assert project["tool"]["coverage"]["run"]["branch"] is True
    assert project["tool"]["mypy"]["strict"] is True
    assert project["tool"]["ruff"]["lint"]["select"]
    assert "exclude-newer" not in project["tool"].get("uv", {})
    mise = tomllib.loads((root / ".mise.toml").read_text())
    assert mise["tasks"]["check"]["run"] == [
        "uv lock --check", {"task": "lint"}, {"task": "typecheck"}, {"task": "cov"},
    ]
    license_text = (root / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 20")
    assert "full contributors" in license_text and "<year>" not in license_text
    readme = (root / "README.md").read_text()
    for task in mise["tasks"]:
        assert f"mise run {task}" in readme, task
    assert "pip install devkit`" not in readme and "github.com/org" not in readme
    assert "uv tool install devkit-workspace" in readme
    assert "https://pypi.org/project/devkit-workspace/" in readme
    assert "root = true" in (root / ".editorconfig").read_text()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "-bad"}, "Invalid project name"),
        ({"project_name": "has space"}, "Invalid project name"),
        ({"project_name": "$(touch pwned)"}, "Invalid project name"),
        ({"project_name": "demo\n"}, "Invalid project name"),
        ({"project_name": "ok", "package_name": "1abc"}, "Invalid package name"),
        ({"project_name": "ok", "package_name": "pkg\n"}, "Invalid package name"),
        ({"project_name": "ok", "package_name": "class"}, "is a Python keyword"),
        ({"project_name": "ok", "author_email": "nope"}, "Invalid e-mail"),
        ({"project_name": "ok", "author_email": "a@b.c\n"}, "Invalid e-mail"),
        ({"project_name": "ok", "author_email": 'a"b@c.d'}, "Invalid e-mail"),
        ({"project_name": "ok", "author_name": "Ann\nB"}, "control characters"),
        ({"project_name": "ok", "uv_version": "1.x"}, "Invalid uv version"),
        ({"project_name": "ok", "uv_version": "0.13\n"}, "Invalid uv version"),
        ({"project_name": "ok", "python_version": "3.13\n"}, "Invalid Python version"),
        ({"project_name": "ok", "python_version": "3"}, "Invalid Python version"),
        ({"project_name": "ok", "python_version": "3.12.1"}, "Invalid Python version"),
        ({"project_name": "ok", "python_version": "3.12", "min_python": "3.13"}, "is newer than"),
        ({"project_name": "ok", "min_python": "3.x"}, "Invalid minimum Python version"),
        ({"project_name": "ok", "description": "two\nlines"}, "single line"),
        ({"project_name": "ok", "description": "trailing\n"}, "single line"),
        ({"project_name": "ok", "description": "nul\x00"}, "single line"),
        ({"project_name": "ok", "description": "sep\u2028"}, "single line"),
        ({"project_name": "ok", "repository_url": "https://x.org/a b"}, "Invalid repository URL"),
        ({"project_name": "ok", "repository_url": 'https://x.org/"'}, "Invalid repository URL"),
        ({"project_name": "ok", "repository_url": "https://x.org/a\n"}, "Invalid repository URL"),
        ({"project_name": "ok", "repository_url": "javascript:alert(1)"}, "Invalid repository URL"),
        ({"project_name": "ok", "package": "maybe"}, 'Invalid answer "maybe" for package'),
        ({"project_name": "ok", "lint": "maybe"}, 'Invalid answer "maybe" for lint'),
        ({"project_name": "ok", "coverage": "2x"}, 'Invalid answer "2x" for coverage'),
        ({"project_name": "ok", "cli_name": "go"}, "needs package=true"),
        ({"project_name": "ok", "package": True, "cli_name": "a b"}, "Invalid command name"),
        ({"project_name": "ok", "package": True, "cli_name": "go\n"}, "Invalid command name"),
        ({"project_name": "ok", "cooldown_days": -1}, "between 0 and 365"),
        ({"project_name": "ok", "license": "WTFPL"}, "WTFPL"),
        ({"project_name": "ok", "type_checker": "pytype"}, "pytype"),
        ({"project_name": "ok", "ci": "travis"}, "travis"),
        ({"project_name": "ok", "git_hooks": "husky"}, "husky"),
    ],
)
def test_invalid_answers_are_rejected(render, answers: dict[str, object], message: str) -> None:
    _root, error = render.attempt(**answers)
    assert error is not None
    assert message in str(error)


@pytest.mark.parametrize("value", ["yes", "False", "1", "OFF"])
def test_boolean_words_are_accepted(render, value: str) -> None:
    root = _copy(render, project_name="boo", package=value)
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["package"] is (value.lower() in ("yes", "true", "1", "on"))


def test_files_and_pins(render) -> None:
    root = _copy(render, project_name="pins", python_version="3.13", min_python="3.11",
                 uv_version="0.13.9")
    assert (root / ".python-version").read_text().strip() == "3.13"
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert pyproject["project"]["classifiers"][1:] == [
        f"Programming Language :: Python :: 3.{m}" for m in (11, 12, 13)
    ]
    assert pyproject["tool"]["uv"]["required-version"] == ">=0.13.9"
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


def test_python_version_is_not_a_fixed_list(render) -> None:
    """A Python newer than any list written today (devkit new passes the running one)."""
    root = _copy(render, project_name="future", python_version="3.15")
    assert (root / ".python-version").read_text() == "3.15\n"
    assert tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"] \
        == ">=3.15"


def test_package_option_adds_build_backend(render) -> None:
    root = _copy(render, project_name="pkg-demo", package=True)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "uv_build"
    assert pyproject["tool"]["uv"]["build-backend"]["module-name"] == "pkg_demo"
    assert (root / "src/pkg_demo/py.typed").is_file()
    assert "scripts" not in pyproject["project"]


def test_cli_option(render) -> None:
    root = _copy(render, project_name="clidemo", package=True, cli_name="hello-cli")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"hello-cli": "clidemo.cli:main"}
    cli = (root / "src/clidemo/cli.py").read_text()
    assert "argparse" in cli
    compile(cli, "cli.py", "exec")
    assert "def test_" in (root / "tests/test_cli.py").read_text()
    # the generated CLI runs and its tests pass (with this interpreter's pytest)
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    out = subprocess.run([sys.executable, "-m", "clidemo.cli", "you"], cwd=root, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout == "Hello, you!\n"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests"], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout


@pytest.mark.parametrize(
    ("spdx", "first_line"),
    [
        ("MIT", "MIT License"),
        ("Apache-2.0", "Apache License"),
        ("BSD-3-Clause", "Copyright (c) 20"),
        ("GPL-3.0-or-later", "GNU GENERAL PUBLIC LICENSE"),
        ("MPL-2.0", "Mozilla Public License Version 2.0"),
        ("ISC", "ISC License"),
        ("Proprietary", "Copyright (c) 20"),
    ],
)
def test_license(render, spdx: str, first_line: str) -> None:
    root = _copy(render, project_name="lic", license=spdx, author_name="Ada Lovelace")
    text = (root / "LICENSE").read_text()
    assert text.lstrip().startswith(first_line)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not any(line != line.rstrip() for line in text.splitlines())
    if spdx in ("MIT", "BSD-3-Clause", "ISC", "Proprietary"):
        assert "Ada Lovelace" in text
    assert "{{" not in text and "<<var" not in text
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    expected = "LicenseRef-Proprietary" if spdx == "Proprietary" else spdx
    assert project["license"] == expected
    assert ("Private :: Do Not Upload" in project["classifiers"]) == (spdx == "Proprietary")


def test_repository_url(render) -> None:
    root = _copy(render, project_name="urls", repository_url="https://git.example.org/team/urls")
    urls = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]
    assert urls == {"Repository": "https://git.example.org/team/urls",
                    "Issues": "https://git.example.org/team/urls/issues"}


def test_cooldown(render) -> None:
    root = _copy(render, project_name="cool", cooldown_days=7)
    uv_cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]
    assert uv_cfg["exclude-newer"] == "7 days"


# --- every option alone, all on, all off: renders, locks and syncs offline (stub dev tools) ------

ALL_OFF = {"lint": False, "type_checker": "none", "coverage": False, "git_hooks": "none",
           "ci": "none", "license": "Proprietary"}
ALL_ON = {"package": True, "cli_name": "allon", "lint": True, "type_checker": "pyright",
          "coverage": True, "git_hooks": "pre-commit", "ci": "gitlab",
          "repository_url": "https://github.com/team/allon", "min_python": "3.10"}
OPTION_SETS = {
    "all-off": ALL_OFF,
    "all-on": ALL_ON,
    "lint-off": {"lint": False},
    "pyright": {"type_checker": "pyright"},
    "no-types": {"type_checker": "none"},
    "cov-off": {"coverage": False},
    "prek": {"git_hooks": "prek"},
    "gitlab-direnv": {"ci": "gitlab", "env_loader": "direnv"},
    "github-direnv": {"env_loader": "direnv"},
    "package": {"package": True},
}


def _tasks(root: Path) -> set[str]:
    mise = root / ".mise.toml"
    return set(tomllib.loads(mise.read_text())["tasks"]) if mise.exists() else set()


def _check_ci(root: Path, answers: dict[str, object]) -> None:
    """The CI file parses as YAML, runs on three systems and calls only tasks that exist."""
    ci = answers.get("ci", "github")
    github = root / ".github/workflows/ci.yml"
    gitlab = root / ".gitlab-ci.yml"
    assert github.exists() == (ci == "github")
    assert gitlab.exists() == (ci == "gitlab")
    if ci == "none":
        return
    text = (github if ci == "github" else gitlab).read_text()
    doc = yaml.safe_load(text)
    tasks = _tasks(root)
    used = set(re.findall(r"mise run ([\w-]+)", text))
    assert used <= tasks, used - tasks
    if answers.get("env_loader", "mise") == "direnv":
        assert not used and "mise" not in text.replace("mise.run", "")
    else:
        assert used  # the checks run through the generated tasks
    lint = answers.get("lint", True)
    types = answers.get("type_checker", "mypy")
    assert ("ruff" in text or "lint" in used) == lint
    assert (types in text or "typecheck" in used) == (types != "none")
    assert "uv lock --check" in text
    if ci == "github":
        job = doc["jobs"]["check"]
        assert job["strategy"]["matrix"]["os"] == ["ubuntu-latest", "macos-latest",
                                                   "windows-latest"]
        setup = next(s for s in job["steps"] if s.get("uses", "").startswith("astral-sh/setup-uv"))
        assert setup["with"] == {"enable-cache": True, "cache-dependency-glob": "uv.lock"}
        uses = [s.get("uses", "") for s in job["steps"]]
        assert any(u.startswith("jdx/mise-action") for u in uses) == bool(used)
    else:
        assert {"linux", "macos", "windows"} <= set(doc)
        assert doc[".check"]["cache"]["key"] == {"files": ["uv.lock"]}


def _uv(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from devkit import uv
    from devkit.store import Store

    return subprocess.run([uv.find_uv(), *args], cwd=root, env=Store().subprocess_env(),
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("options", list(OPTION_SETS), ids=list(OPTION_SETS))
def test_option_sets_render_lock_and_sync(render, options: str) -> None:
    answers = {"project_name": "opts", "python_version": "3.11", **OPTION_SETS[options]}
    root = _copy(render, **answers)
    # every TOML file parses, every Python file compiles, every YAML file parses
    for path in root.rglob("*"):
        if path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")
        elif path.suffix in (".yml", ".yaml"):
            yaml.safe_load(path.read_text())
    _check_ci(root, answers)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    dev = " ".join(pyproject["dependency-groups"]["dev"])
    lint, types = answers.get("lint", True), answers.get("type_checker", "mypy")
    hooks = answers.get("git_hooks", "none")
    assert ("ruff" in dev) == (lint or hooks != "none")
    assert ("mypy" in dev) == (types == "mypy")
    assert ("pyright" in dev) == (types == "pyright")
    assert ("pytest-cov" in dev) == answers.get("coverage", True)
    assert (hooks in dev) == (hooks != "none")
    assert (root / ".pre-commit-config.yaml").exists() == (hooks != "none")
    if hooks != "none":
        config = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
        ids = {h["id"] for repo in config["repos"] for h in repo["hooks"]}
        assert {"ruff-check", "ruff-format", "trailing-whitespace", "check-yaml", "check-toml",
                "uv-lock-check"} <= ids
        assert "hooks" in _tasks(root) or answers.get("env_loader") == "direnv"
    if root.joinpath(".mise.toml").exists():
        check = tomllib.loads((root / ".mise.toml").read_text())["tasks"]["check"]["run"]
        assert [step["task"] for step in check[1:]] == (
            (["lint"] if lint else []) + (["typecheck"] if types != "none" else [])
            + (["cov"] if answers.get("coverage", True) else ["test"]))
    package = bool(answers.get("package"))
    assert (root / "src/opts/py.typed").exists() == (package and types != "none")
    lock = _uv(root, "lock")
    assert lock.returncode == 0, lock.stderr
    # a package needs its build backend (uv_build, not in the offline index) to be installed
    sync = _uv(root, "sync", "--locked", *(["--no-install-project"] if package else []))
    assert sync.returncode == 0, sync.stderr
    assert (root / ".venv").is_dir()


# --- hostile values arrive intact ----------------------------------------------------------------

HOSTILE = "rocket 🚀 $(touch pwned1) `touch pwned2` \"q\" 'q' ; touch pwned3 %s {{x}} \\"
HOSTILE_VALUES = [
    "rocket 🚀",
    'ends with a quote "',
    "ends with a backslash \\",
    '""" triple',
    "a\\nb \\u0041 \\' tab\\t",
    HOSTILE,
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_arrive_intact(render, tmp_path: Path, value: str) -> None:
    root = _copy(render, project_name="safe", description=value, author_name=value,
                 author_email="a'b@c.d", **{**ALL_ON, "ci": "github", "env_loader": "both"})
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == value
    assert pyproject["project"]["authors"] == [{"name": value, "email": "a'b@c.d"}]
    for path in root.rglob("*"):
        if path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".py":
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        elif path.suffix in (".yml", ".yaml"):
            yaml.safe_load(path.read_text(encoding="utf-8"))
    init = (root / "src/safe/__init__.py").read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(init), clean=False) == value
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["description"] == value and answers["author_name"] == value
    assert value in (root / "LICENSE").read_text(encoding="utf-8")
    assert value in (root / "README.md").read_text(encoding="utf-8")
    probe = subprocess.run(
        ["bash", "-c", 'set -eu; . ./.envrc.sh; printf "%s" "$DEVKIT_PROJECT"'],
        cwd=root, env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=True,
    )
    assert probe.stdout == "safe"
    assert not list(root.glob("pwned*"))
    assert not list(tmp_path.glob("pwned*"))


# --- the environment script ----------------------------------------------------------------------

def test_envrc_sh_defaults_and_overrides(render, tmp_path: Path) -> None:
    root = _copy(render, project_name="envs")
    script = ('set -eu; . ./.envrc.sh; '
              'printf "%s|%s|%s|%s" "$DEVKIT_HOME" "$UV_CACHE_DIR" "$UV_PYTHON_INSTALL_DIR" '
              '"$DEVKIT_PROJECT"')
    base = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}

    def run(**env: str) -> list[str]:
        out = subprocess.run(["bash", "-c", script], cwd=root, env={**base, **env},
                             capture_output=True, text=True, check=True)
        return out.stdout.split("|")

    home = f"{tmp_path}/.local/share/devkit"
    assert run() == [home, f"{home}/uv/cache", f"{home}/uv/python", "envs"]
    assert run(XDG_DATA_HOME="/x")[0] == "/x/devkit"
    assert run(DEVKIT_HOME="/d")[:3] == ["/d", "/d/uv/cache", "/d/uv/python"]
    assert run(DEVKIT_HOME="/d", UV_CACHE_DIR="/c")[1] == "/c"
    assert run(DEVKIT_PROJECT="other")[3] == "other"
    # .envrc.local.sh is read first: a store moved there moves every derived path
    (root / ".envrc.local.sh").write_text('export DEVKIT_HOME="/moved"\nexport DEVKIT_PROJECT=p2\n')
    assert run() == ["/moved", "/moved/uv/cache", "/moved/uv/python", "p2"]
    (root / ".envrc.local.sh").write_text('export UV_CACHE_DIR="/local"\n')
    assert run()[1] == "/local"


# --- plain copier ----------------------------------------------------------------------------------

def test_copier_copy_needs_no_trust(tmp_path: Path) -> None:
    """`copier copy` of the repo itself, as a user would: no --trust, the name from the folder."""
    proc = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD", str(REPO),
         str(tmp_path / "my-project")], check=False, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    answers = yaml.safe_load((tmp_path / "my-project" / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "my-project"
    assert answers["package_name"] == "my_project"
    message = proc.stdout + proc.stderr
    assert "devkit adopt ." in message
    assert "uv sync" in message and "environment is loaded" in message
    assert "mise trust" in message


def test_copier_and_devkit_new_give_the_same_project(tmp_path: Path) -> None:
    """`copier copy --defaults` and `devkit new --defaults` (its render step) agree.

    devkit new fills python_version (and uv_version) from the machine, which plain copier cannot
    see; with those two given, every rendered file is identical.
    """
    from devkit import template

    pins = {"python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
            "uv_version": "0.13"}
    plain = tmp_path / "a" / "same"
    args = [a for k, v in pins.items() for a in ("-d", f"{k}={v}")]
    subprocess.run([sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD", *args, str(REPO),
                    str(plain)], check=True, capture_output=True)
    via_devkit = tmp_path / "b" / "same"
    template.render(str(REPO), via_devkit, data={}, defaults=True, vcs_ref="HEAD",
                    user_defaults={"project_name": "same", **pins})
    assert _files(plain) == _files(via_devkit)
    for rel in _files(plain):
        if rel != ".copier-answers.yml":
            assert (plain / rel).read_bytes() == (via_devkit / rel).read_bytes(), rel
