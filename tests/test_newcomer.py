"""A new user's first hour: README command 1, adopted projects, hints and words that hold.

Real uv, mise, git and copier; offline against a local index whose dev tools (ruff, mypy, pytest)
are stand-ins that run and exit 0, so `mise run check` can pass without the public index.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LocalIndex, require_tool
from helpers import TEMPLATE_DEV_TOOLS, build_wheel, locked_project, run_uv, write_simple_index

from devkit import uv
from devkit.store import Store

REPO = Path(__file__).resolve().parents[1]
RUNNABLE = {"ruff": ("ruff",), "mypy": ("mypy",), "pytest": ("pytest", "py.test"),
            "pyright": ("pyright",)}


@pytest.fixture(scope="session")
def runnable_index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    """The template's dev tools as stubs whose commands run (and exit 0), plus tinyshared."""
    base = tmp_path_factory.mktemp("runnable")
    wheels = [build_wheel(base / "wheels", name, version, scripts=RUNNABLE.get(name, ()))
              for name, version in TEMPLATE_DEV_TOOLS]
    wheels.append(build_wheel(base / "wheels", "tinyshared", "1.0"))
    root = base / "simple"
    return LocalIndex(root, write_simple_index(root, wheels))


@pytest.fixture
def runnable(runnable_index: LocalIndex, monkeypatch: pytest.MonkeyPatch) -> LocalIndex:
    """Use :func:`runnable_index` as uv's default index for this test."""
    monkeypatch.setenv("UV_DEFAULT_INDEX", runnable_index.url)
    return runnable_index


def _uv_init(path: Path, *extra: str) -> Path:
    env = Store().subprocess_env()
    subprocess.run([uv.find_uv(), "init", "-q", "--app", "--name", path.name, str(path)],
                   env=env, check=True)
    if extra:
        subprocess.run([uv.find_uv(), "add", "-q", "--dev", "--no-sync", *extra], cwd=path,
                       env=env, check=True)
    return path


def _mise_run(ws: Path, task: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mise", "run", task], cwd=ws, capture_output=True, text=True,
                          check=False, timeout=300, env=env)


def _readme_block(title: str) -> str:
    """The first ```bash block after the README heading ``title``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(title, 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def _readme_command(number: int) -> str:
    lines = _readme_block("## Set-up on a fresh machine").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"# {number}."))
    return lines[index + 1]


# --- 1. uv on PATH, whatever installed devkit ----------------------------------------------------

@pytest.mark.slow
def test_readme_command_1_in_an_empty_home_then_mise_run_check(
        tmp_path: Path, runnable_index: LocalIndex) -> None:
    """README command 1 verbatim, PATH=~/.local/bin:/usr/bin:/bin: the demo's tasks find uv."""
    require_tool("mise")
    home = tmp_path / "newhome"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    env.update({
        "HOME": str(home), "PATH": f"{home}/.local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path), "UV_DEFAULT_INDEX": runnable_index.url, "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "MISE_OFFLINE": "1",
        "GIT_CONFIG_GLOBAL": os.environ["GIT_CONFIG_GLOBAL"], "GIT_CONFIG_NOSYSTEM": "1",
    })
    command = _readme_command(1)
    proc = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False, timeout=900)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert shutil.which("uv", path=env["PATH"]) is None  # uv is not on the user's PATH
    demo = Path(re.findall(r"Created workspace \S+ in (.+)", proc.stdout)[-1])
    check = _mise_run(demo, "check", env)
    assert check.returncode == 0, (check.stdout, check.stderr)
    assert "not found" not in check.stderr
    # doctor agrees: devkit's uv is found through the store's link
    doctor = subprocess.run([f"{home}/.local/bin/devkit", "doctor", str(demo), "--json"],
                            env=env, capture_output=True, text=True, check=False)
    checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["tools.uv"]["status"] == "ok", checks["tools.uv"]


def test_doctor_fix_links_devkits_uv_when_none_is_on_path(
        devkit, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("uv", path="/usr/bin:/bin"):
        pytest.skip("a system uv is on /usr/bin")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    _, out, _ = devkit("doctor", "--json")
    found = {c["id"]: c for c in json.loads(out)["checks"]}["tools.uv"]
    assert found["status"] == "fail" and found["fix"].startswith("devkit doctor --fix"), found
    _, out, _ = devkit("doctor", "--fix", "--json")
    doc = json.loads(out)
    found = {c["id"]: c for c in doc["checks"]}["tools.uv"]
    assert found["status"] == "ok", (found, doc.get("fixes_applied"))
    link = store.bin_dir / "uv"
    assert link.is_symlink() and os.access(link, os.X_OK)
    version = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("uv ")


# --- 2, 3. an adopted project is a workspace, and its tasks run ------------------------------------

def test_uv_init_then_adopt_is_a_workspace_and_check_passes(
        devkit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runnable: LocalIndex) -> None:
    """`uv init p && cd p && devkit adopt .`: doctor checks the workspace, `mise run check` passes
    although the project has no ruff, mypy or pytest."""
    require_tool("mise")
    proj = _uv_init(tmp_path / "p")
    monkeypatch.chdir(proj)
    code, out, err = devkit("adopt", ".")
    assert code == 0, (out, err)
    assert "mise tasks: check runs uv lock --check;" in out and "`uv add --dev ruff" in out
    tasks = (proj / ".mise.toml").read_text()
    for absent in ("[tasks.lint]", "[tasks.typecheck]", "[tasks.test]", "[tasks.cov]"):
        assert absent not in tasks, absent
    check = _mise_run(proj, "check")
    assert check.returncode == 0, (check.stdout, check.stderr)

    code, out, _ = devkit("doctor")
    assert f"workspace {proj}" in out.splitlines()[0], out
    assert "registered with devkit" in out
    shutil.rmtree(proj / ".venv")
    code, out, _ = devkit("doctor", ".")
    assert code == 1, out
    assert re.search(r"✗ \.venv", out), out


def test_adopt_writes_the_tasks_of_the_tools_the_project_has(
        devkit, tmp_path: Path, runnable: LocalIndex) -> None:
    require_tool("mise")
    proj = _uv_init(tmp_path / "tools", "ruff", "pytest")
    code, out, err = devkit("adopt", proj)
    assert code == 0, (out, err)
    tasks = (proj / ".mise.toml").read_text()
    assert "[tasks.lint]" in tasks and "[tasks.test]" in tasks
    assert "[tasks.typecheck]" not in tasks and "[tasks.cov]" not in tasks
    assert 'run = ["uv lock --check", { task = "lint" }, { task = "test" }]' in tasks
    assert "no task for mypy" in out
    check = _mise_run(proj, "check")
    assert check.returncode == 0, (check.stdout, check.stderr)


def test_adopt_prints_the_python_the_venv_uses(devkit, tmp_path: Path) -> None:
    proj = _uv_init(tmp_path / "py")
    text = (proj / "pyproject.toml").read_text()
    (proj / "pyproject.toml").write_text(re.sub(r'requires-python = "[^"]*"',
                                                'requires-python = ">=3.8"', text))
    code, out, err = devkit("adopt", proj)
    assert code == 0, (out, err)
    cfg = (proj / ".venv" / "pyvenv.cfg").read_text()
    version = re.search(r"version_info = (\S+)", cfg) or re.search(r"version = (\S+)", cfg)
    assert version is not None
    assert f"(Python {version.group(1)})" in out
    assert "Python 3.8" not in out


def test_adopt_failure_is_an_error_line(devkit, tmp_path: Path) -> None:
    proj = _uv_init(tmp_path / "broken")
    (proj / "pyproject.toml").write_text((proj / "pyproject.toml").read_text().replace(
        "dependencies = []", 'dependencies = ["nosuchpackage-anywhere"]'))
    code, _out, err = devkit("adopt", proj)
    assert code == 1
    assert err.startswith("devkit: error: ") and "warning" not in err, err


# --- 5. a Python uv cannot get: named, with the fix, nothing left --------------------------------

def _absent_python(store: Store) -> str:
    for candidate in ("3.14", "3.15", "3.98"):
        if uv.find_python(candidate, env=store.subprocess_env()) is None:
            return candidate
    pytest.skip("every candidate Python is installed here")


def test_new_with_a_missing_python_names_it_and_leaves_nothing(
        devkit, tmp_path: Path, store: Store) -> None:
    version = _absent_python(store)
    dst = tmp_path / "where" / "nopy"
    code, out, err = devkit("new", dst, "--defaults", "--data", f"python_version={version}")
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("devkit: error: "), err
    assert f"Python {version}" in err and f"uv python install {version}" in err
    assert "--data python_version=3." in err
    assert not dst.exists() and list(dst.parent.iterdir()) == []
    assert json.loads(devkit("projects", "list", "--json")[1])["projects"] == []
    assert "Next steps" not in out


# --- 4. `mise run align`: this project against the whole store --------------------------------------

def test_align_task_checks_this_project_against_the_store(
        make_workspace, devkit, tmp_path: Path) -> None:
    require_tool("mise")
    ws = make_workspace("here", deps=("tinyshared>=1",))  # locked at 2.0, the newest
    other = locked_project(tmp_path, "other", ["tinyshared>=1"], "tinyshared==1.0")
    high = locked_project(tmp_path, "high", ["tinyshared>=1"], "tinyshared==2.0")
    assert devkit("projects", "add", other, high)[0] == 0
    assert devkit("align", "--check")[0] == 1  # the store is not aligned: other would move

    task = _mise_run(ws, "align")
    assert task.returncode == 0, (task.stdout, task.stderr)  # this project is on the targets

    proc = run_uv(ws, "lock", "-P", "tinyshared==1.1")
    assert proc.returncode == 0, proc.stderr
    task = _mise_run(ws, "align")
    assert task.returncode == 1, (task.stdout, task.stderr)  # this project would go to 2.0
    assert "here" in task.stdout and "1 project," in task.stdout
    code, out, _ = devkit("align", "--check", "--only", other, "--json")
    doc = json.loads(out)
    assert code == 1 and [p["name"] for p in doc["projects"]] == ["other"]


# --- 10. words and exit codes ------------------------------------------------------------------------

def test_align_skips_a_project_without_a_lock(devkit, tmp_path: Path) -> None:
    locked = locked_project(tmp_path, "locked", ["tinyshared>=1"])
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "pyproject.toml").write_text('[project]\nname = "bare"\nversion = "0"\n')
    assert devkit("projects", "add", locked, bare)[0] == 0
    for flags in ((), ("--dry-run",), ("--check",)):
        code, out, err = devkit("align", *flags)
        assert code == 0, (flags, out, err)
        assert "1 skipped, 0 failed" in out, out
        assert f"uv lock --project {bare}" in out


# --- 6. the README's newcomer path ends green ----------------------------------------------------------

def test_readme_newcomer_path_ends_with_a_passing_doctor(tmp_path: Path) -> None:
    """The README block run as written, copier copying this checkout (with a Python that is on
    this machine: tests cannot download one)."""
    require_tool("mise")
    block = _readme_block("## The newcomer path")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    script = block.replace("copier copy gh:devkit-workspace/devkit my-project",
                           f"copier copy --defaults --vcs-ref HEAD -d python_version={python} "
                           f"{REPO} my-project")
    assert script != block and "git init" in script
    proc = subprocess.run(["bash", "-ec", script], cwd=tmp_path, capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-2000:])
    assert "✓ workspace is a git repository" in proc.stdout


# --- 7. README command 1 twice: one demo ----------------------------------------------------------------

def test_new_demo_replaces_the_demo_instead_of_piling_up(devkit, store: Store) -> None:
    assert "mktemp" not in _readme_command(1) and _readme_command(1).endswith("devkit new --demo")
    code, out, err = devkit("new", "--demo", "--no-sync")
    assert code == 0, (out, err)
    demo = store.home.parent / "devkit-demo"
    (demo / "scratch.txt").write_text("left by the first demo")
    code, out, err = devkit("new", "--demo", "--no-sync")
    assert code == 0, (out, err)
    assert "Replaced the previous demo workspace" in out
    projects = json.loads(devkit("projects", "list", "--json")[1])["projects"]
    assert [p["path"] for p in projects] == [str(demo)]
    assert not (demo / "scratch.txt").exists() and (demo / ".copier-answers.yml").is_file()
    assert [p.name for p in demo.parent.iterdir() if p.name.startswith(".devkit-demo")] == []


def test_new_demo_never_replaces_something_else(devkit, store: Store) -> None:
    demo = store.home.parent / "devkit-demo"
    demo.mkdir(parents=True)
    (demo / "mine.txt").write_text("mine")
    code, _, err = devkit("new", "--demo")
    assert code == 1 and "not devkit's registered demo" in err
    assert (demo / "mine.txt").read_text() == "mine"


# --- 8. a workspace copied from a local clone: doctor says what update does --------------------------

def _template_clone(root: Path) -> Path:
    """A git clone of devkit's template without version tags (a plain clone of a branch)."""
    src = root / "devkit-clone"
    src.mkdir()
    shutil.copy2(REPO / "copier.yml", src / "copier.yml")
    shutil.copytree(REPO / "templates", src / "templates")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "template")):
        subprocess.run(["git", *args], cwd=src, check=True, capture_output=True)
    return src


def _doctor_check(devkit, path: Path, check_id: str) -> dict:
    _, out, _ = devkit("doctor", path, "--json")
    return {c["id"]: c for c in json.loads(out)["checks"]}[check_id]


def test_doctor_says_what_update_does_for_a_copy_of_a_clone(devkit, tmp_path: Path) -> None:
    src = _template_clone(tmp_path)
    ws = tmp_path / "copied"
    subprocess.run(["copier", "copy", "--defaults", "--vcs-ref", "HEAD", str(src), str(ws)],
                   check=True, capture_output=True)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "init")):
        subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)
    found = _doctor_check(devkit, ws, "workspace.template-version")
    assert "its HEAD (it has no version tags)" in found["message"], found
    assert "newest tag" not in found["message"]
    shutil.rmtree(src)
    found = _doctor_check(devkit, ws, "workspace.template-version")
    assert found["status"] == "warn" and "no longer exists" in found["message"], found


# --- 9. piped output keeps every path whole --------------------------------------------------------

def test_piped_projects_list_and_store_keep_paths_whole(
        devkit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "my-project-with-a-long-name"
    deep.mkdir(parents=True)
    (deep / "pyproject.toml").write_text('[project]\nname = "deep"\nversion = "0"\n')
    home = tmp_path / ("store-with-a-long-name-" * 3)
    monkeypatch.setenv("DEVKIT_HOME", str(home))
    assert devkit("projects", "add", deep)[0] == 0
    code, out, _ = devkit("projects", "list")
    assert code == 0 and str(deep) in out, out
    code, out, _ = devkit("store")
    assert code == 0 and str(home / "projects.json") in out, out


# --- 10. words, hints and exit codes ---------------------------------------------------------------

def test_projects_alone_lists(devkit, tmp_path: Path) -> None:
    proj = _uv_init(tmp_path / "listed")
    assert devkit("projects", "add", proj)[0] == 0
    code, out, err = devkit("projects")
    assert code == 0 and str(proj) in out, (out, err)


def test_mistyped_command_suggests_the_closest(devkit) -> None:
    code, _, err = devkit("doctr")
    assert code == 2 and "did you mean doctor?" in err, err
    code, _, err = devkit("projects", "lst")
    assert code == 2 and "did you mean list?" in err, err


def test_new_into_a_project_points_to_adopt(devkit, tmp_path: Path) -> None:
    proj = _uv_init(tmp_path / "existing")
    code, _, err = devkit("new", proj, "--defaults")
    assert code == 1 and f"devkit adopt {proj}" in err, err


def test_invalid_project_name_shows_the_value_and_the_fix(devkit, tmp_path: Path) -> None:
    code, _, err = devkit("new", tmp_path / "-bad-", "--defaults", "--no-sync")
    assert code == 1 and err.count("\n") == 1, err
    assert "'-bad-'" in err and "--data project_name=" in err, err


def test_git_hints_use_one_wording(devkit, tmp_path: Path) -> None:
    """doctor's and update's `git init` hints are the same command, runnable from anywhere."""
    ws = tmp_path / "nogit"
    code, out, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, (out, err)
    shutil.rmtree(ws / ".git")
    fix = _doctor_check(devkit, ws, "workspace.git")["fix"]
    code, out, _ = devkit("update", ws, "--json")
    reason = json.loads(out)["projects"][0]["reason"]
    assert fix and f"`{fix}`" in reason, (fix, reason)
    subprocess.run(fix, shell=True, cwd="/", check=True, capture_output=True)
    assert _doctor_check(devkit, ws, "workspace.git")["status"] == "ok"


@pytest.fixture
def behind(devkit, tmp_path: Path, bundled: Path, monkeypatch: pytest.MonkeyPatch
           ) -> list[Path]:
    """Two committed workspaces, then a newer devkit whose template changed."""
    made = []
    for name in ("one", "two"):
        ws = tmp_path / name
        code, out, err = devkit("new", ws, "--defaults", "--no-sync")
        assert code == 0, (out, err)
        made.append(ws)
    gitignore = bundled / "templates" / "workspace" / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "# the template's new line\n")
    from devkit import template
    monkeypatch.setattr(template, "__version__", "0.2.0")
    return made


def test_update_dry_run_words_and_an_undo_line_per_workspace(devkit, behind: list[Path]) -> None:
    code, out, err = devkit("update", *behind, "--dry-run")
    assert code == 0, (out, err)
    assert "2 would update." in out and " updated" not in out, out
    code, out, err = devkit("update", *behind)
    assert code == 0, (out, err)
    for ws in behind:  # the undo reverts only the files the update changed
        assert f"undo: git -C {ws} --literal-pathspecs reset -q -- .copier-answers.yml" in out, out


# --- 11. right after an update you have not committed: current -----------------------------------

def test_second_update_before_commit_is_current(devkit, behind: list[Path]) -> None:
    ws = behind[0]
    code, out, err = devkit("update", ws)
    assert code == 0 and "updated" in out, (out, err)
    code, out, err = devkit("update", ws, "--json")
    assert code == 0, (out, err)
    result = json.loads(out)["projects"][0]
    assert result["status"] == "current", result
    assert "stash" not in result["reason"] and "commit" in result["reason"], result
    assert result["from_version"] == result["to_version"]


def test_second_update_before_commit_is_current_for_a_local_template(devkit, tmp_path: Path
                                                                      ) -> None:
    src = _template_clone(tmp_path)
    ws = tmp_path / "fromclone"
    subprocess.run(["copier", "copy", "--defaults", str(src), str(ws)], check=True,
                   capture_output=True)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "init")):
        subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)
    gitignore = src / "templates" / "workspace" / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "# a newer line\n")
    subprocess.run(["git", "commit", "-qam", "newer"], cwd=src, check=True, capture_output=True)
    code, out, err = devkit("update", ws, "--json")
    assert code == 0 and json.loads(out)["projects"][0]["status"] == "updated", (out, err)
    code, out, err = devkit("update", ws, "--json")
    result = json.loads(out)["projects"][0]
    assert code == 0 and result["status"] == "current", result
    assert "stash" not in result["reason"], result
