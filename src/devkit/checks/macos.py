"""macOS checks: the cache volume can clone (APFS); a Homebrew Python as base interpreter.

Sources: clonefile(2) works within one APFS volume
(rclone/rclone#7534); Homebrew Python is externally managed and moves on ``brew upgrade``
(https://docs.brew.sh/Homebrew-and-Python, astral-sh/uv#1640).
"""

from __future__ import annotations

import shlex

from devkit.checks.base import Context, Outcome, check, ok, only_on, warn
from devkit.checks.project import read_pyvenv_cfg

HOMEBREW_PREFIXES = ("/opt/homebrew/", "/usr/local/Cellar/", "/usr/local/opt/")


@check("macos.apfs-clone", "cache volume supports clones (APFS)", requires=("store.cache-dir",),
       applies=only_on("macos"))
def apfs_clone(ctx: Context) -> Outcome:
    """uv's default link mode on macOS is ``clone``; only APFS can clone."""
    mount = ctx.host.mount_of(ctx.store.uv_cache_dir)
    if mount is None:
        return warn("cannot tell the cache's filesystem (`/sbin/mount` gave nothing)", None)
    if mount.fstype == "apfs":
        return ok(f"cache on APFS ({mount.point}): uv clones files copy-on-write")
    return warn(f"cache on {mount.fstype} ({mount.point}): no clones, uv hard-links or copies",
                "move UV_CACHE_DIR to the APFS volume that holds your workspaces")


@check("macos.homebrew-python", "base interpreter is not Homebrew's",
       requires=("workspace.venv",), workspace=True, applies=only_on("macos"))
def homebrew_python(ctx: Context) -> Outcome:
    """``pyvenv.cfg`` ``home`` under Homebrew: the venv breaks on ``brew upgrade``."""
    assert ctx.workspace is not None
    cfg = read_pyvenv_cfg(ctx.workspace.path / ".venv") or {}
    home = cfg.get("home", "")
    if home.startswith(HOMEBREW_PREFIXES) or home.rstrip("/") + "/" in HOMEBREW_PREFIXES:
        ws = shlex.quote(str(ctx.workspace.path))
        return warn(f".venv is built on Homebrew's Python ({home}): `brew upgrade` can break it",
                    f"cd {ws} && rm -rf .venv && uv sync --managed-python")
    return ok(f"base interpreter in {home or '?'}")
