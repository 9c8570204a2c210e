"""``devkit align``: move every project's ``uv.lock`` onto one version per package, with uv itself.

The work is done by the engine (:mod:`devkit.align.engine`); this command parses nothing but its
arguments and prints the report (:mod:`devkit.align.report`).
"""

from __future__ import annotations

from pathlib import Path

from devkit.align import engine, planner, report
from devkit.store import Store


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
    print(report.to_json(doc) if as_json else report.to_text(doc), end="\n" if as_json else "")
    return 1 if result.failed or (result.check and result.changed) else 0
