"""The registry of workspaces sharing the store: ``$DEVKIT_HOME/projects.json``.

Format (``version`` 1)::

    {"version": 1, "projects": [{"path": "/abs/path", "name": "demo", "added": "2026-11-22T02:00:00Z"}]}

An entry may also hold ``"private": true`` (adopted with ``devkit adopt --private``: a repository
the user does not own, whose tracked ``uv.lock`` ``devkit align`` leaves alone) and ``"align":
true`` (such a workspace the user opted in to alignment: ``devkit projects set PATH --align``).
Both are written only when true, so a registry without them reads as before and older devkits
read the new one.

Every read-modify-write runs under ``Store.lock_file`` (filelock, mode 0600) and writes atomically
(a temp file renamed over ``projects.json``, created mode 0600), so readers take no lock: they see
the old or the new file, never a partial one. Read-only commands therefore need no write access to
the store.

Entries are validated where they are read: one malformed entry (a path that is not an absolute
path string, a name or added time that is not a string) stops the command with a one-line error
naming the file and the entry. It is not skipped, because the next write would then silently drop
it: the user fixes or removes it by hand.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import filelock

from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text

VERSION = 1
LOCK_TIMEOUT = 30.0  # seconds


@dataclasses.dataclass(frozen=True)
class Project:
    """One registered workspace: an absolute ``path``, a display ``name``, ISO ``added`` time."""

    path: Path
    name: str
    added: str
    private: bool = False
    align: bool = False

    @property
    def aligned(self) -> bool:
        """True when ``devkit align`` may change this workspace's ``uv.lock``: always, except in
        a private workspace the user has not opted in (its lock belongs to the repository)."""
        return not self.private or self.align

    @property
    def exists(self) -> bool:
        """True while the path is still a directory (a vanished project is reported, not fatal)."""
        return self.path.is_dir()

    def to_json(self) -> dict[str, object]:
        """The JSON shape used in ``projects.json`` and ``devkit projects list --json``."""
        return {"path": str(self.path), "name": self.name, "added": self.added, "exists": self.exists,
                "private": self.private, "align": self.aligned}

    def entry(self) -> dict[str, object]:
        """The entry stored in ``projects.json`` (optional keys only when true)."""
        doc: dict[str, object] = {"path": str(self.path), "name": self.name, "added": self.added}
        if self.private:
            doc["private"] = True
        if self.align:
            doc["align"] = True
        return doc


class Registry:
    """Read and change the registry of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        """Bind to ``store``; nothing is read or created until a method is called."""
        self.store = store

    def _lock(self) -> filelock.FileLock:
        return self.store.registry_mutex(timeout=LOCK_TIMEOUT)

    def _read(self, name: str | None = None) -> list[Project]:
        """Every entry, validated; with ``name``, only the entries whose path may end in that
        component (a path string holding it, or no path string), validated, and of those the
        ones whose path does."""
        path = self.store.registry_file
        self.store.check_home()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise DevkitError(f"cannot read the registry {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise DevkitError(f"{path} is not a devkit registry; move it away and re-add projects")
        if data.get("version") != VERSION:
            raise DevkitError(
                f"{path} has registry version {data.get('version')!r}; this devkit reads "
                f"version {VERSION}: upgrade devkit"
            )
        if not isinstance(data.get("projects"), list):
            raise DevkitError(f"{path} is not a devkit registry: 'projects' is not a list; "
                              "move it away and re-add projects")
        if name is None:
            return [_project(path, i, entry) for i, entry in enumerate(data["projects"])]
        found = []
        for i, entry in enumerate(data["projects"]):
            raw = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(raw, str) and name not in raw:
                continue
            _check_entry(path, i, entry)
            # normpath drops what Path drops ('//', '/.', a trailing '/'); a '..' never matches
            # a resolved path either way
            if os.path.basename(os.path.normpath(entry["path"])) == name:
                found.append(_project(path, i, entry))
        return found

    def _write(self, projects: list[Project]) -> None:
        doc = {
            "version": VERSION,
            "projects": [p.entry() for p in sorted(projects, key=lambda p: str(p.path))],
        }
        atomic_write_text(self.store.registry_file, json.dumps(doc, indent=2) + "\n")

    def projects(self) -> list[Project]:
        """All registered projects, sorted by path; reads without a lock and writes nothing.

        Raises DevkitError on a corrupt registry or a malformed entry (one line naming both).
        """
        return sorted(self._read(), key=lambda p: str(p.path))

    def find(self, path: Path) -> Project | None:
        """The registered project at ``path`` (resolved), or None. Raises DevkitError on a corrupt
        registry, or on a malformed entry that may be ``path``'s (other entries are not
        validated here: :meth:`projects` reports them).

        Only the entries whose last path component is ``path``'s become :class:`Project`s: with
        1,000 registered, validating and building them all was most of ``devkit doctor``'s
        registry check."""
        target = path.resolve()
        for project in self._read(name=target.name):
            if project.path == target:
                return project
        return None

    def add(self, path: Path, name: str | None = None) -> tuple[Project, bool]:
        """Register ``path`` (must be a directory); returns (project, was_new).

        Raises DevkitError if ``path`` is not a directory.
        """
        return self.add_many([path], name=name)[0]

    def add_many(self, paths: list[Path], name: str | None = None) -> list[tuple[Project, bool]]:
        """Register each of ``paths`` (directories) with one read and at most one write of the
        registry; returns (project, was_new) per path, in order. ``name`` (default: the
        directory's name) applies to every new entry; a directory with a private adoption
        record (``devkit adopt --private``) is registered private.

        Raises DevkitError, before anything is written, if one of ``paths`` is not a directory.
        """
        targets = []
        for path in paths:
            target = path.resolve()
            if not target.is_dir():
                raise DevkitError(f"{path} is not a directory")
            targets.append(target)
        import datetime as dt  # only when writing: doctor reads these files

        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        with self._lock():
            projects = self._read()
            by_path = {project.path: project for project in projects}
            results = []
            for target in targets:
                known = by_path.get(target)
                if known is not None:
                    results.append((known, False))
                    continue
                # a private adoption's record outlives `projects remove`: re-registering
                # (`projects add`, `doctor --fix`) keeps the workspace private
                project = by_path[target] = Project(
                    target, name or target.name, now,
                    private=self.store.private_record(target).is_file())
                results.append((project, True))
            if len(by_path) != len(projects):
                self._write(list(by_path.values()))
            return results

    def set_flags(self, path: Path, *, private: bool | None = None,
                  align: bool | None = None) -> Project:
        """Set the ``private`` and/or ``align`` flags of the registered ``path`` (None: unchanged)
        in one locked read-modify-write; returns the new entry. Raises DevkitError when ``path``
        is not registered."""
        target = path.resolve()
        with self._lock():
            projects = self._read()
            for i, project in enumerate(projects):
                if project.path == target:
                    changed = dataclasses.replace(
                        project, private=project.private if private is None else private,
                        align=project.align if align is None else align)
                    if changed != project:
                        projects[i] = changed
                        self._write(projects)
                    return changed
        raise DevkitError(f"{path} is not a registered project (see `devkit projects list`)")

    def remove(self, path: Path) -> Project:
        """Unregister ``path`` (it may no longer exist). Raises DevkitError if it is not registered."""
        target = Path(path).absolute()
        resolved = target.resolve() if target.exists() else target
        with self._lock():
            projects = self._read()
            keep = [p for p in projects if p.path not in (target, resolved)]
            if len(keep) == len(projects):
                raise DevkitError(f"{path} is not a registered project (see `devkit projects list`)")
            self._write(keep)
            return next(p for p in projects if p.path in (target, resolved))


def _project(path: Path, index: int, entry: object) -> Project:
    """Entry ``index`` of registry file ``path``, validated. Raises DevkitError naming both."""
    _check_entry(path, index, entry)
    assert isinstance(entry, dict)
    return Project(Path(entry["path"]), entry["name"], entry["added"],
                   entry.get("private", False), entry.get("align", False))


def _check_entry(path: Path, index: int, entry: object) -> None:
    """Raise DevkitError naming registry file ``path`` and entry ``index`` when it is malformed."""
    problem = None
    if not isinstance(entry, dict):
        problem = "it is not an object"
    else:
        raw = entry.get("path")
        if not isinstance(raw, str) or not os.path.isabs(raw):  # no Path per entry: 1,000 of them
            problem = "'path' is not an absolute path string"
        elif not isinstance(entry.get("name"), str):
            problem = "'name' is not a string"
        elif not isinstance(entry.get("added"), str):
            problem = "'added' is not a string"
        elif not all(isinstance(entry.get(k, False), bool) for k in ("private", "align")):
            problem = "'private' or 'align' is not true or false"
    if problem is not None or not isinstance(entry, dict):
        shown = json.dumps(entry)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        raise DevkitError(f"{path}: entry {index} ({shown}) is malformed: {problem}; "
                          "fix or remove it")
