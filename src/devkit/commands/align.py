"""``devkit align``: move every project's ``uv.lock`` onto one version per package, with uv itself.

The work is done by the engine (:mod:`devkit.align.engine`); this command parses nothing but its
arguments and prints the report (:mod:`devkit.align.report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devkit import gcplan
from devkit.align import engine, manifest, planner, report
from devkit.errors import DevkitError
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
) -> int:
    """Align the locks of ``paths`` (default: every registered project); returns the exit code.

    ``only``: plan with every registered project but change, check and report only these.
    0 when done (or nothing to do); 1 when ``check`` finds that aligning would change a lock, or
    any project failed (unreadable lock, uv error: reported per project, the others go on).
    Raises DevkitError for what stops the whole run (see :func:`devkit.align.engine.run`).
    """
    result = engine.run(paths, store=store, dry_run=dry_run, check=check, strategy=strategy,
                        allow_downgrade=allow_downgrade, jobs=jobs, sync=sync,
                        show_progress=not as_json, only=only or (), test=test,
                        test_command=test_command)
    doc = report.document(result)
    doc["gc"] = gc_figure(store, record=not (dry_run or check))
    print(report.to_json(doc) if as_json else report.to_text(doc) + gc_line(doc["gc"]),
          end="\n" if as_json else "")
    return 1 if result.failed or (result.check and result.changed) else 0


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
