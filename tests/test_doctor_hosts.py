"""``devkit doctor`` on recorded hosts (tests/hosts/*.json): WSL2, WSL1, macOS and plain Linux."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hosts import context, load, newly_bad, run_one, statuses, write_workspace

from devkit.checks import platform as platform_checks
from devkit.checks.base import Workspace, run_checks
from devkit.commands import doctor as doctor_cmd
from devkit.hostfacts import parse_bsd_mount, parse_mountinfo

MACHINE_EXPECTED = {
    "linux": {"platform": "ok", "tools.uv": "ok", "tools.mise": "ok", "tools.git": "ok",
              "shell.mise-active": "ok", "shell.mise-rc": "ok", "git.autocrlf": "ok",
              "wsl.windows-path": "skip", "macos.apfs-clone": "skip"},
    "wsl2": {"platform": "ok", "tools.uv": "ok", "tools.mise": "ok", "tools.git": "ok",
             "shell.mise-active": "ok", "shell.mise-rc": "ok", "git.autocrlf": "ok",
             "wsl.windows-path": "warn", "macos.apfs-clone": "skip"},
    "wsl1": {"platform": "warn", "tools.uv": "ok", "tools.mise": "ok", "tools.git": "ok",
             "shell.mise-active": "ok", "shell.mise-rc": "ok", "git.autocrlf": "ok",
             "wsl.windows-path": "ok", "macos.apfs-clone": "skip"},
    "macos": {"platform": "ok", "tools.uv": "ok", "tools.mise": "ok", "tools.git": "ok",
              "shell.mise-active": "ok", "shell.mise-rc": "ok", "git.autocrlf": "ok",
              "wsl.windows-path": "skip", "macos.apfs-clone": "ok"},
}


@pytest.mark.parametrize("name", sorted(MACHINE_EXPECTED))
def test_machine_checks(name, tmp_path, store) -> None:
    store.ensure()
    got = statuses(run_checks(context(tmp_path, load(name), store)))
    assert {k: got[k] for k in MACHINE_EXPECTED[name]} == MACHINE_EXPECTED[name]


@pytest.mark.parametrize(("name", "expected"), [
    ("linux", {"system": "linux", "wsl": None, "distribution": "Ubuntu 24.04.1 LTS",
               "shell": "bash", "macos_version": None}),
    ("wsl2", {"system": "linux", "wsl": 2, "kernel": "5.15.167.4-microsoft-standard-WSL2"}),
    ("wsl1", {"system": "linux", "wsl": 1, "distribution": "Ubuntu 22.04.4 LTS"}),
    ("macos", {"system": "macos", "wsl": None, "macos_version": "14.5", "shell": "zsh",
               "arch": "arm64"}),
])
def test_platform_description(name, expected) -> None:
    info = platform_checks.describe(load(name))
    assert {k: info[k] for k in expected} == expected


def test_platform_line_and_statuses(tmp_path) -> None:
    assert run_one(context(tmp_path, load("wsl2")), "platform").message == (
        "Linux x86_64, Ubuntu 24.04.1 LTS, WSL2, login shell bash")
    assert run_one(context(tmp_path, load("macos")), "platform").message == (
        "macOS 14.5 arm64, login shell zsh")
    wsl1 = run_one(context(tmp_path, load("wsl1")), "platform")
    assert wsl1.fix == "convert to WSL2 from Windows: wsl.exe --set-version Ubuntu-22.04 2"
    windows = load("linux").derive()
    windows.data["system"] = "Windows"
    assert run_one(context(tmp_path, windows), "platform").status == "fail"
    bsd = load("linux").derive()
    bsd.data["system"] = "FreeBSD"
    assert run_one(context(tmp_path, bsd), "platform").status == "warn"


def test_wsl2_json_document(tmp_path, store) -> None:
    out = io.StringIO()
    doctor_cmd.doctor(tmp_path, store=store, as_json=True, host=load("wsl2"), out=out)
    doc = json.loads(out.getvalue())
    assert doc["platform"]["wsl"] == 2
    assert {c["id"]: c["status"] for c in doc["checks"]}["wsl.windows-path"] == "warn"


# -- WSL2 injected problems: exactly one check turns bad ---------------------------------------

@pytest.fixture
def wsl2_ws(make_workspace) -> Path:
    return make_workspace("proj")


def _diff(ws: Path, before_host, after_host) -> tuple[dict[str, str], dict]:
    before = statuses(run_checks(context(ws, before_host)))
    results = run_checks(context(ws, after_host))
    return newly_bad(before, statuses(results)), {r.id: r for r in results}


def test_wsl2_workspace_on_drvfs(wsl2_ws) -> None:
    host = load("wsl2")
    mountinfo = host.read_text("/proc/self/mountinfo") + (
        f"90 62 0:70 / {wsl2_ws} rw,noatime - 9p C:\\134 rw,aname=drvfs;path=C:\\;uid=1000\n")
    changed, results = _diff(wsl2_ws, host, host.derive(files={"/proc/self/mountinfo": mountinfo}))
    assert changed == {"wsl.workspace-location": "fail"}
    fix = results["wsl.workspace-location"].fix
    assert fix.startswith(f"move the workspace under ~: mv {wsl2_ws} ~/proj && ")


def test_wsl2_workspace_under_mnt_c(tmp_path) -> None:
    ctx = context(tmp_path, load("wsl2"))
    ctx.workspace = Workspace(Path("/mnt/c/Users/me/proj"), {"env_loader": "mise"})
    result = run_one(ctx, "wsl.workspace-location")
    assert result.status == "fail" and "Windows drive C:" in result.message
    assert result.fix == ("move the workspace under ~: mv /mnt/c/Users/me/proj ~/proj && "
                          "devkit projects remove /mnt/c/Users/me/proj && devkit projects add ~/proj")
    ctx.workspace = Workspace(Path("/home/me/proj"), {"env_loader": "mise"})
    assert run_one(ctx, "wsl.workspace-location").status == "ok"


def test_wsl_custom_automount_root(tmp_path) -> None:
    host = load("wsl2").derive(files={"/etc/wsl.conf": "[automount]\nroot = /win\n",
                                      "/proc/self/mountinfo": ""})
    ctx = context(tmp_path, host)
    ctx.workspace = Workspace(Path("/win/d/src/proj"), {"env_loader": "mise"})
    assert "drive D:" in run_one(ctx, "wsl.workspace-location").message


def test_wsl1_workspace_on_drvfs_is_a_warning(tmp_path) -> None:
    ctx = context(tmp_path, load("wsl1"))
    ctx.workspace = Workspace(Path("/mnt/c/proj"), {"env_loader": "mise"})
    assert run_one(ctx, "wsl.workspace-location").status == "warn"


def test_location_check_skipped_off_wsl(tmp_path) -> None:
    ctx = context(tmp_path, load("linux"))
    ctx.workspace = Workspace(Path("/mnt/c/proj"), {"env_loader": "mise"})
    result = run_one(ctx, "wsl.workspace-location")
    assert (result.status, result.relevant) == ("skip", False)


def test_wsl2_windows_uv_first_on_path(wsl2_ws) -> None:
    host = load("wsl2")
    win_bin = "/mnt/c/Users/me/.local/bin"
    after = host.derive(env={"PATH": f"{win_bin}:{host.env['PATH']}"},
                        executables=[f"{win_bin}/uv.exe"])
    changed, results = _diff(wsl2_ws, host, after)
    assert changed == {"tools.uv": "fail"}
    uv = results["tools.uv"]
    assert uv.message == f"uv resolves to a Windows binary: {win_bin}/uv.exe"
    assert "appendWindowsPath = false" in uv.fix and "wsl.exe --shutdown" in uv.fix


def test_windows_path_setting(tmp_path) -> None:
    wsl2 = load("wsl2")
    result = run_one(context(tmp_path, wsl2), "wsl.windows-path")
    assert result.status == "warn" and result.message.startswith("5 Windows directories on PATH")
    assert "printf" in result.fix and "[interop]" in result.fix
    off = wsl2.derive(files={"/etc/wsl.conf": "[interop]\nappendWindowsPath = false\n"})
    assert run_one(context(tmp_path, off), "wsl.windows-path").status == "ok"
    section = wsl2.derive(files={"/etc/wsl.conf": "[interop]\nenabled = true\n"})
    assert run_one(context(tmp_path, section), "wsl.windows-path").fix.startswith(
        "set `appendWindowsPath = false` under [interop]")
    broken = wsl2.derive(files={"/etc/wsl.conf": "[interop\nx"})
    assert run_one(context(tmp_path, broken), "wsl.windows-path").status == "warn"


def test_vscode_remote(tmp_path) -> None:
    ws = write_workspace(tmp_path / "proj")
    ctx = context(ws, load("wsl2"))
    result = run_one(ctx, "wsl.vscode")
    assert result.status == "warn" and ".venv/bin/python" in result.fix
    (ws / ".vscode").mkdir()
    (ws / ".vscode" / "settings.json").write_text(
        '{\n  "python.defaultInterpreterPath": "${workspaceFolder}/.venv/bin/python"\n}\n')
    assert run_one(ctx, "wsl.vscode").status == "ok"
    no_code = load("wsl2").derive()
    no_code.data["dirs"] = ["/run/WSL"]
    assert run_one(context(ws, no_code), "wsl.vscode").status == "skip"
    assert run_one(context(ws, load("linux")), "wsl.vscode").status == "skip"


# -- macOS ----------------------------------------------------------------------------------

def test_macos_apfs_clone(tmp_path, store) -> None:
    store.ensure()
    mac = load("macos")
    assert run_one(context(tmp_path, mac, store), "macos.apfs-clone").status == "ok"
    mount = mac.data["run"]["/sbin/mount"]["stdout"].replace("on / (apfs,", "on / (hfs,")
    hfs = mac.derive(run={"/sbin/mount": {"returncode": 0, "stdout": mount}})
    result = run_one(context(tmp_path, hfs, store), "macos.apfs-clone")
    assert result.status == "warn" and "hfs" in result.message
    none = mac.derive(run={"/sbin/mount": None})
    assert run_one(context(tmp_path, none, store), "macos.apfs-clone").status == "warn"


@pytest.mark.parametrize(("home", "status"), [
    ("/opt/homebrew/opt/python@3.11/bin", "warn"),
    ("/usr/local/Cellar/python@3.11/3.11.7/bin", "warn"),
    ("/Users/me/.local/share/devkit/uv/python/cpython-3.11.7-macos-aarch64-none/bin", "ok"),
])
def test_macos_homebrew_python(tmp_path, home, status) -> None:
    ws = write_workspace(tmp_path / "proj", venv_home=home)
    result = run_one(context(ws, load("macos")), "macos.homebrew-python")
    assert result.status == status
    if status == "warn":
        assert result.fix == f"cd {ws} && rm -rf .venv && uv sync --managed-python"


def test_homebrew_check_skips_off_macos_or_without_venv(tmp_path) -> None:
    with_venv = write_workspace(tmp_path / "a", venv_home="/opt/homebrew/bin")
    assert run_one(context(with_venv, load("linux")), "macos.homebrew-python").status == "skip"
    bare = write_workspace(tmp_path / "b")
    result = run_one(context(bare, load("macos")), "macos.homebrew-python")
    assert result.status == "skip" and ".venv does not exist" in result.message


# -- tools and shell from recordings ------------------------------------------------------------

def _uv_says(text: str, rc: int = 0):
    return load("linux").derive(run={"/home/me/.local/bin/uv --version":
                                     {"returncode": rc, "stdout": text}})


@pytest.mark.parametrize(("host", "status", "needle"), [
    (lambda: load("linux"), "ok", "uv 0.13.9 (/home/me/.local/bin/uv)"),
    (lambda: _uv_says("uv 0.8.22 (x)"), "fail", "uv 0.8.22 is older than 0.9"),
    (lambda: _uv_says("uv dev build"), "warn", "cannot read the version"),
    (lambda: _uv_says("", rc=2), "fail", "--version` failed"),
    (lambda: load("linux").derive(run={"/home/me/.local/bin/uv --version": None}), "fail",
     "not in the recording"),
])
def test_tool_statuses(tmp_path, host, status, needle) -> None:
    result = run_one(context(tmp_path, host()), "tools.uv")
    assert result.status == status and needle in result.message


def test_missing_tools(tmp_path) -> None:
    bare = load("linux").derive()
    bare.data["executables"] = []
    results = {r.id: r for r in run_checks(context(tmp_path, bare))}
    assert results["tools.git"].status == "fail" and results["tools.git"].fix == "sudo apt-get install git"
    assert results["tools.mise"].status == "fail"
    assert results["shell.mise-rc"].status == "skip"
    assert results["git.autocrlf"].status == "skip"
    direnv_ws = write_workspace(tmp_path / "d", loader="direnv")
    results = {r.id: r for r in run_checks(context(direnv_ws, bare))}
    assert results["tools.mise"].status == "warn"  # not needed by a direnv-only workspace
    assert results["tools.direnv"].status == "fail"
    assert results["workspace.direnv-allowed"].status == "skip"
    assert results["shell.mise-active"].status == "skip"


def test_direnv_only_when_used(tmp_path) -> None:
    assert run_one(context(tmp_path, load("linux")), "tools.direnv").status == "skip"
    ws = write_workspace(tmp_path / "both", loader="both")
    assert run_one(context(ws, load("linux")), "tools.direnv").status == "ok"


@pytest.mark.parametrize(("shell", "rc_path", "line"), [
    ("bash", "~/.bashrc", 'eval "$(mise activate bash)"'),
    ("zsh", "~/.zshrc", 'eval "$(mise activate zsh)"'),
    ("fish", "~/.config/fish/config.fish", "mise activate fish | source"),
])
def test_mise_rc_missing(tmp_path, shell, rc_path, line) -> None:
    host = load("linux").derive(env={"SHELL": f"/usr/bin/{shell}"},
                                files={"/home/me/.bashrc": "# nothing\n"})
    result = run_one(context(tmp_path, host), "shell.mise-rc")
    assert result.status == "warn" and result.fix == f"echo '{line}' >> {rc_path}"


def test_mise_rc_found_in_fish_conf_d_and_unknown_shell(tmp_path) -> None:
    host = load("linux").derive(env={"SHELL": "/usr/bin/fish"}, files={
        "/home/me/.bashrc": None, "/home/me/.config/fish/conf.d/mise.fish": "mise activate fish | source\n"})
    result = run_one(context(tmp_path, host), "shell.mise-rc")
    assert result.status == "ok" and "conf.d/mise.fish" in result.message
    odd = load("linux").derive(env={"SHELL": "/bin/tcsh"}, files={"/home/me/.bashrc": None})
    assert run_one(context(tmp_path, odd), "shell.mise-rc").status == "warn"


def test_mise_active(tmp_path) -> None:
    assert run_one(context(tmp_path, load("macos")), "shell.mise-active").message == (
        "mise is activated in this zsh shell")
    off = load("macos").derive(env={"MISE_SHELL": None})
    result = run_one(context(tmp_path, off), "shell.mise-active")
    assert result.status == "warn" and result.fix == 'eval "$(mise activate zsh)"'
    direnv_ws = write_workspace(tmp_path / "d", loader="direnv")
    assert run_one(context(direnv_ws, off), "shell.mise-active").status == "skip"


def test_direnv_hook(tmp_path) -> None:
    ws = write_workspace(tmp_path / "d", loader="direnv")
    result = run_one(context(ws, load("linux")), "shell.direnv-hook")
    assert result.status == "warn" and result.fix == "echo 'eval \"$(direnv hook bash)\"' >> ~/.bashrc"
    hooked = load("linux").derive(files={"/home/me/.bashrc": 'eval "$(direnv hook bash)"\n'})
    assert run_one(context(ws, hooked), "shell.direnv-hook").status == "ok"
    assert run_one(context(tmp_path, load("linux")), "shell.direnv-hook").status == "skip"


def test_direnv_hook_not_needed_with_mise_in_both(tmp_path) -> None:
    ws = write_workspace(tmp_path / "b", loader="both")
    mise_only = load("linux").derive(files={"/home/me/.bashrc": 'eval "$(mise activate bash)"\n'})
    result = run_one(context(ws, mise_only), "shell.direnv-hook")
    assert result.status == "ok" and result.message.startswith("not needed: the mise hook")
    neither = load("linux").derive(files={"/home/me/.bashrc": "# nothing\n"})
    assert run_one(context(ws, neither), "shell.direnv-hook").status == "warn"


@pytest.mark.parametrize(("answer", "status", "fix"), [
    ({"returncode": 0, "stdout": "file:/home/me/.gitconfig\ttrue\n"}, "fail",
     "git config --global core.autocrlf input"),
    ({"returncode": 0, "stdout": "file:/home/me/proj/.git/config\ttrue\n"}, "fail",
     "git -C /home/me config core.autocrlf input"),
    ({"returncode": 0, "stdout": "file:/home/me/.gitconfig\tinput\n"}, "ok", None),
    ({"returncode": 128, "stderr": "fatal: bad config line 1"}, "warn", None),
])
def test_autocrlf_from_recording(tmp_path, answer, status, fix) -> None:
    host = load("linux").derive(run={"git config --show-origin --get core.autocrlf": answer})
    result = run_one(context(tmp_path, host), "git.autocrlf")
    assert (result.status, result.fix) == (status, fix)


# -- parsers ---------------------------------------------------------------------------------

def test_parse_mountinfo_wsl2() -> None:
    mounts = {m.point: m for m in parse_mountinfo(load("wsl2").read_text("/proc/self/mountinfo"))}
    assert mounts["/"].fstype == "ext4"
    assert mounts["/mnt/c"].fstype == "9p" and "aname=drvfs;path=C:\\" in mounts["/mnt/c"].options
    host = load("wsl2")
    assert host.mount_of("/mnt/c/Users/me/proj").point == "/mnt/c"
    assert host.mount_of("/mnt/cc").point == "/"
    assert host.mount_of("/home/me").fstype == "ext4"


def test_parse_bsd_mount() -> None:
    mounts = parse_bsd_mount(load("macos").data["run"]["/sbin/mount"]["stdout"])
    assert mounts[0].point == "/" and mounts[0].fstype == "apfs"
    assert load("macos").mount_of("/Volumes/USB/x").fstype == "exfat"


def test_recorded_host_basics() -> None:
    host = load("wsl2")
    assert host.which("uv") == "/home/me/.local/bin/uv"
    assert host.which("wsl.exe") == "/mnt/c/WINDOWS/system32/wsl.exe"
    assert host.run(["nope"]).error == "`nope` is not in the recording"
    assert host.exists("/run/WSL") and not host.exists("/etc/passwd")
