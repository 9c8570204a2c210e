"""Store checks: the uv cache exists and is writable, links from it reach the workspace, ``.venv``
really is made of the cache's files, the store is yours and not group/world-writable, and its
filesystem has room.

Link facts: uv tries clone → hardlink → copy (uv docs, concepts/cache "link mode";
crates/uv-fs/src/link.rs, astral-sh/uv#18104); across filesystems it copies and warns "Failed to
hardlink files" (astral-sh/uv#15875). On ext4 a hard-linked venv file is the cache's inode
(``st_ino``/``st_dev`` equal); a clone on btrfs/XFS/APFS is a new inode sharing extents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devkit.checks.base import Context, Outcome, check, fail, ok, safe_fix, skip, warn

if TYPE_CHECKING:
    from devkit.store import Store

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
    tag = f".devkit-doctor-{os.urandom(6).hex()}"
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


@dataclasses.dataclass(frozen=True)
class StoreSurvey:
    """Owner and mode problems among :func:`survey`'s paths (each read through symlinks)."""

    count: int  # paths looked at
    foreign: list[Path]  # not owned by you
    world: list[Path]  # world-writable
    group: list[Path]  # group-writable (and not world-writable)


def survey(ctx: Context) -> StoreSurvey:
    """What must be yours and not writable by others: ``DEVKIT_HOME`` and the files directly in it
    (registry, render proofs, memos), ``uv/``, the cache and its top-level subdirectories, the
    Python installs and the template repository. A symlink stands for what it points to (its
    owner and mode are what count: another user's folder behind a link is as writable as without
    it); missing paths are left out. Of the per-workspace mutex files (``.ws-<hash>.lock``, one
    per workspace: thousands) only the doctor's workspace's is looked at: a mutex file is never
    read, so its mode does not matter, and one that another user owns (``sudo devkit ...``) is
    in the way of that workspace's commands only, where its doctor names it.

    One ``os.scandir`` per directory and one ``stat`` per path (memoised in ``ctx``): the store's
    home grows with the number of workspaces, and doctor must not."""
    mine = ctx.store.workspace_mutex_file(ctx.workspace.path) if ctx.workspace else None
    return ctx.memo(("store-survey",), lambda: _survey(ctx.store, mine.name if mine else ""))


def _survey(store: Store, mutex: str | None = None) -> StoreSurvey:
    """:func:`survey`'s paths; ``mutex``: the one workspace mutex file name to look at (None:
    all of them, as ``--fix`` does)."""
    uid = os.getuid()
    seen: set[str] = set()
    foreign: list[Path] = []
    world: list[Path] = []
    group: list[Path] = []

    def look(path: str, st: os.stat_result) -> None:
        seen.add(path)
        if st.st_uid != uid:
            foreign.append(Path(path))
        if st.st_mode & stat.S_IWOTH:
            world.append(Path(path))
        elif st.st_mode & stat.S_IWGRP:
            group.append(Path(path))

    def one(path: Path) -> os.stat_result | None:
        name = str(path)
        if name in seen:
            return None
        try:
            st = os.stat(name)
        except OSError:
            return None
        look(name, st)
        return st

    def children(directory: Path, want: int) -> None:
        """Entries of ``directory`` whose target has file type ``want`` (``stat.S_IFREG``...)."""
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.path in seen or mutex is not None and entry.name != mutex \
                            and entry.name.startswith(".ws-") and entry.name.endswith(".lock"):
                        continue
                    try:
                        st = entry.stat()  # follows a symlink, like Path.is_file()
                    except OSError:
                        continue
                    if stat.S_IFMT(st.st_mode) == want:
                        look(entry.path, st)
        except OSError:
            pass

    if one(store.home) is not None:
        children(store.home, stat.S_IFREG)
    one(store.home / "uv")
    if one(store.uv_cache_dir) is not None:
        children(store.uv_cache_dir, stat.S_IFDIR)
    one(store.python_install_dir)
    one(store.template_repo)
    return StoreSurvey(len(seen), sorted(foreign), sorted(world), sorted(group))


def _names(paths: list[Path]) -> str:
    return " ".join(_q(p) for p in paths)


@check("store.permissions", "store permissions")
def permissions(ctx: Context) -> Outcome:
    """Nobody else may write the store: a planted wheel in the cache runs in every workspace, a
    forged render proof gets a config trusted. Owner and mode of ``DEVKIT_HOME``, its files, the
    cache and its top-level subdirectories, the Python installs and the template repository."""
    if not ctx.store.home.exists():
        return ok(f"{ctx.store.home} does not exist yet (devkit creates it private)")
    found = survey(ctx)
    foreign, world, group = found.foreign, found.world, found.group
    writable = world + group
    fixes = []
    if foreign:
        fixes.append(f"sudo chown \"$(id -un)\" {_names(foreign)}")
    if writable:
        fixes.append(f"chmod go-w {_names(writable)}")
    fix = " && ".join(fixes) or None
    parts = []
    if foreign:
        parts.append(f"not owned by you: {', '.join(map(str, foreign))}")
    if world:
        parts.append(f"world-writable: {', '.join(map(str, world))}")
    if group:
        parts.append(f"group-writable: {', '.join(map(str, group))}")
    if foreign or world:
        return fail("; ".join(parts), fix)
    if group:
        return warn("; ".join(parts), fix)
    return ok(f"{ctx.store.home} and {found.count - 1} paths in it are yours, writable only by you")


@safe_fix("store.permissions")
def fix_permissions(ctx: Context) -> str:
    """``chmod go-w`` the group/world-writable store paths you own (never chown: that needs root)."""
    found = _survey(ctx.store)  # afresh: a fix acts on the store as it is now
    uid = os.getuid()
    done = []
    for path in found.world + found.group:
        st = path.stat()
        if st.st_uid == uid:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))
            done.append(path)
    if not done:
        return "nothing to change"
    return f"ran `chmod go-w {_names(done)}`"


# -- .venv made of the cache's files ---------------------------------------------------------

SAMPLE_SIZE = 4  # venv files compared with the cache; a sample is enough to tell the source


def sample_site_packages(venv: Path, limit: int = SAMPLE_SIZE) -> list[Path]:
    """Up to ``limit`` non-empty files installed from wheels in ``venv``'s site-packages, from
    distinct top-level entries (no ``.pth``, ``__pycache__``, ``*.dist-info`` or uv's own
    ``_virtualenv`` files, which uv writes rather than links)."""
    sample: list[Path] = []
    for site in sorted(venv.glob("lib/python*/site-packages")):
        try:
            entries = sorted(site.iterdir())
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(("_virtualenv", "__pycache__")) or name.endswith(
                    (".pth", ".dist-info", ".egg-link", ".data")):
                continue
            candidates = [entry] if entry.is_file() else itertools.islice(entry.rglob("*.py"), 20)
            for file in candidates:
                if file.is_file() and file.stat().st_size > 0 and "__pycache__" not in file.parts:
                    sample.append(file)
                    break
            if len(sample) >= limit:
                return sample
    return sample


def cache_twin(cache: Path, site: Path, file: Path) -> Path | None:
    """The file of an unpacked wheel in ``cache`` (``archive-v*/<id>/<path in site-packages>``)
    that is the same inode as ``file`` (or that ``file`` links to, with ``UV_LINK_MODE=symlink``),
    or None."""
    if file.is_symlink():
        target = file.resolve()
        return target if target.is_relative_to(cache.resolve()) else None
    rel = file.relative_to(site)
    st = file.stat()
    for archive in cache.glob("archive-v*"):
        try:
            ids = os.listdir(archive)
        except OSError:
            continue
        for entry in ids:
            twin = archive / entry / rel
            try:
                tst = twin.stat()
            except OSError:
                continue
            if (tst.st_ino, tst.st_dev) == (st.st_ino, st.st_dev):
                return twin
    return None


def _site_of(venv: Path, file: Path) -> Path:
    for site in venv.glob("lib/python*/site-packages"):
        if file.is_relative_to(site):
            return site
    raise ValueError(f"{file} is not in a site-packages of {venv}")


@check("store.venv-linked", ".venv is made of the cache's files",
       requires=("workspace.venv", "store.links"), workspace=True)
def venv_linked(ctx: Context) -> Outcome:
    """Sampled site-packages files of ``.venv`` are the cache's own inodes. A venv built from
    another cache (``uv sync`` in a shell without the workspace environment uses ``~/.cache/uv``)
    shares nothing with the store. On copy-on-write filesystems uv clones (new inodes): then the
    link probe decides, and the message says so."""
    assert ctx.workspace is not None
    ws = ctx.workspace.path
    venv = ws / ".venv"
    cache = ctx.store.uv_cache_dir
    if ctx.tool_env().get("UV_LINK_MODE") == "copy":
        return skip("UV_LINK_MODE=copy: uv copies every file by choice, nothing shares the cache")
    sample = sample_site_packages(venv)
    if not sample:
        return ok(".venv has no installed packages yet: nothing to compare with the cache")
    shared = [f for f in sample if cache_twin(cache, _site_of(venv, f), f) is not None]
    fix = (f"devkit sync {_q(ws)}\n(or: cd {_q(ws)} && rm -rf .venv && "
           f"UV_CACHE_DIR={_q(cache)} uv sync, or plain `uv sync` in a shell where the workspace "
           "environment is loaded)")
    if len(shared) == len(sample):
        return ok(f"{len(shared)} of {len(sample)} sampled .venv files are the cache's own "
                  "(hard links)")
    if not shared and all(f.stat().st_nlink == 1 for f in sample):
        try:
            probe = probe_links(cache, venv)
        except OSError as exc:
            return warn(f"cannot probe links: {exc.strerror or exc}", None)
        if probe.clone == "ok":
            return ok("no sampled .venv file is a hard link, and this filesystem clones "
                      "(copy-on-write): sharing with the cache shows only in `df`; the link "
                      "probe says uv clones from the cache here")
    if shared:
        return warn(f"only {len(shared)} of {len(sample)} sampled .venv files are the cache's "
                    f"own: part of .venv was installed from another cache than {cache}", fix)
    return fail(f"0 of {len(sample)} sampled .venv files share an inode with the cache {cache}: "
                ".venv was built from another cache (e.g. ~/.cache/uv) or copied", fix)


@check("store.disk", "free disk space for the cache", requires=("store.cache-dir",))
def disk(ctx: Context) -> Outcome:
    """Free bytes on the cache's filesystem (``statvfs``, what ``df`` shows)."""
    path = ctx.store.uv_cache_dir
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    line = f"{free / GIB:.1f} GiB free on {_fs_name(ctx, path)}"
    fix = "free space on that filesystem, or remove what no project uses: devkit gc"
    if free < MIN_FREE_FAIL:
        return fail(line, fix)
    if free < MIN_FREE_WARN:
        return warn(line, fix)
    return ok(line)


GC_WARN = 1 * GIB  # `devkit gc` would free more than this: worth a warning


@check("store.gc", "cache space no project uses")
def reclaimable(ctx: Context) -> Outcome:
    """What ``devkit gc`` would free, as ``devkit align`` or ``devkit gc`` last recorded it in the
    manifest (this check never walks the cache); warns past :data:`GC_WARN` (1 GiB)."""
    from devkit.align import manifest
    from devkit.util import format_bytes

    figure = manifest.gc_figure(ctx.store)
    if figure is None:
        return skip("no figure recorded yet (`devkit align` or `devkit gc` records one)")
    freed = int(figure["reclaimable_bytes"])
    when = f"measured {figure.get('measured', '?')} by devkit {figure.get('by', '?')}"
    line = f"`devkit gc` would free {format_bytes(freed)} ({when})"
    if freed > GC_WARN:
        return warn(f"{line}: more than {format_bytes(GC_WARN)}", "devkit gc --dry-run, then devkit gc")
    return ok(line)
