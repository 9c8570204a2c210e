"""WSL checks: the workspace on a Windows drive, ``appendWindowsPath``, VS Code Remote.

Sources: https://learn.microsoft.com/en-us/windows/wsl/filesystems
(keep project files on the Linux filesystem), https://learn.microsoft.com/en-us/windows/wsl/wsl-config
(``[automount] root``, ``[interop] appendWindowsPath``), microsoft/WSL#4197 (9p is slow).
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from devkit.checks.base import Context, Outcome, check, fail, not_applicable, ok, only_on_wsl, warn

if TYPE_CHECKING:
    import configparser


def wsl_conf(ctx: Context) -> configparser.ConfigParser:
    """``/etc/wsl.conf`` parsed (an empty config when missing; raises configparser.Error)."""
    import configparser  # only on WSL: doctor elsewhere never reads wsl.conf

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are camelCase
    parser.read_string(ctx.host.read_text("/etc/wsl.conf") or "")
    return parser


def automount_root(ctx: Context) -> str:
    """``[automount] root`` of ``/etc/wsl.conf`` (default ``/mnt/``), with a trailing slash."""
    import configparser

    try:
        root = wsl_conf(ctx).get("automount", "root", fallback="/mnt/")
    except configparser.Error:
        root = "/mnt/"
    return root.strip().strip("'\"").rstrip("/") + "/"


def windows_drive(ctx: Context, path: str) -> str | None:
    """``C:`` when ``path`` is on a Windows drive (drvfs/9p mount or the automount root)."""
    mount = ctx.host.mount_of(path)
    if mount and (mount.fstype == "drvfs" or "aname=drvfs" in mount.options):
        found = re.search(r"path=([A-Za-z]):", mount.options)
        return f"{found.group(1).upper()}:" if found else mount.point
    root = automount_root(ctx)
    found = re.match(re.escape(root) + r"([A-Za-z])(/|$)", path)
    return f"{found.group(1).upper()}:" if found else None


@check("wsl.workspace-location", "workspace on the Linux filesystem", workspace=True,
       applies=only_on_wsl)
def workspace_location(ctx: Context) -> Outcome:
    """A workspace under ``/mnt/<drive>`` (9p/drvfs) is slow and cannot link to the cache."""
    assert ctx.workspace is not None
    ws = str(ctx.workspace.path)
    drive = windows_drive(ctx, ws)
    if drive is None:
        mount = ctx.host.mount_of(ws)
        return ok(f"on {mount.fstype if mount else 'the Linux filesystem'}, not a Windows drive")
    name = ctx.workspace.path.name
    outcome = fail if ctx.wsl == 2 else warn
    return outcome(f"the workspace is on the Windows drive {drive} (9p/drvfs): slow file access, "
                   "no links to the uv cache, venv creation may fail",
                   f"move the workspace under ~: mv {shlex.quote(ws)} ~/{shlex.quote(name)} && "
                   f"devkit projects remove {shlex.quote(ws)} && devkit projects add ~/{shlex.quote(name)}")


@check("wsl.windows-path", "Windows PATH not appended (appendWindowsPath)", applies=only_on_wsl)
def windows_path(ctx: Context) -> Outcome:
    """``[interop] appendWindowsPath`` (default true) adds every Windows PATH entry under /mnt/."""
    import configparser

    try:
        conf = wsl_conf(ctx)
        append = conf.getboolean("interop", "appendWindowsPath", fallback=True)
    except (configparser.Error, ValueError) as exc:
        return warn(f"cannot parse /etc/wsl.conf: {exc}", "fix the syntax of /etc/wsl.conf")
    entries = [p for p in ctx.host.env.get("PATH", "").split(":") if p.startswith("/mnt/")]
    if not append:
        return ok("appendWindowsPath = false in /etc/wsl.conf")
    if not entries:
        return ok("no Windows directories on PATH")
    if conf.has_section("interop"):
        change = "set `appendWindowsPath = false` under [interop] in /etc/wsl.conf"
    else:
        change = "sudo sh -c 'printf \"\\n[interop]\\nappendWindowsPath = false\\n\" >> /etc/wsl.conf'"
    return warn(f"{len(entries)} Windows directories on PATH (appendWindowsPath is on): slow "
                "command lookup, Windows tools can shadow Linux ones",
                f"{change}, then run `wsl.exe --shutdown` from Windows")


def vscode_remote(ctx: Context) -> bool:
    """True when VS Code Remote-WSL is in use (``~/.vscode-server``, ``TERM_PROGRAM=vscode``)."""
    env = ctx.host.env
    return (ctx.host.exists(f"{ctx.host.home}/.vscode-server") or env.get("TERM_PROGRAM") == "vscode"
            or bool(env.get("VSCODE_IPC_HOOK_CLI")))


@check("wsl.vscode", "VS Code uses .venv/bin/python", workspace=True, applies=only_on_wsl)
def vscode(ctx: Context) -> Outcome:
    """VS Code Remote-WSL runs no shell startup files: mise/direnv hooks never run for it."""
    if not vscode_remote(ctx):
        return not_applicable("VS Code Remote is not in use")
    assert ctx.workspace is not None
    settings = ctx.workspace.path / ".vscode" / "settings.json"
    try:
        text = settings.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if re.search(r'"python\.defaultInterpreterPath"\s*:\s*"[^"]*\.venv/bin/python"', text):
        return ok("python.defaultInterpreterPath points at .venv/bin/python")
    return warn("VS Code Remote runs without shell hooks: its Python does not see the workspace "
                "environment", f'add "python.defaultInterpreterPath": '
                f'"${{workspaceFolder}}/.venv/bin/python" to {settings}')
