"""The alignment planner: which version each package should settle on, and the pins per project.

Pure: dataclasses in, dataclasses out, no I/O and no uv. The engine (:mod:`devkit.align.engine`)
reads the locks (:mod:`devkit.align.lockfile`), calls :func:`make_plan`, and applies the pins with
``uv lock -P`` (:mod:`devkit.align.relock`).

Identity is ``(index URL, name, version)``: a wheel from a mirror is a different cache entry from
the same version on the default index (uv docs, concepts/cache), so targets are chosen per
``(index, name)`` group and a project is only pinned to versions of the index it already uses.
Work is ordered by bytes at stake (the size of the wheel each move can free), heaviest first.

Downgrades: by default no pin moves a package below the version the project has. A
:data:`DowngradePolicy` of ``patch`` (same major.minor), ``minor`` (same major) or ``major`` (any)
lets a project move down to a version another project already locks.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, get_args

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from devkit.align.lockfile import Key, Lock, LockedPackage, Requirement, version_key

Strategy = Literal["newest", "majority"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
DowngradePolicy = Literal["none", "patch", "minor", "major"]
DOWNGRADE_POLICIES: tuple[DowngradePolicy, ...] = get_args(DowngradePolicy)
BlockedKind = Literal["requirement", "fork", "exclude-newer", "conflict", "score", "downgrade",
                      "tests"]

__all__ = ["Requirement"]  # re-exported: planner input read from the lock


@dataclasses.dataclass(frozen=True)
class ProjectLock:
    """One project's registry packages and own requirements.

    ``project`` is its unique id (devkit uses the path), ``label`` the name used in reasons.
    """

    project: str
    packages: tuple[LockedPackage, ...]
    requirements: tuple[Requirement, ...] = ()
    label: str = ""
    exclude_newer: dt.datetime | None = None  # uploads after this are invisible to its resolver
    exclude_newer_package: tuple[tuple[str, dt.datetime | None], ...] = ()  # None: exempt

    def cutoff(self, name: str) -> dt.datetime | None:
        """The upload-time cutoff that applies to ``name`` (per-package first), or None."""
        return dict(self.exclude_newer_package).get(name, self.exclude_newer)

    @property
    def display(self) -> str:
        """``label`` if set, else ``project``."""
        return self.label or self.project

    @classmethod
    def from_lock(cls, lock: Lock, project: str, label: str = "") -> ProjectLock:
        """The planner's view of a parsed ``uv.lock`` of ``project`` (its id, usually the path)."""
        return cls(project, lock.packages, lock.requirements, label, lock.exclude_newer,
                   lock.exclude_newer_package)


@dataclasses.dataclass(frozen=True)
class Target:
    """The version chosen for one ``(index, name)`` group; ``ranked`` is every version in use,
    best first (the fallbacks), ``users`` the number of projects locking each version,
    ``bytes`` the size of every version but the target (what aligning the group can free)."""

    index: str
    name: str
    version: str
    ranked: tuple[str, ...]
    users: tuple[tuple[str, int], ...]
    bytes: int = 0

    def to_json(self) -> dict[str, object]:
        """Shape used in ``devkit align --json`` and the alignment manifest."""
        return {"index": self.index, "name": self.name, "version": self.version,
                "ranked": list(self.ranked), "users": dict(self.users), "bytes": self.bytes}


@dataclasses.dataclass(frozen=True)
class Pin:
    """Move ``name`` (from ``index``) off ``current``: try ``candidates`` in order, best first.

    ``candidates[0]`` is the target when the project may reach it; the rest are next-best versions
    already in use, so the spread shrinks even when the target is out of reach.
    """

    index: str
    name: str
    current: str
    target: str
    candidates: tuple[str, ...]
    bytes: int = 0  # size of the current version's wheel: what this move may free

    def spec(self, step: int = 0) -> str:
        """The ``uv lock --upgrade-package`` argument for candidate ``step``: ``NAME==VERSION``."""
        return f"{self.name}=={self.candidates[step]}"

    def above(self, version: str) -> Pin:
        """This pin starting from ``version``: only the candidates newer than it (maybe none)."""
        return dataclasses.replace(self, current=version, candidates=tuple(
            v for v in self.candidates if version_key(v) > version_key(version)))


@dataclasses.dataclass(frozen=True)
class Blocked:
    """A move that cannot happen: ``wanted`` is out of reach for ``project`` because of ``reason``.

    ``kind``: ``requirement`` (the project's own specifier), ``fork`` (several versions under
    different resolution markers, or a lock uv found that would fork it), ``exclude-newer`` (uploaded after the project's cutoff),
    ``conflict`` (uv's resolver said no: ``reason`` is its explanation), ``score`` (uv found a
    lock but it would add more bytes to the store than it frees), ``downgrade`` (uv's lock
    would move a package down, which the downgrade policy forbids) or ``tests`` (``devkit align
    --test``: tests that passed at ``current`` fail at ``wanted``; ``tests`` names them).
    """

    project: str
    index: str
    name: str
    current: str
    wanted: str
    reason: str
    kind: BlockedKind
    tests: tuple[str, ...] = ()  # kind ``tests``: the ids of the tests that broke

    def to_json(self) -> dict[str, object]:
        """Shape used in ``devkit align --json``: the fields, ``tests`` as a list."""
        return {**dataclasses.asdict(self), "tests": list(self.tests)}


@dataclasses.dataclass(frozen=True)
class ProjectPlan:
    """The pins to try in one project and the moves known to be blocked before running uv."""

    project: str
    pins: tuple[Pin, ...]
    blocked: tuple[Blocked, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Targets for every group locked at several versions, and one :class:`ProjectPlan` each."""

    strategy: Strategy
    targets: tuple[Target, ...]
    projects: tuple[ProjectPlan, ...]

    def for_project(self, project: str) -> ProjectPlan:
        """The plan of ``project``; raises KeyError when it was not planned."""
        for plan in self.projects:
            if plan.project == project:
                return plan
        raise KeyError(project)

    @property
    def pins(self) -> int:
        """How many pins the plan holds over all projects."""
        return sum(len(p.pins) for p in self.projects)


def downgrade_allowed(current: str, version: str, policy: DowngradePolicy) -> bool:
    """May a project move from ``current`` to ``version`` under ``policy``?

    Moving up (or sideways) is always allowed. Down: ``none`` never; ``patch`` within the same
    major.minor; ``minor`` within the same major; ``major`` always. Unparsable versions count
    as a major move.
    """
    if version_key(version) >= version_key(current):
        return True
    if policy == "major":
        return True
    if policy == "none":
        return False
    try:
        old, new = Version(current).release, Version(version).release
    except InvalidVersion:
        return False
    depth = 2 if policy == "patch" else 1
    return (old + (0, 0))[:depth] == (new + (0, 0))[:depth]


def moved_down(before: Iterable[str], after: Iterable[str]) -> list[tuple[str, str]]:
    """``(old, new)`` version pairs by which a package's set of locked versions moved down.

    A single version moved down when the new one is older. A package locked at several versions
    (a fork: one entry per set of ``resolution-markers``) is compared by its ends: its lowest
    version moving lower (an older-Python branch dragged to an old release, as requests
    2.27.1, 2.31.0, 2.32.4 -> 2.15.1, 2.32.4) or its highest one moving lower (the newest
    branch, e.g. a fork collapsed to a version below its top) is a downgrade, reported as
    ``(old lowest, new lowest)`` and ``(old highest, new highest)``. The ends, not the markers:
    uv may split a fork differently in the new lock (other ``resolution-markers``), so the
    branches of two locks cannot be matched one to one, while every environment of the new
    lock gets a version at least the old lowest and the newest environments keep at least the
    old highest exactly when neither end moved down. Empty when either set is empty.
    """
    old = sorted(set(before), key=version_key)
    new = sorted(set(after), key=version_key)
    if not old or not new:
        return []
    pairs = [(old[0], new[0])]
    if len(old) > 1 or len(new) > 1:
        pairs.append((old[-1], new[-1]))
    return list(dict.fromkeys((b, a) for b, a in pairs if version_key(a) < version_key(b)))


def rank(versions: Iterable[str], users: collections.Counter[str], strategy: str) -> list[str]:
    """Order ``versions`` best first: ``newest`` by PEP 440; ``majority`` by user count, newest on ties.

    Raises ValueError on an unknown strategy.
    """
    if strategy == "newest":
        return sorted(versions, key=version_key, reverse=True)
    if strategy == "majority":
        return sorted(versions, key=lambda v: (users[v], version_key(v)), reverse=True)
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def sizes_of(locks: Iterable[ProjectLock]) -> dict[Key, int]:
    """Bytes per ``(index, name, version)`` as the locks record them (largest seen)."""
    sizes: dict[Key, int] = {}
    for lock in locks:
        for p in lock.packages:
            sizes[p.key] = max(sizes.get(p.key, 0), p.size)
    return sizes


def choose_targets(locks: Sequence[ProjectLock], strategy: str = "newest",
                   anchors: Mapping[tuple[str, str], str] | None = None) -> list[Target]:
    """One :class:`Target` per ``(index, name)`` that ``locks`` hold at two or more versions.

    A fork counts each of its versions as in use (they are all in the cache). ``anchors`` maps
    ``(index, name)`` to a version that must be the target (the version a blocked project cannot
    leave: the others may move down to it when the downgrade policy allows). Targets come
    heaviest first (bytes at stake), then by name.
    """
    users: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    for lock in locks:
        for index, name, version in {p.key for p in lock.packages}:
            users[(index, name)][version] += 1
    sizes = sizes_of(locks)
    targets = []
    for (index, name), counts in sorted(users.items()):
        if len(counts) < 2:
            continue
        ranked = rank(counts, counts, strategy)
        anchor = (anchors or {}).get((index, name))
        if anchor is not None and anchor in counts:
            ranked = [anchor, *(v for v in ranked if v != anchor)]
        at_stake = sum(sizes.get((index, name, v), 0) for v in ranked[1:])
        targets.append(Target(index, name, ranked[0], tuple(ranked),
                              tuple((v, counts[v]) for v in ranked), at_stake))
    targets.sort(key=lambda t: -t.bytes)
    return targets


def anchors(locks: Sequence[ProjectLock], stuck: Iterable[tuple[str, str]]) -> dict[
        tuple[str, str], str]:
    """Per ``(index, name)``, the newest version held by a project that could not move up.

    ``stuck`` holds ``(project, name)`` pairs (a blocked move). The anchor is the version the
    others can move down to (:func:`make_plan` with a downgrade policy).
    """
    stuck_set = set(stuck)
    found: dict[tuple[str, str], str] = {}
    for lock in locks:
        for p in lock.packages:
            if (lock.project, p.name) not in stuck_set and (lock.display, p.name) not in stuck_set:
                continue
            group = (p.index, p.name)
            if group not in found or version_key(p.version) > version_key(found[group]):
                found[group] = p.version
    return found


def _allows(requirement: Requirement, version: str) -> bool:
    if not requirement.specifier:
        return True
    try:
        return SpecifierSet(requirement.specifier).contains(version, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return True  # cannot judge here: let uv decide


def _requirement_reason(project: str, requirement: Requirement) -> str:
    verb = {"requires": "requires", "dev": "requires (dev)", "constraint": "constrains",
            "override": "overrides"}.get(requirement.kind, "requires")
    marker = f" ; {requirement.marker}" if requirement.marker else ""
    return f"project {project} {verb} {requirement.name}{requirement.specifier}{marker}"


def _too_new(lock: ProjectLock, target: Target, version: str,
             uploaded: Mapping[tuple[str, str, str], dt.datetime]) -> str:
    cutoff = lock.cutoff(target.name)
    when = uploaded.get((target.index, target.name, version))
    if cutoff is None or when is None or when <= cutoff:
        return ""
    return (f"project {lock.display} excludes uploads after {cutoff:%Y-%m-%d %H:%M} UTC "
            f"(exclude-newer); {target.name} {version} was uploaded {when:%Y-%m-%d}")


def plan_project(lock: ProjectLock, targets: Sequence[Target],
                 uploaded: Mapping[tuple[str, str, str], dt.datetime] | None = None,
                 allow_downgrade: DowngradePolicy = "none") -> ProjectPlan:
    """Pins that move ``lock`` toward ``targets``; moves its own requirements forbid are blocked.

    Versions excluded by a requirement's specifier are dropped from the candidates (markers are
    not evaluated: a specifier under any marker is honoured, the safe side), and so are versions
    ``uploaded`` (earliest file upload time per ``(index, name, version)``, from the locks)
    after the project's exclude-newer cutoff (uv docs, reference/settings#exclude-newer). A name locked at
    several versions (a fork, split by resolution markers) is never pinned: one ``-P`` would
    collapse the fork, which the project's markers may forbid. Versions below the current one
    are candidates only when ``allow_downgrade`` allows the step (:func:`downgrade_allowed`).
    Pins come heaviest first (bytes of the current version).
    """
    entries: dict[str, list[LockedPackage]] = collections.defaultdict(list)
    for package in lock.packages:
        entries[package.name].append(package)
    requirements: dict[str, list[Requirement]] = collections.defaultdict(list)
    for requirement in lock.requirements:
        requirements[requirement.name].append(requirement)
    pins, blocked = [], []
    for target in targets:
        mine = entries.get(target.name, [])
        if not any(p.index == target.index for p in mine):
            continue
        versions = sorted({p.version for p in mine}, key=version_key)
        if len(mine) > 1:
            if target.version not in versions or len(versions) > 1:
                blocked.append(Blocked(
                    lock.display, target.index, target.name, ", ".join(versions), target.version,
                    f"locked at {', '.join(versions)} under different resolution markers (a fork)",
                    "fork"))
            continue
        current = mine[0].version
        if current == target.version:
            continue
        better = [v for v in target.ranked[: target.ranked.index(current)]
                  if downgrade_allowed(current, v, allow_downgrade)]
        candidates = []
        for version in better:
            against = [r for r in requirements.get(target.name, []) if not _allows(r, version)]
            too_new = _too_new(lock, target, version, uploaded or {})
            if not against and not too_new:
                candidates.append(version)
            elif version == target.version:
                reason = _requirement_reason(lock.display, against[0]) if against else too_new
                blocked.append(Blocked(lock.display, target.index, target.name, current,
                                       version, reason, "requirement" if against else "exclude-newer"))
        if candidates:
            pins.append(Pin(target.index, target.name, current, target.version, tuple(candidates),
                            mine[0].size))
    pins.sort(key=lambda p: -p.bytes)
    return ProjectPlan(lock.project, tuple(pins), tuple(blocked))


def excess_floor(locks: Sequence[ProjectLock], allow_downgrade: DowngradePolicy = "none",
                 reachable: Callable[[ProjectLock, str, str], bool] | None = None) -> int:
    """The excess pairs no alignment of ``locks`` can remove without editing a project.

    Per ``(index, name)``: a project locking several versions (a fork) keeps all of them; any
    other project needs one version that some lock uses, that its own requirements allow and
    that ``allow_downgrade`` lets it reach from its current one. The fewest versions covering
    every project is found the interval way (by each project's newest reachable version), exact
    when each project's reachable versions are contiguous, as a range specifier makes them.
    A dependency's own requirements are not in the locks, so alignment may stop above this
    floor; ``reachable(project, name, version)``, when given, may rule out more versions (e.g.
    a resolver that proves a project cannot lock that version at all: the floor stays a lower
    bound as long as it only says False when no lock can hold it). The result is comparable
    with :attr:`devkit.align.lockfile.Summary.excess_pairs` (distinct pairs beyond one per name).
    """
    holders: dict[tuple[str, str], list[tuple[list[str], list[Requirement], ProjectLock]]] = (
        collections.defaultdict(list))
    for lock in locks:
        requirements: dict[str, list[Requirement]] = collections.defaultdict(list)
        for requirement in lock.requirements:
            requirements[requirement.name].append(requirement)
        versions: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        for index, name, version in (p.key for p in lock.packages):
            versions[(index, name)].add(version)
        for group, found in versions.items():
            holders[group].append((sorted(found, key=version_key), requirements[group[1]], lock))
    kept = 0
    for (_index, name), group_holders in holders.items():
        in_use = sorted({v for held, _, _ in group_holders for v in held}, key=version_key)
        chosen = {v for held, _, _ in group_holders if len(held) > 1 for v in held}
        per_project = []
        for held, own, lock in group_holders:
            if len(held) == 1:
                current = held[0]
                per_project.append([v for v in in_use if v == current or (
                    downgrade_allowed(current, v, allow_downgrade)
                    and all(_allows(r, v) for r in own)
                    and (reachable is None or reachable(lock, name, v)))])
        for options in sorted(per_project, key=lambda vs: version_key(vs[-1])):
            if not chosen.intersection(options):
                chosen.add(options[-1])
        kept += len(chosen)
    return kept - len({name for _, name in holders})


def make_plan(
    locks: Sequence[ProjectLock],
    *,
    strategy: Strategy = "newest",
    skip: Iterable[tuple[str, str, str]] = (),
    uploaded: Mapping[tuple[str, str, str], dt.datetime] | None = None,
    allow_downgrade: DowngradePolicy = "none",
    anchor: Mapping[tuple[str, str], str] | None = None,
) -> Plan:
    """Plan the alignment of ``locks``.

    Args:
        locks: every project taking part; targets are chosen among the versions they lock.
        strategy: ``newest`` (the newest version already in use, so already in the cache) or
            ``majority`` (the version most projects lock, newest on ties).
        skip: ``(project, name, version)`` moves already known to fail (e.g. blocked in an
            earlier pass); those candidates are left out, and so is any newer candidate of the
            same package in that project when the refused move was upward (a newer release
            rarely drops the requirement that refused an older one: not asking uv again keeps
            later passes and the next run from repeating the same refusal).
        uploaded: earliest upload time of each ``(index, name, version)`` (aware datetimes),
            checked against each project's exclude-newer cutoff.
        allow_downgrade: how far a project may move down (default ``none``: never).
        anchor: ``(index, name) -> version`` forced as targets (see :func:`anchors`).

    Returns a :class:`Plan`. Raises ValueError on an unknown strategy or policy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if allow_downgrade not in DOWNGRADE_POLICIES:
        raise ValueError(f"unknown downgrade policy {allow_downgrade!r}")
    targets = choose_targets(locks, strategy, anchor)
    skipped = set(skip)
    refused: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for project, name, version in skipped:
        refused[(project, name)].append(version)
    plans = []
    for lock in locks:
        plan = plan_project(lock, targets, uploaded, allow_downgrade)
        pins = []
        for pin in plan.pins:
            low = [version_key(v) for v in refused.get((lock.project, pin.name), ())
                   if version_key(v) > version_key(pin.current)]
            kept = tuple(v for v in pin.candidates if (lock.project, pin.name, v) not in skipped
                         and not (low and version_key(v) >= min(low)))
            if kept:
                pins.append(dataclasses.replace(pin, candidates=kept))
        plans.append(dataclasses.replace(plan, pins=tuple(pins)))
    return Plan(strategy, tuple(targets), tuple(plans))
