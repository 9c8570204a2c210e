"""``devkit align``: move every project's ``uv.lock`` onto one version per package, with uv itself.

Flow: read the locks (:mod:`devkit.lockfile`, :mod:`devkit.lockinfo`), plan (:mod:`devkit.plan`,
pure), apply each project's pins with ``uv lock -P NAME==VER`` (:mod:`devkit.relock`), verify with
``uv lock --check``, report (:mod:`devkit.align_report`). devkit never edits ``uv.lock``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock

from devkit import lockfile, uv
from devkit import plan as planner
from devkit.align_report import Progress, document, render
from devkit.errors import DevkitError
from devkit.lockinfo import Uploaded, read_project
from devkit.registry import Registry
from devkit.relock import (
    Backups,
    Context,
    Outcome,
    diff,
    run_project,
    shielded,
    terminate_as_interrupt,
)
from devkit.store import Store
from devkit.util import atomic_write_text

MANIFEST_VERSION = 1
MAX_PASSES = 3  # a pin may pull in new packages; re-plan until nothing moves (bounded)
NEW_PROJECT_MAX_UV_RUNS = 8  # `devkit new` must stay quick


def members(paths: Sequence[Path], store: Store) -> list[tuple[Path, str]]:
    """``(absolute path, display name)`` of the projects to align: ``paths`` or every registered one.

    Raises DevkitError when a given path is not a directory or nothing is registered.
    """
    if paths:
        found = []
        for path in paths:
            if not path.is_dir():
                raise DevkitError(f"{path} is not a directory")
            registered = Registry(store).find(path)
            found.append((path.resolve(), registered.name if registered else path.resolve().name))
        return found
    projects = Registry(store).projects()
    if not projects:
        raise DevkitError("no registered projects: create one with `devkit new` or "
                          "register one with `devkit projects add PATH`")
    return [(p.path, p.name) for p in projects]


def _run_pass(todo: list[tuple[Outcome, planner.ProjectPlan]], ctx: Context, jobs: int,
              *, check_first: bool, progress: Callable[[], None]) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_project, o, p, ctx, check_first=check_first) for o, p in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
                progress()
        except BaseException:
            ctx.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def align(
    paths: list[Path],
    *,
    store: Store,
    dry_run: bool = False,
    check: bool = False,
    as_json: bool = False,
    strategy: str = "newest",
    jobs: int = 4,
    sync: bool = False,
) -> int:
    """Align the locks of ``paths`` (default: every registered project); returns the exit code.

    0 when done (or nothing to do); 1 when ``check`` finds that aligning would change a lock, or
    any project failed (unreadable lock, uv error: reported per project, the others go on).
    ``check`` implies ``dry_run``. ``jobs`` projects are locked concurrently. Raises DevkitError
    for what stops the whole run (bad arguments, corrupt registry).
    """
    if jobs < 1:
        raise DevkitError("--jobs must be at least 1")
    if strategy not in planner.STRATEGIES:
        raise DevkitError(f"unknown strategy {strategy!r}: use newest or majority")
    dry_run = dry_run or check
    with _exclusive_run(store, enabled=not dry_run):
        return _align(paths, store=store, dry_run=dry_run, check=check, as_json=as_json,
                      strategy=strategy, jobs=jobs, sync=sync)


@contextlib.contextmanager
def _exclusive_run(store: Store, *, enabled: bool) -> Iterator[None]:
    """One writing ``devkit align`` per store at a time (two would race on backups and locks)."""
    if not enabled:
        yield
        return
    store.home.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(store.align_lock_file), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DevkitError("another `devkit align` is running on this store: wait for it to "
                          "finish, or use --dry-run") from None
    try:
        yield
    finally:
        lock.release()


def _align(paths: list[Path], *, store: Store, dry_run: bool, check: bool, as_json: bool,
           strategy: str, jobs: int, sync: bool) -> int:
    started = time.monotonic()
    backups = Backups(store.align_backup_dir)
    notes = [] if dry_run else backups.recover()
    ctx = Context(store.subprocess_env(), backups, threading.Event(), dry_run=dry_run)
    uploaded: Uploaded = {}
    outcomes, locks, project_locks = _load(members(paths, store), uploaded)
    before = {o.path: locks[o.path] for o in outcomes if o.path in locks}
    known = recall_blocked(store, outcomes)
    the_plan = planner.make_plan([project_locks[p] for p in before], strategy=strategy,
                                 uploaded=uploaded, skip=known)
    first_plan = the_plan
    with terminate_as_interrupt(), Progress(enabled=not as_json) as bar:
        try:
            for pass_no in range(1 if dry_run else MAX_PASSES):
                todo = _todo(outcomes, the_plan, first=pass_no == 0)
                if not todo:
                    break
                bar.start(f"align pass {pass_no + 1}", len(todo))
                _run_pass(todo, ctx, jobs, check_first=pass_no == 0, progress=bar.advance)
                if dry_run:
                    break
                the_plan = _replan(outcomes, project_locks, strategy, uploaded)
        except BaseException:
            with shielded():
                backups.restore_all()
            raise
    backups.discard_all()
    after = _after_locks(outcomes, before, dry_run=dry_run)
    if sync and not dry_run:
        _sync(outcomes, ctx.env)
    doc = document(
        outcomes, first_plan, before=before, after=after, store=store, strategy=strategy,
        dry_run=dry_run, check=check, notes=notes, seconds=time.monotonic() - started)
    if not dry_run:
        doc["_known"] = _known_conflicts(outcomes)
        write_manifest(store, doc)
    render(doc, as_json=as_json)
    failed = any(o.status == "failed" for o in outcomes)
    return 1 if failed or (check and doc["changed"]) else 0


def _load(found: list[tuple[Path, str]], uploaded: Uploaded) -> tuple[
        list[Outcome], dict[Path, lockfile.Lock], dict[Path, planner.ProjectLock]]:
    outcomes, locks, project_locks = [], {}, {}
    for path, name in found:
        outcome = Outcome(path, name)
        outcomes.append(outcome)
        if not path.is_dir():
            outcome.status, outcome.error = "failed", f"{path} no longer exists (devkit projects remove it)"
            continue
        try:
            locks[path], project_locks[path], times = read_project(path, name)
            uploaded.update(times)
        except (lockfile.LockError, OSError, tomllib.TOMLDecodeError) as exc:
            outcome.status, outcome.error = "failed", f"skipped: {exc}"
    return outcomes, locks, project_locks


def _todo(outcomes: list[Outcome], the_plan: planner.Plan, *, first: bool
          ) -> list[tuple[Outcome, planner.ProjectPlan]]:
    todo = []
    for outcome in outcomes:
        if outcome.status == "failed":
            continue
        try:
            project_plan = the_plan.for_project(str(outcome.path))
        except KeyError:
            continue
        if first:
            outcome.blocked.extend(project_plan.blocked)
        if first or project_plan.pins:
            todo.append((outcome, project_plan))
    return todo


def _replan(outcomes: list[Outcome], project_locks: dict[Path, planner.ProjectLock],
            strategy: str, uploaded: Uploaded) -> planner.Plan:
    """Plan again on the new locks; moves that failed before are not retried."""
    skip: set[tuple[str, str, str]] = set()
    for outcome in outcomes:
        skip |= outcome.failed_moves
        if outcome.status == "aligned" and outcome.path in project_locks:
            with contextlib.suppress(lockfile.LockError, OSError):
                _, project_locks[outcome.path], times = read_project(outcome.path, outcome.name)
                uploaded.update(times)
    usable = [project_locks[o.path] for o in outcomes
              if o.status != "failed" and o.path in project_locks]
    return planner.make_plan(usable, strategy=strategy, skip=skip, uploaded=uploaded)


def _after_locks(outcomes: list[Outcome], before: dict[Path, lockfile.Lock], *, dry_run: bool
                 ) -> dict[Path, lockfile.Lock]:
    after = dict(before)
    for outcome in outcomes:
        if outcome.path not in before:
            continue
        if dry_run and outcome.predicted is not None:
            after[outcome.path] = outcome.predicted
        elif not dry_run and outcome.status == "aligned":
            with contextlib.suppress(lockfile.LockError):
                after[outcome.path] = lockfile.read(outcome.path / "uv.lock")
                before_lock = before[outcome.path]
                outcome.changes = diff(before_lock, after[outcome.path])
    return after


def _sync(outcomes: list[Outcome], env: dict[str, str]) -> None:
    for outcome in outcomes:
        if outcome.status != "aligned":
            continue
        try:
            uv.sync(outcome.path, env=env)
            outcome.synced = True
        except DevkitError as exc:
            outcome.synced = False
            outcome.error = str(exc)


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


def _known_conflicts(outcomes: list[Outcome]) -> dict[str, Any]:
    known = {}
    for o in outcomes:
        if o.status == "failed" or not o.failed_moves:
            continue
        known[str(o.path)] = {
            "state": project_state(o.path),
            "moves": sorted([name, version] for _, name, version in o.failed_moves),
            "blocked": [b.to_json() for b in o.blocked if b.kind == "conflict"],
        }
    return known


def recall_blocked(store: Store, outcomes: list[Outcome]) -> set[tuple[str, str, str]]:
    """Moves uv refused in the last run, for projects whose files have not changed since.

    Read from the manifest's ``known_conflicts``; their reasons are added to each outcome's
    ``blocked``. An unreadable or other-version manifest means nothing is known.
    """
    try:
        data = json.loads(store.manifest_file.read_text(encoding="utf-8"))
        known = data["known_conflicts"] if data.get("version") == MANIFEST_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    skip: set[tuple[str, str, str]] = set()
    for outcome in outcomes:
        entry = known.get(str(outcome.path)) if isinstance(known, dict) else None
        if not isinstance(entry, dict) or entry.get("state") != project_state(outcome.path):
            continue
        with contextlib.suppress(TypeError, ValueError):
            moves = {(str(outcome.path), str(n), str(v)) for n, v in entry["moves"]}
            blocked = [planner.Blocked(**b) for b in entry["blocked"]]
            skip |= moves
            outcome.failed_moves |= moves
            outcome.blocked.extend(blocked)
    return skip


def write_manifest(store: Store, doc: dict[str, Any]) -> None:
    """Record the targets of this run in ``store.manifest_file`` (versioned JSON, atomic, locked).

    Shape: ``{"version": 1, "updated": ISO time, "strategy", "projects": [paths],
    "targets": [Target.to_json()], "blocked": [Blocked.to_json()], "known_conflicts": {path:
    {"state": sha256 of pyproject.toml + uv.lock, "moves": [[name, version]], "blocked": [...]}}}``.
    ``known_conflicts`` lets the next run skip moves uv already refused while both files are
    unchanged (:func:`recall_blocked`). Raises DevkitError when the store is not writable.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    manifest = {
        "version": MANIFEST_VERSION,
        "updated": now.replace("+00:00", "Z"),
        "strategy": doc["strategy"],
        "projects": [p["path"] for p in doc["projects"]],
        "targets": doc["targets"],
        "blocked": doc["blocked"],
        "known_conflicts": doc.pop("_known", {}),
    }
    try:
        store.home.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(store.lock_file), timeout=30):
            atomic_write_text(store.manifest_file, json.dumps(manifest, indent=2) + "\n")
    except (OSError, filelock.Timeout) as exc:
        raise DevkitError(f"cannot write the alignment manifest {store.manifest_file}: {exc}") from exc


def align_new_project(path: Path, *, store: Store) -> None:
    """Move a freshly locked project onto versions the other registered projects already lock.

    Called by ``devkit new`` right after its first ``uv lock``, so the first sync downloads
    nothing the cache already holds. For each registry package of the new lock that other
    projects lock (same index) at other versions, the newest of those is pinned with
    ``uv lock -P``; a conflict only means that pin is skipped (uv's resolver has the last word).
    Unreadable locks of other projects are ignored. Raises uv.UvError only on a real uv failure
    (the lock is restored first); never on a conflict.
    """
    target = path.resolve()
    try:
        _, new, uploaded = read_project(target)
    except (lockfile.LockError, OSError):
        return
    others = []
    for project in Registry(store).projects():
        if project.path == target or not project.exists:
            continue
        with contextlib.suppress(lockfile.LockError, OSError, tomllib.TOMLDecodeError):
            _, other, times = read_project(project.path, project.name)
            others.append(other)
            uploaded.update(times)
    if not others:
        return
    project_plan = planner.plan_project(new, _in_use(others, new), uploaded)
    if not project_plan.pins:
        return
    ctx = Context(store.subprocess_env(), Backups(store.align_backup_dir), threading.Event(),
                  max_runs=NEW_PROJECT_MAX_UV_RUNS)
    outcome = Outcome(target, target.name)
    with terminate_as_interrupt():
        try:
            run_project(outcome, project_plan, ctx, check_first=False)
        finally:
            ctx.backups.discard_all()
    if outcome.status == "failed" and outcome.error:
        raise uv.UvError(outcome.error)
    if outcome.changes:
        print(f"Aligned {len(outcome.changes)} package(s) with versions already in the store")


def _in_use(others: list[planner.ProjectLock], new: planner.ProjectLock) -> list[planner.Target]:
    """Targets for the new project: per (index, name), the newest version others lock."""
    targets = planner.choose_targets([*others, new], "newest")
    in_use: dict[tuple[str, str], set[str]] = {}
    for lock in others:
        for index, name, version in {p.key for p in lock.packages}:
            in_use.setdefault((index, name), set()).add(version)
    result = []
    for target in targets:
        versions = in_use.get((target.index, target.name), set())
        ranked = tuple(v for v in target.ranked if v in versions)
        mine = [p.version for p in new.packages if p.name == target.name and p.index == target.index]
        if ranked and mine and mine[0] not in versions:
            # the new project's own version goes last: any version already cached beats it
            result.append(dataclasses.replace(target, version=ranked[0],
                                              ranked=(*ranked, mine[0])))
    return result

