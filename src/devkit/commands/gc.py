"""``devkit gc [--dry-run] [--json]``: remove from the shared store what no registered project uses.

What stays and what goes is decided by :mod:`devkit.gcplan`; uv does the removing wherever it has
a command: ``uv cache clean NAME`` for packages no lock uses, ``uv cache prune`` for archives
nothing points to any more, ``uv python uninstall`` for unused managed Pythons. uv has no
per-version command, so for a version no lock uses devkit removes only uv's index entry for it
(while holding uv's cache lock exclusively, as ``uv cache clean`` does) and lets ``uv cache prune``
drop the archive. Never ``--force``: another uv holding the cache is waited for
(``UV_LOCK_TIMEOUT`` seconds, uv's default 300), then gc exits 1 naming it.
Venvs keep working: their files are hard links (or clones) of the archives, not the archives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from devkit import __version__, gcplan, uv, uvcache
from devkit.align import manifest
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import format_bytes

JSON_VERSION = 1
CLEAN_BATCH = 200  # package names per `uv cache clean`
DEFAULT_LOCK_TIMEOUT = 300.0  # seconds: uv's own default for UV_LOCK_TIMEOUT (uv >= 0.9.4)


def lock_timeout(environ: Mapping[str, str]) -> float:
    """Seconds to wait for another uv holding the cache: ``UV_LOCK_TIMEOUT``, else 300.

    Raises DevkitError for a value that is not a number of seconds."""
    text = environ.get("UV_LOCK_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value < 0:
        raise DevkitError(f"UV_LOCK_TIMEOUT={text!r} is not a number of seconds")
    return value


def gc(*, store: Store, dry_run: bool = False, as_json: bool = False) -> int:
    """Collect the store; returns 0. ``dry_run`` lists what would go and changes nothing.

    Raises DevkitError (exit 1, one line, nothing changed) when a registered lock cannot be
    read, the cache layout is unknown, or another process holds uv's cache lock past the wait.
    """
    start = time.perf_counter()
    env = store.subprocess_env()
    timeout = lock_timeout(env)
    uv_version = uv.version()
    cache_dir = store.uv_cache_dir
    if dry_run:
        plan = gcplan.make(store, uv_version=uv_version)
    else:
        with uvcache.exclusive(cache_dir, timeout=timeout):
            plan = gcplan.make(store, uv_version=uv_version)
            uvcache.remove_version_entries(plan.versions)
    outputs: list[str] = []
    if not dry_run:
        for start in range(0, len(plan.names), CLEAN_BATCH):  # bounded command lines
            outputs.append(uv.cache_clean(plan.names[start:start + CLEAN_BATCH], env=env,
                                          cache_dir=cache_dir, timeout=timeout))
        if cache_dir.is_dir():
            outputs.append(uv.cache_prune(env=env, cache_dir=cache_dir, timeout=timeout))
        if plan.pythons:
            outputs.append(uv.python_uninstall([p.key for p in plan.pythons], env=env))
        after = gcplan.make(store, uv_version=uv_version, with_pythons=False)
        manifest.record_gc(store, reclaimable=after.total.freed, linked=after.total.linked,
                           by="gc")
    if as_json:
        doc = {"version": JSON_VERSION, "devkit_version": __version__, "uv_version": uv_version,
               "dry_run": dry_run, "seconds": round(time.perf_counter() - start, 3),
               **plan.to_json()}
        print(json.dumps(doc, indent=2))
    else:
        _print(plan, dry_run=dry_run, outputs=outputs)
    return 0


def _print(plan: gcplan.Plan, *, dry_run: bool, outputs: list[str]) -> None:
    verb = "would remove" if dry_run else "removed"
    if plan.empty:
        print(f"nothing to collect in {plan.cache_dir}: every cached version is used by a "
              "registered lock or a build")
    by_name: dict[str, list[str]] = {}
    for entry in plan.versions:
        by_name.setdefault(entry.name, []).append(entry.version)
    if by_name:
        print(f"{verb} {len(plan.versions)} cached versions no lock uses "
              f"({format_bytes(plan.versions_bytes.total)}):")
        for name, versions in sorted(by_name.items()):
            print(f"  {name} {', '.join(sorted(set(versions)))}")
    if plan.names:
        print(f"{verb} {len(plan.names)} packages no lock uses, every version "
              f"({format_bytes(plan.names_bytes.total)}): {', '.join(plan.names)}")
    if plan.unreferenced_bytes.total:
        print(f"{verb} unpacked wheels nothing in the cache points to "
              f"({format_bytes(plan.unreferenced_bytes.total)})")
    for python in plan.pythons:
        print(f"{verb} uv-managed Python {python.key} (no pin, venv or uv tool uses it)")
    for key, reason in sorted(plan.kept_pythons.items()):
        print(f"kept Python {key}: {reason}")
    linked = (f"; {format_bytes(plan.total.linked)} more stay on disk while venvs link them "
              "(freed when those venvs are re-synced or deleted)") if plan.total.linked else ""
    print(f"{'frees' if dry_run else 'freed'} {format_bytes(plan.total.freed)} on disk{linked}")
    if not dry_run:
        pruned = [ln.strip() for out in outputs for ln in out.splitlines()
                  if ln.strip().startswith("Removed")]
        for line in pruned:
            print(f"  uv: {line}")
