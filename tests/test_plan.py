"""The pure planner on small hand-made locks: no uv, no files."""

from __future__ import annotations

import pytest

from devkit.align.lockfile import LockedPackage
from devkit.align.planner import (
    ProjectLock,
    Requirement,
    choose_targets,
    excess_floor,
    make_plan,
    rank,
)

PYPI = "https://pypi.org/simple"
MIRROR = "https://mirrors.example.org/pypi/simple"
TORCH = "https://download.pytorch.org/whl/cpu"


def lock(project: str, *packages: tuple[str, str] | tuple[str, str, str],
         requires: tuple[Requirement, ...] = ()) -> ProjectLock:
    """``lock("a", ("rich", "13.0"), ("numpy", "2.0", MIRROR))``."""
    pkgs = []
    for item in packages:
        name, version, index = (*item, PYPI) if len(item) == 2 else item
        pkgs.append(LockedPackage(index, name, version))
    return ProjectLock(project, tuple(sorted(pkgs)), requires)


def pins(plan, project: str) -> dict[str, tuple[str, ...]]:
    return {p.name: p.candidates for p in plan.for_project(project).pins}


def test_newest_in_use_is_the_target_and_everyone_moves() -> None:
    plan = make_plan([lock("a", ("rich", "13.0")), lock("b", ("rich", "13.9")),
                      lock("c", ("rich", "13.5"))])
    [target] = plan.targets
    assert (target.name, target.version, target.ranked) == ("rich", "13.9", ("13.9", "13.5", "13.0"))
    assert pins(plan, "a") == {"rich": ("13.9", "13.5")}  # next-best versions as fallbacks
    assert pins(plan, "c") == {"rich": ("13.9",)}
    assert pins(plan, "b") == {}


def test_single_version_names_get_no_target() -> None:
    plan = make_plan([lock("a", ("rich", "13.0")), lock("b", ("rich", "13.0"), ("click", "8.1"))])
    assert plan.targets == () and plan.pins == 0


def test_pep440_order_not_string_order() -> None:
    plan = make_plan([lock("a", ("x", "1.10")), lock("b", ("x", "1.9")), lock("c", ("x", "1.10rc1"))])
    assert plan.targets[0].ranked == ("1.10", "1.10rc1", "1.9")


def test_majority_strategy_prefers_the_most_used_then_newest() -> None:
    locks = [lock("a", ("x", "1.0")), lock("b", ("x", "1.0")), lock("c", ("x", "2.0")),
             lock("d", ("y", "1.0")), lock("e", ("y", "2.0"))]
    plan = make_plan(locks, strategy="majority")
    targets = {t.name: t.version for t in plan.targets}
    assert targets == {"x": "1.0", "y": "2.0"}  # tie on y: newest wins
    assert pins(plan, "c") == {}  # a downgrade: only when the policy allows it
    plan = make_plan(locks, strategy="majority", allow_downgrade="major")
    assert pins(plan, "c") == {"x": ("1.0",)}


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        make_plan([lock("a", ("x", "1"))], strategy="oldest")


def test_mirror_is_its_own_group() -> None:
    # the same name from a mirror is another cache entry: never pinned to a PyPI-only version
    plan = make_plan([lock("a", ("x", "1.0", MIRROR)), lock("b", ("x", "2.0")),
                      lock("c", ("x", "1.5", MIRROR))])
    groups = {(t.index, t.name): t.version for t in plan.targets}
    assert groups == {(MIRROR, "x"): "1.5"}
    assert pins(plan, "a") == {"x": ("1.5",)}
    assert pins(plan, "b") == {}


def test_two_indexes_in_one_lock() -> None:
    a = lock("a", ("torch", "2.1", TORCH), ("numpy", "1.26"))
    b = lock("b", ("torch", "2.3", TORCH), ("numpy", "2.0"))
    c = lock("c", ("torch", "2.4"), ("numpy", "1.26"))
    plan = make_plan([a, b, c])
    assert pins(plan, "a") == {"torch": ("2.3",), "numpy": ("2.0",)}
    assert pins(plan, "c") == {"numpy": ("2.0",)}


def test_fork_is_never_collapsed() -> None:
    forked = ProjectLock("a", (
        LockedPackage(PYPI, "numpy", "2.2", ("python_full_version < '3.11'",)),
        LockedPackage(PYPI, "numpy", "2.4", ("python_full_version >= '3.11'",)),
    ))
    plan = make_plan([forked, lock("b", ("numpy", "2.4")), lock("c", ("numpy", "2.2"))])
    assert pins(plan, "a") == {}
    [blocked] = plan.for_project("a").blocked
    assert blocked.kind == "fork" and "2.2, 2.4" in blocked.reason
    assert pins(plan, "c") == {"numpy": ("2.4",)}


def test_fork_versions_count_as_in_use() -> None:
    forked = ProjectLock("a", (LockedPackage(PYPI, "numpy", "2.2", ("m1",)),
                               LockedPackage(PYPI, "numpy", "2.5", ("m2",))))
    plan = make_plan([forked, lock("b", ("numpy", "2.4"))])
    assert plan.targets[0].version == "2.5"
    assert pins(plan, "b") == {"numpy": ("2.5",)}


def test_own_requirement_blocks_the_target_without_uv() -> None:
    pinned = lock("a", ("fastapi", "0.104.1"),
                  requires=(Requirement("fastapi", "==0.104.1"),))
    plan = make_plan([pinned, lock("b", ("fastapi", "0.110.0"))])
    assert pins(plan, "a") == {}
    [blocked] = plan.for_project("a").blocked
    assert blocked.kind == "requirement"
    assert blocked.reason == "project a requires fastapi==0.104.1"


def test_own_requirement_leaves_a_reachable_next_best() -> None:
    capped = lock("a", ("x", "1.0"), requires=(Requirement("x", "<2", kind="dev"),))
    plan = make_plan([capped, lock("b", ("x", "2.0")), lock("c", ("x", "1.5"))])
    assert pins(plan, "a") == {"x": ("1.5",)}
    [pin] = plan.for_project("a").pins
    assert pin.target == "2.0" and pin.spec() == "x==1.5"
    assert plan.for_project("a").blocked[0].reason == "project a requires (dev) x<2"


def test_constraint_in_the_manifest_is_honoured() -> None:
    a = lock("a", ("x", "1.0"), requires=(Requirement("x", "<1.5", kind="constraint"),))
    plan = make_plan([a, lock("b", ("x", "2.0"))])
    assert plan.for_project("a").blocked[0].reason == "project a constrains x<1.5"


def test_skip_removes_moves_known_to_fail() -> None:
    locks = [lock("a", ("x", "1.0")), lock("b", ("x", "2.0")), lock("c", ("x", "1.5"))]
    plan = make_plan(locks, skip=[("a", "x", "2.0")])
    assert pins(plan, "a") == {"x": ("1.5",)}
    plan = make_plan(locks, skip=[("a", "x", "2.0"), ("a", "x", "1.5")])
    assert pins(plan, "a") == {}


def test_rank_and_choose_targets_are_deterministic() -> None:
    import collections

    counts = collections.Counter({"1.0": 2, "2.0": 2, "1.5": 3})
    assert rank(counts, counts, "majority") == ["1.5", "2.0", "1.0"]
    locks = [lock("a", ("b", "1"), ("a", "1")), lock("b", ("b", "2"), ("a", "2"))]
    assert [t.name for t in choose_targets(locks)] == ["a", "b"]


def test_exclude_newer_cutoff_blocks_versions_uploaded_later() -> None:
    import dataclasses
    import datetime as dt

    utc = dt.UTC
    cutoff = dt.datetime(2024, 6, 2, tzinfo=utc)
    a = dataclasses.replace(lock("a", ("rich", "13.7.1")), exclude_newer=cutoff)
    uploaded = {(PYPI, "rich", "13.9.4"): dt.datetime(2024, 11, 1, tzinfo=utc),
                (PYPI, "rich", "13.8.0"): dt.datetime(2024, 5, 1, tzinfo=utc)}
    locks = [a, lock("b", ("rich", "13.9.4")), lock("c", ("rich", "13.8.0"))]
    plan = make_plan(locks, uploaded=uploaded)
    assert pins(plan, "a") == {"rich": ("13.8.0",)}
    [blocked] = plan.for_project("a").blocked
    assert blocked.kind == "exclude-newer" and "2024-06-02" in blocked.reason
    # a per-package cutoff overrides the global one
    b = dataclasses.replace(a, exclude_newer_package=(("rich", dt.datetime(2025, 1, 1, tzinfo=utc)),))
    assert pins(make_plan([b, *locks[1:]], uploaded=uploaded), "a") == {"rich": ("13.9.4", "13.8.0")}


def test_excess_floor_counts_what_requirements_and_forks_keep() -> None:
    free = lock("a", ("x", "1.0"))
    capped = lock("a", ("x", "1.0"), requires=(Requirement("x", "<2"),))
    newer = lock("b", ("x", "2.0"))
    assert excess_floor([free, newer]) == 0  # a moves up to 2.0
    assert excess_floor([capped, newer]) == 1  # a cannot leave 1.0, b may not move down
    assert excess_floor([capped, newer], "major") == 0  # b may come down to 1.0
    assert excess_floor([capped, newer], "patch") == 1  # 2.0 -> 1.0 is more than a patch step
    forked = lock("c", ("x", "1.0"), ("x", "3.0"))
    assert excess_floor([capped, newer, forked]) == 1  # 1.0 and 3.0 stay; b moves up to 3.0
    mirror = lock("d", ("x", "3.0", MIRROR))
    assert excess_floor([free, lock("b", ("x", "3.0")), mirror]) == 1  # another index: a pair


def test_a_refused_upward_move_skips_newer_candidates_too() -> None:
    locks = [lock("a", ("x", "1.0")), lock("b", ("x", "1.5")), lock("c", ("x", "2.0"))]
    assert pins(make_plan(locks), "a") == {"x": ("2.0", "1.5")}
    # 1.5 was refused: 2.0 is not asked either; another project is not affected
    plan = make_plan(locks, skip=[("a", "x", "1.5")])
    assert pins(plan, "a") == {} and pins(plan, "b") == {"x": ("2.0",)}
    # only 2.0 was refused: 1.5 is still worth a try
    assert pins(make_plan(locks, skip=[("a", "x", "2.0")]), "a") == {"x": ("1.5",)}


def test_excess_floor_takes_a_resolver_s_proof() -> None:
    free = lock("a", ("x", "1.0"))
    newer = lock("b", ("x", "2.0"))

    def proof(project: ProjectLock, name: str, version: str) -> bool:
        return not (project.project == "a" and (name, version) == ("x", "2.0"))

    assert excess_floor([free, newer]) == 0
    assert excess_floor([free, newer], reachable=proof) == 1
