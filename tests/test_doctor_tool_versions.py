"""``devkit doctor`` remembers each tool's ``--version`` output per binary file, and asks again
when the file changes (an upgrade) or on a recorded host."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import require_tool

from devkit.checks.base import Context
from devkit.checks.tools import tool_outcome_at, version_run
from devkit.hostfacts import Host, RecordedHost
from devkit.store import Store


def wrapper(directory: Path, name: str, target: str, witness: Path, *, extra: str = "") -> Path:
    """A ``name`` script that logs each call to ``witness`` and runs ``target``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(f'#!/bin/sh\necho "$*" >> "{witness}"\n{extra}exec "{target}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def calls(witness: Path) -> list[str]:
    return witness.read_text().splitlines() if witness.exists() else []


def test_second_doctor_runs_no_version_of_an_unchanged_binary(devkit, tmp_path, monkeypatch, store) -> None:
    git = require_tool("git")
    witness = tmp_path / "calls"
    bin_dir = tmp_path / "wrapped"
    wrapper(bin_dir, "git", git, witness)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store.ensure()

    devkit("doctor", tmp_path, "--json")
    assert calls(witness).count("--version") == 1
    _, out, _ = devkit("doctor", tmp_path, "--json")
    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert checks["tools.git"]["status"] == "ok", checks["tools.git"]
    assert str(bin_dir / "git") in checks["tools.git"]["message"]
    assert calls(witness).count("--version") == 1, "the unchanged git was asked its version again"
    assert (store.tool_versions_file.stat().st_mode & 0o777) == 0o600

    # an upgrade: another file at the same path is asked again
    wrapper(bin_dir, "git", git, witness, extra=": upgraded\n")
    devkit("doctor", tmp_path, "--json")
    assert calls(witness).count("--version") == 2


def test_no_store_no_memo_file(devkit, tmp_path, store) -> None:
    """doctor on a machine without a store creates none just to remember versions."""
    require_tool("git")
    devkit("doctor", tmp_path, "--json")
    assert not store.home.exists()


def test_a_changed_version_is_reported(tmp_path, store) -> None:
    """The memo never hides a new version: a binary printing another version is another file."""
    store.ensure()
    tool = tmp_path / "bin" / "mise"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho '2026.9.15 linux-x64'\n")
    tool.chmod(0o755)
    assert tool_outcome_at(Context(Host(), store, None), "mise", str(tool)).status == "ok"
    tool.write_text("#!/bin/sh\necho '2025.1.0 linux-x64 (old)'\n")
    tool.chmod(0o755)
    outcome = tool_outcome_at(Context(Host(), store, None), "mise", str(tool))
    assert outcome.status == "fail" and "2025.1.0" in outcome.message


def test_recorded_host_never_reads_the_memo(tmp_path, store) -> None:
    """Recorded WSL2/macOS facts answer for themselves, even for a path that exists here."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    store.ensure()
    live = Context(Host(), store, None)
    assert version_run(live, git).ok
    assert store.tool_versions_file.is_file()
    recorded = RecordedHost({"executables": [git], "run": {f"{git} --version": {
        "returncode": 0, "stdout": "git version 2.20.0\n"}}})
    result = version_run(Context(recorded, Store(), None), git)
    assert result.stdout == "git version 2.20.0\n"
