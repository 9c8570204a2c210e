"""The alignment manifest ``Store.manifest_file``: the targets of the last run and the moves uv
refused, so that the next run does not ask uv again while a project's files are unchanged."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import filelock

from devkit.align import planner
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text

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
            blocked = tuple(planner.Blocked(**b) for b in entry["blocked"])
            error = entry.get("error")
            found[path] = KnownConflicts(path, str(entry["state"]), moves, blocked,
                                         error if isinstance(error, str) else None)
    return found


def write(store: Store, *, strategy: str, projects: Sequence[Path],
          targets: Sequence[planner.Target], blocked: Sequence[planner.Blocked],
          known: Sequence[KnownConflicts]) -> None:
    """Record this run in ``store.manifest_file`` (versioned JSON, atomic, under the store mutex).

    Shape: ``{"version": 1, "updated": ISO time, "strategy", "projects": [paths],
    "targets": [Target.to_json()], "blocked": [Blocked.to_json()], "known_conflicts": {path:
    KnownConflicts.to_json()}}``. Raises DevkitError when the store is not writable.
    """
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
    try:
        with store.mutex("manifest", timeout=MANIFEST_WRITE_TIMEOUT):
            atomic_write_text(store.manifest_file, json.dumps(manifest, indent=2) + "\n")
    except (OSError, filelock.Timeout) as exc:
        raise DevkitError(f"cannot write the alignment manifest {store.manifest_file}: {exc}") from exc


def record_gc(store: Store, *, reclaimable: int, linked: int, by: str) -> None:
    """Record what ``devkit gc`` would free, so that ``devkit doctor`` never walks the cache.

    Adds ``"gc": {"reclaimable_bytes", "linked_bytes", "measured": ISO time, "by": "align" |
    "gc"}`` to the manifest (physical bytes; ``linked_bytes`` stay while a venv links them),
    keeping everything else. Raises DevkitError when the store is not writable.
    """
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
