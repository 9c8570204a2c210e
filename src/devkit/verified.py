"""What uv last verified: a project whose files are byte-identical since then needs no new uv run.

``uv lock --check`` (the lock matches ``pyproject.toml``) and ``uv sync --check --locked``
(``.venv`` holds exactly what ``uv.lock`` pins) cost one uv process each, 20–50 ms, and a
devkit command over every registered project runs them in each one. Their verdict depends only
on files on disk, uv's configuration and uv itself, so when a check said "locked" / "current",
devkit remembers a key of everything that verdict depends on:

* the check (``lock`` or ``sync``), ``uv --version`` (a new uv is never trusted with an old
  verdict) and the project's absolute path;
* the ``UV_*`` variables uv is run with (the cache, the index, ``UV_CONFIG_FILE``…; a few that
  change no verdict, such as ``UV_LOCK_TIMEOUT``, are left out) and the bytes of every uv
  configuration file uv reads (``uv.toml``, user and system ``uv/uv.toml``: uv docs,
  concepts/configuration-files);
* the SHA-256 of the project's ``pyproject.toml``, ``uv.lock``, ``uv.toml``, ``.python-version``
  and ``.python-versions``, of the ``pyproject.toml``/``uv.toml`` of every parent directory (a
  workspace root or configuration above the project), and of the ``pyproject.toml`` of every
  local package ``uv.lock`` names (``source = { editable | virtual | directory = … }``; a
  ``path`` source, a wheel or sdist file, by size and modification time);
* for ``sync`` also ``.venv``: the SHA-256 of ``pyvenv.cfg`` and of every ``*.pth`` file, the
  set of ``*.dist-info`` directory names in site-packages (each names a distribution and its
  version) with the (size, mtime, inode) of each one's ``RECORD``, and the interpreter
  ``bin/python`` resolves to (inode, size, mtime). An installer writes a new ``RECORD`` for every
  distribution it installs or reinstalls, so these stat keys change whenever a package does;
  hashing the venv's thousands of files instead would cost more than the uv run it saves.

Any difference makes the key differ, and uv is asked again (it stays the judge whenever anything
changed); only positive verdicts are remembered, and only when the key computed after uv's run
equals the one computed before it (a file edited meanwhile is not vouched for).

Two more facts are kept per project, each under its own key: ``git`` (git listed no tracked file
under ``.venv``, for exactly the repository state :func:`devkit.git.repository_stamp` describes)
and ``census`` (the venv's link census, ``counts`` = files, linked, foreign, for exactly its
``sync`` key and the state of the cache's ``archive-v0`` directory).

The memo is ``Store.verified_file`` (``{"version": 1, "entries": {"<check> <path>": {"key",
"uv"}}}``, ``<check>`` being ``lock``, ``sync``, ``git`` or ``census``), mode 0600, written atomically once per command under ``Store.mutex("verified")``,
merged with what concurrent commands wrote. It is a cache: unreadable, or not writable (a
read-only store), it is ignored and every check runs uv.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import filelock

from devkit import git, uv
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text

VERSION = 1
SAVE_TIMEOUT = 5.0  # seconds to wait for another command writing the memo; then it is not saved
Check = Literal["lock", "sync"]
#: ``UV_*`` variables that change how uv runs (waits, output), never what a check concludes.
IGNORED_VARS = frozenset({"UV_LOCK_TIMEOUT", "UV_NO_PROGRESS", "UV_OFFLINE", "UV_CONCURRENT_DOWNLOADS",
                          "UV_CONCURRENT_BUILDS", "UV_CONCURRENT_INSTALLS", "UV_HTTP_TIMEOUT",
                          "UV_REQUEST_TIMEOUT", "UV_NO_WRAP", "UV_COLOR"})
PROJECT_FILES = ("pyproject.toml", "uv.lock", "uv.toml", ".python-version", ".python-versions")
_LOCAL_SOURCE = re.compile(rb'source = \{ (editable|virtual|directory|path) = "((?:[^"\\]|\\.)*)"')


def _sha(path: Path) -> str:
    """SHA-256 of ``path``'s bytes, ``-`` when it is missing, ``?`` when unreadable."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "-"
    except OSError:
        return "?"


def _stat(path: Path, *, follow: bool = True) -> str:
    """``inode:size:mtime_ns`` of ``path``, ``-`` when it is missing."""
    try:
        st = path.stat() if follow else path.lstat()
    except OSError:
        return "-"
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def uv_config_files(env: Mapping[str, str]) -> list[Path]:
    """The uv configuration files outside the project that uv may read with ``env``.

    ``UV_CONFIG_FILE``; the user's ``$XDG_CONFIG_HOME/uv/uv.toml`` (default ``~/.config``); the
    system's ``uv/uv.toml`` in each of ``$XDG_CONFIG_DIRS`` (default ``/etc/xdg``) and
    ``/etc/uv/uv.toml`` (uv docs, concepts/configuration-files).
    """
    files = []
    if env.get("UV_CONFIG_FILE"):
        files.append(Path(env["UV_CONFIG_FILE"]))
    home = Path(env.get("HOME") or Path.home())
    files.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "uv" / "uv.toml")
    for directory in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep):
        if directory:
            files.append(Path(directory) / "uv" / "uv.toml")
    files.append(Path("/etc/uv/uv.toml"))
    return files


def entry_of(entries: Mapping[str, object], slot: str) -> dict[str, object] | None:
    """``entries[slot]`` when it is a memo entry (a dict whose ``key`` and ``uv`` are strings),
    else None: the file is checked entry by entry as entries are used."""
    entry = entries.get(slot)
    if isinstance(entry, dict) and isinstance(entry.get("key"), str) \
            and isinstance(entry.get("uv"), str):
        return entry
    return None


class Verified:
    """The memo of one command run: look keys up, remember new verdicts, save them once.

    Thread-safe: commands check projects from a pool of threads.
    """

    def __init__(self, store: Store, *, uv_version: str, env: Mapping[str, str],
                 projects: Iterable[Path] | None = None) -> None:
        """``uv_version``: ``uv --version`` of the binary that runs the checks (asked once per
        process by the caller); ``env``: the environment that binary runs with; ``projects``:
        the only projects this run looks up (default: any), so that only their entries are
        parsed (:meth:`read_entries`)."""
        self.store = store
        self.uv_version = uv_version
        uv_vars = sorted((k, v) for k, v in env.items()
                         if k.startswith("UV_") and k not in IGNORED_VARS)
        config = [(str(p), _sha(p)) for p in uv_config_files(env)]
        self._base = json.dumps([uv_version, uv_vars, config])
        self._lock = threading.Lock()
        self._parents: dict[Path, list[str]] = {}
        self._entries = self.read_entries(
            store.verified_file, None if projects is None else [p.absolute() for p in projects])
        self._pending: dict[str, dict[str, object]] = {}

    # -- keys -----------------------------------------------------------------------------------
    def key(self, check: Check, project: Path) -> str | None:
        """The key of ``project``'s current state for ``check``, or None when there is nothing to
        verify (no ``uv.lock``; for ``sync`` no ``.venv``): then uv must run. Reads files only."""
        project = project.absolute()
        lock = project / "uv.lock"
        # line by line: a 30 MB lock is hashed and searched without being held whole
        digest, sources = hashlib.sha256(), set()
        try:
            with lock.open("rb") as fh:
                for line in fh:
                    digest.update(line)
                    if b"source = {" in line:
                        sources.update(_LOCAL_SOURCE.findall(line))
        except OSError:
            return None
        parts: list[object] = [check, self._base, str(project), digest.hexdigest()]
        parts += [_sha(project / name) for name in PROJECT_FILES if name != "uv.lock"]
        parts.append(self._ancestors(project.parent))
        parts.append(self._local_sources(project, sources))
        if check == "sync":
            venv = self._venv(project / ".venv")
            if venv is None:
                return None
            parts.append(venv)
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def _ancestors(self, directory: Path) -> list[str]:
        with self._lock:
            known = self._parents.get(directory)
        if known is not None:
            return known
        found = [] if directory.parent == directory else self._ancestors(directory.parent)
        found = [*found, *(f"{directory / name}={_sha(directory / name)}"
                           for name in ("pyproject.toml", "uv.toml")
                           if (directory / name).exists())]
        with self._lock:
            self._parents[directory] = found
        return found

    @staticmethod
    def _local_sources(project: Path, matches: set[tuple[bytes, bytes]]) -> list[str]:
        found = []
        for match in sorted(matches):
            kind, raw = match[0].decode(), match[1].decode("utf-8", "replace")
            if raw == ".":
                continue
            where = project / raw
            if kind == "path" and not where.is_dir():
                found.append(f"{raw}={_stat(where)}")
            else:
                found.append(f"{raw}={_sha(where / 'pyproject.toml')}")
        return found

    @staticmethod
    def _venv(venv: Path) -> list[str] | None:
        if not (venv / "pyvenv.cfg").is_file() or venv.is_symlink():
            return None
        parts = [_sha(venv / "pyvenv.cfg")]
        for python in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
            parts.append(_stat(python))
        sites = [*venv.glob("lib/python*/site-packages"), *venv.glob("lib/pypy*/site-packages"),
                 venv / "Lib" / "site-packages"]
        for site in sorted(sites):
            try:
                with os.scandir(site) as entries:
                    names = sorted(e.name for e in entries)
            except OSError:
                continue
            parts.append(str(site.relative_to(venv)))
            for name in names:
                if name.endswith(".dist-info"):
                    parts.append(f"{name}={_stat(site / name / 'RECORD')}")
                elif name.endswith(".pth"):
                    parts.append(f"{name}={_sha(site / name)}")
        return parts

    # -- verdicts -------------------------------------------------------------------------------
    def known(self, check: Check, project: Path, key: str | None) -> bool:
        """Did uv say "locked" (``lock``) / "current" (``sync``) for exactly this ``key``?"""
        if key is None:
            return False
        return self._fact(f"{check} {project.absolute()}", key) is not None

    def remember(self, check: Check, project: Path, key: str | None) -> None:
        """uv just said "locked"/"current" for ``project``, whose key before that run was ``key``.

        Remembered only when the key now is still ``key`` (nothing changed while uv ran).
        """
        if key is None or self.key(check, project) != key:
            return
        with self._lock:
            self._pending[f"{check} {project.absolute()}"] = {"key": key, "uv": self.uv_version}

    def forget(self, check: Check, project: Path) -> None:
        """uv said "stale"/"outdated": drop any verdict for ``project`` (saved with the others)."""
        with self._lock:
            self._pending[f"{check} {project.absolute()}"] = {}

    # -- facts devkit checks besides uv's verdicts ---------------------------------------------
    def _fact(self, slot: str, key: str | None) -> dict[str, object] | None:
        if key is None:
            return None
        with self._lock:
            entry = entry_of(self._pending if slot in self._pending else self._entries, slot)
        if entry and entry["key"] == key and entry["uv"] == self.uv_version:
            return entry
        return None

    def venv_untracked(self, project: Path) -> tuple[bool, str | None]:
        """(git said no file under ``project/.venv`` is tracked, for exactly the repository state
        :func:`devkit.git.repository_stamp` describes now; that stamp). Runs no git."""
        stamp = git.repository_stamp(project.absolute())
        return self._fact(f"git {project.absolute()}", stamp) is not None, stamp

    def remember_untracked(self, project: Path, stamp: str | None) -> None:
        """``git ls-files -- .venv`` just listed nothing in ``project``, whose stamp before that
        run was ``stamp``. Remembered only when git found ``project/.git`` itself
        (:func:`devkit.git.answered_here`) and the stamp is still ``stamp``."""
        project = project.absolute()
        if stamp is None or not git.answered_here(project) \
                or git.repository_stamp(project) != stamp:
            return
        with self._lock:
            self._pending[f"git {project}"] = {"key": stamp, "uv": self.uv_version}

    @staticmethod
    def _census_key(sync_key: str, cache_dir: Path) -> str:
        # the cache's archive directory changes when uv unpacks or removes a wheel
        return f"{sync_key} {_stat(cache_dir / 'archive-v0')}"

    def census(self, project: Path, sync_key: str | None, cache_dir: Path
               ) -> tuple[int, int, int] | None:
        """``(files, linked, foreign)`` of ``project/.venv``'s link census
        (:func:`devkit.usage.link_census`) when it was counted for exactly this ``sync`` key
        (:meth:`key`) and the same state of ``cache_dir``'s archives; else None. Reads no venv."""
        if sync_key is None:
            return None
        entry = self._fact(f"census {project.absolute()}", self._census_key(sync_key, cache_dir))
        counts = entry.get("counts") if entry else None
        if isinstance(counts, list) and len(counts) == 3 and all(isinstance(c, int)
                                                                 for c in counts):
            return counts[0], counts[1], counts[2]
        return None

    def remember_census(self, project: Path, sync_key: str | None, cache_dir: Path,
                        counts: tuple[int, int, int]) -> None:
        """Note ``counts`` (files, linked, foreign) of ``project/.venv`` whose ``sync`` key
        before they were counted was ``sync_key`` (kept only when the key is still that)."""
        if sync_key is None or self.key("sync", project) != sync_key:
            return
        with self._lock:
            self._pending[f"census {project.absolute()}"] = {
                "key": self._census_key(sync_key, cache_dir), "uv": self.uv_version,
                "counts": list(counts)}

    # -- the file -------------------------------------------------------------------------------
    def _load(self) -> dict[str, object]:
        return self.read_entries(self.store.verified_file)

    @staticmethod
    def read_entries(path: Path, projects: Iterable[Path] | None = None) -> dict[str, object]:
        """The entries of the memo file ``path``, as read (each checked by :func:`entry_of`
        when used: a store with thousands of workspaces holds thousands of entries and a
        command looks at a few); empty when it is missing or not a memo. With ``projects``
        (absolute paths), at least the entries of those projects: :meth:`save` writes one
        entry per line, so only the lines naming them are parsed (1,000 workspaces make a
        ~900 KB file), unless the file has another layout."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return {}
        if projects is not None:
            found = _entries_naming(text, projects)
            if found is not None:
                return found
        try:
            doc = json.loads(text)
        except ValueError:
            return {}
        if not isinstance(doc, dict) or doc.get("version") != VERSION \
                or not isinstance(doc.get("entries"), dict):
            return {}
        return dict(doc["entries"])

    def save(self) -> None:
        """Write the new verdicts (one atomic write), merged with the file as it is now.

        Entries of other uv versions and of projects whose directory is gone are dropped. Never
        raises: a store that cannot be written, or a memo held by another command for
        :data:`SAVE_TIMEOUT` seconds, only means the next run asks uv again.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        with contextlib.suppress(OSError, DevkitError, filelock.Timeout), \
                self.store.mutex("verified", timeout=SAVE_TIMEOUT):
            merged = {**self._load(), **pending}
            entries = {slot: entry_of(merged, slot) for slot in merged}
            kept: dict[str, object] = {
                slot: entry for slot, entry in sorted(entries.items())
                if entry and entry["uv"] == self.uv_version and " " in slot
                and Path(slot.split(" ", 1)[1]).is_dir()}
            lines = [f"{json.dumps(slot)}: {json.dumps(entry)}" for slot, entry in kept.items()]
            atomic_write_text(self.store.verified_file,
                              "\n".join([_HEAD, ",\n".join(lines), "}}\n"] if lines
                                        else [_HEAD, "}}\n"]))
            self._entries = kept


#: The first line of the memo file as :meth:`Verified.save` writes it: one entry per line
#: follows, then ``}}`` (the whole is one JSON document).
_HEAD = f'{{"version": {VERSION}, "entries": {{'


def _entries_naming(text: str, projects: Iterable[Path]) -> dict[str, object] | None:
    """The entries on the lines of memo ``text`` whose slot names one of ``projects``; None when
    ``text`` is not laid out as :meth:`Verified.save` writes it (then the caller parses it
    whole)."""
    if not text.startswith(_HEAD + "\n"):
        return None
    found: dict[str, object] = {}
    for project in projects:
        # a slot is "<check> <absolute path>": its JSON string ends with the path and a quote
        needle = json.dumps(f" {project}")[1:]
        at = text.find(needle)
        while at != -1:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            try:
                item = json.loads("{" + text[start:end].removesuffix(",") + "}")
            except ValueError:
                return None
            if not isinstance(item, dict):
                return None
            found.update(item)
            at = text.find(needle, end)
    return found


#: The memo each store's last :func:`for_uv` call in this process opened (see :func:`opened`).
_OPENED: dict[str, Verified] = {}


def for_uv(store: Store, env: Mapping[str, str]) -> Verified | None:
    """The memo for checks run by :func:`devkit.uv.find_uv`'s binary with ``env``; None (no memo:
    every check runs uv) when ``uv --version`` cannot run. Asks uv its version once per process."""
    try:
        version = uv.version_once(store)
    except DevkitError:
        return None
    memo = Verified(store, uv_version=version, env=env)
    with _OPENED_LOCK:
        _OPENED[str(store.home)] = memo
    return memo


_OPENED_LOCK = threading.Lock()


def recorded_untracked(store: Store, project: Path) -> tuple[bool, str | None]:
    """:meth:`Verified.venv_untracked` read from ``store``'s memo file as saved (no uv version
    needed: git's answer does not depend on uv), for code that runs before or without a command's
    memo. Reads the file at most once per process while it is unchanged. Runs no git."""
    stamp = git.repository_stamp(project.absolute())
    if stamp is None:
        return False, None
    path = store.verified_file
    try:
        st = path.stat()
        when = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        return False, stamp
    with _OPENED_LOCK:
        known = _FILE_READ.get(str(path))
    if known is None or known[0] != when:
        known = (when, Verified.read_entries(path))
        with _OPENED_LOCK:
            _FILE_READ[str(path)] = known
    entry = entry_of(known[1], f"git {project.absolute()}")
    return bool(entry and entry["key"] == stamp), stamp


_FILE_READ: dict[str, tuple[tuple[int, int, int, int], dict[str, object]]] = {}


def opened(store: Store) -> Verified | None:
    """The memo :func:`for_uv` last opened for ``store`` in this process (saved by the command
    that opened it), or None. Lets code that is handed no memo, such as
    :func:`devkit.workspace_code.foreign_venv` called by ``devkit align``, reuse and add to the
    facts of the running command."""
    with _OPENED_LOCK:
        return _OPENED.get(str(store.home))


def sync_check(project: Path, *, env: dict[str, str], memo: Verified | None,
               key: str | None = None, build: bool = False) -> tuple[bool, list[str]]:
    """:func:`devkit.uv.sync_check`, unless ``memo`` knows uv said "current" for exactly this
    state (then ``(True, [])`` and no uv run). ``key``: ``memo.key("sync", project)`` when the
    caller took it already (default: taken here); ``build``: as for
    :func:`devkit.uv.sync_check`. Raises what :func:`devkit.uv.sync_check`
    raises."""
    if memo is not None and key is None:
        key = memo.key("sync", project)
    if memo is not None and memo.known("sync", project, key):
        return True, []
    current, changes = uv.sync_check(project, env=env, build=build)
    if memo is not None:
        if current:
            memo.remember("sync", project, key)
        else:
            memo.forget("sync", project)
    return current, changes
