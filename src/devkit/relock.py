"""Applying alignment pins to one project with ``uv lock -P NAME==VER``, safely.

``-P NAME==VER`` is a hard pin for that run; on a conflict uv exits 1 and leaves ``uv.lock``
byte-identical (uv docs, concepts/projects/sync, and ../shared/notes/uv.md §6). ``uv.lock`` is
never edited by devkit: uv writes it (atomically: a temp file renamed over it, seen with strace on
uv 0.13.9); devkit only restores its own byte-for-byte backups, on any error or interruption.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from devkit import lockfile, uv
from devkit import plan as planner
from devkit.errors import DevkitError
from devkit.util import atomic_write_bytes, atomic_write_text

MAX_UV_RUNS = 40  # per project and pass: bounds the bisection on pathological conflict sets
CONFLICT = "No solution found when resolving dependencies"
STALE = "needs to be updated"
_CHANGE_LINE = re.compile(r"^(Update|Add|Remove)d? (\S+) (v\S+(?:, v\S+)*)(?: -> (v\S+(?:, v\S+)*))?$")


class Cancelled(Exception):
    """The run was interrupted (Ctrl-C, SIGTERM): stop before the next uv call."""


def conflict_reason(output: str, project: str) -> str:
    """uv's explanation of a failed resolution in one line, "your project" named.

    Takes the ``Because …`` sentence(s) uv prints after ``No solution found`` (its text on
    uv 0.13: ``cause: Because your project depends on rich>=13,<14 and rich==14.0.0, …``) and
    adds the exclude-newer hint when uv gives one (../shared/notes/uv.md §6).
    """
    lines = [ln.strip() for ln in output.splitlines()]
    text: list[str] = []
    for line in lines:
        bare = line.removeprefix("╰─▶").removeprefix("cause:").strip()
        if text and (not line or line.startswith(("hint:", "help:", "error:"))):
            break
        if text or bare.startswith("Because"):
            text.append(bare)
    reason = " ".join(text) or uv.explain(output)
    if any(ln.startswith("hint:") and "exclude-newer" in ln for ln in lines):
        reason += " (filtered by exclude-newer)"
    return re.sub(r"\s+", " ", reason.replace("your project", f"project {project}")).strip()


def _mentions(output: str, spec: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(spec)}(?![\w.])", output) is not None


# -- backups ------------------------------------------------------------------------------------
class Backups:
    """Byte-for-byte copies of every ``uv.lock`` touched in this run, in memory and on disk.

    The disk copy (under ``$DEVKIT_HOME/align-backups``) survives a SIGKILL of devkit; the next
    run finds it (:meth:`recover`). Thread-safe.
    """

    def __init__(self, directory: Path) -> None:
        """Keep disk copies in ``directory`` (created on first save)."""
        self.directory = directory
        self._saved: dict[Path, bytes] = {}
        self._guard = threading.Lock()

    def _file(self, lock_path: Path) -> Path:
        digest = hashlib.sha256(str(lock_path).encode()).hexdigest()[:16]
        return self.directory / f"{digest}.json"

    def save(self, lock_path: Path, data: bytes) -> None:
        """Remember ``data`` as the original of ``lock_path`` (first save wins). Raises OSError."""
        with self._guard:
            if lock_path in self._saved:
                return
            doc = {"path": str(lock_path), "lock": data.decode("utf-8")}
            atomic_write_text(self._file(lock_path), json.dumps(doc))
            self._saved[lock_path] = data

    def restore_all(self) -> list[Path]:
        """Write every original back (atomically) and forget it; returns the paths restored."""
        with self._guard:
            restored = []
            for lock_path, data in self._saved.items():
                with contextlib.suppress(OSError):
                    if lock_path.read_bytes() == data:
                        continue
                atomic_write_bytes(lock_path, data)
                restored.append(lock_path)
            self._drop()
            return restored

    def discard_all(self) -> None:
        """The run finished: forget every original and delete the disk copies."""
        with self._guard:
            self._drop()

    def _drop(self) -> None:
        for lock_path in self._saved:
            with contextlib.suppress(OSError):
                self._file(lock_path).unlink()
        self._saved.clear()

    def recover(self) -> list[str]:
        """Handle copies left by a killed run; returns one message per copy.

        uv writes ``uv.lock`` atomically, so the lock left behind is old or new, never torn: a
        readable one is kept; an unreadable one is replaced by the copy.
        """
        notes = []
        for file in sorted(self.directory.glob("*.json")):
            try:
                doc = json.loads(file.read_text(encoding="utf-8"))
                lock_path = Path(doc["path"])
                try:
                    lockfile.read(lock_path)
                    notes.append(f"{lock_path}: an earlier align was interrupted; the lock is valid, kept")
                except lockfile.LockError:
                    atomic_write_text(lock_path, doc["lock"])
                    notes.append(f"{lock_path}: restored from an interrupted align's backup")
                file.unlink()
            except (OSError, ValueError, KeyError, TypeError) as exc:
                notes.append(f"{file}: unreadable align backup ({exc}); left in place")
        return notes


# -- results ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Change:
    """One package of one project whose locked versions changed (several when it forks)."""

    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """``{"name", "before": [...], "after": [...]}``; an empty list = not in the lock."""
        return {"name": self.name, "before": list(self.before), "after": list(self.after)}


@dataclasses.dataclass
class Outcome:
    """What happened to one project (mutable while its worker runs)."""

    path: Path
    name: str
    status: str = "unchanged"  # unchanged | aligned | failed
    stale: bool = False
    changes: list[Change] = dataclasses.field(default_factory=list)
    blocked: list[planner.Blocked] = dataclasses.field(default_factory=list)
    error: str | None = None
    uv_runs: int = 0
    seconds: float = 0.0
    synced: bool | None = None
    failed_moves: set[tuple[str, str, str]] = dataclasses.field(default_factory=set)
    predicted: lockfile.Lock | None = None  # dry runs: the lock uv said it would write

    def to_json(self) -> dict[str, object]:
        """Shape of one ``projects[]`` entry of ``devkit align --json``."""
        return {"path": str(self.path), "name": self.name, "status": self.status,
                "stale": self.stale, "changes": [c.to_json() for c in self.changes],
                "blocked": [b.to_json() for b in self.blocked], "error": self.error,
                "uv_runs": self.uv_runs, "seconds": round(self.seconds, 3), "synced": self.synced}


def diff(before: lockfile.Lock, after: lockfile.Lock) -> list[Change]:
    """Registry packages whose set of locked versions differs between two locks, by name."""
    names = sorted(before.names() | after.names())
    order = lockfile.version_key
    return [Change(n, tuple(sorted(before.versions(n), key=order)),
                   tuple(sorted(after.versions(n), key=order)))
            for n in names if before.versions(n) != after.versions(n)]


def predict(before: lockfile.Lock, output: str) -> lockfile.Lock:
    """The lock a ``uv lock --dry-run`` would write, from its ``Update/Add/Remove`` lines.

    A package keeps its index; an added one takes the lock's most common index.
    """
    packages: dict[str, list[lockfile.LockedPackage]] = {}
    for p in before.packages:
        packages.setdefault(p.name, []).append(p)
    indexes = [p.index for p in before.packages]
    default = max(set(indexes), key=indexes.count) if indexes else ""
    for line in output.splitlines():
        match = _CHANGE_LINE.match(line.strip())
        if not match:
            continue
        verb, name, old, new = match.groups()
        name = lockfile.normalize(name)
        index = packages[name][0].index if packages.get(name) else default
        versions = (new if verb == "Update" else old if verb == "Add" else "") or ""
        packages[name] = [lockfile.LockedPackage(index, name, v.strip().removeprefix("v"))
                          for v in versions.split(",") if v.strip()]
    flat = tuple(sorted(p for ps in packages.values() for p in ps))
    return dataclasses.replace(before, packages=flat)


# -- applying ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Context:
    """What every project worker shares: uv's environment and the run's switches."""

    env: dict[str, str]
    backups: Backups
    cancel: threading.Event
    dry_run: bool = False
    max_runs: int = MAX_UV_RUNS


class Worker:
    """Applies one :class:`~devkit.plan.ProjectPlan` to one project with ``uv lock -P``."""

    def __init__(self, outcome: Outcome, ctx: Context) -> None:
        """Work on ``outcome.path``; results are written into ``outcome``."""
        self.outcome = outcome
        self.ctx = ctx
        self.lock_path = outcome.path / "uv.lock"
        self.accepted: dict[str, str] = {}
        self.holds: dict[str, str] = {}
        self.last_ok = ""
        self.last_error = ""
        self.runs = 0

    def _uv_lock(self, specs: Sequence[str]) -> bool:
        """One ``uv lock`` with ``specs`` on top of the accepted pins: True, or False on a conflict."""
        if self.ctx.cancel.is_set():
            raise Cancelled
        if self.runs >= self.ctx.max_runs:
            raise _Exhausted
        self.runs += 1
        self.outcome.uv_runs += 1
        moving = {spec.partition("==")[0] for spec in specs} | set(self.accepted)
        holds = [f"{n}=={v}" for n, v in self.holds.items() if n not in moving]
        pins = holds + [f"{n}=={v}" for n, v in self.accepted.items()] + list(specs)
        try:
            self.last_ok = uv.lock(self.outcome.path, env=self.ctx.env, upgrade_packages=pins,
                                   dry_run=self.ctx.dry_run)
            return True
        except uv.UvError as exc:
            if CONFLICT in exc.output:
                self.last_error = exc.output
                return False
            raise

    def _settle(self, moves: list[tuple[planner.Pin, int]]) -> list[tuple[planner.Pin, int, str]]:
        """Accept the largest workable part of ``moves``; return the blocked ones with reasons.

        The blocker is the single pin uv's explanation names (``… and tinyshared==2.0, we can
        conclude …``); otherwise the set is bisected.
        """
        try:
            if self._uv_lock([p.spec(s) for p, s in moves]):
                self.accepted.update({p.name: p.candidates[s] for p, s in moves})
                return []
        except _Exhausted:
            return [(p, s, f"not tried: more than {self.ctx.max_runs} uv runs") for p, s in moves]
        output = self.last_error
        reason = conflict_reason(output, self.outcome.name)
        held = [f"{n}=={v}" for n, v in self.holds.items() if _mentions(output, f"{n}=={v}")]
        if held:
            # uv words our holds as the project's own requirements: say they are not
            reason += f" [held at the current version by align: {', '.join(held[:3])}]"
        if len(moves) == 1:
            return [(moves[0][0], moves[0][1], reason)]
        named = [m for m in moves if _mentions(output, m[0].spec(m[1]))]
        if len(named) == 1:
            rest = [m for m in moves if m is not named[0]]
            return [(*named[0], reason), *self._settle(rest)]
        if 1 < len(named) < len(moves):
            # the pins uv names are the suspects: settle the others first, then bisect those
            rest = [m for m in moves if m not in named]
            return self._settle(rest) + self._settle(named)
        half = len(moves) // 2
        return self._settle(moves[:half]) + self._settle(moves[half:])

    def apply(self, project_plan: planner.ProjectPlan, *, stale: bool) -> None:
        """Try every pin, falling back to next-best candidates; record blocked pins.

        Raises uv.UvError on a non-conflict uv failure, Cancelled when the run is interrupted.
        """
        moves = [(p, 0) for p in project_plan.pins]
        first_reason: dict[str, str] = {}
        while moves:
            failed = self._settle(moves)
            for pin, step, reason in failed:
                first_reason.setdefault(pin.name, reason)
                self.outcome.failed_moves.add((str(self.outcome.path), pin.name, pin.candidates[step]))
            moves = [(p, s + 1) for p, s, _ in failed if s + 1 < len(p.candidates)]
        if stale and not self.last_ok and not self._uv_lock([]):
            # a plain `uv lock` is what `uv lock --check` asks for; here even that cannot resolve
            raise DevkitError(f"uv lock fails in {self.outcome.path}: "
                              f"{conflict_reason(self.last_error, self.outcome.name)}")
        for pin in project_plan.pins:
            if self.accepted.get(pin.name) != pin.target and pin.name in first_reason:
                self.outcome.blocked.append(planner.Blocked(
                    self.outcome.name, pin.index, pin.name, pin.current, pin.target,
                    first_reason[pin.name], "conflict"))


class _Exhausted(Exception):
    """The per-project budget of uv runs is spent."""


def holds(lock: lockfile.Lock) -> dict[str, str]:
    """``name -> version`` of every registry package of ``lock`` that is not forked.

    Passed as ``-P NAME==CURRENT`` next to the pins (except for the names being moved or
    already moved), so a pin cannot drag another package to a version no project uses (a new
    cache entry): such a pin fails and is reported instead, and a second run finds nothing new.
    """
    counts: dict[str, list[str]] = {}
    for package in lock.packages:
        counts.setdefault(package.name, []).append(package.version)
    return {n: v[0] for n, v in sorted(counts.items()) if len(v) == 1}


def check_state(path: Path, env: dict[str, str]) -> bool:
    """True when ``uv lock --check`` says the lock is stale. Raises uv.UvError on other failures."""
    try:
        uv.lock(path, env=env, check=True)
        return False
    except uv.UvError as exc:
        if STALE in exc.output:
            return True
        raise


def run_project(outcome: Outcome, project_plan: planner.ProjectPlan, ctx: Context,
                *, check_first: bool = True) -> Outcome:
    """Align one project; every failure is caught into ``outcome`` (status ``failed``).

    The lock is backed up before the first uv run that may write it; on any error or
    interruption this project's lock is put back byte-for-byte, then the error is recorded
    (Cancelled is re-raised after the restore).
    """
    start = time.monotonic()
    lock_path = outcome.path / "uv.lock"
    original = b""
    worker = Worker(outcome, ctx)
    try:
        original = lock_path.read_bytes()
        if check_first:
            outcome.stale = check_state(outcome.path, ctx.env)
            outcome.uv_runs += 1
        if not project_plan.pins and not outcome.stale:
            return outcome
        if not ctx.dry_run:
            ctx.backups.save(lock_path, original)
        # a stale lock must follow its changed pyproject.toml: no holds there
        worker.holds = {} if outcome.stale else holds(lockfile.read(lock_path))
        worker.apply(project_plan, stale=outcome.stale)
        _record_changes(outcome, worker, original, ctx)
    except BaseException as exc:
        if original and lock_path.exists() and lock_path.read_bytes() != original:
            atomic_write_bytes(lock_path, original)
        outcome.changes, outcome.status = [], "failed"
        if isinstance(exc, (Cancelled, KeyboardInterrupt)):
            outcome.error = "interrupted; lock restored"
            raise
        if not isinstance(exc, Exception):
            raise
        known = isinstance(exc, (DevkitError, OSError))
        outcome.error = str(exc) if known else f"unexpected error: {type(exc).__name__}: {exc}"
    finally:
        outcome.seconds += time.monotonic() - start
    return outcome


def _record_changes(outcome: Outcome, worker: Worker, original: bytes, ctx: Context) -> None:
    before = lockfile.read(outcome.path / "uv.lock") if ctx.dry_run else lockfile.from_data(lockfile.parse_toml(original, outcome.path / "uv.lock"), outcome.path / "uv.lock")
    if ctx.dry_run:
        after = predict(before, worker.last_ok) if worker.last_ok else before
        outcome.predicted = after
    else:
        current = (outcome.path / "uv.lock").read_bytes()
        if current == original:
            return
        after = lockfile.read(outcome.path / "uv.lock")
        # uv's own verdict on the new lock; a failure raises and the caller restores.
        if check_state(outcome.path, ctx.env):
            raise DevkitError(f"uv lock --check fails after aligning {outcome.path}; lock restored")
        outcome.uv_runs += 1
    outcome.changes = diff(before, after)
    if outcome.changes or (outcome.stale and not ctx.dry_run):
        outcome.status = "aligned"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the main thread so the backups are restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM while backups are being restored (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
