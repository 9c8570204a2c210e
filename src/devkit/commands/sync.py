"""``devkit sync [PATH...] [--all] [--json] [--jobs N]``: each workspace's ``.venv`` from its lock.

Runs ``uv sync --locked`` with the store's environment (``Store.subprocess_env()``), so a shell
where mise or direnv is not active still links from the shared cache. ``uv sync --check`` (offline,
no build) first tells which venvs are already current. A venv built from another uv cache is
rebuilt (see :mod:`devkit.venvsync`). One workspace failing never stops the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from devkit import __version__, uv, verified
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store
from devkit.venvsync import STATUSES, CacheFacts, SyncResult, sync_all

JSON_VERSION = 1


def targets(paths: Sequence[Path], *, store: Store, all_projects: bool) -> list[Path]:
    """The workspaces to sync: ``paths``, every registered project with ``all_projects``, else the
    workspace containing the current directory (the nearest ancestor with a ``pyproject.toml``).

    Raises DevkitError when no workspace contains the current directory.
    """
    chosen = [p.expanduser().absolute() for p in paths]
    if all_projects:
        chosen += [p.path for p in Registry(store).projects()]
    if not paths and not all_projects:
        cwd = Path.cwd()
        here = next((d for d in (cwd, *cwd.parents) if (d / "pyproject.toml").is_file()), None)
        if here is None:
            raise DevkitError(f"{cwd} is not inside a Python project (no pyproject.toml): "
                              "give a PATH, or --all for every registered project")
        chosen.append(here)
    unique: dict[Path, None] = {}
    for path in chosen:
        unique.setdefault(path.resolve() if path.exists() else path, None)
    return list(unique)


def sync(
    paths: Sequence[Path],
    *,
    store: Store,
    all_projects: bool = False,
    as_json: bool = False,
    jobs: int = 1,
) -> int:
    """Sync the chosen workspaces, ``jobs`` at a time; returns 1 if any failed, else 0.

    ``--json`` prints ``{"version": 1, "devkit_version", "seconds", "summary": {status: count},
    "workspaces": [SyncResult.to_json()…]}``. Raises DevkitError when there is nothing to sync.
    """
    start = time.perf_counter()
    chosen = targets(paths, store=store, all_projects=all_projects)
    if not chosen:
        raise DevkitError("no registered projects: add one with `devkit projects add PATH`")
    store.ensure()
    uv.expose(store.bin_dir)  # the uv the workspaces' .envrc.sh puts on PATH
    cache = CacheFacts.of(store)
    memo = verified.for_uv(store, store.subprocess_env())
    # never two syncs at once that may unpack the same uncached wheel (see venvsync.sync_all);
    # each under its workspace mutex (update, align, adopt and doctor --fix take it too)
    done = sync_all(chosen, store=store, cache=cache, jobs=jobs, memo=memo, command="devkit sync",
                    on_done=lambda result: None if as_json else _print(result))
    if memo is not None:
        memo.save()
    summary = {status: sum(r.status == status for r in done) for status in STATUSES}
    if as_json:
        doc = {
            "version": JSON_VERSION,
            "devkit_version": __version__,
            "seconds": round(time.perf_counter() - start, 3),
            "summary": summary,
            "workspaces": [r.to_json() for r in done],
        }
        print(json.dumps(doc, indent=2))
    elif len(done) > 1:
        print(", ".join(f"{n} {s}" for s, n in summary.items() if n))
    return 1 if summary["failed"] else 0


def _print(result: SyncResult) -> None:
    print(f"{result.status:<8} {result.path}")
    if result.reason:
        print(f"         {result.reason}")
    for note in result.notes:
        print(f"         {note}")
    if result.changes:
        print("         " + ", ".join(str(c) for c in result.changes))
    census = result.census
    if census and result.status in ("synced", "current"):
        print(f"         {census.linked} of {census.files} files are links into the shared cache, "
              f"{census.private + census.foreign} private")
