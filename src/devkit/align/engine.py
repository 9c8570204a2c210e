"""The align engine: read every lock, plan, relock each project with uv, gather the figures.

Flow: read the locks (:mod:`devkit.align.lockfile`), plan (:mod:`devkit.align.planner`, pure),
apply each project's pins with ``uv lock -P`` (:mod:`devkit.align.relock`) while scoring every
candidate lock against the whole store (:mod:`devkit.align.scoring`), verify with
``uv lock --check``, remember what uv refused (:mod:`devkit.align.manifest`), then check which
venvs no longer match their lock. The result is rendered by :mod:`devkit.align.report`.
devkit never edits ``uv.lock``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import filelock

from devkit import usage, uv, verified, workspace_code
from devkit.align import lockfile, manifest, planner, testgate
from devkit.align.backups import Backups
from devkit.align.progress import Progress
from devkit.align.relock import (
    DERIVED,
    Context,
    Outcome,
    not_tried,
    run_project,
)
from devkit.align.scoring import StoreState
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store
from devkit.util import shielded, terminate_as_interrupt

MAX_PASSES = 3  # a pin may pull in new packages; re-plan until nothing moves (bounded)
NEW_PROJECT_MAX_UV_RUNS = 8  # `devkit new` must stay quick
ALIGN_RUN_WAIT = 0.0  # seconds a writing run waits for another one: none, it refuses at once


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """Bytes on disk of one ``(index, name, version)``'s unzipped wheels in uv's cache."""

    index: str
    name: str
    version: str
    bytes: int

    def to_json(self) -> dict[str, object]:
        """``{"index", "name", "version", "bytes"}``."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VenvState:
    """Does a project's ``.venv`` match its ``uv.lock`` (``uv sync --check``)?"""

    path: Path
    name: str
    current: bool
    changes: list[str] = dataclasses.field(default_factory=list)
    synced: bool | None = None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """``{"path", "name", "changes", "synced", "error"}``."""
        return {"path": str(self.path), "name": self.name, "changes": self.changes,
                "synced": self.synced, "error": self.error}


@dataclasses.dataclass
class Result:
    """Everything the report shows about one run."""

    strategy: planner.Strategy
    allow_downgrade: planner.DowngradePolicy
    dry_run: bool
    check: bool
    outcomes: list[Outcome]
    plan: planner.Plan
    before: dict[Path, lockfile.Lock]
    after: dict[Path, lockfile.Lock]
    unreferenced: list[CacheEntry]
    venvs: list[VenvState]
    notes: list[str]
    seconds: float
    floor: int = 0  # excess pairs the projects' own requirements and forks keep (planner)
    test: bool = False  # --test: changed projects were gated by their tests

    @property
    def test_seconds(self) -> float:
        """Wall time of every project's test gate (``--test``), in seconds."""
        return sum(o.test_seconds for o in self.outcomes)

    @property
    def sync_command(self) -> str:
        """``devkit sync PATH...`` for the venvs still out of date, or ``""``."""
        stale = [v for v in self.venvs if not v.current]
        return " ".join(["devkit", "sync", *(shlex.quote(str(v.path)) for v in stale)]) \
            if stale else ""

    @property
    def failed(self) -> bool:
        """Some project could not be aligned (or its venv not synced)."""
        return any(o.status == "failed" for o in self.outcomes) or any(
            v.synced is False for v in self.venvs)

    @property
    def changed(self) -> bool:
        """Some lock changed (or, in a dry run, would)."""
        return any((o.changes or o.stale) and o.status != "failed" for o in self.outcomes)


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


def _with_only(paths: Sequence[Path], only: Sequence[Path], store: Store
               ) -> list[tuple[Path, str]]:
    """:func:`members` plus the ``only`` projects; with ``only`` and no ``paths``, every
    registered project (none is fine). Raises DevkitError when an ``only`` path is not a directory.
    """
    if not only:
        return members(paths, store)
    found = members(paths, store) if paths else [
        (p.path, p.name) for p in Registry(store).projects()]
    known = {path for path, _ in found}
    for path, name in members(only, store):
        if path not in known:
            found.append((path, name))
    return found


@contextlib.contextmanager
def exclusive_run(store: Store, *, enabled: bool, busy: str | None = None) -> Iterator[None]:
    """One writing ``devkit align`` per store at a time (two would race on backups and locks).

    Raises DevkitError (``busy``, else a hint for a run) when another one holds
    ``Store.mutex("align")``.
    """
    if not enabled:
        yield
        return
    mutex = store.mutex("align", timeout=ALIGN_RUN_WAIT)
    try:
        mutex.acquire()
    except filelock.Timeout:
        raise DevkitError(busy or "another `devkit align` is running on this store: wait for "
                                  "it to finish, or use --dry-run") from None
    try:
        yield
    finally:
        mutex.release()


@contextlib.contextmanager
def _hold_workspaces(paths: Sequence[Path], store: Store, *, enabled: bool) -> Iterator[None]:
    """Hold the workspace mutex of every project a writing run aligns (in path order, so two
    holders of several never deadlock), for the whole run: an ``update``, ``sync``, ``adopt`` or
    ``doctor --fix`` of one of them waits until its new lock and venv are complete. Raises
    DevkitError when one stays busy (:meth:`devkit.store.Store.workspace_mutex`)."""
    with contextlib.ExitStack() as stack:
        if enabled:
            for path in sorted({p for p, _ in members(paths, store)}):
                stack.enter_context(store.workspace_mutex(path, command="devkit align"))
        yield


def run(
    paths: Sequence[Path],
    *,
    store: Store,
    dry_run: bool = False,
    check: bool = False,
    strategy: planner.Strategy = "newest",
    allow_downgrade: planner.DowngradePolicy = "none",
    jobs: int = 4,
    sync: bool = False,
    show_progress: bool = False,
    only: Sequence[Path] = (),
    test: bool = False,
    test_command: str | None = None,
) -> Result:
    """Align the locks of ``paths`` (default: every registered project) and return the result.

    ``only``: plan with every registered project (and ``paths``) but move, check and report
    only these projects: ``--check --only PATH`` fails when PATH would change to reach the
    store's targets, whatever the other projects would do.

    ``check`` implies ``dry_run`` (nothing is written: no lock, no manifest, no sync). ``jobs``
    projects are locked concurrently. ``sync`` runs ``uv sync --locked`` in every workspace whose
    ``.venv`` no longer matches its lock. ``test`` (implied by ``test_command``, a command line
    split with :func:`shlex.split`) gates every changed lock by the project's tests
    (:mod:`devkit.align.testgate`). Per-project failures (unreadable lock, uv error) are
    recorded in the result, the other projects go on. Raises DevkitError for what stops the whole
    run (bad arguments, ``test`` with ``dry_run``/``check``, corrupt registry, another writing
    run); KeyboardInterrupt after every touched lock was restored.
    """
    test = test or test_command is not None
    if test and (dry_run or check):
        raise DevkitError("--test runs the tests of the projects it changes: it cannot be "
                          "combined with --dry-run or --check")
    override = testgate.parse_command(test_command) if test_command is not None else None
    if jobs < 1:
        raise DevkitError("--jobs must be at least 1")
    if strategy not in planner.STRATEGIES:
        raise DevkitError(f"unknown strategy {strategy!r}: use newest or majority")
    if allow_downgrade not in planner.DOWNGRADE_POLICIES:
        raise DevkitError(f"unknown downgrade policy {allow_downgrade!r}: use patch, minor or major")
    dry_run = dry_run or check
    with exclusive_run(store, enabled=not dry_run), \
            _hold_workspaces(paths, store, enabled=not dry_run):
        return _run(paths, store=store, dry_run=dry_run, check=check, strategy=strategy,
                    allow_downgrade=allow_downgrade, jobs=jobs, sync=sync and not dry_run,
                    show_progress=show_progress, only=only, test=test, override=override)


def _run(paths: Sequence[Path], *, store: Store, dry_run: bool, check: bool,
         strategy: planner.Strategy, allow_downgrade: planner.DowngradePolicy, jobs: int,
         sync: bool, show_progress: bool, only: Sequence[Path] = (), test: bool = False,
         override: tuple[str, ...] | None = None) -> Result:
    started = time.monotonic()
    backups = Backups(store.align_backup_dir)
    notes = [] if dry_run else backups.recover()
    outcomes, before, project_locks = _load(_with_only(paths, only, store), read_only=dry_run,
                                            store=store)
    if only:  # planned with everyone, moved and reported alone
        chosen = {p.resolve() for p in only}
        outcomes = [o for o in outcomes if o.path in chosen]
    others = _other_locks(store, set(before))
    state = StoreState([*before.values(), *others])
    env = store.subprocess_env()
    ctx = Context(env, backups, threading.Event(), state, dry_run=dry_run,
                  allow_downgrade=allow_downgrade, verified=verified.for_uv(store, env))
    known = manifest.recall(store, list(before))
    test_holds = manifest.recall_test_holds(store, [o.path for o in outcomes])
    skip: set[tuple[str, str, str]] = set()
    for outcome in outcomes:
        held = test_holds.get(outcome.path)
        if held:  # the tests refused these moves: not retried until the requirements change
            outcome.held_moves = {(str(outcome.path), n, v) for n, v in held.moves}
            skip |= outcome.held_moves
            outcome.blocked.extend(held.blocked)
        entry = known.get(outcome.path)
        if entry and entry.error and outcome.path in project_locks:
            outcome.status, outcome.error, outcome.lasting = "failed", entry.error, True
            del project_locks[outcome.path]
        elif entry:
            moves = {(str(outcome.path), n, v) for n, v in entry.moves}
            skip |= moves
            outcome.failed_moves |= moves
            outcome.blocked.extend(entry.blocked)
    first_plan = planner.make_plan(list(project_locks.values()), strategy=strategy, skip=skip,
                                   allow_downgrade=allow_downgrade)
    with terminate_as_interrupt(), Progress(enabled=show_progress) as bar:
        try:
            _passes(outcomes, project_locks, first_plan, ctx, jobs, bar, before, others,
                    strategy=strategy, allow_downgrade=allow_downgrade)
            if test:
                _gate(outcomes, store, backups, override, bar, test_holds)
        except BaseException:
            with shielded():
                backups.restore_all()
            raise
    backups.discard_all()
    for outcome in outcomes:
        # one entry per package: a later pass (or target) replaces an earlier one
        outcome.blocked = list({b.name: b for b in outcome.blocked}.values())
    after = dict(before)
    for outcome in outcomes:
        if outcome.path in before and outcome.after is not None and outcome.status != "failed":
            after[outcome.path] = outcome.after
    venvs = _venvs([o for o in outcomes if o.path in before], ctx.env, sync=sync,
                   memo=ctx.verified, store=store)
    if ctx.verified is not None:
        ctx.verified.save()  # once per run; a run that failed half-way saves nothing (a cache)
    if not dry_run:
        manifest.write(store, strategy=strategy, projects=[o.path for o in outcomes],
                       targets=first_plan.targets,
                       blocked=[b for o in outcomes for b in o.blocked],
                       known=_known_conflicts(outcomes), test_holds=test_holds)
    if dry_run:
        note = dry_run_note(outcomes)
        if note:
            notes.append(note)
    floor = planner.excess_floor([planner.ProjectLock.from_lock(lock, str(path))
                                  for path, lock in before.items()], allow_downgrade)
    return Result(strategy, allow_downgrade, dry_run, check, outcomes, first_plan, before, after,
                  unreferenced(before, after, store), venvs, notes,
                  time.monotonic() - started, floor, test)


def dry_run_note(outcomes: Sequence[Outcome]) -> str:
    """One line naming the projects whose dry-run plan may differ from the real run, and why
    (:attr:`devkit.align.relock.Outcome.uncertain`), or ``""`` when it plans exactly."""
    unsure = [o for o in outcomes if o.uncertain]
    if not unsure:
        return ""
    listed = "; ".join(f"{o.name} ({', '.join(sorted(o.uncertain))})"
                       for o in unsure[:NOTE_PROJECTS])
    more = f"; and {len(unsure) - NOTE_PROJECTS} more" if len(unsure) > NOTE_PROJECTS else ""
    return f"dry run: the real run may differ for {len(unsure)} project(s): {listed}{more}"


#: Projects a dry run's note names one by one; the others are counted.
NOTE_PROJECTS = 10


def _gate(outcomes: list[Outcome], store: Store, backups: Backups,
          override: tuple[str, ...] | None, bar: Progress,
          test_holds: dict[Path, manifest.TestHolds]) -> None:
    """``--test``: gate every changed project by its tests; new holds join ``test_holds``."""
    def base(outcome: Outcome) -> bytes | None:
        # a stale lock is compared from its plain re-lock: that one is uv's, not align's doing
        if outcome.relocked_bytes is not None:
            return outcome.relocked_bytes
        return backups.original(outcome.path / "uv.lock")

    gated = [o for o in outcomes if o.status == "aligned"]
    bar.start("tests", len(gated))
    found = testgate.gate_all(gated, base, store, override, progress=bar.advance)
    for path, blocked in found.items():
        if not blocked:
            continue
        outcome = next(o for o in outcomes if o.path == path)
        outcome.blocked.extend(blocked)
        held = test_holds.get(path)
        test_holds[path] = manifest.TestHolds(
            path, manifest.requirements_state(path), (*(held.blocked if held else ()), *blocked))


def _passes(outcomes: list[Outcome], project_locks: dict[Path, planner.ProjectLock],
            the_plan: planner.Plan, ctx: Context, jobs: int, bar: Progress,
            before: dict[Path, lockfile.Lock], others: list[lockfile.Lock], *,
            strategy: planner.Strategy, allow_downgrade: planner.DowngradePolicy) -> None:
    """Upward passes until nothing moves; then, when allowed, passes down to the anchors.

    Each pass scores against the store as it stands when the pass begins. A dry run makes the
    same passes; a project it moves in a later pass while an earlier prediction was uncertain
    is uncertain too (:data:`devkit.align.relock.DERIVED`): the plan it followed may differ.
    """
    def snapshot() -> StoreState:
        current = {**before, **{o.path: o.after for o in outcomes
                                if o.after is not None and o.status != "failed"}}
        return StoreState([*current.values(), *others])

    def run_pass(todo: list[tuple[Outcome, planner.ProjectPlan]], label: str, first: bool) -> None:
        unsure = {o.path for o in outcomes if o.uncertain} if ctx.dry_run else set()
        started = {o.path: o.after for o, _ in todo}
        bar.start(label, len(todo))
        _run_pass(todo, ctx, jobs, check_first=first, progress=bar.advance)
        for outcome, _ in todo:
            if (unsure - {outcome.path} and outcome.after is not started[outcome.path]
                    and outcome.changes):
                outcome.uncertain.add(DERIVED)

    for pass_no in range(MAX_PASSES):
        todo = _todo(outcomes, the_plan, first=pass_no == 0)
        if not todo:
            break
        if pass_no:
            ctx.state = snapshot()
        run_pass(todo, f"align pass {pass_no + 1}", pass_no == 0)
        the_plan = _replan(outcomes, project_locks, strategy, allow_downgrade, downward=False)
    if allow_downgrade == "none":
        return
    for pass_no in range(MAX_PASSES):
        the_plan = _replan(outcomes, project_locks, strategy, allow_downgrade, downward=True)
        todo = _todo(outcomes, the_plan, first=False)
        if not todo:
            break
        ctx.state = snapshot()
        run_pass(todo, f"align pass {pass_no + 1} (down)", False)


def _load(found: list[tuple[Path, str]], *, read_only: bool, store: Store) -> tuple[
        list[Outcome], dict[Path, lockfile.Lock], dict[Path, planner.ProjectLock]]:
    """Read every project's lock. A private workspace (``devkit adopt --private``) the user did
    not opt in (``devkit projects set PATH --align``) is ``skipped``: its lock is the
    repository's. Its lock still counts among the store's (:func:`_other_locks`). ``read_only`` (``--dry-run``, ``--check``): a project where uv
    would run the project's own code (a build backend for dynamic metadata, an interpreter path in
    ``.python-version``) is not checked, since the user asked for no lock to be written.
    """
    outcomes, locks, project_locks = [], {}, {}
    private = {p.path for p in Registry(store).projects() if not p.aligned}
    for path, name in found:
        outcome = Outcome(path, name)
        outcomes.append(outcome)
        if not path.is_dir():
            outcome.status = "failed"
            outcome.error = f"{path} no longer exists (devkit projects remove it)"
            continue
        if path in private:
            # a repository the user does not own: its uv.lock is tracked there, not ours
            outcome.status = "skipped"
            outcome.error = (f"skipped: private workspace (its uv.lock belongs to the repository): "
                             f"opt in with `devkit projects set {shlex.quote(str(path))} --align`")
            continue
        if not (path / "uv.lock").exists() and not (path / "uv.lock").is_symlink():
            # nothing to align yet: skipped, not failed (exit 0 when nothing else fails)
            outcome.status = "skipped"
            outcome.error = (f"skipped: no uv.lock yet (create it with `uv lock --project "
                             f"{shlex.quote(str(path))}`)")
            continue
        try:
            digest, locks[path] = lockfile.read_digest(path / "uv.lock")
        except lockfile.LockError as exc:
            outcome.status, outcome.error = "failed", f"skipped: {exc}"
            continue
        outcome.loaded = (digest, locks[path])  # run_project does not parse it again unchanged
        sources = [(path / rel).resolve() for rel in locks[path].local_sources]
        blocker = workspace_code.uv_blocker(path, workspace_code.pinned_request(path), sources,
                                            store=store) if read_only else None
        if blocker:
            outcome.status = "failed"
            outcome.error = (f"skipped: cannot check without building or running the project's "
                             f"code ({blocker}); `devkit align {shlex.quote(str(path))}` locks it")
            del locks[path]
            continue
        project_locks[path] = planner.ProjectLock.from_lock(locks[path], str(path), name)
    return outcomes, locks, project_locks


def _other_locks(store: Store, taking_part: set[Path]) -> list[lockfile.Lock]:
    """Locks of registered projects not taking part: their keys stay in the store."""
    found = []
    with contextlib.suppress(DevkitError):
        for project in Registry(store).projects():
            if project.path not in taking_part and project.exists:
                with contextlib.suppress(lockfile.LockError):
                    found.append(lockfile.read(project.path / "uv.lock"))
    return found


def _run_pass(todo: list[tuple[Outcome, planner.ProjectPlan]], ctx: Context, jobs: int,
              *, check_first: bool, progress: Callable[[], None]) -> None:
    # heaviest projects first: the bytes their pins may free
    todo = sorted(todo, key=lambda item: -sum(p.bytes for p in item[1].pins))
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


def _todo(outcomes: list[Outcome], the_plan: planner.Plan, *, first: bool
          ) -> list[tuple[Outcome, planner.ProjectPlan]]:
    todo = []
    for outcome in outcomes:
        if outcome.status in ("failed", "skipped"):
            continue
        try:
            project_plan = the_plan.for_project(str(outcome.path))
        except KeyError:
            continue
        # every pass: a re-lock or a move may fork a package or meet a requirement
        outcome.blocked.extend(project_plan.blocked)
        if first or project_plan.pins:
            todo.append((outcome, project_plan))
    return todo


def _replan(outcomes: list[Outcome], project_locks: dict[Path, planner.ProjectLock],
            strategy: planner.Strategy, allow_downgrade: planner.DowngradePolicy,
            downward: bool) -> planner.Plan:
    """Plan again on the new locks; moves that failed before are not retried.

    ``downward``: aim every group at its anchor (the newest version a blocked project holds),
    so the others may move down to it as far as ``allow_downgrade`` allows.
    """
    skip: set[tuple[str, str, str]] = set()
    for outcome in outcomes:
        skip |= outcome.failed_moves | outcome.held_moves
        if outcome.after is not None and outcome.path in project_locks:
            project_locks[outcome.path] = planner.ProjectLock.from_lock(
                outcome.after, str(outcome.path), outcome.name)
    usable = [project_locks[o.path] for o in outcomes
              if o.status != "failed" and o.path in project_locks]
    anchor = None
    if downward:
        anchor = planner.anchors(usable, {(b.project, b.name) for o in outcomes
                                          for b in o.blocked})
    return planner.make_plan(usable, strategy=strategy, skip=skip,
                             allow_downgrade=allow_downgrade if downward else "none",
                             anchor=anchor)


def _venvs(outcomes: list[Outcome], env: dict[str, str], *, sync: bool,
           memo: verified.Verified | None = None, store: Store) -> list[VenvState]:
    """``uv sync --check`` for every project with a ``.venv``; with ``sync``, sync stale ones.

    With ``memo``, a venv byte-identical to when uv last said "current" is not checked again.
    A ``.venv`` devkit did not create is neither checked nor synced (uv would run its
    interpreter: :func:`devkit.workspace_code.foreign_venv`); ``devkit sync`` replaces it.
    """
    states = []
    for outcome in outcomes:
        if not (outcome.path / ".venv").is_dir() or not (outcome.path / "uv.lock").is_file():
            continue
        foreign = workspace_code.foreign_venv(outcome.path, store)
        if foreign:
            states.append(VenvState(outcome.path, outcome.name, False, [],
                                    error=f"not checked: {foreign.reason}"))
            continue
        try:
            current, changes = verified.sync_check(outcome.path, env=env, memo=memo)
            state = VenvState(outcome.path, outcome.name, current, changes)
        except DevkitError as exc:
            state = VenvState(outcome.path, outcome.name, False, [], error=str(exc))
        if sync and not state.current:
            try:
                uv.sync(outcome.path, env=env)
                workspace_code.record_venv(outcome.path, store)
                state.synced, state.current = True, True
                outcome.synced = True
            except DevkitError as exc:
                state.synced, state.error = False, str(exc)
                outcome.synced = False
        states.append(state)
    return states


def _known_conflicts(outcomes: list[Outcome]) -> list[manifest.KnownConflicts]:
    known = []
    for o in outcomes:
        if o.status == "failed" and o.lasting and o.error:
            known.append(manifest.KnownConflicts(o.path, manifest.project_state(o.path),
                                                 frozenset(), (), o.error))
            continue
        if o.status == "failed" or not o.failed_moves:
            continue
        known.append(manifest.KnownConflicts(
            o.path, manifest.project_state(o.path),
            frozenset((name, version) for _, name, version in o.failed_moves),
            tuple(b for b in o.blocked if b.kind in ("conflict", "score", "downgrade", "fork")
                  and not not_tried(b.reason))))
    return known


def cache_entries(cache: Path, key: lockfile.Key) -> list[Path]:
    """Unzipped wheel trees in uv's cache for ``(index, name, version)``.

    Layout seen on uv 0.13.9: ``wheels-v*/pypi/<name>/<version>-<tag>`` (PyPI) or
    ``wheels-v*/index/<hash>/<name>/<version>-<tag>`` (other indexes), a symlink to
    ``archive-v0/<id>`` (uv docs, concepts/cache#cache-directory). The index hash is uv's own,
    so for non-PyPI indexes every index bucket is searched.
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
                 store: Store) -> list[CacheEntry]:
    """Cache entries locked before but by no lock after (other registered projects included).

    Bytes are bytes on disk of the unzipped wheel (each inode once, :mod:`devkit.usage`); a
    venv hard-linked to it keeps those blocks alive until it is re-synced.
    """
    kept = {p.key for lock in after.values() for p in lock.packages}
    for lock in _other_locks(store, set(after)):
        kept |= lock.keys()
    gone = {p.key for lock in before.values() for p in lock.packages} - kept
    return [CacheEntry(*key, sum(usage.scan(entry).bytes
                                 for entry in cache_entries(store.uv_cache_dir, key)))
            for key in sorted(gone)]


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
        lock = lockfile.read(target / "uv.lock")
    except lockfile.LockError:
        return
    new = planner.ProjectLock.from_lock(lock, str(target), target.name)
    other_locks = _other_locks(store, {target})
    others = [planner.ProjectLock.from_lock(o, str(o.path.parent), o.path.parent.name)
              for o in other_locks]
    if not others:
        return
    # a fresh lock has no history: moving it down to a version the store holds is the point
    project_plan = planner.plan_project(new, _in_use(others, new), None, "major")
    if not project_plan.pins:
        return
    state = StoreState([lock, *other_locks])
    ctx = Context(store.subprocess_env(), Backups(store.align_backup_dir), threading.Event(),
                  state, max_runs=NEW_PROJECT_MAX_UV_RUNS, allow_downgrade="major",
                  release_parents=False)
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
