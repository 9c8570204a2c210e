"""The alignment manifest ``Store.manifest_file``: the targets of the last run, the moves uv
refused, so that the next run does not ask uv again while a project's files are unchanged, and
the moves a project's tests refused (``devkit align --test``), held while its requirements are
unchanged."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text

if TYPE_CHECKING:  # imported where used: `devkit doctor` reads this module's figures only
    from devkit.align import planner

MANIFEST_VERSION = 1
MANIFEST_WRITE_TIMEOUT = 30.0  # seconds to wait for the store mutex before giving up


def project_state(path: Path) -> str:
    """sha256 over ``pyproject.toml`` and ``uv.lock`` of ``path`` ("" when unreadable)."""
    digest = hashlib.sha256()
    try:
        for name in ("pyproject.toml", "uv.lock"):
            digest.update((path / name).read_bytes())
            digest.update(b"\0")
    except OSError:
        return ""
    return digest.hexdigest()


def requirements_state(path: Path) -> str:
    """sha256 of what ``path/pyproject.toml`` requires ("" when unreadable or not TOML).

    Covers ``[project] dependencies`` and ``optional-dependencies``, ``[dependency-groups]`` and
    ``[tool.uv]`` ``dev-dependencies``, ``constraint-dependencies``, ``override-dependencies``,
    ``sources`` and ``index`` (uv docs, concepts/projects/dependencies): editing any of them
    lifts the project's test holds; editing its code or its lock does not.
    """
    import tomllib  # only where a hold is checked: doctor and align import this module

    try:
        doc = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    def table(parent: dict[str, Any], key: str) -> dict[str, Any]:
        value = parent.get(key)
        return value if isinstance(value, dict) else {}

    project, uv = table(doc, "project"), table(table(doc, "tool"), "uv")
    wanted = {
        "dependencies": project.get("dependencies"),
        "optional-dependencies": project.get("optional-dependencies"),
        "dependency-groups": doc.get("dependency-groups"),
        **{f"tool.uv.{key}": uv.get(key) for key in (
            "dev-dependencies", "constraint-dependencies", "override-dependencies", "sources",
            "index")},
    }
    text = json.dumps(wanted, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class TestHolds:
    """Moves a project's tests refused (blockers of kind ``tests``), valid while its
    requirements hash to ``state`` (:func:`requirements_state`)."""

    __test__ = False  # not a pytest test class, whatever its name

    path: Path
    state: str
    blocked: tuple[planner.Blocked, ...]

    @property
    def moves(self) -> frozenset[tuple[str, str]]:
        """``(name, version)`` of each refused move: that version and newer ones are not tried."""
        return frozenset((b.name, b.wanted) for b in self.blocked)

    def to_json(self) -> dict[str, object]:
        """``{"state", "blocked": [Blocked.to_json()]}``."""
        return {"state": self.state, "blocked": [b.to_json() for b in self.blocked]}


def _blocked(items: object) -> tuple[planner.Blocked, ...]:
    """Blockers as the manifest stores them; raises TypeError/ValueError/KeyError when malformed."""
    if not isinstance(items, list):
        raise TypeError("not a list")
    from devkit.align import planner

    found = []
    for item in items:
        fields = dict(item)
        fields["tests"] = tuple(str(t) for t in fields.get("tests") or ())
        found.append(planner.Blocked(**fields))
    return tuple(found)


@dataclasses.dataclass(frozen=True)
class KnownConflicts:
    """Moves uv refused in one project, valid while its files hash to ``state``; ``error`` is
    a refusal of the whole project (a lock made with another index), else None."""

    path: Path
    state: str
    moves: frozenset[tuple[str, str]]  # (name, version)
    blocked: tuple[planner.Blocked, ...]
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """``{"state", "moves": [[name, version]], "blocked": [Blocked.to_json()], "error"}``."""
        return {"state": self.state, "moves": sorted([n, v] for n, v in self.moves),
                "blocked": [b.to_json() for b in self.blocked], "error": self.error}


def recall(store: Store, paths: Iterable[Path]) -> dict[Path, KnownConflicts]:
    """Known refusals of the last run for those of ``paths`` whose files are unchanged since.

    An unreadable or other-version manifest, or a malformed entry, means nothing is known.
    """
    try:
        data = json.loads(store.manifest_file.read_text(encoding="utf-8"))
        known = data["known_conflicts"] if data.get("version") == MANIFEST_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    found = {}
    for path in paths:
        entry = known.get(str(path)) if isinstance(known, dict) else None
        if not isinstance(entry, dict) or entry.get("state") != project_state(path):
            continue
        with contextlib.suppress(TypeError, ValueError, KeyError):
            moves = frozenset((str(n), str(v)) for n, v in entry["moves"])
            blocked = _blocked(entry["blocked"])
            error = entry.get("error")
            found[path] = KnownConflicts(path, str(entry["state"]), moves, blocked,
                                         error if isinstance(error, str) else None)
    return found


def _test_holds_doc(store: Store) -> dict[str, Any]:
    try:
        data = json.loads(store.manifest_file.read_text(encoding="utf-8"))
        holds = data.get("test_holds") if data.get("version") == MANIFEST_VERSION else None
    except (OSError, ValueError, AttributeError):
        return {}
    return holds if isinstance(holds, dict) else {}


def recall_test_holds(store: Store, paths: Iterable[Path]) -> dict[Path, TestHolds]:
    """The test holds of those of ``paths`` whose requirements are unchanged since they were
    recorded. An unreadable manifest or a malformed entry means nothing is held."""
    known = _test_holds_doc(store)
    found = {}
    for path in paths:
        entry = known.get(str(path))
        if not isinstance(entry, dict) or entry.get("state") != requirements_state(path):
            continue
        with contextlib.suppress(TypeError, ValueError, KeyError):
            found[path] = TestHolds(path, str(entry["state"]), _blocked(entry["blocked"]))
    return found


def recorded_test_holds(store: Store) -> dict[Path, TestHolds]:
    """Every test hold the manifest records that is still in effect (the project's requirements
    unchanged), by project path. An unreadable manifest or a malformed entry means none."""
    return recall_test_holds(store, [Path(p) for p in _test_holds_doc(store)])


def clear_test_holds(store: Store, paths: Iterable[Path] | None = None
                     ) -> dict[Path, TestHolds]:
    """Forget the test holds of ``paths`` (every project when None), so that the next
    ``devkit align`` tries those moves again; returns the holds removed that were in effect.

    Entries whose requirements changed since (no longer in effect) are dropped too, silently.
    The manifest is rewritten atomically under the store mutex, everything else kept; no
    manifest or no entry: nothing written. The caller holds the align run mutex
    (:func:`devkit.align.engine.exclusive_run`), so a running ``devkit align`` cannot record
    holds from a stale read. Raises DevkitError when the store is not writable or the manifest
    cannot be read (other than absent).
    """
    wanted = None if paths is None else {str(p) for p in paths}
    try:
        with store.mutex("manifest", timeout=MANIFEST_WRITE_TIMEOUT):
            try:
                data = json.loads(store.manifest_file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                return {}
            if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
                return {}
            holds = data.get("test_holds")
            if not isinstance(holds, dict):
                return {}
            gone = [k for k in holds if wanted is None or k in wanted]
            if not gone:
                return {}
            removed = recall_test_holds(store, [Path(k) for k in gone])
            data["test_holds"] = {k: v for k, v in holds.items() if k not in gone}
            atomic_write_text(store.manifest_file, json.dumps(data, indent=2) + "\n")
    except (OSError, ValueError, filelock.Timeout) as exc:
        raise DevkitError(f"cannot update the alignment manifest {store.manifest_file}: {exc}"
                          ) from exc
    return removed


def write(store: Store, *, strategy: str, projects: Sequence[Path],
          targets: Sequence[planner.Target], blocked: Sequence[planner.Blocked],
          known: Sequence[KnownConflicts],
          test_holds: Mapping[Path, TestHolds] | None = None) -> None:
    """Record this run in ``store.manifest_file`` (versioned JSON, atomic, under the store mutex).

    Shape: ``{"version": 1, "updated": ISO time, "strategy", "projects": [paths],
    "targets": [Target.to_json()], "blocked": [Blocked.to_json()], "known_conflicts": {path:
    KnownConflicts.to_json()}, "test_holds": {path: TestHolds.to_json()}}``. ``test_holds``
    replaces the entries of ``projects``; those of projects not in this run are kept.
    Raises DevkitError when the store is not writable.
    """
    import datetime as dt  # only when writing: doctor reads these files

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    manifest: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "updated": now.replace("+00:00", "Z"),
        "strategy": strategy,
        "projects": [str(p) for p in projects],
        "targets": [t.to_json() for t in targets],
        "blocked": [b.to_json() for b in blocked],
        "known_conflicts": {str(k.path): k.to_json() for k in known},
    }
    previous = gc_figure(store)
    if previous is not None:
        manifest["gc"] = previous
    taking_part = {str(p) for p in projects}
    try:
        with store.mutex("manifest", timeout=MANIFEST_WRITE_TIMEOUT):
            kept = {k: v for k, v in _test_holds_doc(store).items() if k not in taking_part}
            kept.update({str(p): h.to_json() for p, h in (test_holds or {}).items()
                         if h.blocked})
            manifest["test_holds"] = dict(sorted(kept.items()))
            atomic_write_text(store.manifest_file, json.dumps(manifest, indent=2) + "\n")
    except (OSError, filelock.Timeout) as exc:
        raise DevkitError(f"cannot write the alignment manifest {store.manifest_file}: {exc}") from exc


def record_gc(store: Store, *, reclaimable: int, linked: int, by: str) -> None:
    """Record what ``devkit gc`` would free, so that ``devkit doctor`` never walks the cache.

    Adds ``"gc": {"reclaimable_bytes", "linked_bytes", "measured": ISO time, "by": "align" |
    "gc"}`` to the manifest (physical bytes; ``linked_bytes`` stay while a venv links them),
    keeping everything else. Raises DevkitError when the store is not writable.
    """
    import datetime as dt  # only when writing: doctor reads these files

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    figure = {"reclaimable_bytes": reclaimable, "linked_bytes": linked, "measured": now, "by": by}
    try:
        with store.mutex("manifest", timeout=MANIFEST_WRITE_TIMEOUT):
            try:
                data = json.loads(store.manifest_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
                data = {"version": MANIFEST_VERSION}
            data["gc"] = figure
            atomic_write_text(store.manifest_file, json.dumps(data, indent=2) + "\n")
    except (OSError, filelock.Timeout) as exc:
        raise DevkitError(f"cannot write the alignment manifest {store.manifest_file}: {exc}") from exc


def gc_figure(store: Store) -> dict[str, Any] | None:
    """The figure :func:`record_gc` last wrote, or None (no manifest, none recorded, unreadable)."""
    try:
        data = json.loads(store.manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    figure = data.get("gc") if isinstance(data, dict) else None
    if not isinstance(figure, dict) or not isinstance(figure.get("reclaimable_bytes"), int):
        return None
    return figure
