"""``devkit doctor`` in repositories cloned from anywhere: it runs no foreign code, trusts only what
devkit rendered, and tells the truth about the venv's link to the store (real mise, direnv, uv, git).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool
from test_doctor import by_id, doctor_json

from devkit import trust, uv
from devkit.store import Store

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def no_ci(monkeypatch) -> None:
    """CI=true makes mise trust every config: the trust tests need mise's real behaviour."""
    monkeypatch.delenv("CI", raising=False)


def hostile_repo(root: Path, marker: Path, *, loader: str = "mise", mise_toml: str | None = None,
                 git_init: bool = True) -> Path:
    """A cloned repository that looks like a devkit workspace and runs ``touch marker`` when any
    of its configs is evaluated."""
    root.mkdir(parents=True)
    (root / ".copier-answers.yml").write_text(f"_commit: v0.1.0\nenv_loader: {loader}\n"
                                             "project_name: evil\npython_version: '3.11'\n")
    (root / "evil.sh").write_text(f"touch {marker}\nexport DEVKIT_PROJECT=evil\n")
    (root / ".envrc.sh").write_text(f"touch {marker}\nexport DEVKIT_PROJECT=evil\n")
    (root / ".mise.toml").write_text(mise_toml or '[env]\n_.source = "./evil.sh"\n')
    (root / ".envrc").write_text(f"touch {marker}\nsource_env ./evil.sh\n")
    (root / ".python-version").write_text("3.11\n")
    (root / "pyproject.toml").write_text('[project]\nname = "evil"\nversion = "1"\n'
                                         'requires-python = ">=3.11"\ndependencies = []\n')
    (root / "sub" / "dir").mkdir(parents=True)
    if git_init:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def mise_trusted_links(home: Path) -> list[str]:
    state = home / ".local" / "state" / "mise" / "trusted-configs"
    return sorted(os.listdir(state)) if state.is_dir() else []


@pytest.mark.parametrize("loader", ["mise", "both"])
@pytest.mark.parametrize("fix", [False, True])
@pytest.mark.parametrize("where", [".", "sub/dir"])
def test_hostile_source_never_runs(devkit, tmp_path, no_ci, loader, fix, where) -> None:
    require_tool("mise")
    if loader == "both":
        require_tool("direnv")
    marker = tmp_path / "pwned"
    repo = hostile_repo(tmp_path / "clone", marker, loader=loader)
    code, doc = doctor_json(devkit, repo / where, *(["--fix"] if fix else []))
    assert not marker.exists(), "doctor evaluated a foreign config"
    checks = by_id(doc)
    assert doc["workspace"] == str(repo)
    assert checks["workspace.mise-trusted"]["status"] == "fail"
    assert checks["workspace.mise-env"]["status"] == "skip"
    if loader == "both":
        assert checks["workspace.direnv-allowed"]["status"] == "fail"
        assert checks["workspace.direnv-env"]["status"] == "skip"
    if fix:
        assert mise_trusted_links(Path(os.environ["HOME"])) == []
        assert any("not fixed" in line and "not what devkit rendered" in line
                   for line in doc["fixes_applied"]), doc["fixes_applied"]
    assert code == 1


@pytest.mark.parametrize("fix", [False, True])
def test_hostile_source_never_runs_from_the_shell(tmp_path, no_ci, fix) -> None:
    """As a user runs it: `devkit doctor` with no PATH, from a subdirectory of the clone."""
    require_tool("mise")
    marker = tmp_path / "pwned"
    repo = hostile_repo(tmp_path / "clone", marker)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "devkit", "doctor", *(["--fix"] if fix else [])],
                          cwd=repo / "sub" / "dir", env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    assert f"workspace {repo} (env_loader mise)" in proc.stdout
    assert not marker.exists()


def test_ci_trust_is_not_devkit_trust(devkit, tmp_path, monkeypatch) -> None:
    require_tool("mise")
    monkeypatch.setenv("CI", "true")  # mise trusts every config under CI
    marker = tmp_path / "pwned"
    repo = hostile_repo(tmp_path / "clone", marker)
    (repo / ".venv" / "bin").mkdir(parents=True)  # every prerequisite of the mise env check holds
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.11.7\n")
    (repo / ".venv" / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    _, doc = doctor_json(devkit, repo)
    trusted = by_id(doc)["workspace.mise-trusted"]
    assert trusted["status"] == "warn" and "because CI is set" in trusted["message"]
    # a prerequisite that holds (warn: a .venv devkit did not create, which it does not run)
    assert by_id(doc)["workspace.venv"]["status"] in ("ok", "warn")
    env_check = by_id(doc)["workspace.mise-env"]
    assert env_check["status"] == "skip" and "not trusted: not evaluated" in env_check["message"]
    assert not marker.exists()


def test_forged_marker_and_exec_template_not_trusted(devkit, tmp_path, no_ci) -> None:
    require_tool("mise")
    marker = tmp_path / "pwned"
    toml = ('# mise configuration of the "evil" workspace, generated by devkit.\n'
            f'[env]\nX = "{{{{ exec(command=\'touch {marker}\') }}}}"\n_.source = "./.envrc.sh"\n')
    repo = hostile_repo(tmp_path / "clone", marker, mise_toml=toml)
    code, doc = doctor_json(devkit, repo, "--fix")
    assert not marker.exists()
    assert mise_trusted_links(Path(os.environ["HOME"])) == []
    assert by_id(doc)["workspace.mise-trusted"]["status"] == "fail"
    assert code == 1


def test_proven_config_is_trusted_by_fix_and_then_evaluated(devkit, make_workspace, no_ci) -> None:
    require_tool("mise")
    ws = make_workspace("proven")
    trust.record_rendered(ws, Store())
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    code, doc = doctor_json(devkit, ws, "--fix")
    assert doc["fixes_applied"] == [f".mise.toml trusted: ran `mise trust {ws}`"]
    assert by_id(doc)["workspace.mise-trusted"]["status"] == "ok"
    assert by_id(doc)["workspace.mise-env"]["status"] == "ok"
    assert code == 0


def test_edited_render_is_not_trusted_by_fix(devkit, make_workspace, no_ci, tmp_path) -> None:
    require_tool("mise")
    ws = make_workspace("edited")
    trust.record_rendered(ws, Store())
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    marker = tmp_path / "pwned"
    with (ws / ".envrc.sh").open("a") as fh:
        fh.write(f"touch {marker}\n")
    _, doc = doctor_json(devkit, ws, "--fix")
    assert not marker.exists()
    assert any(".envrc.sh" in line and "not fixed" in line for line in doc["fixes_applied"])


def _in_tree_backend_project(root: Path, marker: Path, env: dict[str, str]) -> None:
    """A project whose dependencies are computed by an in-tree build backend that touches
    ``marker``; its uv.lock is made by uv with a harmless backend first."""
    backend = root / "_backend"
    backend.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bk"\ndynamic = ["version", "dependencies"]\nrequires-python = ">=3.11"\n'
        '\n[build-system]\nrequires = []\nbuild-backend = "evilbackend"\nbackend-path = ["_backend"]\n')
    (backend / "evilbackend.py").write_text(
        "import os\n"
        "def get_requires_for_build_editable(c=None):\n    return []\n"
        "get_requires_for_build_wheel = get_requires_for_build_editable\n"
        "def prepare_metadata_for_build_editable(d, c=None):\n"
        "    di = os.path.join(d, 'bk-1.0.dist-info'); os.makedirs(di)\n"
        "    open(os.path.join(di, 'METADATA'), 'w').write("
        "'Metadata-Version: 2.1\\nName: bk\\nVersion: 1.0\\n')\n    return 'bk-1.0.dist-info'\n"
        "prepare_metadata_for_build_wheel = prepare_metadata_for_build_editable\n")
    # locked with a throw-away cache, so no metadata of the harmless backend stays cached
    subprocess.run([uv.find_uv(), "lock", "-q"], cwd=root, check=True,
                   env={**env, "UV_CACHE_DIR": str(root.parent / "throwaway-cache")})
    (backend / "evilbackend.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "def _any(*a, **k):\n    raise RuntimeError('no')\n"
        + "".join(f"{n} = _any\n" for n in (
            "get_requires_for_build_wheel", "prepare_metadata_for_build_wheel", "build_wheel",
            "get_requires_for_build_editable", "prepare_metadata_for_build_editable",
            "build_editable", "get_requires_for_build_sdist", "build_sdist")))
    # uv itself would run it: the reason doctor must not call uv here
    probe = subprocess.run([uv.find_uv(), "lock", "--check", "--offline", "--no-build"], cwd=root,
                           env=env, capture_output=True, text=True, check=False)
    assert marker.exists() and probe.returncode != 0, "uv no longer builds with --no-build"
    marker.unlink()


def test_in_tree_build_backend_never_runs(devkit, make_workspace, tmp_path, no_ci) -> None:
    ws = make_workspace("bk", sync=False)
    marker = tmp_path / "built"
    env = Store().subprocess_env()
    _in_tree_backend_project(ws, marker, env)
    subprocess.run(["git", "add", "-A"], cwd=ws, check=True)
    _, doc = doctor_json(devkit, ws)
    doctor_json(devkit, ws, "--fix")
    assert not marker.exists(), "doctor ran the project's build backend"
    lock = by_id(doc)["workspace.lock"]
    assert lock["status"] == "skip" and "cannot check without building" in lock["message"]
    assert "dependencies dynamic" in lock["message"] and "in-tree build backend" in lock["message"]


def test_umask_000_store_is_flagged_and_fixed(devkit, make_workspace, no_ci) -> None:
    old = os.umask(0)
    try:
        ws = make_workspace("loose", deps=("tinyshared",))
    finally:
        os.umask(old)
    store = Store()
    cache_subdirs = [p for p in store.uv_cache_dir.iterdir() if p.is_dir()]
    assert any(p.stat().st_mode & 0o002 for p in cache_subdirs), "uv honoured umask 000"
    _, doc = doctor_json(devkit, ws)
    perm = by_id(doc)["store.permissions"]
    assert perm["status"] == "fail" and "world-writable" in perm["message"]
    assert perm["fix"].startswith("chmod go-w ")
    loose = [p for p in [store.home, store.uv_cache_dir, *cache_subdirs, store.template_repo]
             if p.exists() and p.stat().st_mode & 0o022]
    assert all(str(p) in perm["fix"] for p in loose)
    _, fixed = doctor_json(devkit, ws, "--fix")
    assert by_id(fixed)["store.permissions"]["status"] == "ok"
    assert not [p for p in cache_subdirs if p.stat().st_mode & 0o022]


def test_parallel_fixes_append_one_line(make_workspace, tmp_path, no_ci) -> None:
    ws = make_workspace("par", sync=False)
    (ws / ".gitattributes").write_text("* text=auto\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "devkit", "doctor", "--fix", "--json", str(ws)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        procs = list(pool.map(lambda _: subprocess.run(cmd, env=env, capture_output=True,
                                                       text=True, timeout=300, check=False), range(8)))
    assert all(p.returncode in (0, 1) and not p.stderr for p in procs), [p.stderr for p in procs]
    lines = (ws / ".gitattributes").read_text().splitlines()
    assert lines == ["* text=auto", "*.sh text eol=lf"]
    fixed = [line for p in procs for line in json.loads(p.stdout)["fixes_applied"]
             if line.startswith(".gitattributes") and "added" in line]
    assert len(fixed) == 1


def test_venv_from_another_cache_fails(devkit, make_workspace, tmp_path, no_ci) -> None:
    ws = make_workspace("other", deps=("tinyshared",))
    _, doc = doctor_json(devkit, ws)
    assert by_id(doc)["store.venv-linked"]["status"] == "ok"
    shutil.rmtree(ws / ".venv")
    env = {**Store().subprocess_env(), "UV_CACHE_DIR": str(tmp_path / "dot-cache-uv")}
    subprocess.run([uv.find_uv(), "sync", "-q"], cwd=ws, env=env, check=True)
    code, doc = doctor_json(devkit, ws)
    linked = by_id(doc)["store.venv-linked"]
    assert linked["status"] == "fail" and linked["message"].startswith("0 of ")
    assert linked["fix"].startswith(f"devkit sync {ws}\n")
    assert f"UV_CACHE_DIR={Store().uv_cache_dir} uv sync" in linked["fix"]
    assert code == 1


@pytest.mark.parametrize(("mode", "status"), [("symlink", "ok"), ("copy", "skip")])
def test_venv_link_modes(devkit, make_workspace, monkeypatch, no_ci, mode, status) -> None:
    ws = make_workspace("mode", deps=("tinyshared",))
    shutil.rmtree(ws / ".venv")
    env = {**Store().subprocess_env(), "UV_LINK_MODE": mode}
    subprocess.run([uv.find_uv(), "sync", "-q"], cwd=ws, env=env, check=True)
    monkeypatch.setenv("UV_LINK_MODE", mode)
    _, doc = doctor_json(devkit, ws)
    linked = by_id(doc)["store.venv-linked"]
    assert linked["status"] == status, linked


def test_direnv_env_of_proven_envrc(devkit, make_workspace, no_ci) -> None:
    require_tool("direnv")
    ws = make_workspace("both", loader="both", sync=False)
    trust.record_rendered(ws, Store())
    _, doc = doctor_json(devkit, ws)
    env_check = by_id(doc)["workspace.direnv-env"]
    assert env_check["status"] == "ok", env_check
    (ws / ".envrc.local.sh").write_text("export UV_CACHE_DIR=/tmp/elsewhere\n")
    _, doc = doctor_json(devkit, ws)
    assert by_id(doc)["workspace.direnv-env"]["status"] == "warn"


def test_direnv_env_not_evaluated_when_unproven(devkit, make_workspace, tmp_path, no_ci) -> None:
    require_tool("direnv")
    ws = make_workspace("both2", loader="both", sync=False)  # allowed by devkit new, no proof
    marker = tmp_path / "pwned"
    with (ws / ".envrc.sh").open("a") as fh:
        fh.write(f"touch {marker}\n")
    subprocess.run(["direnv", "allow", str(ws)], check=True, capture_output=True)
    _, doc = doctor_json(devkit, ws)
    env_check = by_id(doc)["workspace.direnv-env"]
    assert env_check["status"] == "skip" and "not evaluated" in env_check["message"]
    assert not marker.exists()


def test_macos_checks_hidden_on_linux(devkit, make_workspace, no_ci) -> None:
    ws = make_workspace("nomac", sync=False)  # no .venv: the macOS venv check's prerequisite fails
    _, out, _ = devkit("doctor", ws)
    assert "Homebrew" not in out and "APFS" not in out and "WSL" not in out
    _, verbose, _ = devkit("doctor", ws, "-v")
    assert "- base interpreter is not Homebrew's: not macOS" in verbose


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_align_read_only_never_runs_a_build_backend(flag, devkit, make_workspace, tmp_path) -> None:
    ws = make_workspace("bk", sync=False)
    other = make_workspace("fine", deps=("tinyshared",))
    marker = tmp_path / "built"
    _in_tree_backend_project(ws, marker, Store().subprocess_env())
    code, out, err = devkit("align", flag, "--json", ws, other)
    assert not marker.exists(), f"align {flag} ran the project's build backend"
    doc = json.loads(out)
    by_path = {p["path"]: p for p in doc["projects"]}
    assert by_path[str(ws)]["status"] == "failed"
    assert "cannot check without building" in by_path[str(ws)]["error"]
    assert by_path[str(other)]["status"] != "failed", err  # the others carry on
    assert code == 1
