"""Bring one workspace's ``.venv`` in line with its ``uv.lock``, linked from the store's cache.

Shared by ``devkit sync`` and ``devkit adopt``. uv does the work (``uv sync --locked`` with
``Store.subprocess_env()``, so a shell without mise or direnv active still uses the shared cache);
this module decides whether to call it, rebuilds a venv whose files are links into another uv
cache, and reports what changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from devkit import usage, uv, uvcache, verified, workspace_code
from devkit.align import lockfile
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text
from devkit.workspace_code import ASIDE_PREFIX, leftovers
from devkit.workspace_code import aside_record as _record

STATUSES = ("synced", "current", "failed", "skipped")


@dataclasses.dataclass
class SyncResult:
    """The outcome for one workspace.

    ``status``: ``synced`` (uv sync ran), ``current`` (already matched uv.lock: nothing ran but
    the offline check), ``failed`` or ``skipped`` (``reason`` says why, one line). ``rebuilt``:
    the old ``.venv`` was replaced because its files were links into another cache.
    ``census``: the venv's files after the run (None when there is no venv).
    """

    path: Path
    status: str = "skipped"
    reason: str | None = None
    rebuilt: bool = False
    changes: list[uv.Change] = dataclasses.field(default_factory=list)
    census: usage.LinkCensus | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    waited: bool = False  # held back while another sync unpacked a wheel it needs

    def to_json(self) -> dict[str, Any]:
        """One entry of ``devkit sync --json``'s ``workspaces`` list."""
        census = self.census
        return {
            "path": str(self.path),
            "status": self.status,
            "reason": self.reason,
            "rebuilt": self.rebuilt,
            "changes": [dataclasses.asdict(c) for c in self.changes],
            "files": census.files if census else None,
            "linked_files": census.linked if census else None,
            "foreign_files": census.foreign if census else None,
            "private_files": census.private if census else None,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "waited_for_cache": self.waited,
        }


@dataclasses.dataclass(frozen=True)
class CacheFacts:
    """What one run needs to know about the store's cache, computed once for all workspaces."""

    inodes: usage.CacheInodes
    clone_fs: bool  # btrfs/XFS/APFS…: st_nlink stays 1, link counts prove nothing

    @classmethod
    def of(cls, store: Store) -> CacheFacts:
        """Facts about ``store.uv_cache_dir`` (nothing is scanned until a venv has links)."""
        fs_type = usage.filesystem_type(store.uv_cache_dir)
        return cls(usage.CacheInodes(store.uv_cache_dir), fs_type in usage.CLONE_FILESYSTEMS)


def sync_workspace(
    path: Path, *, store: Store, cache: CacheFacts, lock_if_missing: bool = False,
    memo: verified.Verified | None = None,
) -> SyncResult:
    """Sync ``path``'s ``.venv`` with its ``uv.lock`` using the store's environment.

    Skips a missing directory, a directory without ``pyproject.toml`` and (unless
    ``lock_if_missing``, which lets ``uv sync`` create the lock) one without ``uv.lock``.
    A ``.venv`` none of whose files is a cache inode while some are hard links elsewhere was built
    from another uv cache: it is moved aside, re-created, and the old one deleted, or put back if
    uv fails or the run is interrupted. With ``memo``, a venv byte-identical to when uv last said
    "current" is ``current`` without a uv run (see :mod:`devkit.verified`). Never raises
    DevkitError: failures become ``failed``.
    """
    start = time.perf_counter()
    result = SyncResult(path)
    key = None
    try:
        key = _sync(result, store=store, cache=cache, lock_if_missing=lock_if_missing, memo=memo)
    except DevkitError as exc:
        result.status, result.reason = "failed", str(exc)
    except OSError as exc:
        result.status, result.reason = "failed", f"{exc.filename or path}: {exc.strerror or exc}"
    venv = path / ".venv"
    if result.status == "synced":
        cache.inodes.refresh()  # the wheels this sync unpacked are cache inodes too
    if result.status != "current" or result.census is None:  # nothing ran: the census still holds
        result.census = None
        if venv.is_dir() and not venv.is_symlink():
            result.census = usage.link_census(venv, cache.inodes)
    census = result.census
    if memo is not None and result.status == "current" and census is not None \
            and not result.notes and (census.linked or cache.clone_fs):
        memo.remember_census(path, key, cache.inodes.cache_dir,
                             (census.files, census.linked, census.foreign))
    result.seconds = time.perf_counter() - start
    return result


def vouched(path: Path, *, store: Store, cache: CacheFacts, memo: verified.Verified,
            key: str | None) -> SyncResult | None:
    """A ``current`` result for ``path`` with no uv run, no git process and no walk of the venv,
    when ``memo`` vouches for everything :func:`sync_workspace` checks; else None (then sync it).

    ``key``: ``memo.key("sync", path)``, taken by the caller. Vouched when uv said "current" for
    exactly that key, the venv's link census was counted for it (and the cache's archives are
    as they were then), git listed no tracked file under ``.venv`` in the repository's present
    state and ``.venv`` is the one devkit recorded (:func:`devkit.workspace_code.foreign_venv`
    with ``memo``), ``.python-version`` is a plain version and no interrupted rebuild left an
    old venv behind. Reads files only; needs no workspace mutex (it changes nothing). Raises
    nothing.
    """
    if key is None or not memo.known("sync", path, key):
        return None
    counts = memo.census(path, key, cache.inodes.cache_dir)
    if counts is None:
        return None
    pinned = workspace_code.pinned_request(path)
    if pinned is not None and not workspace_code.is_version_request(pinned):
        return None
    if leftovers(path, store) or workspace_code.foreign_venv(path, store, memo=memo):
        return None
    return SyncResult(path, status="current", census=usage.LinkCensus(*counts))


def _sync(result: SyncResult, *, store: Store, cache: CacheFacts, lock_if_missing: bool,
          memo: verified.Verified | None) -> str | None:
    """Sync ``result.path`` (see :func:`sync_workspace`); returns the memo's ``sync`` key taken
    before anything was checked (None without memo, lock or venv)."""
    path = result.path
    quoted = shlex.quote(str(path))
    if not path.is_dir():
        result.reason = f"{path} no longer exists (forget it: devkit projects prune)"
        return None
    if not (path / "pyproject.toml").is_file():
        result.reason = f"{path} has no pyproject.toml"
        return None
    has_lock = (path / "uv.lock").is_file()
    if not has_lock and not lock_if_missing:
        result.reason = f"{path} has no uv.lock yet; create it with: cd {quoted} && uv lock"
        return None
    result.notes += clean_leftovers(path, store)
    env = store.subprocess_env()
    venv = path / ".venv"
    key = memo.key("sync", path) if memo is not None and has_lock else None
    pinned = workspace_code.pinned_request(path)
    if pinned is not None and not workspace_code.is_version_request(pinned):
        result.status = "failed"
        result.reason = (f".python-version holds {pinned!r}, not a Python version: devkit does not "
                         f"pass it to uv (a path there is a program uv would run); fix: cd {quoted} "
                         "&& uv python pin 3.11")
        return key
    foreign = workspace_code.foreign_venv(path, store, memo=memo)
    if foreign and foreign.tracked:
        result.status = "failed"
        result.reason = foreign.reason + (f"; review it, then: {foreign.fix}" if foreign.fix else "")
        return key
    if foreign:
        result.notes.append(f"rebuilt .venv without running it: {foreign.reason}")
    rebuild = bool(foreign) or _built_elsewhere(venv, cache, result)
    if not rebuild and has_lock:
        # a real sync follows when not current, which builds what it must anyway
        current, _ = verified.sync_check(path, env=env, memo=memo, key=key, build=True)
        if current:
            result.status = "current"
            return key
    if rebuild:
        output = _rebuild(path, store=store, env=env, locked=has_lock)
        result.rebuilt = True
    else:
        output = uv.sync(path, env=env, locked=has_lock)
    workspace_code.record_venv(path, store)
    result.changes = uv.parse_changes(output)
    result.status = "synced"
    return key


def _built_elsewhere(venv: Path, cache: CacheFacts, result: SyncResult) -> bool:
    """True when ``venv`` holds hard links, none of them into the store's cache."""
    if not venv.is_dir() or venv.is_symlink() or cache.clone_fs:
        return False
    census = result.census = usage.link_census(venv, cache.inodes)
    if census.linked:
        return False
    if not census.foreign:
        if cache.inodes.inodes_for(usage.dist_infos(venv)):  # the cache holds its wheels
            quoted = shlex.quote(str(venv.parent))
            result.notes.append(
                f"none of .venv's {census.files} files is a link into the shared cache: they are "
                "private copies (made by pip, or uv with UV_LINK_MODE=copy); to link them: "
                f"rm -rf {quoted}/.venv && devkit sync {quoted}"
            )
        return False
    try:
        same_fs = venv.stat().st_dev == cache.inodes.device
    except OSError:
        same_fs = False
    if not same_fs:  # uv can only copy across filesystems: a rebuild would gain nothing
        result.notes.append(
            f"{census.foreign} files are links into another cache, but the shared cache "
            f"{store_dir(cache)} is on another filesystem, so uv copies instead of linking"
        )
        return False
    result.notes.append(
        f"rebuilt .venv: none of its {census.files} files was a link into the shared cache "
        f"({census.foreign} were links into another uv cache)"
    )
    return True


def store_dir(cache: CacheFacts) -> Path:
    """The cache directory ``cache`` describes."""
    return cache.inodes.cache_dir


def clean_leftovers(path: Path, store: Store) -> list[str]:
    """Finish what an interrupted rebuild of ``path/.venv`` left (:func:`leftovers`): with no
    ``.venv``, the old one is put back (complete, then synced as usual); otherwise it is deleted.
    The caller holds the workspace mutex. Returns one line per leftover. Raises OSError."""
    notes = []
    venv = path / ".venv"
    for aside in leftovers(path, store):
        if not venv.exists() and not venv.is_symlink():
            os.replace(aside, venv)
            notes.append(f"put back .venv from {aside.name}, moved aside by an interrupted "
                         "devkit sync")
        else:
            shutil.rmtree(aside)
            notes.append(f"removed {aside.name}, the old .venv an interrupted devkit sync left")
        _record(store, aside).unlink(missing_ok=True)
    return notes


def _rebuild(path: Path, *, store: Store, env: dict[str, str], locked: bool) -> str:
    """Move ``.venv`` aside, ``uv sync``, delete the old one; put it back on any failure.

    The move is recorded in the store first (:attr:`devkit.store.Store.rebuilds_dir`, with this
    process's pid), so after a SIGKILL the next sync knows the leftover is devkit's
    (:func:`leftovers`). uv never looks at the moved-aside venv, so a foreign one is replaced
    without being run."""
    venv = path / ".venv"
    aside = path / f"{ASIDE_PREFIX}{os.getpid()}"
    record = _record(store, aside)
    atomic_write_text(record, json.dumps({"pid": os.getpid(), "aside": str(aside.absolute()),
                                          "venv": str(venv.absolute())}) + "\n")
    try:
        os.replace(venv, aside)
        try:
            output = uv.sync(path, env=env, locked=locked)
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(venv, ignore_errors=True)
                os.replace(aside, venv)
            raise
        if aside.is_symlink():  # a foreign .venv may be a link: remove the link only
            aside.unlink()
        else:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        if not aside.exists():
            record.unlink(missing_ok=True)
    return output


def uncached(path: Path, present: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """``(name, version)`` of the registry packages ``path/uv.lock`` lists that ``present`` (see
    :func:`devkit.uvcache.present`) lacks: what a sync of it may download and unpack. An
    unreadable lock gives an empty set (uv reports it when the sync runs)."""
    try:
        lock = lockfile.read(path / "uv.lock")
    except lockfile.LockError:
        return set()
    return {(p.name, uvcache.norm_version(p.version)) for p in lock.packages} - present


def cached_now(cache_dir: Path) -> set[tuple[str, str]]:
    """What the cache holds unpacked now; empty (so every package counts as missing) when its
    layout is one devkit does not know."""
    try:
        uvcache.check_layout(cache_dir)
        return uvcache.present(cache_dir)
    except DevkitError:
        return set()


def _sync_one(path: Path, *, store: Store, cache: CacheFacts, memo: verified.Verified | None,
              command: str | None, key: str | None = None) -> SyncResult:
    """:func:`sync_workspace`, under the workspace mutex when ``command`` names the holder;
    first :func:`vouched` with ``key`` (``memo.key("sync", path)``) when there is a memo, which
    answers without the mutex unless another command holds it (then this one waits as usual)."""
    if memo is not None:
        start = time.perf_counter()
        known = vouched(path, store=store, cache=cache, memo=memo, key=key)
        try:
            busy = known is not None and command is not None and store.workspace_busy(path)
        except DevkitError:
            busy = True
        if known is not None and not busy:
            known.seconds = time.perf_counter() - start
            return known
    if command is None:
        return sync_workspace(path, store=store, cache=cache, memo=memo)
    try:
        with store.workspace_mutex(path, command=command):
            return sync_workspace(path, store=store, cache=cache, memo=memo)
    except DevkitError as exc:
        return SyncResult(path, status="failed", reason=str(exc))


def sync_all(paths: Sequence[Path], *, store: Store, cache: CacheFacts, jobs: int,
             memo: verified.Verified | None = None,
             command: str | None = None,
             on_done: Callable[[SyncResult], None] = lambda result: None) -> list[SyncResult]:
    """Sync ``paths`` ``jobs`` at a time, never two that may unpack the same wheel at once.

    Two uv processes installing one wheel the cache lacks may both unpack it (uv 0.13.9, from
    PyPI: four parallel ``uv sync`` left four copies in ``archive-v0``). So a workspace starts
    only when none of the syncs running needs one of the wheels it needs and the cache lacks
    (the lock's ``(name, version)`` against :func:`devkit.uvcache.present`), re-read after each
    sync; when nothing is missing they all run in parallel. A venv ``memo`` knows to be current
    needs nothing (its lock is not read). With ``command`` (``"devkit sync"``) each workspace is
    synced under its mutex (:meth:`devkit.store.Store.workspace_mutex`), one kept busy too long
    being ``failed``. ``on_done`` is called with each result as it finishes. Returns the
    results in the order of ``paths``.
    """
    present = cached_now(cache.inodes.cache_dir)
    keys = {path: memo.key("sync", path) if memo is not None else None for path in paths}
    needs = {path: set() if memo is not None and memo.known("sync", path, keys[path])
             else uncached(path, present) for path in paths}
    pending = list(paths)
    needy = {p for p in paths if needs[p]}  # pending workspaces still waiting on missing wheels
    results: dict[Path, SyncResult] = {}
    waited: set[Path] = set()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[Future[SyncResult], Path] = {}
        while pending or running:
            busy = set().union(*(needs[p] for p in running.values()))
            for path in list(pending):
                if len(running) >= max(1, jobs):
                    break
                if needs[path] & busy:
                    waited.add(path)
                    continue
                pending.remove(path)
                needy.discard(path)
                busy |= needs[path]
                running[pool.submit(_sync_one, path, store=store, cache=cache, memo=memo,
                                    command=command, key=keys[path])] = path
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                path = running.pop(future)
                result = future.result()
                result.waited = path in waited
                results[path] = result
                on_done(result)
            if needy:  # the cache is listed again only when a pending sync waits on it
                present = cached_now(cache.inodes.cache_dir)
                for path in list(needy):
                    needs[path] -= present
                    if not needs[path]:
                        needy.discard(path)
    return [results[p] for p in paths]
