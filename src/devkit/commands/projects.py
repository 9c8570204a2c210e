"""``devkit projects list|add|remove``: the registry of workspaces sharing the store."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from devkit.registry import Registry
from devkit.store import Store


def list_projects(*, store: Store, as_json: bool = False) -> int:
    """Print the registered projects; a vanished path is flagged, never fatal. Returns 0."""
    projects = Registry(store).projects()
    if as_json:
        doc = {"version": 1, "projects": [p.to_json() for p in projects]}
        print(json.dumps(doc, indent=2))
        return 0
    if not projects:
        print("No registered projects. Add one with `devkit projects add PATH` or `devkit new`.")
        return 0
    table = Table("name", "path", "added", "status", box=None)
    for p in projects:
        table.add_row(p.name, str(p.path), p.added, "ok" if p.exists else "[red]missing[/red]")
    Console(highlight=False).print(table)
    missing = [p for p in projects if not p.exists]
    if missing:
        print(f"{len(missing)} registered path(s) no longer exist: "
              "`devkit projects remove PATH` forgets them.")
    return 0


def add(paths: list[Path], *, store: Store, as_json: bool = False) -> int:
    """Register each of ``paths``. Raises DevkitError for a path that is not a directory."""
    registry = Registry(store)
    results = [registry.add(path) for path in paths]
    if as_json:
        print(json.dumps([{**p.to_json(), "added_now": new} for p, new in results], indent=2))
    else:
        for project, was_new in results:
            print(f"{'Registered' if was_new else 'Already registered'}: {project.path}")
    return 0


def remove(paths: list[Path], *, store: Store, as_json: bool = False) -> int:
    """Unregister each of ``paths`` (files are untouched). Raises DevkitError if one is unknown."""
    registry = Registry(store)
    removed = [registry.remove(path) for path in paths]
    if as_json:
        print(json.dumps([p.to_json() for p in removed], indent=2))
    else:
        for project in removed:
            print(f"Unregistered: {project.path}")
    return 0
