"""``devkit align``: move every project's ``uv.lock`` onto one version per package, with uv itself.

The work is done by the engine (:mod:`devkit.align.engine`); this command parses nothing but its
arguments and prints the report (:mod:`devkit.align.report`). ``--clear-holds`` forgets the
moves the projects' tests refused (:mod:`devkit.align.manifest`), alone or before a ``--test`` run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devkit import gcplan
from devkit.align import engine, manifest, planner, report
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store
from devkit.util import format_bytes


def align(
    paths: list[Path],
    *,
    store: Store,
    dry_run: bool = False,
    check: bool = False,
    as_json: bool = False,
    strategy: planner.Strategy = "newest",
    jobs: int = 4,
    sync: bool = False,
    allow_downgrade: planner.DowngradePolicy = "none",
    only: list[Path] | None = None,
    test: bool = False,
    test_command: str | None = None,
    clear_holds: bool = False,
) -> int:
    """Align the locks of ``paths`` (default: every registered project); returns the exit code.

    ``only``: plan with every registered project but change, check and report only these.
    0 when done (or nothing to do); 1 when ``check`` finds that aligning would change a lock, or
    any project failed (unreadable lock, uv error: reported per project, the others go on).
    ``clear_holds``: first forget the test holds of ``only`` (else ``paths``, else every
    project; :func:`clear`), then align; the caller allows it only with ``test``, so the
    retried moves are gated again.
    Raises DevkitError for what stops the whole run (see :func:`devkit.align.engine.run`).
    """
    cleared = None
    if clear_holds:
        if dry_run or check:
            raise DevkitError("--clear-holds forgets recorded test holds: it cannot be combined "
                              "with --dry-run or --check")
        cleared = clear(only or paths, store=store)
        if not as_json:
            print(cleared_text(cleared), end="")
    result = engine.run(paths, store=store, dry_run=dry_run, check=check, strategy=strategy,
                        allow_downgrade=allow_downgrade, jobs=jobs, sync=sync,
                        show_progress=not as_json, only=only or (), test=test,
                        test_command=test_command)
    doc = report.document(result)
    doc["gc"] = gc_figure(store, record=not (dry_run or check))
    if cleared is not None:
        doc["cleared_holds"] = cleared["projects"]
    print(report.to_json(doc) if as_json else report.to_text(doc) + gc_line(doc["gc"]),
          end="\n" if as_json else "")
    return 1 if result.failed or (result.check and result.changed) else 0


def clear_holds(paths: list[Path], *, store: Store, as_json: bool = False) -> int:
    """``devkit align --clear-holds [PATH...]``: forget the test holds of ``paths`` (default:
    every project), print what was cleared; returns 0. Raises DevkitError (see :func:`clear`)."""
    doc = clear(paths, store=store)
    print(json.dumps(doc, indent=2) if as_json else cleared_text(doc), end="\n" if as_json else "")
    return 0


def clear(paths: list[Path], *, store: Store) -> dict[str, Any]:
    """Forget the moves the tests of ``paths`` (default: every project) refused, so that the next
    ``devkit align`` tries them again; the ``--clear-holds --json`` document.

    ``{"version": 1, "projects": [{"path", "name", "holds": [{"name", "current", "wanted",
    "tests"}]}]}``: each given path (``holds`` may be empty), or without paths each project
    that had holds. Takes the align run mutex, so it never races with a writing ``devkit
    align`` (:func:`devkit.align.engine.exclusive_run`). Raises DevkitError, clearing nothing,
    for a path that is not a directory or neither registered nor held; when another align runs;
    when the manifest cannot be written.
    """
    registry = Registry(store)
    names = {p.path: p.name for p in registry.projects()}
    held = manifest.recorded_test_holds(store)
    chosen: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise DevkitError(f"{path} is not a directory")
        resolved = path.resolve()
        if resolved not in names and resolved not in held:
            raise DevkitError(f"{path} is not a registered project (see `devkit projects list`) "
                              "and has no test holds recorded")
        chosen.append(resolved)
    with engine.exclusive_run(store, enabled=True,
                              busy="another `devkit align` is running on this store: wait for "
                                   "it to finish, then clear the holds"):
        removed = manifest.clear_test_holds(store, chosen if paths else None)
    shown = chosen if paths else sorted(removed)
    return {"version": 1, "projects": [
        {"path": str(p), "name": names.get(p, p.name),
         "holds": [{"name": b.name, "current": b.current, "wanted": b.wanted,
                    "tests": list(b.tests)} for b in (removed[p].blocked if p in removed else ())]}
        for p in dict.fromkeys(shown)]}


def cleared_text(doc: dict[str, Any]) -> str:
    """One line per project of a :func:`clear` document."""
    lines = []
    for project in doc["projects"]:
        holds = project["holds"]
        if holds:
            moves = ", ".join(f"{h['name']} {h['wanted']}" for h in holds)
            lines.append(f"cleared {len(holds)} test hold{'s' * (len(holds) != 1)} of "
                         f"{project['path']}: {moves}")
        else:
            lines.append(f"no test holds recorded for {project['path']}")
    return "\n".join(lines or ["no test holds recorded"]) + "\n"


def gc_figure(store: Store, *, record: bool) -> dict[str, Any]:
    """What ``devkit gc`` would free now (:mod:`devkit.gcplan`, physical bytes), recorded in the
    manifest when ``record`` so that ``devkit doctor`` can warn without walking the cache.

    ``{"reclaimable_bytes", "linked_bytes", "error"}``: bytes are None and ``error`` says why
    when gc could not plan (an unreadable lock, an unknown cache layout).
    """
    try:
        plan = gcplan.make(store)
    except DevkitError as exc:
        return {"reclaimable_bytes": None, "linked_bytes": None, "error": str(exc)}
    if record:
        manifest.record_gc(store, reclaimable=plan.total.freed, linked=plan.total.linked,
                           by="align")
    return {"reclaimable_bytes": plan.total.freed, "linked_bytes": plan.total.linked,
            "error": None}


def gc_line(figure: dict[str, Any]) -> str:
    """The closing line of align's text report about ``devkit gc``."""
    if figure["reclaimable_bytes"] is None:
        return f"devkit gc cannot tell what it would free: {figure['error']}\n"
    linked = (f" ({format_bytes(figure['linked_bytes'])} more once venvs linking them are "
              "re-synced)") if figure["linked_bytes"] else ""
    return (f"`devkit gc` would free {format_bytes(figure['reclaimable_bytes'])} of the shared "
            f"cache{linked}\n")
