"""The report of ``devkit align``: the ``--json`` document, the human text, the progress bar."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Self

from devkit import lockfile
from devkit import plan as planner
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.relock import Outcome
from devkit.store import Store
from devkit.util import format_bytes

JSON_VERSION = 1


class Progress:
    """A rich progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        """``enabled=False`` (e.g. ``--json``) shows nothing."""
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Self:
        if self.enabled:
            from rich import progress

            self._bar = progress.Progress(
                progress.TextColumn("{task.description}"), progress.BarColumn(),
                progress.MofNCompleteColumn(), progress.TimeElapsedColumn(),
                console=self.console, transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, description: str, total: int) -> None:
        """Begin a new bar of ``total`` projects."""
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total)

    def advance(self) -> None:
        """One project done."""
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)


def cache_entries(cache: Path, key: tuple[str, str, str]) -> list[Path]:
    """Unzipped wheel trees in uv's cache for ``(index, name, version)``.

    Layout seen on uv 0.13.9: ``wheels-v*/pypi/<name>/<version>-<tag>`` (PyPI) or
    ``wheels-v*/index/<hash>/<name>/<version>-<tag>`` (other indexes), a symlink to
    ``archive-v0/<id>`` (../shared/notes/uv.md §1). The index hash is uv's own, so for non-PyPI
    indexes every index bucket is searched.
    """
    index, name, version = key
    bucket = "pypi" if index.rstrip("/") == "https://pypi.org/simple" else "index/*"
    found = set()
    for wheels in cache.glob("wheels-v*"):
        for entry in wheels.glob(f"{bucket}/{name}/{version}-*"):
            if entry.name.endswith((".lock", ".rev", ".http", ".msgpack")):
                continue
            with contextlib.suppress(OSError):
                found.add(entry.resolve())
    return sorted(p for p in found if p.is_dir())


def unreferenced(before: dict[Path, lockfile.Lock], after: dict[Path, lockfile.Lock],
                 store: Store) -> list[dict[str, object]]:
    """Cache entries locked before but by no lock after (other registered projects included).

    Bytes are bytes on disk of the unzipped wheel (each inode once, :mod:`devkit.usage`); a
    venv hard-linked to it keeps those blocks alive until it is re-synced.
    """
    from devkit import usage

    kept = {p.key for lock in after.values() for p in lock.packages}
    with contextlib.suppress(DevkitError):
        for project in Registry(store).projects():
            if project.path not in after and project.exists:
                with contextlib.suppress(lockfile.LockError):
                    kept |= {p.key for p in lockfile.read(project.path / "uv.lock").packages}
    gone = {p.key for lock in before.values() for p in lock.packages} - kept
    entries = []
    for key in sorted(gone):
        size = sum(usage.scan(entry).bytes for entry in cache_entries(store.uv_cache_dir, key))
        entries.append({"index": key[0], "name": key[1], "version": key[2], "bytes": size})
    return entries


def document(outcomes: list[Outcome], the_plan: planner.Plan, *, before: dict[Path, lockfile.Lock],
             after: dict[Path, lockfile.Lock], store: Store, strategy: str, dry_run: bool,
             check: bool, notes: list[str], seconds: float) -> dict[str, Any]:
    """The ``devkit align --json`` document (schema in docs/align.md, ``version`` 1)."""
    gone = unreferenced(before, after, store)
    return {
        "version": JSON_VERSION,
        "strategy": strategy,
        "dry_run": dry_run,
        "check": check,
        "changed": any((o.changes or o.stale) and o.status != "failed" for o in outcomes),
        "seconds": round(seconds, 3),
        "before": lockfile.summarize(list(before.values())).to_json(),
        "after": lockfile.summarize(list(after.values())).to_json(),
        "targets": [t.to_json() for t in the_plan.targets],
        "projects": [o.to_json() for o in outcomes],
        "blocked": [b.to_json() for o in outcomes for b in o.blocked],
        "failed": [{"path": str(o.path), "error": o.error} for o in outcomes if o.status == "failed"],
        "unreferenced": {"bytes": sum(int(str(e["bytes"])) for e in gone), "entries": gone},
        "notes": notes,
    }


def _versions(versions: list[str]) -> str:
    return ", ".join(versions) if versions else "(none)"


def render(doc: dict[str, Any], *, as_json: bool) -> None:
    """Print ``doc`` as JSON or as a short human report on stdout."""
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape

    out = Console(highlight=False, soft_wrap=True)
    verb = "would change" if doc["dry_run"] else "changed"
    projects = doc["projects"]
    changed = [p for p in projects if p["changes"] or (p["stale"] and p["status"] != "failed")]
    failed = [p for p in projects if p["status"] == "failed"]
    b, a = doc["before"], doc["after"]
    out.print(f"devkit align ({doc['strategy']}{', dry run' if doc['dry_run'] else ''}): "
              f"{len(projects)} projects, {len(changed)} {verb}, {len(doc['blocked'])} blocked, "
              f"{len(failed)} failed")
    out.print(f"Distinct (index, name, version) pairs: {b['distinct_pairs']} -> {a['distinct_pairs']}"
              f" ({b['excess_pairs']} -> {a['excess_pairs']} beyond one version per package)")
    for p in changed:
        moves = ", ".join(f"{c['name']} {_versions(c['before'])} -> {_versions(c['after'])}"
                          for c in p["changes"])
        stale = " [lock was stale: re-locked]" if p["stale"] else ""
        out.print(escape(f"  {p['name']}: {moves or 'no version moves'}{stale}"))
    if doc["blocked"]:
        out.print("Blocked:")
        for item in doc["blocked"]:
            out.print(escape(f"  {item['project']}: {item['name']} {item['current']} (target "
                             f"{item['wanted']}): {item['reason']}"))
    if a["spread"]:
        out.print("Still at several versions:")
        for name, versions in a["spread"].items():
            out.print(escape(f"  {name}: {', '.join(versions)}"))
    gone = doc["unreferenced"]
    if gone["entries"]:
        out.print(f"Cache no longer referenced by any lock: {format_bytes(gone['bytes'])} in "
                  f"{len(gone['entries'])} wheel(s)")
    for p in failed:
        out.print(escape(f"[{p['name']}] {p['error']}"), style="red")
    for note in doc["notes"]:
        out.print(escape(f"note: {note}"))
    if doc["check"] and doc["changed"]:
        out.print("Locks are not aligned: run `devkit align`.")
