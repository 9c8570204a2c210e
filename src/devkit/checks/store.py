"""Store checks: the uv cache exists and is writable, links from it reach the workspace, it is not
group/world-writable, and its filesystem has room.

Link facts: ../shared/notes/uv.md §2-3. uv tries clone → hardlink → copy (crates/uv-fs/src/link.rs,
astral-sh/uv#18104); across filesystems it copies and warns "Failed to hardlink files"
(astral-sh/uv#15875).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shlex
import stat
import sys
import uuid
from pathlib import Path

from devkit.checks.base import Context, Outcome, check, fail, ok, safe_fix, warn

GIB = 1024**3
MIN_FREE_FAIL = 1 * GIB  # below this a single `uv sync` of a scientific stack can fail
MIN_FREE_WARN = 5 * GIB
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


@check("store.cache-dir", "uv cache directory")
def cache_dir(ctx: Context) -> Outcome:
    """``UV_CACHE_DIR`` (default ``$DEVKIT_HOME/uv/cache``) exists and is a writable directory."""
    path = ctx.store.uv_cache_dir
    if not path.exists():
        return fail(f"{path} does not exist", f"mkdir -p -m 700 {_q(path)}")
    if not path.is_dir():
        return fail(f"{path} is not a directory", f"mv {_q(path)} {_q(str(path) + '.bak')}")
    if not os.access(path, os.W_OK | os.X_OK):
        return fail(f"{path} is not writable by you", f"sudo chown -R \"$(id -un)\" {_q(path)}")
    return ok(f"{path} exists and is writable")


@safe_fix("store.cache-dir")
def fix_cache_dir(ctx: Context) -> str:
    """Create the cache directory (mode 0700)."""
    path = ctx.store.uv_cache_dir
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"created {path}"


@dataclasses.dataclass(frozen=True)
class LinkProbe:
    """What linking a cache file into the target did: ``"ok"`` or the errno name (``EXDEV``…)."""

    hardlink: str
    clone: str
    same_device: bool


def _clone(src: Path, dst: Path) -> str:
    """Copy-on-write clone: FICLONE on Linux (ioctl_ficlone(2)), clonefile(2) on macOS."""
    try:
        if sys.platform == "darwin":
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.clonefile(os.fsencode(src), os.fsencode(dst), 0) != 0:
                return errno.errorcode.get(ctypes.get_errno(), "error")
            return "ok"
        import fcntl

        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, "error")
    except (AttributeError, ImportError):
        return "ENOTSUP"


def probe_links(cache: Path, target: Path) -> LinkProbe:
    """Make a file in ``cache``, hard-link and clone it into ``target``, clean up.

    Raises OSError when the probe file cannot be created in ``cache``.
    """
    tag = f".devkit-doctor-{uuid.uuid4().hex[:12]}"
    src, linked, cloned = cache / f"{tag}.src", target / f"{tag}.link", target / f"{tag}.clone"
    src.write_bytes(b"devkit doctor link probe\n")
    try:
        try:
            os.link(src, linked)
            hardlink = "ok"
        except OSError as exc:
            hardlink = errno.errorcode.get(exc.errno or 0, "error")
        clone = _clone(src, cloned)
        same = src.stat().st_dev == target.stat().st_dev
        return LinkProbe(hardlink, clone, same)
    finally:
        for path in (linked, cloned, src):
            with contextlib.suppress(OSError):
                path.unlink()


def _fs_name(ctx: Context, path: Path) -> str:
    mount = ctx.host.mount_of(path)
    return f"{mount.fstype} at {mount.point}" if mount else "unknown filesystem"


def _cache_suggestion(ctx: Context, ws: Path) -> str:
    """A cache location on the workspace's filesystem, as an ``export`` line."""
    dev = ws.stat().st_dev
    for candidate in (ctx.store.home, Path(ctx.host.home)):
        existing = candidate
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.stat().st_dev == dev:
            cache = (candidate / "uv" / "cache" if candidate == ctx.store.home
                     else candidate / ".local/share/devkit/uv/cache")
            return f"export UV_CACHE_DIR={_q(cache)}"
    mount = ctx.host.mount_of(ws)
    root = Path(mount.point if mount else ws.parent) / ".devkit"
    return f"export DEVKIT_HOME={_q(root)} UV_CACHE_DIR={_q(root / 'uv/cache')}"


@check("store.links", "links from the cache into the workspace",
       requires=("store.cache-dir",), workspace=True)
def links(ctx: Context) -> Outcome:
    """A real probe: hard-link (and clone) a cache file into ``.venv``; says what uv will do."""
    assert ctx.workspace is not None
    ws = ctx.workspace.path
    target = ws / ".venv" if (ws / ".venv").is_dir() else ws
    cache = ctx.store.uv_cache_dir
    try:
        probe = probe_links(cache, target)
    except OSError as exc:
        return warn(f"cannot probe links: {exc.strerror or exc}", None)
    where = f"cache on {_fs_name(ctx, cache)}, workspace on {_fs_name(ctx, target)}"
    if not probe.same_device or probe.hardlink == "EXDEV":
        if ctx.tool_env().get("UV_LINK_MODE") == "copy":  # chosen: uv copies without a warning
            return warn(f"different filesystems ({where}) and UV_LINK_MODE=copy: every venv holds "
                        "its own copy of each file", f"{_cache_suggestion(ctx, ws)} and unset "
                        "UV_LINK_MODE to share files with the cache")
        return fail(f"the cache and the workspace are on different filesystems ({where}): uv "
                    "copies every file instead of linking, and warns “Failed to hardlink files”",
                    f"put the cache on the workspace's filesystem: {_cache_suggestion(ctx, ws)} "
                    "(in your shell profile), or accept copies: export UV_LINK_MODE=copy")
    if probe.clone == "ok":
        return ok(f"same filesystem ({where}): uv will clone files (copy-on-write)")
    if probe.hardlink == "ok":
        return ok(f"same filesystem ({where}): uv will hard-link files from the cache")
    return warn(f"neither clone ({probe.clone}) nor hard link ({probe.hardlink}) works ({where}): "
                "uv will copy every file", "move the workspace and the cache to a Linux "
                "filesystem such as ext4, btrfs or APFS")


@check("store.permissions", "uv cache permissions", requires=("store.cache-dir",))
def permissions(ctx: Context) -> Outcome:
    """Nobody else may write the cache: a planted wheel would run in every workspace."""
    path = ctx.store.uv_cache_dir
    mode = stat.S_IMODE(path.stat().st_mode)
    fix = f"chmod go-w {_q(path)}"
    if mode & stat.S_IWOTH:
        return fail(f"{path} is world-writable (mode {mode:04o})", fix)
    if mode & stat.S_IWGRP:
        return warn(f"{path} is group-writable (mode {mode:04o})", fix)
    return ok(f"mode {mode:04o}, writable only by you")


@check("store.disk", "free disk space for the cache", requires=("store.cache-dir",))
def disk(ctx: Context) -> Outcome:
    """Free bytes on the cache's filesystem (``statvfs``, what ``df`` shows)."""
    path = ctx.store.uv_cache_dir
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    line = f"{free / GIB:.1f} GiB free on {_fs_name(ctx, path)}"
    fix = f"free space on that filesystem, or prune the cache: UV_CACHE_DIR={_q(path)} uv cache prune"
    if free < MIN_FREE_FAIL:
        return fail(line, fix)
    if free < MIN_FREE_WARN:
        return warn(line, fix)
    return ok(line)
