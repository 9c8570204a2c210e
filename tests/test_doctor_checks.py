"""Each workspace and store check, one test per status it can return (real tools, real files)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from hosts import context, load, run_one, write_workspace

from devkit import trust
from devkit.checks import ORDER, REGISTRY
from devkit.checks import store as store_checks
from devkit.checks.base import Context, Workspace
from devkit.checks.project import is_version_request, version_matches
from devkit.checks.tools import parse_version
from devkit.hostfacts import Host
from devkit.store import Store
from devkit.workspaces import parse_answers


@pytest.fixture
def ws(make_workspace, monkeypatch) -> Path:
    require_tool("mise")
    monkeypatch.delenv("CI", raising=False)
    path = make_workspace("demo", deps=("tinyshared",))
    trust.record_rendered(path, Store())
    return path


def check(path: Path, check_id: str, host=None):
    return run_one(context(path, host or Host(), Store()), check_id)


def test_every_check_is_covered_by_a_test() -> None:
    """Each check id maps to the tests that drive it to a non-ok status; the mapping must name
    every registered check, and each named test must exist and mention the id."""
    import importlib

    modules = [importlib.import_module(m) for m in
               ("test_doctor", "test_doctor_checks", "test_doctor_hosts", "test_doctor_security",
                "test_doctor_template_version", "test_trust_round2", "test_doctor_services",
                "test_adopt_private")]
    tests = {name: getattr(m, name) for m in modules for name in dir(m) if name.startswith("test_")}
    assert set(COVERAGE) == set(REGISTRY), "add the new check to COVERAGE (and ORDER)"
    import inspect

    for check_id, names in COVERAGE.items():
        for name in names:
            assert name in tests, f"{check_id}: no test named {name}"
            assert f'"{check_id}"' in inspect.getsource(tests[name]), (check_id, name)


def test_order_lists_every_check_once() -> None:
    assert len(ORDER) == len(set(ORDER))
    assert set(ORDER) == set(REGISTRY)


def test_every_check_module_is_imported() -> None:
    import pkgutil

    import devkit.checks

    found = {m.name for m in pkgutil.iter_modules(devkit.checks.__path__)} - {"base"}
    assert set(devkit.checks.MODULES) == found


# -- .envrc.sh and .gitattributes ----------------------------------------------------------

def test_envrc_lf(ws) -> None:
    assert check(ws, "workspace.envrc-lf").status == "ok"
    (ws / ".envrc.sh").unlink()
    result = check(ws, "workspace.envrc-lf")
    assert (result.status, result.fix) == ("fail", f"git -C {ws} checkout -- .envrc.sh")


def test_gitattributes(ws) -> None:
    assert check(ws, "workspace.gitattributes").status == "ok"
    (ws / ".gitattributes").write_text("* text=auto\n")
    result = check(ws, "workspace.gitattributes")
    assert result.status == "warn"
    assert result.fix == f"printf '*.sh text eol=lf\\n' >> {ws / '.gitattributes'}"


GITATTRIBUTES_CASES = [
    ("*.sh text eol=lf\n", True),
    ("**/.envrc.sh text eol=lf\n", True),
    ("* text=auto\n", False),
    (".envrc.sh eol=lf\n", True),
    ("*.sh text eol=lf\n*.sh -eol\n", False),
    ("# *.sh text eol=lf\n", False),
]


def test_gitattributes_by_git_check_attr(ws) -> None:
    """One workspace for every case: what git says, not a hand-made pattern match."""
    got = {}
    for text, _ in GITATTRIBUTES_CASES:
        (ws / ".gitattributes").write_text(text)
        got[text] = check(ws, "workspace.gitattributes").status
    assert got == {text: "ok" if protected else "warn" for text, protected in GITATTRIBUTES_CASES}


def test_gitattributes_nested_pattern_is_not_duplicated_by_fix(ws, devkit) -> None:
    (ws / ".gitattributes").write_text("**/.envrc.sh text eol=lf\n")
    _, out, _ = devkit("doctor", ws, "--fix")
    assert "gitattributes" not in "".join(ln for ln in out.splitlines() if "fixed:" in ln)
    assert (ws / ".gitattributes").read_text() == "**/.envrc.sh text eol=lf\n"


def test_envrc_line_endings_checked_for_direnv(make_workspace) -> None:
    require_tool("direnv")
    ws = make_workspace("d", loader="both", sync=False)
    assert check(ws, "workspace.envrc-lf").status == "ok"
    envrc = ws / ".envrc"
    envrc.write_bytes(envrc.read_bytes().replace(b"\n", b"\r\n"))
    result = check(ws, "workspace.envrc-lf")
    assert result.status == "fail" and result.message.startswith(".envrc has CRLF")
    assert result.fix == f"sed -i 's/\\r$//' {envrc}"


@pytest.mark.parametrize("name", ["new\nline", "émoji 🐍 \"q\""])
def test_workspace_git_in_a_path_with_a_newline_or_emoji(tmp_path, store, name) -> None:
    ws = write_workspace(tmp_path / name / "ws")
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    result = check(ws, "workspace.git")
    assert (result.status, result.message) == ("ok", f"{ws} is a git repository"), result
    subprocess.run(["git", "-C", str(ws), "config", "filter.evil.clean", "cat"], check=True)
    result = check(ws, "workspace.git")
    assert result.status == "fail" and "sets filter.evil.clean" in result.message, result


def test_workspace_git(ws) -> None:
    assert check(ws, "workspace.git").status == "ok"
    import shutil

    shutil.rmtree(ws / ".git")
    result = check(ws, "workspace.git")
    assert result.status == "fail" and "not a git repository" in result.message
    assert result.fix.startswith(f"git -C {ws} init -b main")
    assert check(ws, "workspace.gitattributes").status == "skip"


# -- mise ---------------------------------------------------------------------------------

def test_mise_trusted_read_from_state_without_running_mise(tmp_path) -> None:
    ws = write_workspace(tmp_path / "p")
    (ws / ".mise.toml").write_text("# generated by devkit\n")
    # the recorded host has no mise state: unknown is untrusted, and the comment proves nothing
    result = check(ws, "workspace.mise-trusted", load("linux"))
    assert result.status == "fail" and "not the file devkit rendered" in result.message
    (ws / ".mise.toml").unlink()
    result = check(ws, "workspace.mise-trusted", load("linux"))
    assert (result.status, result.message) == ("fail", ".mise.toml is missing")


def test_mise_env_ok(ws) -> None:
    result = check(ws, "workspace.mise-env")
    assert result.status == "ok" and str(Store().uv_cache_dir) in result.message


def test_mise_env_crlf_from_local_override(ws) -> None:
    (ws / ".envrc.local.sh").write_bytes(b"export UV_CACHE_DIR=/tmp/elsewhere\r\n")
    result = check(ws, "workspace.mise-env")
    assert result.status == "fail" and result.message == "UV_CACHE_DIR end in \\r"


def test_mise_env_disagrees_with_devkit(ws) -> None:
    (ws / ".envrc.local.sh").write_text("export UV_CACHE_DIR=/tmp/elsewhere\n")
    result = check(ws, "workspace.mise-env")
    assert result.status == "warn" and "UV_CACHE_DIR: mise /tmp/elsewhere vs devkit" in result.message


def test_mise_env_without_source(ws) -> None:
    toml = ws / ".mise.toml"
    toml.write_text(toml.read_text().replace('_.source = "./.envrc.sh"\n', ""))
    # reviewed and approved again (a plain `mise trust` keeps the old approval)
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    subprocess.run(["mise", "trust", str(ws)], check=True, capture_output=True)
    result = check(ws, "workspace.mise-env")
    assert result.status == "fail" and "not loaded" in result.message


def test_mise_env_cannot_run(tmp_path) -> None:
    ws = write_workspace(tmp_path / "p", venv_home="/usr/bin")
    (ws / ".mise.toml").write_text("[env]\n")
    host = load("linux").derive(env={"MISE_TRUSTED_CONFIG_PATHS": str(ws)})
    result = check(ws, "workspace.mise-env", host)
    assert result.status == "warn" and "not in the recording" in result.message
    assert check(ws, "workspace.mise-trusted", host).status == "ok"


# -- direnv -------------------------------------------------------------------------------

def test_direnv_allowed(make_workspace) -> None:
    require_tool("direnv")
    ws = make_workspace("d", loader="direnv", sync=False)
    assert check(ws, "tools.direnv").status == "ok"
    assert check(ws, "workspace.direnv-allowed").status == "ok"
    with (ws / ".envrc").open("a") as fh:
        fh.write("# edited\n")
    result = check(ws, "workspace.direnv-allowed")
    assert (result.status, result.fix) == ("fail", f"direnv allow {ws}")
    assert check(ws, "workspace.direnv-allowed", load("linux")).status == "warn"
    (ws / ".envrc").unlink()
    assert check(ws, "workspace.direnv-allowed").status == "fail"
    assert check(ws, "workspace.mise-trusted").status == "skip"  # direnv-only workspace


# -- .venv and uv.lock --------------------------------------------------------------------

def test_venv(ws) -> None:
    result = check(ws, "workspace.venv")
    assert result.status == "ok" and "pinned 3.11" in result.message
    (ws / ".python-version").write_text("3.12\n")
    result = check(ws, "workspace.venv")
    assert result.status == "fail" and "pins 3.12" in result.message
    assert result.fix == f"cd {ws} && rm -rf .venv && uv sync"
    (ws / ".venv" / "pyvenv.cfg").unlink()
    assert "pyvenv.cfg" in check(ws, "workspace.venv").message


def test_non_utf8_python_version(ws) -> None:
    (ws / ".python-version").write_bytes(b"\xff\xfe3.11\n")
    results = {r.id: r for r in run_checks_all(ws)}
    crashed = [r.id for r in results.values() if "check itself failed" in r.message]
    assert crashed == []
    assert results["workspace.python"].status == "fail"
    assert "not a Python version" in results["workspace.python"].message
    assert results["workspace.venv"].status == "ok"
    assert results["workspace.lock"].status == "skip"  # uv is not given a strange request


def test_python_version_path_is_never_run(ws, tmp_path) -> None:
    marker = tmp_path / "ran"
    fake = ws / "fakepy"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexec {os.path.realpath(os.sys.executable)} \"$@\"\n")
    fake.chmod(0o755)
    (ws / ".python-version").write_text("./fakepy\n")
    results = {r.id: r for r in run_checks_all(ws)}
    assert not marker.exists()
    assert results["workspace.python"].status == "fail"
    assert results["workspace.lock"].status == "skip"


def test_pinned_python_missing(ws) -> None:
    assert check(ws, "workspace.python").status == "ok"
    (ws / ".python-version").write_text("3.6\n")
    result = check(ws, "workspace.python")
    assert result.status == "fail" and result.fix == "uv python install 3.6"
    assert str(Store().python_install_dir) in result.message


def test_venv_current_after_lock_change(ws) -> None:
    from devkit import uv

    assert check(ws, "workspace.venv-current").status == "ok"
    subprocess.run([uv.find_uv(), "add", "-q", "--no-sync", "tinyshared==1.1"], cwd=ws,
                   env=Store().subprocess_env(), check=True)
    result = check(ws, "workspace.venv-current")
    assert result.status == "warn" and result.fix == f"devkit sync {ws}"
    assert "tinyshared" in result.message
    assert check(ws, "workspace.lock").status == "ok"  # the lock itself is fine


def test_venv_missing_or_broken(tmp_path) -> None:
    ws = write_workspace(tmp_path / "p")
    result = check(ws, "workspace.venv")
    assert (result.status, result.fix) == ("fail", f"cd {ws} && uv sync")
    ws2 = write_workspace(tmp_path / "q", venv_home="/gone")
    (ws2 / ".venv" / "bin" / "python").unlink()
    (ws2 / ".venv" / "bin" / "python").symlink_to("/gone/python3")
    assert "removed interpreter" in check(ws2, "workspace.venv").message


@pytest.mark.parametrize(("pinned", "actual", "match"), [
    ("3.11", "3.11.7", True), ("3.11.7", "3.11.7", True), ("3.12", "3.11.7", False),
    ("3.1", "3.11.7", False), ("cpython-3.11", "3.11.2", True),
])
def test_version_matches(pinned, actual, match) -> None:
    assert version_matches(pinned, actual) is match


def test_lock(ws) -> None:
    assert check(ws, "workspace.lock").status == "ok"
    pyproject = ws / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tinyshared', '"tinyother>=1",\n  "tinyshared'))
    result = check(ws, "workspace.lock")
    assert (result.status, result.fix) == ("fail", f"cd {ws} && uv lock")
    assert result.message == "uv.lock does not match pyproject.toml"
    (ws / "uv.lock").unlink()
    assert check(ws, "workspace.lock").message == "uv.lock is missing"


def test_lock_warns_when_uv_cannot_run(tmp_path, store) -> None:
    store.ensure()
    ws = write_workspace(tmp_path / "p")
    (ws / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    (ws / "uv.lock").write_text("version = 1\n")
    assert check(ws, "workspace.lock", load("linux")).status == "warn"
    bare = load("linux").derive()
    bare.data["executables"] = []
    assert check(ws, "workspace.lock", bare).status == "skip"


# -- registry -----------------------------------------------------------------------------

def test_registered(ws, devkit, store) -> None:
    assert check(ws, "workspace.registered").status == "ok"
    devkit("projects", "remove", ws)
    result = check(ws, "workspace.registered")
    assert (result.status, result.fix) == ("warn", f"devkit projects add {ws}")
    store.registry_file.write_text("not json")
    assert check(ws, "workspace.registered").status == "fail"


def test_test_holds_are_shown_with_the_retry_command(ws, store) -> None:
    from devkit.align import manifest, planner

    assert check(ws, "workspace.test-holds").status == "ok"
    blocked = planner.Blocked("ws", "idx", "tinybreak", "1.0", "2.0", "r", "tests",
                              ("tests.test_a::test_x",))
    held = manifest.TestHolds(ws, manifest.requirements_state(ws), (blocked,))
    manifest.write(store, strategy="newest", projects=[ws], targets=[], blocked=[], known=[],
                   test_holds={ws: held})
    result = check(ws, "workspace.test-holds")
    assert result.status == "warn", result.message
    assert "tinybreak 1.0 (not 2.0: tests.test_a::test_x)" in result.message
    assert result.fix == f"fix the tests, then: devkit align --clear-holds {ws} --test"
    manifest.clear_test_holds(store, [ws])
    assert check(ws, "workspace.test-holds").status == "ok"


# -- store ---------------------------------------------------------------------------------

def test_cache_dir(tmp_path, store, monkeypatch) -> None:
    result = check(tmp_path, "store.cache-dir")
    assert (result.status, result.fix) == ("fail", f"mkdir -p -m 700 {store.uv_cache_dir}")
    assert "does not exist yet" in check(tmp_path, "store.permissions").message
    assert check(tmp_path, "store.disk").status == "skip"
    store.ensure()
    assert check(tmp_path, "store.cache-dir").status == "ok"
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("")
    assert "not a directory" in check(tmp_path, "store.cache-dir").message


def test_links_ok_and_unprobeable(ws, monkeypatch) -> None:
    assert check(ws, "store.links").status == "ok"
    monkeypatch.setenv("UV_CACHE_DIR", "/sys/kernel")  # a directory nobody can create files in
    if check(ws, "store.cache-dir").status != "ok":
        pytest.skip("only root sees /sys/kernel as writable")
    result = check(ws, "store.links")
    assert result.status == "warn" and result.message.startswith("cannot probe links")


def test_link_probe_cleans_up(ws, store) -> None:
    probe = store_checks.probe_links(store.uv_cache_dir, ws / ".venv")
    assert probe.same_device and probe.hardlink == "ok"
    leftovers = [p for d in (store.uv_cache_dir, ws / ".venv") for p in d.iterdir()
                 if p.name.startswith(".devkit-doctor-")]
    assert leftovers == []


@pytest.mark.parametrize(("mode", "status"), [(0o700, "ok"), (0o770, "warn"), (0o777, "fail")])
@pytest.mark.parametrize("where", ["home", "cache", "cache-sub", "template", "registry"])
def test_store_permissions(tmp_path, store, mode, status, where) -> None:
    store.ensure()
    (store.uv_cache_dir / "archive-v0").mkdir(mode=0o700)
    store.template_repo.mkdir(mode=0o700, exist_ok=True)
    store.registry_file.write_text("{}")
    store.registry_file.chmod(0o600)
    path = {"home": store.home, "cache": store.uv_cache_dir,
            "cache-sub": store.uv_cache_dir / "archive-v0", "template": store.template_repo,
            "registry": store.registry_file}[where]
    os.chmod(path, mode if path.is_dir() else mode & 0o666)
    result = check(tmp_path, "store.permissions")
    assert result.status == status, result
    if status != "ok":
        assert result.fix == f"chmod go-w {path}"
        assert str(path) in result.message


def test_store_permissions_owner(tmp_path, store, monkeypatch) -> None:
    store.ensure()
    monkeypatch.setattr(os, "getuid", lambda: os.stat(store.home).st_uid + 1)
    result = check(tmp_path, "store.permissions")
    assert result.status == "fail" and "not owned by you" in result.message
    assert result.fix.startswith(f'sudo chown "$(id -un)" {store.home} ')




def test_store_permissions_sees_hidden_files_and_link_targets(ws, tmp_path, store) -> None:
    """The workspace's own mutex (a hidden file in the store's home) and a file the home links
    to are judged like the registry; a link to a directory is not one of the home's files; the
    other workspaces' mutex files (thousands, never read) are left to their own doctor."""
    store.ensure()
    mutex = store.workspace_mutex_file(ws)
    mutex.write_text("")
    other = store.home / ".ws-0123456789abcdef.lock"
    other.write_text("")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "planted.json").write_text("{}")
    (store.home / "linked.json").symlink_to(outside / "planted.json")
    (store.home / "linked-dir").symlink_to(outside, target_is_directory=True)
    os.chmod(outside, 0o777)
    os.chmod(other, 0o666)
    assert check(ws, "store.permissions").status == "ok"
    os.chmod(mutex, 0o666)
    os.chmod(outside / "planted.json", 0o666)
    result = check(ws, "store.permissions")
    assert result.status == "fail", result
    assert result.fix == f"chmod go-w {mutex} {store.home / 'linked.json'}"
    assert str(other) not in result.message
    # --fix acts on every path of the store, the other workspaces' mutexes included
    ctx = context(ws, Host(), Store())
    store_checks.fix_permissions(ctx)
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o022 == 0 for p in (mutex, other))


@pytest.mark.parametrize(("fail_below", "warn_below", "status"), [
    (0, 0, "ok"), (0, 1 << 62, "warn"), (1 << 62, 1 << 62, "fail"),
])
def test_disk(tmp_path, store, monkeypatch, fail_below, warn_below, status) -> None:
    store.ensure()
    monkeypatch.setattr(store_checks, "MIN_FREE_FAIL", fail_below)
    monkeypatch.setattr(store_checks, "MIN_FREE_WARN", warn_below)
    result = check(tmp_path, "store.disk")
    assert result.status == status and "GiB free on" in result.message


def test_gc_figure(tmp_path, store) -> None:
    from devkit.align import manifest

    store.ensure()
    assert check(tmp_path, "store.gc").status == "skip"  # nothing recorded: no cache walk
    manifest.record_gc(store, reclaimable=3 * store_checks.GIB, linked=0, by="align")
    result = check(tmp_path, "store.gc")
    assert result.status == "warn" and "3.0 GiB" in result.message and "devkit gc" in result.fix
    manifest.record_gc(store, reclaimable=10 * 1024 * 1024, linked=0, by="gc")
    result = check(tmp_path, "store.gc")
    assert result.status == "ok" and "10.0 MiB" in result.message


# -- misc ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "version"), [
    ("uv 0.13.9 (x86_64-unknown-linux-gnu)", (0, 13, 9)),
    ("2026.9.15 linux-x64 (2026-09-27)", (2026, 9, 15)),
    ("git version 2.39.5", (2, 39, 5)), ("2.32.1", (2, 32, 1)), ("no digits", None),
])
def test_parse_version(text, version) -> None:
    assert parse_version(text) == version


def test_a_crashing_check_is_one_failed_line(tmp_path, monkeypatch) -> None:
    from devkit.checks import base

    def boom(ctx):
        raise RuntimeError("unexpected")

    original = base.REGISTRY["platform"]
    monkeypatch.setitem(base.REGISTRY, "platform", base.Check("platform", original.title, boom))
    result = check(tmp_path, "platform")
    assert result.status == "fail" and "RuntimeError: unexpected" in result.message


def test_workspace_detection_of_subdirectory(tmp_path) -> None:
    ws = write_workspace(tmp_path / "p", loader="direnv")
    (ws / "a" / "b").mkdir(parents=True)
    ctx = context(ws / "a" / "b", load("linux"))
    assert ctx.workspace == Workspace(ws, ctx.workspace.answers) and ctx.workspace.loader == "direnv"


def test_workspace_detection(tmp_path) -> None:
    from devkit.checks.base import find_workspace

    ws = write_workspace(tmp_path / "p", loader="both")
    (ws / "src" / "pkg").mkdir(parents=True)
    found = find_workspace(ws / "src" / "pkg")
    assert found is not None and found.path == ws and found.uses_direnv and found.uses_mise
    assert found.answers["python_version"] == "3.11" and found.answers["_commit"] == "v0.1.0"
    other = tmp_path / "other"
    other.mkdir()
    (other / ".copier-answers.yml").write_text("_src_path: gh:someone/else\n")
    assert find_workspace(other) is None
    (other / ".copier-answers.yml").write_text("[not: a mapping\n")
    assert find_workspace(other) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("env_loader: both\n", {"env_loader": "both"}),
    ("env_loader: 'direnv'  # quoted, with a comment\n", {"env_loader": "direnv"}),
    ("env_loader: >-\n  mise\n", {"env_loader": "mise"}),
    ("package: true\npython_version: 3.12\nlist:\n  - a\n", {"package": "True",
                                                              "python_version": "3.12"}),
    ("- a list\n", None),
    (": : :\n", None),
])
def test_answers_read_as_yaml(text, expected) -> None:
    assert parse_answers(text) == expected


@pytest.mark.parametrize(("request_", "ok"), [
    ("3.11", True), ("3.11.7", True), ("cpython-3.12", True), ("cpython@3.12", True),
    ("pypy3.10", True), ("3.13t", True), ("./fakepy", False), ("/usr/bin/python3", False),
    ("3.11\ufffd", False), ("python", False),
])
def test_version_requests(request_, ok) -> None:
    assert is_version_request(request_) is ok


def test_lock_check_never_creates_the_cache(ws, store) -> None:
    import shutil

    shutil.rmtree(store.uv_cache_dir)
    from devkit.checks import run_checks

    results = {r.id: r for r in run_checks(context(ws, Host(), Store()))}
    assert results["store.cache-dir"].status == "fail"
    assert results["workspace.lock"].status == "skip"
    assert not store.uv_cache_dir.exists()


def test_prerequisites_come_first_whatever_the_order() -> None:
    from devkit.checks.base import dependency_order

    for checks in (list(REGISTRY.values()), list(reversed(REGISTRY.values()))):
        order = [c.id for c in dependency_order(checks)]
        for item in REGISTRY.values():
            assert all(order.index(dep) < order.index(item.id) for dep in item.requires), item.id


def test_prerequisite_cycle_is_an_error() -> None:
    from devkit.checks.base import Check, dependency_order

    a = Check("a", "A", lambda ctx: None, ("b",))  # type: ignore[arg-type,return-value]
    b = Check("b", "B", lambda ctx: None, ("a",))  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="cycle"):
        dependency_order([a, b])


def test_results_follow_order_not_registration(tmp_path, store) -> None:
    from devkit.checks import run_checks

    ctx = context(tmp_path, load("linux"), store)
    got = [r.id for r in run_checks(ctx)]
    assert got == [i for i in ORDER if i in got]
    reverse = [r.id for r in run_checks(ctx, order=list(reversed(ORDER)))]
    assert reverse == list(reversed(got))


class _RaisingHost(Host):
    def __init__(self) -> None:
        super().__init__({"PATH": "", "HOME": "/nonexistent"})
        self.calls = 0
        self.lock = __import__("threading").Lock()
        self.gate = __import__("threading").Event()

    def run(self, cmd, **kwargs):  # type: ignore[no-untyped-def,override]
        with self.lock:
            self.calls += 1
        self.gate.wait(timeout=5)  # let the other callers queue up on the memoised future
        raise RuntimeError("probe broke")


def test_a_raising_probe_does_not_hang_its_waiters(tmp_path) -> None:
    import concurrent.futures

    host = _RaisingHost()
    ctx = Context(host, Store(), None, {})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ctx.run, "same", "probe") for _ in range(4)]
        host.gate.set()
        errors = [f.exception(timeout=30) for f in futures]
    assert [type(e) for e in errors] == [RuntimeError] * 4
    assert host.calls == 1  # memoised: one run, its exception shared


def test_a_raising_probe_fails_its_check(tmp_path, monkeypatch) -> None:
    from devkit.checks import base

    host = _RaisingHost()
    host.gate.set()
    original = base.REGISTRY["platform"]

    def uses_probe(ctx):
        return ctx.run("x")

    monkeypatch.setitem(base.REGISTRY, "platform", base.Check("platform", original.title, uses_probe))
    ctx = Context(host, Store(), None, {})
    result = run_one(ctx, "platform")
    assert result.status == "fail" and "probe broke" in result.message


def run_checks_all(path: Path, host=None):
    from devkit.checks import run_checks

    return run_checks(context(path, host or Host(), Store()))


def test_mise_env_waits_for_the_venv(ws) -> None:
    import shutil

    shutil.rmtree(ws / ".venv")
    result = check(ws, "workspace.mise-env")
    assert result.status == "skip" and "needs “.venv matches the pinned Python”" in result.message
    assert not (ws / ".venv").exists()


#: check id → tests that drive it to a non-ok status (see test_every_check_is_covered_by_a_test).
COVERAGE = {
    "workspace.template-version": ["test_template_version_ok_then_behind",
                                   "test_template_version_other_source_and_none",
                                   "test_update_refreshes_untouched_files_and_merges_changed_ones"],
    "platform": ["test_platform_line_and_statuses"],
    "tools.uv": ["test_tool_statuses", "test_wsl2_windows_uv_first_on_path"],
    "tools.mise": ["test_no_mise", "test_missing_tools"],
    "tools.git": ["test_missing_tools"],
    "tools.direnv": ["test_missing_tools", "test_direnv_only_when_used"],
    "shell.mise-active": ["test_mise_active"],
    "shell.mise-rc": ["test_mise_rc_missing"],
    "shell.direnv-hook": ["test_direnv_hook", "test_direnv_hook_not_needed_with_mise_in_both"],
    "git.autocrlf": ["test_autocrlf_true", "test_autocrlf_from_recording"],
    "workspace.git": ["test_workspace_git"],
    "workspace.envrc-lf": ["test_envrc_lf", "test_crlf_envrc", "test_envrc_line_endings_checked_for_direnv"],
    "workspace.gitattributes": ["test_gitattributes", "test_gitattributes_by_git_check_attr"],
    "workspace.private-excluded": [
        "test_doctor_checks_the_exclude_block_and_fix_never_touches_tracked_files"],
    "workspace.private-tracked": ["test_doctor_warns_when_upstream_starts_tracking_a_devkit_file"],
    "workspace.mise-trusted": ["test_untrusted_config", "test_hostile_source_never_runs",
                               "test_mise_trusted_read_from_state_without_running_mise"],
    "workspace.mise-env": ["test_mise_env_disagrees_with_devkit", "test_mise_env_without_source"],
    "workspace.direnv-allowed": ["test_direnv_allowed", "test_hostile_source_never_runs"],
    "workspace.direnv-env": ["test_direnv_env_of_proven_envrc",
                             "test_direnv_env_not_evaluated_when_unproven"],
    "workspace.approved-unchanged": ["test_doctor_flags_a_pulled_change_to_an_approved_config"],
    "workspace.python": ["test_pinned_python_missing", "test_non_utf8_python_version"],
    "workspace.venv": ["test_venv", "test_venv_missing_or_broken"],
    "workspace.venv-current": ["test_venv_current_after_lock_change"],
    "workspace.lock": ["test_lock", "test_in_tree_build_backend_never_runs"],
    "workspace.registered": ["test_registered"],
    "workspace.test-holds": ["test_test_holds_are_shown_with_the_retry_command"],
    "store.cache-dir": ["test_cache_dir"],
    "store.links": ["test_cache_on_another_filesystem", "test_links_ok_and_unprobeable"],
    "store.venv-linked": ["test_venv_from_another_cache_fails"],
    "store.permissions": ["test_store_permissions", "test_umask_000_store_is_flagged_and_fixed"],
    "store.disk": ["test_disk"],
    "store.gc": ["test_gc_figure"],
    "wsl.workspace-location": ["test_wsl2_workspace_on_drvfs", "test_wsl2_workspace_under_mnt_c"],
    "wsl.windows-path": ["test_windows_path_setting"],
    "wsl.vscode": ["test_vscode_remote"],
    "macos.apfs-clone": ["test_macos_apfs_clone"],
    "macos.homebrew-python": ["test_macos_homebrew_python"],
    "services.docker": ["test_docker_cli_absent", "test_wsl2_without_docker_desktop_integration",
                        "test_macos_fixes_name_docker_desktop"],
    "services.daemon": ["test_dead_docker_host_fails_the_daemon_check_only",
                        "test_wsl2_daemon_down_says_start_docker_desktop",
                        "test_macos_fixes_name_docker_desktop", "test_linux_daemon_fixes"],
    "services.compose": ["test_no_compose_command", "test_macos_fixes_name_docker_desktop"],
    "services.postgres": ["test_services_down_then_up",
                          "test_other_workspace_with_the_same_name_is_not_ours"],
    "services.redis": ["test_services_down_then_up", "test_recorded_service_states"],
}
