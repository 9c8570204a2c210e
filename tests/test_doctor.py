"""``devkit doctor`` end to end on this machine: real workspaces, real mise/uv/git/direnv."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from hosts import newly_bad

from devkit import trust
from devkit.checks import ORDER
from devkit.checks.base import REGISTRY
from devkit.commands import doctor as doctor_cmd
from devkit.hostfacts import Host
from devkit.store import Store

CHECK_KEYS = {"id", "title", "status", "message", "fix"}


def doctor_json(devkit, path: Path, *args: str) -> tuple[int, dict]:
    code, out, err = devkit("doctor", path, "--json", *args)
    assert err == "", err
    return code, json.loads(out)


def by_id(doc: dict) -> dict[str, dict]:
    return {c["id"]: c for c in doc["checks"]}


def status_map(doc: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in doc["checks"]}


@pytest.fixture
def ws(make_workspace, monkeypatch) -> Path:
    """A fresh workspace; CI=true would make mise trust everything (mise docs, cli/trust)."""
    require_tool("mise")
    monkeypatch.delenv("CI", raising=False)
    path = make_workspace("demo", deps=("tinyshared",))
    trust.record_rendered(path, Store())  # what `devkit new` records once it renders
    return path


def test_fresh_workspace_has_no_failure(devkit, ws) -> None:
    code, doc = doctor_json(devkit, ws)
    assert code == 0, [c for c in doc["checks"] if c["status"] == "fail"]
    checks = by_id(doc)
    for check_id in ("tools.uv", "tools.mise", "tools.git", "workspace.envrc-lf",
                     "workspace.gitattributes", "workspace.mise-trusted", "workspace.mise-env",
                     "workspace.venv", "workspace.lock", "workspace.registered", "store.cache-dir",
                     "store.links", "store.permissions", "store.disk", "git.autocrlf"):
        assert checks[check_id]["status"] == "ok", checks[check_id]
    assert "hard-link" in checks["store.links"]["message"] or "clone" in checks["store.links"]["message"]
    assert doc["workspace"] == str(ws)


def test_json_schema(devkit, ws) -> None:
    _, doc = doctor_json(devkit, ws)
    assert set(doc) == {"devkit_version", "platform", "workspace", "checks", "summary"}
    assert set(doc["platform"]) == {"system", "arch", "distribution", "kernel", "wsl",
                                    "macos_version", "shell"}
    assert doc["platform"]["system"] == "linux" and doc["platform"]["wsl"] is None
    ids = [c["id"] for c in doc["checks"]]
    assert ids == list(ORDER), "every check is reported, in the explicit order"
    for c in doc["checks"]:
        assert set(c) == CHECK_KEYS
        assert c["status"] in ("ok", "warn", "fail", "skip")
        assert isinstance(c["title"], str) and isinstance(c["message"], str) and c["message"]
        assert (c["fix"] is None) == (c["status"] in ("ok", "skip")) or c["status"] == "warn"
    counts = {s: sum(c["status"] == s for c in doc["checks"]) for s in ("ok", "warn", "fail", "skip")}
    assert doc["summary"] == counts


def test_outside_a_workspace_only_the_machine_is_checked(devkit, tmp_path) -> None:
    _code, doc = doctor_json(devkit, tmp_path)
    assert doc["workspace"] is None
    assert not [c for c in doc["checks"] if REGISTRY[c["id"]].workspace]
    assert {"platform", "tools.uv", "store.cache-dir"} <= set(status_map(doc))
    _code, out, _ = devkit("doctor", tmp_path)
    assert "not in a devkit workspace" in out


@pytest.mark.parametrize("make_path", [lambda t: t / "missing", lambda t: t / "file.txt"])
def test_bad_path_is_one_line_error(devkit, tmp_path, make_path) -> None:
    (tmp_path / "file.txt").write_text("x")
    code, out, err = devkit("doctor", make_path(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("devkit: error:") and err.count("\n") == 1


def test_human_output(devkit, ws, monkeypatch) -> None:
    (ws / ".envrc.sh").write_bytes((ws / ".envrc.sh").read_bytes().replace(b"\n", b"\r\n"))
    code, out, _ = devkit("doctor", ws)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("devkit doctor ") and str(ws) in lines[0]
    bad = next(i for i, ln in enumerate(lines) if ln.startswith("✗ .envrc.sh line endings"))
    assert lines[bad + 1] == f"    fix: sed -i 's/\\r$//' {ws / '.envrc.sh'}"
    assert any(ln.startswith("✓ uv: uv ") for ln in lines)
    assert "\033[" not in out  # not a terminal: no colour
    assert lines[-1].startswith("1 failed, ")
    assert "not WSL" not in out  # not-applicable checks are hidden...
    _, verbose, _ = devkit("doctor", ws, "--verbose")
    assert "- workspace on the Linux filesystem: not WSL" in verbose and " ms]" in verbose


class _Tty(io.StringIO):
    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._enc = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._enc

    def isatty(self) -> bool:
        return True


def test_ascii_fallback_and_no_color(ws, store, monkeypatch) -> None:
    stream = _Tty("ascii")
    monkeypatch.setenv("NO_COLOR", "1")
    doctor_cmd.doctor(ws, store=store, out=stream)
    text = stream.getvalue()
    assert "[ok] uv: uv " in text and "✓" not in text and "\033[" not in text
    monkeypatch.delenv("NO_COLOR")
    stream = _Tty("utf-8")
    doctor_cmd.doctor(ws, store=store, out=stream)
    assert "\033[32m✓\033[0m uv: " in stream.getvalue()


# -- each injected problem turns exactly its own check bad -------------------------------------

def _inject(devkit, ws, change) -> dict[str, dict]:
    _, before = doctor_json(devkit, ws)
    change()
    _, after = doctor_json(devkit, ws)
    return {"changed": newly_bad(status_map(before), status_map(after)), "checks": by_id(after)}


def test_untrusted_config(devkit, ws) -> None:
    got = _inject(devkit, ws, lambda: subprocess.run(["mise", "trust", "--untrust", str(ws)],
                                                     check=True, capture_output=True))
    assert got["changed"] == {"workspace.mise-trusted": "fail"}
    assert got["checks"]["workspace.mise-trusted"]["fix"] == f"mise trust {ws}"
    assert got["checks"]["workspace.mise-env"]["status"] == "skip"


def test_crlf_envrc(devkit, ws) -> None:
    envrc = ws / ".envrc.sh"
    got = _inject(devkit, ws, lambda: envrc.write_bytes(envrc.read_bytes().replace(b"\n", b"\r\n")))
    # the approved .envrc.sh changed too: doctor no longer evaluates it
    assert got["changed"] == {"workspace.envrc-lf": "fail", "workspace.approved-unchanged": "warn"}
    assert got["checks"]["workspace.envrc-lf"]["fix"] == f"sed -i 's/\\r$//' {envrc}"
    assert "needs “.envrc.sh line endings”" in got["checks"]["workspace.mise-env"]["message"]


def test_cache_on_another_filesystem(devkit, ws, monkeypatch, tmp_path) -> None:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(ws).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the workspace")
    shm = Path(f"/dev/shm/devkit-test-{os.getpid()}-{tmp_path.name}")
    shm.mkdir(mode=0o700)
    try:
        got = _inject(devkit, ws, lambda: monkeypatch.setenv("UV_CACHE_DIR", str(shm)))
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    assert got["changed"] == {"store.links": "fail"}
    links = got["checks"]["store.links"]
    assert "different filesystems" in links["message"] and "tmpfs" in links["message"]
    default_cache = Store().home / "uv" / "cache"
    assert f"export UV_CACHE_DIR={default_cache}" in links["fix"]


def test_cache_on_another_filesystem_with_copy_mode(devkit, ws, monkeypatch, tmp_path) -> None:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(ws).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the workspace")
    shm = Path(f"/dev/shm/devkit-test-{os.getpid()}-{tmp_path.name}")
    shm.mkdir(mode=0o700)
    monkeypatch.setenv("UV_CACHE_DIR", str(shm))
    monkeypatch.setenv("UV_LINK_MODE", "copy")
    try:
        _, doc = doctor_json(devkit, ws)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    assert by_id(doc)["store.links"]["status"] == "warn"
    assert "UV_LINK_MODE=copy" in by_id(doc)["store.links"]["message"]


def _path_without(tool: str, bin_dir: Path) -> str:
    """A PATH with every executable of the current PATH except ``tool`` (real binaries, no mocks)."""
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for name in os.listdir(directory) if os.path.isdir(directory) else ():
            src = Path(directory) / name
            if name != tool and not (bin_dir / name).exists() and os.access(src, os.X_OK):
                (bin_dir / name).symlink_to(src)
    return str(bin_dir)


def test_no_mise(devkit, ws, monkeypatch, tmp_path) -> None:
    path = _path_without("mise", tmp_path / "bin")
    got = _inject(devkit, ws, lambda: monkeypatch.setenv("PATH", path))
    assert got["changed"] == {"tools.mise": "fail"}
    assert got["checks"]["tools.mise"]["fix"] == "curl https://mise.run | sh"
    trusted = got["checks"]["workspace.mise-trusted"]
    assert trusted["status"] == "skip" and "mise not found on PATH" in trusted["message"]


def test_autocrlf_true(devkit, ws) -> None:
    def change() -> None:
        subprocess.run(["git", "config", "--global", "core.autocrlf", "true"], check=True)

    got = _inject(devkit, ws, change)
    assert got["changed"] == {"git.autocrlf": "fail"}
    assert got["checks"]["git.autocrlf"]["fix"] == "git config --global core.autocrlf input"


def test_exit_code_follows_failures(devkit, ws) -> None:
    assert devkit("doctor", ws)[0] == 0
    (ws / ".envrc.sh").write_bytes(b"export A=1\r\n")
    assert devkit("doctor", ws)[0] == 1


# -- --fix -----------------------------------------------------------------------------------

def test_fix_applies_only_safe_fixes(devkit, ws, store) -> None:
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    (ws / ".gitattributes").write_text("* text=auto\n")
    devkit("projects", "remove", ws)
    shutil.rmtree(store.uv_cache_dir)
    envrc = ws / ".envrc.sh"
    envrc.write_bytes(envrc.read_bytes().replace(b"\n", b"\r\n"))
    code, out, _ = devkit("doctor", ws, "--fix")
    # .envrc.sh (run by .mise.toml) no longer is what devkit rendered: trust is refused
    assert (f"  fixed: .mise.toml trusted: not fixed: not trusted: .envrc.sh in {ws} is not what "
            "devkit rendered there") in out
    assert "  fixed: .gitattributes keeps .envrc.sh LF: added `*.sh text eol=lf`" in out
    assert "  fixed: registered with devkit: registered" in out
    assert f"  fixed: uv cache directory: created {store.uv_cache_dir}" in out
    assert code == 1 and "✗ .envrc.sh line endings" in out  # not a safe fix: still printed
    assert b"\r\n" in envrc.read_bytes()
    _, doc = doctor_json(devkit, ws)
    # the cache was deleted: .venv's files are no longer the cache's own
    assert {k: v for k, v in status_map(doc).items() if v == "fail"} == {
        "workspace.envrc-lf": "fail", "workspace.mise-trusted": "fail", "store.venv-linked": "fail"}


def test_fix_refuses_to_trust_a_foreign_config(devkit, ws) -> None:
    toml = ws / ".mise.toml"
    toml.write_text(toml.read_text().replace("generated by devkit", "hand-written"))
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    code, doc = doctor_json(devkit, ws, "--fix")
    assert code == 1
    assert any("not fixed" in line and ".mise.toml in" in line and "not what devkit rendered"
               in line for line in doc["fixes_applied"]), doc["fixes_applied"]
    assert by_id(doc)["workspace.mise-trusted"]["status"] == "fail"


def test_fix_with_nothing_to_fix(devkit, ws) -> None:
    code, doc = doctor_json(devkit, ws, "--fix")
    assert code == 0 and doc["fixes_applied"] == []


def test_live_host_reads_environment_given(tmp_path) -> None:
    host = Host({"PATH": str(tmp_path), "HOME": str(tmp_path)})
    (tmp_path / "tool").write_text("#!/bin/sh\necho 1.2.3\n")
    (tmp_path / "tool").chmod(0o755)
    assert host.which("nope", "tool") == str(tmp_path / "tool")
    assert host.run([str(tmp_path / "tool")]).stdout == "1.2.3\n"
    assert host.run(["/nonexistent/x"]).error == "/nonexistent/x: not found"
    assert host.run(["true"], cwd=tmp_path / "gone").error == f"no such directory: {tmp_path / 'gone'}"
    assert host.read_text(str(tmp_path / "absent")) is None
    assert host.mount_of(tmp_path) is not None


def test_unchanged_answers_are_not_parsed_again(devkit, ws, store: Store, monkeypatch) -> None:
    from devkit import workspaces

    parsed: list[str] = []
    real = workspaces.load_yaml
    monkeypatch.setattr(workspaces, "load_yaml", lambda text: parsed.append(text) or real(text))
    _, doc = doctor_json(devkit, ws)
    assert doc["workspace"] == str(ws)
    assert oct(store.yaml_memo_file.stat().st_mode & 0o777) == "0o600"
    parsed.clear()
    _, doc = doctor_json(devkit, ws)
    assert doc["workspace"] == str(ws) and parsed == [], "an unchanged answers file was parsed again"
    answers = ws / ".copier-answers.yml"
    answers.write_text(answers.read_text() + "# edited\n")
    _, doc = doctor_json(devkit, ws)
    assert len(parsed) == 1 and doc["workspace"] == str(ws)
