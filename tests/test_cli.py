"""devkit behaves like a Unix tool: pipes, usage errors, exit codes; the README matches CI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import devkit
from devkit.main import BROKEN_PIPE, USAGE_ERROR

ROOT = Path(__file__).resolve().parents[1]


def _devkit(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devkit", *args], capture_output=True, text=True,
                          timeout=120, check=False, **kwargs)


@pytest.mark.parametrize("argv", [["doctor"], ["store"], ["--help"], ["projects", "list"]])
@pytest.mark.parametrize("buffered", [True, False])
def test_closed_stdout_is_a_quiet_exit_141(argv: list[str], buffered: bool, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader is gone before devkit writes: every write fails with EPIPE, deterministically."""
    if buffered:  # as in a user's shell; unbuffered, each write fails at once
        monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    else:
        monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "devkit", *argv], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120, check=False,
                              cwd=tmp_path)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (BROKEN_PIPE, "")


def test_piped_into_head(tmp_path: Path) -> None:
    proc = subprocess.run(
        f"{sys.executable} -m devkit doctor | head -1; echo \"exit=${{PIPESTATUS[0]}}\"",
        shell=True, executable=shutil.which("bash"), capture_output=True, text=True,
        timeout=120, check=False, cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("devkit doctor ")
    assert lines[1] in ("exit=0", "exit=1", f"exit={BROKEN_PIPE}")  # 0/1: head read it all first
    assert proc.stderr == ""


@pytest.mark.parametrize(("argv", "prog", "message"), [
    (["store", "--bogus"], "devkit store", "unrecognized arguments: --bogus"),
    (["projects", "list", "--bogus"], "devkit projects list", "unrecognized arguments: --bogus"),
    (["projects", "remove"], "devkit projects remove", "give at least one PATH, or --missing"),
    (["align", "--strategy", "oldest"], "devkit align", "argument --strategy: invalid choice"),
    (["frobnicate"], "devkit", "invalid choice: 'frobnicate'"),
    ([], "devkit", "the following arguments are required: COMMAND"),
])
def test_usage_errors_are_one_line_and_a_hint(devkit, argv, prog, message) -> None:
    code, out, err = devkit(*argv)
    assert code == USAGE_ERROR and out == ""
    first, hint = err.splitlines()
    assert first.startswith(f"{prog}: error: ") and message in first
    assert hint == f"Run `{prog} --help` for usage."


def test_usage_error_in_a_real_process() -> None:
    proc = _devkit("sync", "--jobs", "many")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("devkit sync: error: argument --jobs/-j: expected a whole number")


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    codes = re.findall(r"^\| `(\d+)` \|", section, flags=re.MULTILINE)
    assert codes == ["0", "1", "2", "3", "130", "141"]


def test_projects_add_refuses_a_directory_without_pyproject(devkit, tmp_path: Path) -> None:
    plain = tmp_path / "not python"
    plain.mkdir()
    code, out, err = devkit("projects", "add", plain)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no pyproject.toml" in err and f"devkit new '{plain}'" in err
    assert json.loads(devkit("projects", "list", "--json")[1])["projects"] == []


def test_prune_and_remove_missing(devkit, tmp_path: Path) -> None:
    paths = [tmp_path / n for n in ("keep", "gone1", "gone2")]
    for p in paths:
        p.mkdir()
        (p / "pyproject.toml").write_text(f'[project]\nname = "{p.name}"\nversion = "0"\n')
    assert devkit("projects", "add", *paths)[0] == 0
    shutil.rmtree(paths[1])
    code, out, _ = devkit("projects", "list")
    assert "devkit projects prune" in out.splitlines()[-1]
    code, out, _ = devkit("projects", "prune", "--dry-run", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["dry_run"] and [p["path"] for p in doc["removed"]] == [str(paths[1])]
    assert len(json.loads(devkit("projects", "list", "--json")[1])["projects"]) == 3
    code, out, _ = devkit("projects", "prune")
    assert code == 0 and out == f"Unregistered: {paths[1]}\n"
    code, out, _ = devkit("projects", "prune")
    assert code == 0 and "Nothing to prune" in out
    shutil.rmtree(paths[2])
    code, out, _ = devkit("projects", "remove", "--missing")
    assert code == 0 and out == f"Unregistered: {paths[2]}\n"
    remaining = json.loads(devkit("projects", "list", "--json")[1])["projects"]
    assert [p["path"] for p in remaining] == [str(paths[0])]


def test_distribution_name_and_urls() -> None:
    assert devkit.DISTRIBUTION == "devkit-workspace"
    assert devkit.__version__ == metadata.version("devkit-workspace") != "0.0.0"
    assert devkit.project_url() == "https://github.com/devkit-workspace/devkit"
    for path in [ROOT / "README.md", *sorted((ROOT / "src").rglob("*.py"))]:
        assert "github.com/org/devkit" not in path.read_text(), path


def test_store_readme_links_the_project(store) -> None:
    store.ensure()
    assert devkit.project_url() in (store.home / "README.txt").read_text()


def test_readme_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set-up on a fresh machine", 1)[1].split("```bash", 1)[1].split("```")[0]
    commands = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
    assert len(commands) == 2
    install, test = commands
    assert "pip install ." in install and install.endswith("devkit new --demo")
    assert "python3 -m venv" in install and "--break-system-packages" not in install
    assert "python3 -m venv" in test and "-m pytest" in test and "--user" not in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    venv = re.match(r"python3 -m venv (\S+)", test)
    assert venv and f"{venv.group(1).strip('/')}/" in ignored


@pytest.mark.parametrize("command", ["align", "sync", "update"])
@pytest.mark.parametrize("jobs", ["0", "-2", "many"])
def test_jobs_must_be_a_positive_number(command: str, jobs: str, devkit) -> None:
    code, out, err = devkit(command, "--jobs", jobs)
    assert code == 2 and out == ""
    assert err.splitlines()[0] == (f"devkit {command}: error: argument --jobs/-j: expected a whole "
                                   f"number of at least 1, got {jobs!r}")


def test_sigterm_unwinds_like_ctrl_c(devkit, monkeypatch) -> None:
    import signal

    from devkit.commands import store as store_cmd

    def terminated(**_: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(store_cmd, "store", terminated)
    code, out, err = devkit("store")
    assert code == 130 and out == "" and err == "devkit: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the command
