"""The platform: OS, distribution, WSL1 vs WSL2, macOS version, login shell.

Detection recipes (WSL: microsoft/WSL#423, #4555; WSL1 kernels
end in ``-Microsoft``, WSL2 ones contain ``microsoft-standard``; macOS: ``sw_vers``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from devkit.checks.base import Context, Outcome, check, fail, ok, warn
from devkit.hostfacts import Host


def wsl_version(host: Host) -> int | None:
    """1 or 2 under WSL, None elsewhere.

    WSL2 kernels say ``microsoft-standard`` (``5.15.x-microsoft-standard-WSL2``) and set
    ``WSL_INTEROP``; WSL1 reports ``4.4.0-19041-Microsoft`` (microsoft/WSL#4555).
    """
    if host.system != "Linux":
        return None
    release = (host.read_text("/proc/sys/kernel/osrelease")
               or host.read_text("/proc/version") or "").strip()
    in_wsl = "microsoft" in release.lower() or "wsl" in release.lower() or bool(
        host.env.get("WSL_DISTRO_NAME"))
    if not in_wsl:
        return None
    lower = release.lower()
    if "microsoft-standard" in lower or "wsl2" in lower or host.env.get("WSL_INTEROP"):
        return 2
    if host.exists("/run/WSL"):
        return 2
    return 1


def distribution(host: Host) -> str | None:
    """``PRETTY_NAME`` from ``/etc/os-release`` (os-release(5)), or None."""
    return host.os_release().get("PRETTY_NAME") or None


def macos_version(host: Host) -> str | None:
    """``sw_vers -productVersion`` on macOS (e.g. ``14.5``), else None."""
    if host.system != "Darwin":
        return None
    result = host.run(["sw_vers", "-productVersion"], timeout=5.0)
    return result.stdout.strip() or None if result.ok else None


def login_shell(host: Host) -> str | None:
    """Basename of ``$SHELL`` (``bash``, ``zsh``, ``fish``), or None when unset."""
    shell = host.env.get("SHELL", "")
    return os.path.basename(shell) or None


def describe(host: Host) -> dict[str, Any]:
    """The ``platform`` object of ``devkit doctor --json``.

    Keys: ``system`` (``linux``, ``macos``, ``windows``…), ``arch``, ``distribution``, ``kernel``,
    ``wsl`` (1, 2 or None), ``macos_version``, ``shell``.
    """
    system = {"Darwin": "macos"}.get(host.system, host.system.lower())
    kernel = (host.read_text("/proc/sys/kernel/osrelease") or "").strip() or None
    return {
        "system": system,
        "arch": host.machine,
        "distribution": distribution(host),
        "kernel": kernel,
        "wsl": wsl_version(host),
        "macos_version": macos_version(host),
        "shell": login_shell(host),
    }


def summary(info: Mapping[str, Any]) -> str:
    """One line, e.g. ``Linux x86_64, Ubuntu 24.04 LTS, WSL2, login shell bash``."""
    parts = []
    if info.get("system") == "macos":
        parts.append(f"macOS {info.get('macos_version') or '(version unknown)'} {info['arch']}")
    else:
        parts.append(f"{str(info.get('system', '?')).capitalize()} {info.get('arch', '')}".strip())
        if info.get("distribution"):
            parts.append(str(info["distribution"]))
    if info.get("wsl"):
        parts.append(f"WSL{info['wsl']}")
    parts.append(f"login shell {info.get('shell') or 'unknown'}")
    return ", ".join(parts)


@check("platform", "Platform")
def platform_check(ctx: Context) -> Outcome:
    """ok on Linux, WSL2 and macOS; warn on WSL1 and untested systems; fail on native Windows."""
    info = ctx.platform
    line = summary(info)
    if info.get("system") == "windows":
        return fail(f"{line}: native Windows is not supported", "install WSL2: wsl.exe --install")
    if ctx.wsl == 1:
        distro = ctx.host.env.get("WSL_DISTRO_NAME") or "<distro>"
        return warn(f"{line}: WSL1 is slow with many small files and untested by devkit",
                    f"convert to WSL2 from Windows: wsl.exe --set-version {distro} 2")
    if info.get("system") not in ("linux", "macos"):
        return warn(f"{line}: untested system", None)
    return ok(line)
