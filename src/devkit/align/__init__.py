"""The align engine behind ``devkit align`` and ``devkit new``'s born-aligned lock.

Modules, in the order a run uses them:

* :mod:`~devkit.align.lockfile` — the one reader of ``uv.lock`` (validates at the boundary);
* :mod:`~devkit.align.planner` — pure: targets per ``(index, name)`` and pins per project;
* :mod:`~devkit.align.relock` — applies pins with ``uv lock -P``, releases blocking parents upward;
* :mod:`~devkit.align.scoring` — is a candidate lock good for the whole store (pairs, bytes)?
* :mod:`~devkit.align.backups` — byte-for-byte copies of touched locks, recovery after a kill;
* :mod:`~devkit.align.manifest` — ``align.json``: targets and the moves uv refused;
* :mod:`~devkit.align.engine` — the whole run; :mod:`~devkit.align.report` renders its result.
"""
