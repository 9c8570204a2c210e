"""What devkit knows of the layout of uv's cache: which entries hold which package version.

uv never promised a stable layout (uv docs, concepts/cache: "the cache format is not stable";
bucket names carry a version that changes across uv releases), so this module knows exactly the
layouts it was checked against and :func:`check_layout` refuses any other. Seen with uv 0.13.8
and 0.13.9 (checked with ``ls`` after real syncs):

* ``archive-v0/<id>/``: one unpacked wheel; venv files are hard links (or clones) of its files.
* ``wheels-v7/`` (uv 0.13.8) and ``wheels-v8/`` (0.13.9): ``<index>/<name>/<version>-<tags>``,
  a **symlink** to ``../../../archive-v0/<id>`` (one more ``..`` under ``index/<hash>/``),
  beside ``<version>-<tags>.http|.msgpack|.rev|.lock`` metadata. ``<index>`` is ``pypi`` or
  ``index/<hash of the index URL>``; ``url/``, ``path/`` hold wheels of direct URLs and files.
* ``sdists-vN/``: wheels built from source, ``editable/``, ``path/``, ``git/`` those of local
  packages (kept: devkit only reads it to know what is cached).
* ``simple-vN/<index>/<name>.rkyv``: index pages, which ``uv sync --offline`` needs to resolve
  build requirements.

``uv cache prune`` deletes every ``archive-v0`` entry nothing in the cache points to (uv's
``Cache::prune``); ``uv cache clean NAME`` every entry of one name. uv has no per-version
command, so :func:`remove_version_entries` removes only the index entry of one version and
leaves the archive to ``uv cache prune``. The cache's global lock is ``$CACHE/.lock``: normal uv
commands hold it shared, ``clean``/``prune`` exclusively (flock(2); astral-sh/uv#15888), and a
``uv run`` holds it for as long as it lives (astral-sh/uv#19317).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from devkit.errors import DevkitError

ARCHIVE_BUCKET = "archive-v0"
KNOWN_WHEEL_BUCKETS = ("wheels-v7", "wheels-v8")
#: Index directories of a wheel bucket that hold registry wheels (``index/<hash>`` one deeper).
REGISTRY_DIRS = ("pypi", "index")
_METADATA_SUFFIXES = (".http", ".msgpack", ".rev", ".lock")
_BUCKET = re.compile(r"^(wheels|archive)-v\d+$")


class LayoutError(DevkitError):
    """The cache uses a layout devkit was not checked against: it must not touch it."""


class CacheBusy(DevkitError):
    """Another process holds uv's cache lock for longer than the wait allowed."""


def version_eq(a: str, b: str) -> bool:
    """PEP 440 equality of two version strings (``1.0`` == ``1.0.0``), text equality otherwise."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def norm_version(text: str) -> str:
    """``text`` as PEP 440 normalises it (``1.0.0`` stays, ``1.0-post1`` → ``1.0.post1``)."""
    try:
        return str(Version(text))
    except InvalidVersion:
        return text


@dataclasses.dataclass(frozen=True)
class WheelEntry:
    """One cached version of one package in a wheel bucket.

    ``files``: the entry's paths (the symlink and its metadata files); ``archive``: the
    ``archive-v0/<id>`` directory the symlink points to, None for metadata-only entries
    (versions uv only probed).
    """

    name: str
    version: str  # normalised PEP 440 text
    files: tuple[Path, ...]
    archive: Path | None


def check_layout(cache_dir: Path, uv_version: str = "") -> None:
    """Refuse a cache whose wheel or archive buckets are not ones devkit knows.

    Raises LayoutError (one line naming the bucket and ``uv_version``) when a ``wheels-vN`` other
    than :data:`KNOWN_WHEEL_BUCKETS` or an ``archive-vN`` other than ``archive-v0`` is present,
    or when a registry entry of a known bucket is not a symlink into ``archive-v0``.
    A missing cache is fine (nothing to collect).
    """
    known = {*KNOWN_WHEEL_BUCKETS, ARCHIVE_BUCKET}
    try:
        names = sorted(p.name for p in cache_dir.iterdir())
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DevkitError(f"cannot read the uv cache {cache_dir}: {exc.strerror or exc}") from exc
    uv_text = f" (uv {uv_version})" if uv_version else ""
    for name in names:
        if _BUCKET.match(name) and name not in known:
            raise LayoutError(
                f"unknown uv cache layout in {cache_dir}{uv_text}: bucket {name}; devkit gc knows "
                f"{', '.join(sorted(known))}: upgrade devkit (nothing was changed)")
    for entry in _raw_entries(cache_dir):
        for path in entry:
            if path.is_symlink() and ARCHIVE_BUCKET not in Path(os.readlink(path)).parts:
                raise LayoutError(
                    f"unknown uv cache layout in {cache_dir}{uv_text}: {path} does not point into "
                    f"{ARCHIVE_BUCKET}; upgrade devkit (nothing was changed)")


def _name_dirs(cache_dir: Path) -> Iterator[Path]:
    """``<bucket>/pypi/<name>`` and ``<bucket>/index/<hash>/<name>`` of every known wheel bucket."""
    for bucket in KNOWN_WHEEL_BUCKETS:
        root = cache_dir / bucket
        for where in (root / "pypi", *_children(root / "index")):
            yield from _children(where)


def _children(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def _entry_groups(name_dir: Path) -> dict[str, list[Path]]:
    """The files of one package's index directory grouped by entry (``<version>-<tags>``: the
    archive link and its metadata files); empty when the directory cannot be listed."""
    groups: dict[str, list[Path]] = {}
    try:
        files = sorted(name_dir.iterdir())
    except OSError:
        return groups
    for path in files:
        stem = path.name
        for suffix in _METADATA_SUFFIXES:
            stem = stem.removesuffix(suffix)
        groups.setdefault(stem, []).append(path)
    return groups


def _raw_entries(cache_dir: Path) -> Iterator[list[Path]]:
    for name_dir in _name_dirs(cache_dir):
        yield from _entry_groups(name_dir).values()


def wheel_entries(cache_dir: Path) -> list[WheelEntry]:
    """Every registry wheel version the cache indexes (see the module docstring for the layout).

    The version is the part of ``<version>-<tags>`` before the first ``-`` (a normalised
    version has none). Call :func:`check_layout` first.
    """
    found = []
    for name_dir in _name_dirs(cache_dir):
        name = str(canonicalize_name(name_dir.name))
        for stem, paths in _entry_groups(name_dir).items():
            archive = next((p for p in paths if p.is_symlink()), None)
            target = archive.resolve() if archive is not None else None
            found.append(WheelEntry(name, norm_version(stem.split("-", 1)[0]), tuple(paths),
                                    target if target is not None and target.is_dir() else None))
    return found


def cached_names(cache_dir: Path) -> set[str]:
    """Normalised names with any entry in a known wheel bucket or an index page (``simple-vN``)."""
    names = {str(canonicalize_name(d.name)) for d in _name_dirs(cache_dir)}
    for simple in cache_dir.glob("simple-v*"):
        for page in (*simple.glob("*/*.rkyv"), *simple.glob("index/*/*.rkyv")):
            names.add(str(canonicalize_name(page.stem)))
    return names


def referenced_archives(cache_dir: Path) -> set[Path]:
    """``archive-v0`` entries some symlink in the cache points to (what ``uv cache prune`` keeps)."""
    refs: set[Path] = set()
    archive_root = (cache_dir / ARCHIVE_BUCKET).resolve()
    for top in _children(cache_dir):
        if top.name == ARCHIVE_BUCKET:
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                if path.is_symlink():
                    target = path.resolve()
                    if target.parent == archive_root:
                        refs.add(target)
    return refs


def archives(cache_dir: Path) -> list[Path]:
    """Every ``archive-v0/<id>`` directory (resolved paths)."""
    return [p.resolve() for p in _children(cache_dir / ARCHIVE_BUCKET)]


def present(cache_dir: Path) -> set[tuple[str, str]]:
    """``(name, version)`` of every unpacked wheel the cache indexes (a symlink into an archive),
    plus ``sdists-vN/<index>/<name>/<version>`` builds from source. Cheap: no archive is read."""
    found = {(e.name, e.version) for e in wheel_entries(cache_dir) if e.archive is not None}
    for sdists in cache_dir.glob("sdists-v*"):
        for name_dir in (*_children(sdists / "pypi"),
                         *(d for h in _children(sdists / "index") for d in _children(h))):
            name = str(canonicalize_name(name_dir.name))
            found |= {(name, norm_version(v.name)) for v in _children(name_dir)}
    return found


# -- uv-managed Pythons -------------------------------------------------------------------------
_INSTALL = re.compile(r"^(cpython|pypy|graalpy|pyodide)-(\d+\.\d+\.\d+[^-]*)-.+$")


@dataclasses.dataclass(frozen=True)
class ManagedPython:
    """One uv-managed Python install: ``key`` (``cpython-3.12.1-linux-x86_64-gnu``, the name
    ``uv python uninstall`` takes), ``version`` (``3.12.1``), ``path`` its directory."""

    key: str
    version: str
    path: Path


def managed_pythons(install_dir: Path) -> list[ManagedPython]:
    """The installs in ``install_dir`` (``UV_PYTHON_INSTALL_DIR``): one directory per install,
    named ``<implementation>-<version>-<os>-<arch>-<libc>`` (uv docs, concepts/python-versions);
    minor-version aliases (``cpython-3.12-…``) are symlinks and are skipped. Read from the
    directory, so no interpreter runs (``uv python list`` would inspect every Python on PATH)."""
    found = []
    for path in _children(install_dir):
        match = _INSTALL.match(path.name)
        if match:
            found.append(ManagedPython(path.name, match.group(2), path))
    return found


# -- physical bytes -----------------------------------------------------------------------------
@dataclasses.dataclass
class Bytes:
    """Physical bytes (512-byte blocks allocated, each inode once) of what would be removed:
    ``freed`` come back to the filesystem, ``linked`` stay because a hard link outside the
    removed set (a venv) still holds them."""

    freed: int = 0
    linked: int = 0

    @property
    def total(self) -> int:
        """Bytes of the removed files, freed or not."""
        return self.freed + self.linked

    def to_json(self) -> dict[str, int]:
        """``{"freed_bytes", "linked_bytes"}``."""
        return {"freed_bytes": self.freed, "linked_bytes": self.linked}


def measure(paths: Iterable[Path]) -> Bytes:
    """Physical bytes of the regular files under ``paths`` (files or directories, symlinks not
    followed). An inode counts once; it is freed only when every one of its links is in the set
    (``st_nlink`` == links seen), else it is ``linked`` (a venv keeps it alive)."""
    seen: dict[tuple[int, int], list[int]] = {}  # inode -> [bytes, nlink, links seen]
    for root in paths:
        for path in _walk(root):
            try:
                st = path.stat(follow_symlinks=False)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                seen[key][2] += 1
            else:
                seen[key] = [st.st_blocks * 512, st.st_nlink, 1]
    out = Bytes()
    for size, nlink, links in seen.values():
        if links >= nlink:
            out.freed += size
        else:
            out.linked += size
    return out


def _walk(root: Path) -> Iterator[Path]:
    if root.is_symlink() or root.is_file():
        if root.is_file() and not root.is_symlink():
            yield root
        return
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                yield path


# -- removal ------------------------------------------------------------------------------------
def remove_version_entries(entries: Iterable[WheelEntry]) -> int:
    """Delete the index files of ``entries`` (never their archives: ``uv cache prune`` does that).

    Call only while holding :func:`exclusive`. Returns the number of paths removed.
    """
    removed = 0
    for entry in entries:
        for path in entry.files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


# -- the cache lock -----------------------------------------------------------------------------
def holders(lock_file: Path) -> list[str]:
    """``"pid N (command line)"`` of the processes holding a lock on ``lock_file`` (Linux:
    ``/proc/locks``); empty where that cannot be told."""
    try:
        st = lock_file.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    inode = f":{st.st_ino}"
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) > 5 and parts[5].endswith(inode) and parts[4].isdigit():
            pid = parts[4]
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace").strip()
            except OSError:
                cmd = ""
            label = f"pid {pid}" + (f" ({cmd[:80]})" if cmd else "")
            if label not in found:
                found.append(label)
    return found


@contextlib.contextmanager
def exclusive(cache_dir: Path, *, timeout: float) -> Iterator[None]:
    """Hold uv's cache lock ``$CACHE/.lock`` exclusively, as ``uv cache clean`` does (flock(2)).

    Waits up to ``timeout`` seconds for other uv processes; raises CacheBusy("cache in use by
    pid N (uv run …)") after that. A missing cache directory is created by uv, not here: the
    context then holds nothing.
    """
    lock_file = cache_dir / ".lock"
    if not cache_dir.is_dir():
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise CacheBusy(busy_message(cache_dir, timeout)) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def busy_message(cache_dir: Path, timeout: float) -> str:
    """The one line for a cache another process keeps locked past ``timeout`` seconds."""
    who = holders(cache_dir / ".lock")
    return (f"cache in use by {', '.join(who) if who else 'another uv process'}: waited "
            f"{timeout:g} s for {cache_dir}/.lock; try again when it ends (or set UV_LOCK_TIMEOUT)")
