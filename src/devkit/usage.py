"""Bytes on disk of the shared cache and the venvs, counting each hard-linked file once."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

# Filesystems whose copy-on-write clones share blocks while every file keeps st_nlink == 1:
# there link counts show no sharing and only the filesystem's usage does (uv docs, reference/settings
# "link-mode": clone falls back to hardlink where the filesystem cannot clone).
CLONE_FILESYSTEMS = frozenset({"btrfs", "xfs", "apfs", "bcachefs", "zfs"})


@dataclasses.dataclass
class Tree:
    """Regular files under one root: ``inodes`` maps (st_dev, st_ino) to bytes on disk."""

    root: Path
    inodes: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    files: int = 0

    @property
    def bytes(self) -> int:
        """Bytes on disk (512-byte blocks actually allocated), each inode once."""
        return sum(self.inodes.values())


def _files(root: Path) -> Iterator[os.DirEntry[str]]:
    """Regular files under ``root``, without following symlinks; unreadable entries are skipped."""
    stack = [str(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        yield entry
                except OSError:
                    continue


def scan(root: Path) -> Tree:
    """Walk ``root`` without following symlinks. A missing root gives an empty Tree."""
    tree = Tree(root)
    for entry in _files(root):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        tree.files += 1
        tree.inodes[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return tree


class InodeTable:
    """Walks several trees, ``stat``-ing each inode once: bytes on disk per ``(st_dev, st_ino)``.

    A hard link met again (a venv file linked from the cache, a file of another venv) is
    recognised by ``(st_dev, d_ino)`` from ``os.scandir`` alone (``DirEntry.inode()`` needs no
    system call on POSIX; ``d_ino`` equals ``st_ino`` there), so only new inodes are ``stat``-ed
    (for ``st_blocks``); each directory is ``stat``-ed for its ``st_dev`` (a mount point below a
    root has its own). Symlinks are not followed; unreadable entries are skipped.
    """

    def __init__(self) -> None:
        """An empty table."""
        self.bytes: dict[tuple[int, int], int] = {}

    def scan(self, root: Path) -> Tree:
        """The regular files under ``root`` (a missing root gives an empty Tree)."""
        tree = Tree(root)
        try:
            st = os.stat(root)  # a root that is a symlink to a directory is walked, as scan() does
        except OSError:
            return tree
        if not stat.S_ISDIR(st.st_mode):
            return tree
        known, inodes = self.bytes, tree.inodes
        stack = [(str(root), st.st_dev)]
        files = 0
        while stack:
            path, dev = stack.pop()
            try:
                entries = os.scandir(path)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    try:
                        if entry.is_file(follow_symlinks=False):  # most entries: tested first
                            key = (dev, entry.inode())
                            size = known.get(key)
                            if size is None:
                                size = known[key] = entry.stat(follow_symlinks=False).st_blocks * 512
                            inodes[key] = size
                            files += 1
                        elif entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, entry.stat(follow_symlinks=False).st_dev))
                    except OSError:
                        continue
        tree.files = files
        return tree


@dataclasses.dataclass(frozen=True)
class VenvUsage:
    """One venv: bytes shared with the cache (same inode) and bytes only it holds."""

    path: Path
    files: int
    linked_files: int
    linked_bytes: int
    private_bytes: int

    @property
    def bytes(self) -> int:
        """All bytes of the venv as if it were a private copy."""
        return self.linked_bytes + self.private_bytes


def venv_usage(venv: Path, cache: Tree, tree: Tree | None = None) -> VenvUsage:
    """Split ``venv``'s files into links into ``cache`` and private files (bytes on disk).

    ``tree``: ``venv`` already walked (:class:`InodeTable`), else it is walked here.
    """
    tree = tree if tree is not None else scan(venv)
    linked = {k: v for k, v in tree.inodes.items() if k in cache.inodes}
    private = sum(v for k, v in tree.inodes.items() if k not in cache.inodes)
    return VenvUsage(venv, tree.files, len(linked), sum(linked.values()), private)


def unique_bytes(trees: Iterable[Tree]) -> int:
    """Bytes on disk of the union of ``trees``, each inode counted once."""
    seen: dict[tuple[int, int], int] = {}
    for tree in trees:
        seen.update(tree.inodes)
    return sum(seen.values())


def filesystem_type(path: Path) -> str | None:
    """The filesystem type holding ``path`` (``ext4``, ``btrfs``, ``9p``, ``apfs``…), or None.

    Read through :class:`devkit.hostfacts.Host` (``/proc/self/mountinfo`` on Linux, ``/sbin/mount``
    on macOS); a path that does not exist yet is looked up through its nearest existing parent.
    """
    from devkit.hostfacts import Host

    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    mount = Host().mount_of(target.resolve())
    return mount.fstype if mount else None


def filesystem_usage(path: Path) -> dict[str, int]:
    """``statvfs`` of ``path``'s filesystem in bytes: total, used, free (what ``df`` shows)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return {"total": total, "used": total - st.f_bfree * st.f_frsize, "free": free}


def count_linked(venv: Path) -> tuple[int, int]:
    """(files with st_nlink > 1, all files) under ``venv``: a quick sign of hardlinks to the cache.

    Cheap (no cache walk), but blind on clone filesystems where every file has st_nlink == 1.
    """
    linked = total = 0
    for entry in _files(venv):
        total += 1
        linked += entry.stat(follow_symlinks=False).st_nlink > 1
    return linked, total


class CacheInodes:
    """The inodes of the uv cache's unpacked wheels that a venv's distributions can link to.

    uv unpacks each wheel once into ``archive-v0/<id>/`` (its packages and its ``*.dist-info``)
    and links venv files from there (uv docs, concepts/cache). Rather than walking the whole
    cache, an index of ``*.dist-info`` name -> archive directories is built from the first two
    levels, and only the archives a venv's distributions name are scanned. Thread-safe.
    """

    def __init__(self, cache_dir: Path) -> None:
        """``cache_dir``: the uv cache (``Store.uv_cache_dir``); it need not exist."""
        self.cache_dir = cache_dir
        self._index: dict[str, list[str]] | None = None
        self._seen: set[str] = set()  # archive directories already in the index
        self._scanned: dict[str, frozenset[tuple[int, int]]] = {}
        self._lock = threading.Lock()

    def _archives(self) -> dict[str, list[str]]:
        if self._index is None:
            self._index = {}
            self._add_new()
        return self._index

    def _add_new(self) -> None:
        """Index the archive directories not indexed yet: one ``scandir`` of each bucket, and
        the first two levels of the new directories only (an archive never changes once uv
        has renamed it into place)."""
        index = self._index if self._index is not None else {}
        for archive in sorted(self.cache_dir.glob("archive-v*")):
            for entry in _subdirs(str(archive)):
                if entry in self._seen:
                    continue
                self._seen.add(entry)
                for child in _subdirs(entry):
                    name = os.path.basename(child)
                    if name.endswith(".dist-info"):
                        index.setdefault(name, []).append(entry)
        self._index = index

    def refresh(self) -> None:
        """Take in the archives uv unpacked since the index was built (call it after a sync).

        A wheel unpacked during the run may hold a ``*.dist-info`` the index already knows from
        another archive (the same version from another index, another wheel of it for another
        Python): without this its links would be counted as private copies. Cheap: only new
        archive directories are read; nothing is done before the index is first needed.
        """
        with self._lock:
            if self._index is not None:
                self._add_new()

    def inodes_for(self, dist_infos: Iterable[str]) -> frozenset[tuple[int, int]]:
        """(st_dev, st_ino) of every file of the cache archives holding one of ``dist_infos``
        (``*.dist-info`` directory names, e.g. ``tinyshared-1.0.dist-info``)."""
        names = list(dist_infos)
        found: set[tuple[int, int]] = set()
        with self._lock:
            index = self._archives()
            if any(name not in index for name in names):
                # uv may have unpacked new wheels since the index was built (a sync in between)
                self._add_new()
            for name in names:
                for entry in index.get(name, ()):
                    if entry not in self._scanned:
                        self._scanned[entry] = frozenset(scan(Path(entry)).inodes)
                    found |= self._scanned[entry]
        return frozenset(found)

    @property
    def device(self) -> int | None:
        """``st_dev`` of the cache directory, None when it does not exist yet."""
        try:
            return self.cache_dir.stat().st_dev
        except OSError:
            return None


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


@dataclasses.dataclass(frozen=True)
class LinkCensus:
    """A venv's regular files: ``linked`` are the cache's very inodes, ``foreign`` are hard links
    to something else (typically another uv cache), the rest are private copies."""

    files: int
    linked: int
    foreign: int

    @property
    def private(self) -> int:
        """Files that are neither the cache's inodes nor hard links elsewhere."""
        return self.files - self.linked - self.foreign


def link_census(venv: Path, cache: CacheInodes) -> LinkCensus:
    """Count ``venv``'s files that are links into ``cache`` and links into anything else.

    Only the cache archives of the venv's own distributions are scanned (once per process). A
    file is recognised as one of the cache's inodes by ``(st_dev, d_ino)`` from ``os.scandir``
    alone (no ``stat``: see :class:`InodeTable`); only the others are ``stat``-ed, for
    ``st_nlink``. On clone filesystems (btrfs, XFS, APFS) a venv's files are inodes of their own
    with st_nlink == 1, so both counts are 0 there.
    """
    files = linked = foreign = 0
    known: frozenset[tuple[int, int]] | None = None
    try:
        root_dev = os.stat(venv).st_dev
    except OSError:
        return LinkCensus(0, 0, 0)
    stack = [(str(venv), root_dev)]
    while stack:
        path, dev = stack.pop()
        try:
            entries = os.scandir(path)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if not entry.is_file(follow_symlinks=False):
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, entry.stat(follow_symlinks=False).st_dev))
                        continue
                    if known is None:
                        known = cache.inodes_for(dist_infos(venv))
                    if (dev, entry.inode()) in known:
                        files += 1
                        linked += 1
                        continue
                    nlink = entry.stat(follow_symlinks=False).st_nlink
                except OSError:
                    continue
                files += 1
                foreign += nlink > 1
    return LinkCensus(files, linked, foreign)


def dist_infos(venv: Path) -> set[str]:
    """Names of the ``*.dist-info`` directories in ``venv``'s site-packages (POSIX and Windows)."""
    patterns = ("lib/python*/site-packages/*.dist-info", "lib/pypy*/site-packages/*.dist-info",
                "Lib/site-packages/*.dist-info")
    return {p.name for pattern in patterns for p in venv.glob(pattern)}
