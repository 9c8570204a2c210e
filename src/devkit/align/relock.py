"""Applying alignment pins to one project with ``uv lock -P``, safely.

First a *sweep*: one ``uv lock`` with every upward pin as a range (``-P 'NAME>=CURRENT,<=TARGET'``)
takes each package as far as the others allow (:meth:`Worker._sweep`). What is left is pinned:
``-P NAME==VER`` is a hard pin for that run; on a conflict uv exits 1 and leaves ``uv.lock``
byte-identical (uv docs, concepts/projects/sync#upgrading-locked-package-versions). Every other
registry package is *held* at its current version (``-P NAME==CURRENT``), so a pin cannot drag a
package to a version no project uses. When uv refuses a pin because a held package depends on an
older version (``Because X==1.0 depends on Y<2 and Y==2.1 …``), the parents uv names are released
**upward only** (``-P 'X>=1.0'``: a bare ``-P X`` lets uv move X down to an old release, even an
old sdist) and uv is asked again; the lock it finds is kept only when it is good for the whole
store (:mod:`devkit.align.scoring`) and moves nothing down that the downgrade policy forbids.

``uv.lock`` is never edited by devkit: uv writes it; devkit only puts back its own byte-for-byte
copies (:mod:`devkit.align.backups`) on any error, rejection or interruption.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from devkit import uv
from devkit.align import lockfile, planner
from devkit.align.backups import Backups, restore
from devkit.align.scoring import StoreState, forbidden_downgrades
from devkit.errors import DevkitError

if TYPE_CHECKING:
    from devkit.verified import Verified

MAX_UV_RUNS = 40  # per project and pass: bounds the work on pathological conflicts
NOT_TRIED = "not tried: more than"  # reason prefix of a pin the budget left untried
#: reason of a pin a dry run's uv could not decide: network or build (Worker._uv_lock)
NOT_TRIED_OFFLINE = ("not tried: uv needs the network for this move, which a dry run does not "
                     "use (`devkit align` asks the index)")
NOT_TRIED_NO_BUILD = ("not tried: uv needs to build a package for this move's metadata, which a "
                      "dry run never does (`devkit align` does)")
MAX_PARENTS_PER_MOVE = 4  # parents (and holds uv names) released upward for one refused pin
MAX_RELEASE_ROUNDS = 3  # uv re-runs per refused pin that name new parents
MAX_RELEASES_PER_PROJECT = 8  # refused pins per project and pass that try a release
MAX_SWEEP_ROUNDS = 3  # uv runs of the sweep (each narrows the ranges that landed on new versions)
Status = Literal["unchanged", "aligned", "failed", "skipped"]  # skipped: no uv.lock yet
RejectKind = Literal["conflict", "score", "downgrade", "fork"]
#: Why a dry run's plan of one project may differ from what the real run does (Outcome.uncertain)
UNSIZED = ("new versions scored by the wheel sizes of their nearest versions (a written lock "
           "records their own)")
STALE_REQUIREMENTS = ("its stale lock's new requirements, which only the lock uv would write "
                      "records")
OFFLINE = "uv needed the network, which a dry run does not use"
NO_BUILD = "a package without a wheel here, whose metadata only a build gives (a dry run never builds)"
DERIVED = "moved in a later pass, planned after such a move of another project"
PREFERENCES = ("a package the earlier moves took out of the lock or forked, whose version the "
               "unchanged lock on disk still prefers")

# uv 0.13 with --no-build, for a package only an sdist provides: "Because X==1.0 has no usable
# wheels …" and "hint: Wheels are required for `X` because building from source is disabled …"
_NO_WHEELS = "because building from source is disabled"


class Cancelled(Exception):
    """The run was interrupted (Ctrl-C, SIGTERM): stop before the next uv call."""


class IndexMoved(DevkitError):
    """uv would take packages of a lock from another index than the one it was made with.

    Lasting: it holds while the project's files are unchanged (the alignment manifest remembers
    it, so ``--check`` says the same without asking uv).
    """


class _Exhausted(Exception):
    """The project's budget of uv runs for this pass is spent."""


def not_tried(reason: str) -> bool:
    """True when ``reason`` says the pin was never put to uv (the run budget was spent).

    Such a pin is no known conflict: the next pass (or run) tries it again. So is a pin a dry
    run left untried because uv needed the network or a build (:data:`NOT_TRIED_OFFLINE`,
    :data:`NOT_TRIED_NO_BUILD`).
    """
    return reason.startswith((NOT_TRIED, NOT_TRIED_OFFLINE, NOT_TRIED_NO_BUILD))


# -- results ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Change:
    """One package of one project whose locked versions changed (several when it forks)."""

    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def downgrade(self) -> bool:
        """A version that moved to an older one; for a package locked at several versions (a
        fork), its lowest or its highest version moved lower (:func:`planner.moved_down`)."""
        return bool(self.before and self.after and planner.moved_down(self.before, self.after))

    def to_json(self) -> dict[str, object]:
        """``{"name", "before": [...], "after": [...]}``; an empty list = not in the lock."""
        return {"name": self.name, "before": list(self.before), "after": list(self.after)}


@dataclasses.dataclass(frozen=True)
class Release:
    """A parent freed to move upward so that ``child`` could reach its target."""

    name: str
    before: str
    after: str
    child: str

    def to_json(self) -> dict[str, object]:
        """``{"name", "before", "after", "for"}``."""
        return {"name": self.name, "before": self.before, "after": self.after, "for": self.child}


@dataclasses.dataclass
class Outcome:
    """What happened to one project (mutable while its worker runs)."""

    path: Path
    name: str
    status: Status = "unchanged"
    stale: bool = False
    changes: list[Change] = dataclasses.field(default_factory=list)
    blocked: list[planner.Blocked] = dataclasses.field(default_factory=list)
    released: list[Release] = dataclasses.field(default_factory=list)
    error: str | None = None
    lasting: bool = False  # the error holds until the project's files change (IndexMoved)
    uv_runs: int = 0
    seconds: float = 0.0
    synced: bool | None = None
    failed_moves: set[tuple[str, str, str]] = dataclasses.field(default_factory=set)
    held_moves: set[tuple[str, str, str]] = dataclasses.field(default_factory=set)  # by tests
    after: lockfile.Lock | None = None  # the lock after the run (dry runs: what uv would write)
    original: lockfile.Lock | None = None  # the lock before align's first run touched it
    relocked: lockfile.Lock | None = None  # a stale lock after its plain `uv lock`
    # (SHA-256 of uv.lock's bytes, the lock parsed from them) as the engine read it: not parsed
    # again while the file is unchanged
    loaded: tuple[str, lockfile.Lock] | None = dataclasses.field(default=None, repr=False)
    downgrades: list[Change] = dataclasses.field(default_factory=list)  # made by align itself
    relocked_bytes: bytes | None = None  # ``relocked`` as uv wrote it
    tests: dict[str, object] | None = None  # ``--test``: the gate's report (testgate.Gate)
    test_seconds: float = 0.0  # ``--test``: wall time of this project's gate
    # a dry run: why its plan of this project may differ from the real run (UNSIZED, …)
    uncertain: set[str] = dataclasses.field(default_factory=set)

    def to_json(self) -> dict[str, object]:
        """Shape of one ``projects[]`` entry of ``devkit align --json``."""
        return {"path": str(self.path), "name": self.name, "status": self.status,
                "stale": self.stale, "changes": [c.to_json() for c in self.changes],
                "downgrades": [c.to_json() for c in self.downgrades],
                "released": [r.to_json() for r in self.released],
                "blocked": [b.to_json() for b in self.blocked], "error": self.error,
                "uv_runs": self.uv_runs, "seconds": round(self.seconds, 3), "synced": self.synced,
                "tests": self.tests, "test_seconds": round(self.test_seconds, 3)}


def diff(before: lockfile.Lock, after: lockfile.Lock) -> list[Change]:
    """Registry packages whose set of locked versions differs between two locks, by name."""
    names = sorted(before.names() | after.names())
    order = lockfile.version_key
    return [Change(n, tuple(sorted(before.versions(n), key=order)),
                   tuple(sorted(after.versions(n), key=order)))
            for n in names if before.versions(n) != after.versions(n)]


def predict(before: lockfile.Lock, output: str, sizes: Mapping[lockfile.Key, int] | None = None
            ) -> lockfile.Lock:
    """The lock a ``uv lock --dry-run`` would write, from its change lines (:func:`uv.lock_changes`).

    ``before`` must be the lock on disk when uv ran: uv prints every change relative to it.
    A package keeps its index; an added one takes the lock's most common index. Sizes of new
    versions come from ``sizes`` (other locks); uv's output names no file, so a version no lock
    holds is given the size of its nearest version ``sizes`` knows (the newest older one, else
    the oldest newer one; :func:`estimated_size`), else 0. The project's own packages
    (``before.others``: editable, path, git) are not registry packages and are left out.
    """
    packages: dict[str, list[lockfile.LockedPackage]] = {}
    for p in before.packages:
        packages.setdefault(p.name, []).append(p)
    indexes = [p.index for p in before.packages]
    default = max(set(indexes), key=indexes.count) if indexes else ""
    local = {lockfile.normalize(name) for name, _kind, _value in before.others}
    for raw_name, _old, new in uv.lock_changes(output):
        name = lockfile.normalize(raw_name)
        if name in local:
            continue
        index = packages[name][0].index if packages.get(name) else default
        packages[name] = [lockfile.LockedPackage(index, name, v, (),
                                                 estimated_size(sizes or {}, (index, name, v)))
                          for v in new]
    flat = tuple(sorted(p for ps in packages.values() for p in ps))
    return dataclasses.replace(before, packages=flat)


def estimated_size(sizes: Mapping[lockfile.Key, int], key: lockfile.Key) -> int:
    """Bytes of ``key``'s wheel from ``sizes``; for a version ``sizes`` lacks, those of the
    nearest version of the same ``(index, name)`` it has (the newest older one, else the oldest
    newer one: a package's wheels change little from one release to the next), else 0."""
    if key in sizes:
        return sizes[key]
    index, name, version = key
    order = lockfile.version_key
    known = sorted(((order(v), size) for (i, n, v), size in sizes.items()
                    if i == index and n == name and size), key=lambda item: item[0])
    below = [size for v, size in known if v < order(version)]
    if below:
        return below[-1]
    return known[0][1] if known else 0


# -- applying ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Context:
    """What every project worker shares: uv's environment, the store's state, the switches."""

    env: dict[str, str]
    backups: Backups
    cancel: threading.Event
    state: StoreState
    dry_run: bool = False
    max_runs: int = MAX_UV_RUNS
    allow_downgrade: planner.DowngradePolicy = "none"
    release_parents: bool = True
    verified: Verified | None = None  # what uv already said "locked" for: no new check then


@dataclasses.dataclass(frozen=True)
class _Rejected:
    kind: RejectKind
    reason: str


Move = tuple[planner.Pin, int]
Failed = tuple[planner.Pin, int, RejectKind, str]


class Worker:
    """Applies one :class:`~devkit.align.planner.ProjectPlan` to one project with ``uv lock -P``."""

    def __init__(self, outcome: Outcome, ctx: Context, original: lockfile.Lock,
                 original_bytes: bytes, disk: lockfile.Lock | None = None) -> None:
        """Work on ``outcome.path`` whose lock is ``original``; results go into ``outcome``.

        ``disk``: in a dry run, the lock on disk (default ``original``), which uv's dry-run
        output is relative to; ``original`` is then the lock the earlier passes predicted.
        """
        self.outcome = outcome
        self.ctx = ctx
        self.lock_path = outcome.path / "uv.lock"
        self.base = original
        self.disk = disk if disk is not None else original
        self.current = original
        self.current_bytes = original_bytes
        self.accepted: dict[str, str] = {}
        self.holds: dict[str, str] = {}
        self.last_ok = ""
        self.last_error = ""
        self.runs = 0
        self.releases = 0
        self.swept = False
        # a dry run: why uv's last refusal proves nothing (NOT_TRIED_OFFLINE, …), else ""
        self.unprovable = ""
        self.tried: list[str] = []  # parents the last release attempt freed
        self.last_constraints: dict[str, str] = {}  # align's -P of the last uv run, but the pins
        self.fixed = {r.name for r in original.requirements  # pinned to one version by the project
                      if re.fullmatch(r"===?[^*,;]+", r.specifier.replace(" ", ""))}

    def _uv_lock(self, specs: Sequence[str], release: Mapping[str, str]) -> bool:
        """One ``uv lock`` with ``specs`` on top of the accepted pins; False on a conflict."""
        if self.ctx.cancel.is_set():
            raise Cancelled
        if self.runs >= self.ctx.max_runs:
            raise _Exhausted
        self.runs += 1
        self.unprovable = ""
        pinned = {spec.partition("==")[0] for spec in specs}
        moving = pinned | set(self.accepted) | set(release)
        holds = [f"{n}=={v}" for n, v in self.holds.items() if n not in moving]
        accepted = [f"{n}=={v}" for n, v in self.accepted.items()
                    if n not in release and n not in pinned]
        upward = [f"{n}{spec}" for n, spec in release.items()]
        # what align itself asked of uv in this run, name -> specifier (see _explain)
        self.last_constraints = {n: f"=={v}" for n, v in self.holds.items() if n not in moving}
        self.last_constraints.update({n: f"=={v}" for n, v in self.accepted.items()
                                      if n not in release and n not in pinned})
        self.last_constraints.update(release)
        specs = holds + accepted + upward + list(specs)
        prefer = self._preferences(moving) if self.ctx.dry_run else []
        try:
            try:
                output = uv.lock_cache_first(self.outcome.path, env=self.ctx.env,
                                             upgrade_packages=specs + prefer,
                                             dry_run=self.ctx.dry_run, on_run=self._count)
            except uv.UvError as exc:
                if not (prefer and uv.is_conflict(exc.output)
                        and any(uv.mentions(exc.output, spec) for spec in prefer)):
                    raise
                # a preference yields where a pin conflicts with it: uv, as without them
                output = uv.lock_cache_first(self.outcome.path, env=self.ctx.env,
                                             upgrade_packages=specs, dry_run=True,
                                             on_run=self._count)
        except uv.UvError as exc:
            if self.ctx.dry_run and (uv.needs_network(exc.output) or _NO_WHEELS in exc.output):
                # the real run asks the index online, or builds the package for its metadata:
                # this refusal proves no conflict (the pin is reported untried, not retried)
                offline = uv.needs_network(exc.output)
                self.outcome.uncertain.add(OFFLINE if offline else NO_BUILD)
                self.unprovable = NOT_TRIED_OFFLINE if offline else NOT_TRIED_NO_BUILD
                self.last_error = exc.output
                return False
            if uv.is_conflict(exc.output):
                self.last_error = exc.output
                return False
            raise
        self.last_ok = output
        return True

    def _preferences(self, moving: set[str]) -> list[str]:
        """A dry run's stand-in for the preferences of the lock a real run would have on disk.

        uv prefers the versions the lock on disk holds for every package without a ``-P``
        (uv docs, concepts/projects/sync#upgrading-locked-package-versions). In a real run that
        lock is the current candidate; in a dry run it is the unchanged lock. The packages held
        already carry ``-P NAME==VER``; this gives the others the current lock has at one version
        but the lock on disk holds otherwise (a new dependency a move brought in this pass) the
        same ``-P NAME==VER``. A pin is harder than a preference: when uv's refusal names one of
        them, the run is repeated without them (:meth:`_uv_lock`).
        """
        counts: dict[str, list[str]] = {}
        for package in self.current.packages:
            counts.setdefault(package.name, []).append(package.version)
        return [f"{n}=={v[0]}" for n, v in sorted(counts.items())
                if len(v) == 1 and n not in moving and n not in self.holds
                and self.disk.versions(n) != {v[0]}]

    def _count(self) -> None:
        self.outcome.uv_runs += 1

    def _candidate(self) -> lockfile.Lock:
        if self.ctx.dry_run:
            candidate = predict(self.disk, self.last_ok, self.ctx.state.sizes_view())
            back = (candidate.names() & self.disk.names()) - self.current.names()
            if back or any(len(self.current.versions(n)) > 1
                           and self.current.versions(n) != self.disk.versions(n)
                           for n in candidate.names()):
                # uv preferred the lock on disk's version, which the real run's lock lacks
                self.outcome.uncertain.add(PREFERENCES)
            return candidate
        return lockfile.read(self.lock_path)

    def _try(self, specs: Sequence[str], release: Mapping[str, str]) -> lockfile.Lock | _Rejected:
        """Ask uv; keep its lock only when the store gets better and no forbidden downgrade.

        When uv's lock takes a package to a version no project uses while a version in use
        would fit between where it was and where it landed (a new dependency of a released
        parent, a child the parent drags up), uv is asked once more with those packages capped
        at the newest such version (``-P 'NAME>=CURRENT,<=IN_USE'``); that lock is taken when uv
        finds one, else the first.
        """
        if not self._uv_lock(specs, release):
            return _Rejected("conflict", self.unprovable or self._explain())
        candidate = self._candidate()
        caps = self._in_use_caps(candidate, specs, release)
        if caps:
            with contextlib.suppress(_Exhausted):
                if self._uv_lock(specs, {**release, **caps}):
                    candidate = self._candidate()
        rejected = self._evaluate(candidate)
        return rejected if rejected is not None else candidate

    def _in_use_caps(self, candidate: lockfile.Lock, specs: Sequence[str],
                     release: Mapping[str, str]) -> dict[str, str]:
        """``name -> '>=CURRENT,<=IN_USE'`` (``'<=IN_USE'`` for a new package) for each package
        ``candidate`` moved to a version no project uses while one in use lies between; names
        hard-pinned by ``specs`` are left as pinned."""
        pinned = {spec.partition("==")[0] for spec in specs}
        key = lockfile.version_key
        caps: dict[str, str] = {}
        for package in candidate.packages:
            name, version = package.name, package.version
            before = self.current.versions(name)
            if (name in pinned or len(candidate.versions(name)) != 1 or len(before) > 1
                    or version in before or self.ctx.state.users(package.key)):
                continue
            low = next(iter(before), None)
            fits = [v for v in self.ctx.state.in_use(package.index, name)
                    if key(v) < key(version) and (low is None or key(v) >= key(low))]
            if fits:
                caps[name] = f">={low},<={fits[-1]}" if low else f"<={fits[-1]}"
        return caps

    def _evaluate(self, candidate: lockfile.Lock) -> _Rejected | None:
        """Keep ``candidate`` (the lock uv just found) as the current lock, or put the current one
        back and say why not: a package locked at more versions than before (a new fork, which
        adds wheels instead of removing them), a downgrade the policy forbids, or a net loss for
        the store."""
        moved = index_moves(self.current, candidate)
        if moved:
            raise IndexMoved(_index_message(self.outcome.name, moved))
        down = forbidden_downgrades(self.current, candidate, self.ctx.allow_downgrade)
        forks = new_forks(self.current, candidate)
        score = self.ctx.state.score(self.current, candidate)
        if (self.ctx.dry_run and not (down or forks) and score.added_pairs
                and (score.added_bytes or score.freed_bytes)):
            # new versions weighed by estimate: the real run reads their size from the lock
            self.outcome.uncertain.add(UNSIZED)
        if down or forks or not score.acceptable:
            if not self.ctx.dry_run:
                restore(self.lock_path, self.current_bytes)
            if forks:
                name, old, new = forks[0]
                return _Rejected("fork", f"the lock uv found forks {name} into {', '.join(new)} "
                                         f"(locked at {', '.join(old) or 'none'}): align never "
                                         f"adds versions of a package to a lock")
            if down:
                moves = ", ".join(f"{n} {a} -> {b}" for n, a, b in down[:3])
                return _Rejected("downgrade", f"the lock uv found moves down {moves} "
                                              f"(allowed: {self.ctx.allow_downgrade})")
            return _Rejected("score", score.explain())
        self.current = candidate
        if not self.ctx.dry_run:
            self.current_bytes = self.lock_path.read_bytes()
        return None

    def _sweep(self, moves: list[Move]) -> list[Move]:
        """Move every upward pin at once as far as uv can take it; return what is left to pin.

        One ``uv lock`` gives each upward pin a range instead of a hard pin
        (``-P 'NAME>=CURRENT,<=TARGET'``, every other package held), so uv's resolver finds how
        far each package can go together with the others in one run, parents included when a
        newer version of theirs is in use (uv docs, concepts/projects/sync#upgrading-locked-
        package-versions: ``-P`` takes a requirement; concepts/resolution: uv picks the newest
        versions the requirements allow). A package that lands on a version no project uses has
        its range narrowed to the newest in-use version below it, or before the last round is
        held, and uv runs again (:data:`MAX_SWEEP_ROUNDS` runs at most); so is any other package
        the ranges drag past the versions in use while one in use fits
        (:meth:`_in_use_caps`, as a range next to the pins'). Only projects with two
        or more upward pins sweep (one pin is as cheap pinned). Returns the pins still short of
        their target, each with the candidates above where the sweep left it (what is left
        needs a parent released, which only a refusal's explanation names); the moves unchanged
        when the sweep finds nothing acceptable.
        """
        upward = {p.name: p for p, s in moves if s == 0 and p.candidates
                  and lockfile.version_key(p.candidates[0]) > lockfile.version_key(p.current)}
        if len(upward) < 2:
            return moves
        upper = {name: pin.candidates[0] for name, pin in upward.items()}
        caps: dict[str, str] = {}  # packages the pins dragged past the versions in use
        for _round in range(MAX_SWEEP_ROUNDS):
            if not upper:
                return moves
            ranges = {**caps, **{n: f">={upward[n].current},<={v}" for n, v in upper.items()}}
            try:
                if not self._uv_lock([], ranges):
                    return moves  # uv found no lock at all: pin one by one instead
            except _Exhausted:
                return moves
            candidate = self._candidate()
            landed = {n: candidate.versions(n) for n in upper}
            new = {n for n, versions in landed.items() if len(versions) == 1
                   and self.ctx.state.users((upward[n].index, n, next(iter(versions)))) == 0}
            dragged = {n: spec for n, spec in self._in_use_caps(candidate, [], ranges).items()
                       if n not in upper and n not in caps}
            if new or dragged:
                caps.update(dragged)
                # a version nobody uses: cap it at the newest in-use version below it (before
                # the last round: hold it, so that round lands on versions in use only)
                if not self.ctx.dry_run:
                    restore(self.lock_path, self.current_bytes)
                for name in new:
                    (version,) = landed[name]
                    below = [v for v in upward[name].candidates
                             if lockfile.version_key(v) < lockfile.version_key(version)]
                    if below and _round < MAX_SWEEP_ROUNDS - 2:
                        upper[name] = below[0]
                    else:
                        del upper[name]
                continue
            if self._evaluate(candidate) is not None:
                return moves
            break
        else:
            return moves
        self.swept = True
        left: list[Move] = []
        for pin, step in moves:
            versions = self.current.versions(pin.name)
            if not versions:
                continue  # no longer in the lock: nothing left to align
            if len(versions) == 1:
                (version,) = versions
                if version != pin.current:
                    self.accepted[pin.name] = version
                if version == pin.candidates[0]:
                    continue
                if pin.name in upward:
                    left.append((pin.above(version), 0))
                    continue
            left.append((pin, step))
        return left

    def _settle(self, moves: list[Move]) -> list[Failed]:
        """Accept the largest workable part of ``moves``; return the refused ones with reasons.

        The blocker is the single pin uv's explanation names (``… and tinyshared==2.0, we can
        conclude …``); otherwise the set is bisected. A single refused pin whose refusal names
        held parents gets them released upward (:meth:`_release`).
        """
        try:
            result = self._try([p.spec(s) for p, s in moves], {})
        except _Exhausted:
            return [(p, s, "conflict", f"{NOT_TRIED} {self.ctx.max_runs} uv runs in this pass")
                    for p, s in moves]
        if isinstance(result, lockfile.Lock):
            self.accepted.update({p.name: p.candidates[s] for p, s in moves})
            return []
        output = self.last_error if result.kind == "conflict" else ""
        reason = result.reason
        if len(moves) == 1:
            return self._refused(moves[0], result.kind, reason, output)
        if result.kind == "conflict":
            named = [m for m in moves if uv.mentions(output, m[0].spec(m[1]))]
            if len(named) == 1:
                rest = [m for m in moves if m is not named[0]]
                return self._refused(named[0], "conflict", reason, output) + self._settle(rest)
            if 1 < len(named) < len(moves):
                rest = [m for m in moves if m not in named]
                return self._settle(rest) + self._settle(named)
        half = len(moves) // 2
        return self._settle(moves[:half]) + self._settle(moves[half:])

    def _refused(self, move: Move, kind: RejectKind, reason: str, output: str) -> list[Failed]:
        pin, step = move
        if kind == "conflict" and not_tried(reason):
            return [(pin, step, kind, reason)]  # a dry run's uv lacked something: no release
        if kind == "conflict":
            self.tried = []
            released = self._release(pin, step, output)
            if released is None:
                return []
            if released.kind != "conflict" or not_tried(released.reason):
                return [(pin, step, released.kind, released.reason)]
            if self.tried:
                # uv's explanation with the parents free to move up says why that was not enough
                reason = (released.reason or reason) + \
                    f" [moving {', '.join(self.tried)} up did not help]"
        return [(pin, step, kind, reason)]

    def _release(self, pin: planner.Pin, step: int, output: str) -> _Rejected | None:
        """Retry one refused pin with the held parents uv names free to move up.

        Each parent is first allowed up to the newest version another project already locks
        (``-P 'X>=1.0,<=1.4'``: no new cache entry when uv can take it), then, if that is not
        enough, to any newer release (``-P 'X>=1.0'``); never down. Returns None when a lock was
        accepted, else the last rejection (a conflict rejection means no release helped).
        Bounded by :data:`MAX_PARENTS_PER_MOVE`, :data:`MAX_RELEASE_ROUNDS`,
        :data:`MAX_RELEASES_PER_PROJECT` and the project's uv-run budget.
        """
        if not self.ctx.release_parents or self.releases >= MAX_RELEASES_PER_PROJECT:
            return _Rejected("conflict", "")
        self.releases += 1
        release: dict[str, str] = {}  # name -> specifier: ">=current" or ">=current,<=cap"
        capped: set[str] = set()
        start: dict[str, str] = {}  # each released parent's version before this release
        last = _Rejected("conflict", "")
        for _round in range(MAX_RELEASE_ROUNDS):
            parents = [n for n in [*uv.conflict_parents(output), *self._held_in(output)]
                       if n in self.holds and n != pin.name and n not in release
                       and not self._pinned_by_project(n)]
            parents = list(dict.fromkeys(parents))
            room = MAX_PARENTS_PER_MOVE - len(release)
            if not parents or room <= 0:
                break
            for name in parents[:room]:
                start[name] = self._at(name)
                release[name] = self._upward(name, capped)
                self.tried.append(name)
            try:
                result = self._try([pin.spec(step)], release)
                if (isinstance(result, _Rejected) and result.kind == "conflict"
                        and any(n in capped for n in release)):
                    # the versions in use were not enough: any newer release, as a last resort
                    release = {n: f">={self._at(n)}" for n in release}
                    capped.clear()
                    result = self._try([pin.spec(step)], release)
            except _Exhausted:
                break
            if isinstance(result, _Rejected) and not_tried(result.reason):
                last = result
                break  # a dry run's uv lacked something: the next round would too
            if isinstance(result, lockfile.Lock):
                self.accepted[pin.name] = pin.candidates[step]
                for name in release:
                    before = start[name]
                    after = sorted(result.versions(name), key=lockfile.version_key)
                    if len(after) == 1:
                        self.accepted[name] = after[0]
                        if after[0] != before:
                            self.outcome.released.append(Release(name, before, after[0],
                                                                 pin.name))
                return None
            last = result
            if result.kind != "conflict":
                break
            output = self.last_error
        return last

    def relock(self) -> tuple[lockfile.Lock, bytes]:
        """A plain ``uv lock``: what ``uv lock --check`` asks of a stale lock, whatever it moves.

        Returns the new lock, parsed and as bytes; in a dry run the lock predicted from uv's
        output (:func:`predict`) and the unchanged bytes on disk. Raises DevkitError when uv finds
        no resolution at all, IndexMoved when uv would take packages from another index.
        """
        if not self._uv_lock([], {}):
            if self.unprovable:
                raise DevkitError(f"cannot re-lock {self.outcome.path} in a dry run: "
                                  f"{self.unprovable.removeprefix('not tried: ')}")
            raise DevkitError(f"uv lock fails in {self.outcome.path}: "
                              f"{self._explain()}")
        if self.ctx.dry_run:
            data, fresh = self.current_bytes, self._candidate()
        else:
            data = self.lock_path.read_bytes()
            fresh = lockfile.parse(data, self.lock_path)
        moved = index_moves(self.base, fresh)
        if moved:
            raise IndexMoved(_index_message(self.outcome.name, moved))
        return fresh, data

    def _explain(self) -> str:
        """uv's full explanation of the last refusal (:func:`devkit.uv.conflict_reason`), led by
        the holds of align's own it rests on: uv words every ``-P`` as a requirement of the
        project ("project held depends on tinyparent==1.0", "sphinx>=7.3.0,<=8.1.3 depends on
        …"), so the reason says "while align held tinyparent at 1.0, sphinx at 7.3.0..8.1.3: …".
        A version the project's own requirement pins is its fact, not a hold."""
        reason = uv.conflict_reason(self.last_error, self.outcome.name)
        held = [_hold_words(n, spec) for n, spec in self.last_constraints.items()
                if not self._pinned_by_project(n) and _named(self.last_error, n, spec)]
        if not held:
            return reason
        listed = held[0] if len(held) == 1 else f"{', '.join(held[:-1])} and {held[-1]}"
        return f"while align held {listed}: {reason}"

    def _held_in(self, output: str) -> list[str]:
        """Names whose hold at one version (``NAME==CURRENT``, align's ``-P``, not the project's
        requirement) uv's explanation names, as in ``tinyparent>=1.1 depends on tinyhelper>=2
        and tinyhelper==1.0``: a released parent's newer release needs them to move too."""
        return [n for n, spec in self.last_constraints.items()
                if spec.startswith("==") and uv.mentions(output, f"{n}{spec}")]

    def _pinned_by_project(self, name: str) -> bool:
        """Does the project's own requirement pin ``name`` to one version (``==1.0``)? Then no
        release can move it, and asking uv would only spend a run."""
        return name in self.fixed

    def _at(self, name: str) -> str:
        """The version ``name`` is locked at now: accepted in this run, else held."""
        return self.accepted.get(name) or self.holds[name]

    def _upward(self, name: str, capped: set[str]) -> str:
        """The release specifier of parent ``name``: up to the newest version in use when that
        is newer (no new pair if uv can take it), else any newer release."""
        current = self._at(name)
        if self.swept:
            return f">={current}"  # the sweep already took it as far as the versions in use
        index = next((p.index for p in self.current.packages if p.name == name), "")
        cap = self.ctx.state.newest_in_use(index, name)
        if cap is not None and lockfile.version_key(cap) > lockfile.version_key(current):
            capped.add(name)
            return f">={current},<={cap}"
        return f">={current}"

    def apply(self, project_plan: planner.ProjectPlan) -> None:
        """Try every pin, falling back to next-best candidates; record blocked pins.

        Pins the pass's uv-run budget (:data:`MAX_UV_RUNS`) left untried are reported as
        blocked but not remembered as failed moves, so the next pass plans them again.
        Raises uv.UvError on a non-conflict uv failure, Cancelled when the run is interrupted.
        """
        moves = self._sweep([(p, 0) for p in project_plan.pins])
        first: dict[str, tuple[RejectKind, str]] = {}
        while moves:
            failed = self._settle(moves)
            for pin, step, kind, reason in failed:
                first.setdefault(pin.name, (kind, reason))
                # an untried pin is no conflict: a later pass tries it; one a dry run's uv could
                # not decide (network, build) would stay undecided: not planned again
                if not not_tried(reason) or reason.startswith((NOT_TRIED_OFFLINE,
                                                               NOT_TRIED_NO_BUILD)):
                    self.outcome.failed_moves.add((str(self.outcome.path), pin.name,
                                                   pin.candidates[step]))
            moves = [(p, s + 1) for p, s, _, reason in failed
                     if s + 1 < len(p.candidates) and not not_tried(reason)]
        # a pin an earlier pass left untried is reported from this pass's outcome only
        planned = {p.name for p in project_plan.pins}
        self.outcome.blocked = [b for b in self.outcome.blocked
                                if not (not_tried(b.reason) and b.name in planned)]
        for pin in project_plan.pins:
            if self.accepted.get(pin.name) != pin.target and pin.name in first:
                kind, reason = first[pin.name]
                self.outcome.blocked.append(planner.Blocked(
                    self.outcome.name, pin.index, pin.name, pin.current, pin.target, reason, kind))


def _named(output: str, name: str, spec: str) -> bool:
    """Does uv's ``output`` name align's constraint ``name``+``spec``: the very ``NAME==VER`` of
    a hold, or, for a range (which uv prints narrowed to the versions that exist, as
    ``NAME<=1.1`` for ``>=1.0,<=1.1``), ``NAME`` with a version bound or ``versions of NAME``?"""
    if spec.startswith("==") and "," not in spec:
        return uv.mentions(output, f"{name}{spec}")
    word = re.escape(name)
    return re.search(rf"(?<![\w.-]){word}(?=[<>=!~])|versions of {word}(?![\w.-])",
                     output) is not None


def _hold_words(name: str, spec: str) -> str:
    """``tinyparent at 1.0`` (``==1.0``), ``at 1.0..1.4`` (``>=1.0,<=1.4``), ``at 1.0 or newer``
    (``>=1.0``), ``at 1.4 or older`` (``<=1.4``)."""
    low = re.search(r">=([^,]+)", spec)
    high = re.search(r"<=([^,]+)", spec)
    if spec.startswith("=="):
        return f"{name} at {spec[2:]}"
    if low and high:
        return f"{name} at {low.group(1)}..{high.group(1)}"
    if low:
        return f"{name} at {low.group(1)} or newer"
    if high:
        return f"{name} at {high.group(1)} or older"
    return f"{name}{spec}"


def index_moves(before: lockfile.Lock, after: lockfile.Lock) -> list[tuple[str, str, str]]:
    """``(name, old index, new index)`` for every package both locks hold from different indexes.

    ``-P`` frees a package from the lock's preferences, so uv resolves it from the indexes the
    project's configuration names now (uv docs, concepts/indexes); a lock made with another
    index (an environment variable at the time) would silently move to the default one.
    """
    def indexes(lock: lockfile.Lock) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for package in lock.packages:
            found.setdefault(package.name, set()).add(package.index)
        return found

    old, new = indexes(before), indexes(after)
    return [(name, ", ".join(sorted(old[name])), ", ".join(sorted(new[name])))
            for name in sorted(old.keys() & new.keys()) if old[name] != new[name]]


def new_forks(before: lockfile.Lock, after: lockfile.Lock
              ) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """``(name, versions before, versions after)`` for each registry package ``after`` locks at
    more versions than ``before`` did, and at two or more (a fork the lock did not have: uv
    splits a resolution by markers, ``resolution-markers`` in ``uv.lock``; uv docs,
    concepts/resolution#universal-resolution), sorted by name."""
    order = lockfile.version_key
    return [(name, tuple(sorted(before.versions(name), key=order)),
             tuple(sorted(after.versions(name), key=order)))
            for name in sorted(after.names())
            if len(after.versions(name)) > max(1, len(before.versions(name)))]


def _index_message(project: str, moved: list[tuple[str, str, str]]) -> str:
    name, old, new = moved[0]
    return (f"uv would take {len(moved)} package(s) of {project} from another index "
            f"({name}: {old} -> {new}): its lock was made with an index its configuration does "
            f"not name; set that index ([[tool.uv.index]] or UV_DEFAULT_INDEX) and run again")


def holds(lock: lockfile.Lock) -> dict[str, str]:
    """``name -> version`` of every registry package of ``lock`` that is not forked.

    Passed as ``-P NAME==CURRENT`` next to the pins (except for the names being moved, already
    moved or released), so a pin cannot drag another package to a version no project uses.
    """
    counts: dict[str, list[str]] = {}
    for package in lock.packages:
        counts.setdefault(package.name, []).append(package.version)
    return {n: v[0] for n, v in sorted(counts.items()) if len(v) == 1}


def check_state(path: Path, env: dict[str, str], verified: Verified | None = None,
                key: str | None = None, *, read_only: bool = False) -> bool:
    """True when ``uv lock --check`` says the lock is stale. Raises uv.UvError on other failures.

    With ``verified``, a "locked" verdict is remembered against ``key`` (the state before the run,
    default: computed here) and a "stale" one forgotten. ``read_only`` (a dry run) adds
    ``--offline --no-build``.
    """
    if verified is not None and key is None:
        key = verified.key("lock", path)
    try:
        uv.lock(path, env=env, check=True, read_only=read_only)
    except uv.UvError as exc:
        if uv.is_stale(exc.output):
            if verified is not None:
                verified.forget("lock", path)
            return True
        raise
    if verified is not None:
        verified.remember("lock", path, key)
    return False


def run_project(outcome: Outcome, project_plan: planner.ProjectPlan, ctx: Context,
                *, check_first: bool = True) -> Outcome:
    """Align one project; every failure is caught into ``outcome`` (status ``failed``).

    The lock is backed up before the first uv run that may write it; on any error or
    interruption this project's lock is put back byte-for-byte, then the error is recorded
    (Cancelled is re-raised after the restore). A dry run (``ctx.dry_run``) takes the same
    steps with ``uv lock --dry-run``: a stale lock is re-locked first and a later pass starts
    from the lock the earlier ones predicted (``outcome.after``), every uv run carrying those
    versions as ``-P NAME==VER`` next to the unchanged lock on disk (:class:`Worker`).
    """
    start = time.monotonic()
    lock_path = outcome.path / "uv.lock"
    original = b""
    try:
        original = lock_path.read_bytes()
        loaded = outcome.loaded
        if loaded is not None and loaded[0] == hashlib.sha256(original).hexdigest():
            before = loaded[1]
        else:
            before = lockfile.parse(original, lock_path)
        if outcome.original is None:
            outcome.original = before
        key = ctx.verified.key("lock", outcome.path) if ctx.verified and check_first else None
        if check_first and ctx.verified is not None and ctx.verified.known("lock", outcome.path, key):
            outcome.stale = False  # byte-identical to when uv last said "locked"
        elif check_first:
            outcome.stale = check_state(outcome.path, ctx.env, ctx.verified, key,
                                        read_only=ctx.dry_run)
            outcome.uv_runs += 1
        # a dry run leaves the lock on disk as it is: a later pass goes on from the lock the
        # earlier passes predicted, as a real run goes on from the lock they wrote
        begun = outcome.after if ctx.dry_run and outcome.after is not None else before
        if not project_plan.pins and not outcome.stale:
            outcome.after = begun
            return outcome
        if not ctx.dry_run:
            ctx.backups.save(lock_path, original)
        base, base_bytes = begun, original
        if outcome.stale and outcome.relocked is None:
            # first what `uv lock --check` asks for, whatever it moves; then align the fresh lock
            outcome.relocked, base_bytes = Worker(outcome, ctx, before, original).relock()
            outcome.relocked_bytes = None if ctx.dry_run else base_bytes
            if ctx.dry_run:
                outcome.uncertain.add(STALE_REQUIREMENTS)
            project_plan = _rebase(project_plan, outcome.relocked)
            base = outcome.relocked
        worker = Worker(outcome, ctx, base, base_bytes, disk=before)
        worker.holds = holds(base)
        worker.apply(project_plan)
        _record_changes(outcome, worker, begun, original, ctx)
    except BaseException as exc:
        if original:
            with contextlib.suppress(OSError):
                restore(lock_path, original)
        outcome.changes, outcome.released, outcome.status = [], [], "failed"
        outcome.downgrades = []
        outcome.after = None
        if isinstance(exc, (Cancelled, KeyboardInterrupt)):
            outcome.error = "interrupted; lock restored"
            raise
        if not isinstance(exc, Exception):
            raise
        known = isinstance(exc, (DevkitError, OSError))
        if ctx.dry_run and isinstance(exc, uv.UvError):
            if uv.needs_network(exc.output):  # a real run asks the index online
                outcome.uncertain.add(OFFLINE)
            if _NO_WHEELS in exc.output:  # a real run builds it for its metadata
                outcome.uncertain.add(NO_BUILD)
        outcome.lasting = isinstance(exc, IndexMoved)
        outcome.error = str(exc) if known else f"unexpected error: {type(exc).__name__}: {exc}"
    finally:
        outcome.seconds += time.monotonic() - start
    return outcome


def _rebase(project_plan: planner.ProjectPlan, fresh: lockfile.Lock) -> planner.ProjectPlan:
    """``project_plan`` for the lock a plain re-lock produced: each pin starts from the version
    ``fresh`` locks and keeps only the candidates above it; a pin whose package left the lock or
    forked is dropped."""
    pins = []
    for pin in project_plan.pins:
        versions = fresh.versions(pin.name)
        if len(versions) != 1:
            continue
        (current,) = versions
        rebased = pin if current == pin.current else pin.above(current)
        if rebased.candidates:
            pins.append(rebased)
    return dataclasses.replace(project_plan, pins=tuple(pins))


def _record_changes(outcome: Outcome, worker: Worker, before: lockfile.Lock, original: bytes,
                    ctx: Context) -> None:
    """``outcome``'s lock after this pass (``before``: the lock the pass began with, ``original``
    its bytes) and its changes since the first pass; a real run has uv check the new lock."""
    if ctx.dry_run:
        if worker.current is before:  # nothing accepted (nor re-locked) in this pass
            outcome.after = before
            return
        after = worker.current  # the last lock accepted, as predicted from uv's output
    else:
        if (outcome.path / "uv.lock").read_bytes() == original:
            outcome.after = before
            return
        after = lockfile.read(outcome.path / "uv.lock")
        # uv's own verdict on the new lock; a failure raises and the caller restores.
        if check_state(outcome.path, ctx.env, ctx.verified):
            raise DevkitError(f"uv lock --check fails after aligning {outcome.path}; lock restored")
        outcome.uv_runs += 1
    outcome.after = after
    # against the lock before align's first pass: a project's moves over every pass
    first = outcome.original or before
    outcome.changes = diff(first, after)
    outcome.downgrades = [c for c in diff(outcome.relocked or first, after) if c.downgrade]
    outcome.status = "aligned" if outcome.changes or outcome.stale else "unchanged"
