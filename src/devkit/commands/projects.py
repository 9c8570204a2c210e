"""``devkit projects list|add|remove|prune|set``: the registry of workspaces sharing the store."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from pathlib import Path

from devkit.errors import DevkitError
from devkit.registry import Project, Registry
from devkit.store import Store

#: A terminal gets rich's table up to this many rows; a pipe, or more rows, get plain columns
#: (rich measures every cell: seconds for thousands of rows).
RICH_MAX_ROWS = 200


def list_projects(*, store: Store, as_json: bool = False) -> int:
    """Print the registered projects; a vanished path is flagged, never fatal. Returns 0."""
    projects = Registry(store).projects()
    if as_json:
        doc = {"version": 1, "projects": [p.to_json() for p in projects]}
        print(json.dumps(doc, indent=2))
        return 0
    if not projects:
        print("No registered projects. Add one with `devkit projects add PATH` or `devkit new PATH`.")
        return 0
    status = {p.path: "ok" if p.exists else reachability(p.path) for p in projects}
    shown = {p.path: status[p.path] + (f" (private{', aligned' if p.align else ''})"
                                       if p.private else "") for p in projects}
    if sys.stdout.isatty() and len(projects) <= RICH_MAX_ROWS:
        from rich.console import Console  # only here: importing rich costs more than the rows
        from rich.markup import escape
        from rich.table import Table

        table = Table("name", "path", "added", "status", box=None)
        for p in projects:
            state = shown[p.path]
            table.add_row(escape(p.name), escape(str(p.path)), p.added,
                          state if status[p.path] == "ok" else f"[red]{escape(state)}[/red]")
        Console(highlight=False).print(table)
    else:
        _plain_table(["name", "path", "added", "status"],
                     [[p.name, str(p.path), p.added, shown[p.path]] for p in projects])
    missing = sum(state == "missing" for state in status.values())
    if missing:
        print(f"{missing} registered path(s) no longer exist; forget them with: "
              "devkit projects prune")
    unreachable = sum(state == "unreachable" for state in status.values())
    if unreachable:
        print(f"{unreachable} registered path(s) cannot be reached (an unmounted disk?): kept; "
              "forget one with: devkit projects remove PATH")
    return 0


def _plain_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart, the last one unpadded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
             for row in [header, *rows]]
    sys.stdout.write("\n".join(lines) + "\n")


def add(paths: list[Path], *, store: Store, as_json: bool = False) -> int:
    """Register each of ``paths``.

    Raises DevkitError, before registering anything, for a path that is not a directory, has no
    ``pyproject.toml`` (a registered project is one uv can lock and sync) or is inside the store
    (``Store.check_outside``).
    """
    for path in paths:
        target = path.expanduser()
        store.check_outside(target, action="register a project")
        if not target.is_dir():
            raise DevkitError(f"{path} is not a directory")
        if not (target / "pyproject.toml").is_file():
            raise DevkitError(
                f"{path} has no pyproject.toml, so it is not a Python project: create one with "
                f"`devkit new {shlex.quote(str(path))}` (an empty directory) or "
                f"`uv init {shlex.quote(str(target.absolute()))}`"
            )
    results = Registry(store).add_many([path.expanduser() for path in paths])  # one write
    if as_json:
        print(json.dumps([{**p.to_json(), "added_now": new} for p, new in results], indent=2))
    else:
        for project, was_new in results:
            print(f"{'Registered' if was_new else 'Already registered'}: {project.path}")
    return 0


def remove(paths: list[Path], *, store: Store, as_json: bool = False, missing: bool = False) -> int:
    """Unregister each of ``paths`` and, with ``missing``, every project whose directory is gone.

    Files are untouched. Raises DevkitError if one of ``paths`` is not registered.
    """
    registry = Registry(store)
    removed = [registry.remove(path) for path in paths]
    if missing:
        removed += _remove_missing(registry, dry_run=False)
    _print_removed(removed, as_json=as_json, verb="Unregistered")
    return 0


def prune(*, store: Store, dry_run: bool = False, as_json: bool = False) -> int:
    """Unregister every project whose directory no longer exists (``--dry-run``: only list them).

    An unreachable one (:func:`reachability`: e.g. on an unmounted disk) is kept, and said so
    on stderr.

    Returns 0. With ``as_json`` prints ``{"version": 1, "dry_run": bool, "removed": [project…]}``.
    """
    removed = _remove_missing(Registry(store), dry_run=dry_run)
    if as_json:
        doc = {"version": 1, "dry_run": dry_run, "removed": [p.to_json() for p in removed]}
        print(json.dumps(doc, indent=2))
        return 0
    if not removed:
        print("Nothing to prune: every registered project exists.")
        return 0
    _print_removed(removed, as_json=False, verb="Would unregister" if dry_run else "Unregistered")
    if dry_run:
        print("Run without --dry-run to unregister them: devkit projects prune")
    return 0


def reachability(path: Path) -> str:
    """``ok`` (a directory), ``missing`` (provably gone) or ``unreachable`` for a registered path.

    A path is ``missing`` only when it is not a directory, or is absent while its parent
    directory exists and can be listed: the leaf was removed. When the parent is missing too or
    cannot be read, or the path cannot be examined (permission denied, an I/O error, a stale
    network mount), it is ``unreachable``: an unmounted disk or share looks like that, and its
    workspace must not be forgotten. Raises nothing.
    """
    try:
        return "ok" if stat.S_ISDIR(os.stat(path).st_mode) else "missing"
    except FileNotFoundError:
        try:
            os.listdir(path.parent)
        except OSError:
            return "unreachable"
        return "missing"
    except OSError:
        return "unreachable"


def _remove_missing(registry: Registry, *, dry_run: bool) -> list[Project]:
    projects = registry.projects()
    unreachable = [p for p in projects if not p.exists and reachability(p.path) == "unreachable"]
    for project in unreachable:
        print(f"Kept (unreachable, not provably gone): {project.path}: its parent directory is "
              "missing or unreadable (an unmounted disk?); forget it with: devkit projects "
              f"remove {shlex.quote(str(project.path))}", file=sys.stderr)
    gone = [p for p in projects if not p.exists and p not in unreachable]
    if dry_run:
        return gone
    removed = []
    for project in gone:
        try:
            removed.append(registry.remove(project.path))
        except DevkitError:  # unregistered meanwhile by a concurrent devkit: already done
            continue
    return removed


def _print_removed(removed: list[Project], *, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps([p.to_json() for p in removed], indent=2))
        return
    for project in removed:
        print(f"{verb}: {project.path}")


def set_flags(paths: list[Path], *, store: Store, align: bool, as_json: bool = False) -> int:
    """``devkit projects set PATH... --align|--no-align``: whether ``devkit align`` may change
    each workspace's ``uv.lock`` (only a private workspace's can be left alone: any other one
    is always aligned). Returns 0. Raises DevkitError, before anything changes, when a path is
    not registered, or ``--no-align`` names a workspace that is not private."""
    registry = Registry(store)
    found = []
    for path in paths:
        project = registry.find(path.expanduser())
        if project is None:
            raise DevkitError(f"{path} is not a registered project (see `devkit projects list`)")
        if not align and not project.private:
            raise DevkitError(f"{project.path} is not a private workspace: `devkit align` always "
                              "aligns it (only `devkit adopt --private` workspaces can opt out)")
        found.append(project)
    changed = [registry.set_flags(p.path, align=align) if p.private else p for p in found]
    if as_json:
        print(json.dumps({"version": 1, "projects": [p.to_json() for p in changed]}, indent=2))
        return 0
    for project in changed:
        what = ("`devkit align` may change its uv.lock" if project.aligned
                else "`devkit align` leaves its uv.lock alone")
        print(f"{project.path}: {what}")
    return 0
