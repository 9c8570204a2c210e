"""Scoring, downgrade policy, byte weighting and backups recovery: pure units, no uv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from devkit.align import lockfile, planner, scoring
from devkit.align.backups import Backups
from devkit.align.lockfile import Lock, LockedPackage

PYPI = "https://pypi.org/simple"


def _lock(project: str, *packages: tuple[str, str, int]) -> Lock:
    return Lock(Path(project) / "uv.lock", ">=3.11",
                tuple(sorted(LockedPackage(PYPI, n, v, (), size) for n, v, size in packages)))


def test_a_move_that_adds_more_bytes_than_it_frees_is_rejected() -> None:
    a = _lock("a", ("child", "1.0", 1_000), ("parent", "1.0", 1_000))
    b = _lock("b", ("child", "2.0", 1_000))
    state = scoring.StoreState([a, b])
    # the parent's next release is new to the store and heavy: frees 2 kB, adds 50 kB
    heavy = _lock("a", ("child", "2.0", 1_000), ("parent", "1.1", 50_000))
    score = state.score(a, heavy)
    assert (score.added_pairs, score.removed_pairs) == (1, 2)
    assert (score.added_bytes, score.freed_bytes) == (50_000, 2_000)
    assert not score.acceptable and "adds 1 new" in score.explain()
    light = _lock("a", ("child", "2.0", 1_000), ("parent", "1.1", 900))
    assert state.score(a, light).acceptable  # frees 2 kB, adds 0.9 kB: the store gets lighter


def test_a_plain_alignment_step_is_always_acceptable() -> None:
    a = _lock("a", ("x", "1.0", 10))
    b = _lock("b", ("x", "1.0", 10))
    c = _lock("c", ("x", "2.0", 10))
    state = scoring.StoreState([a, b, c])
    score = state.score(a, _lock("a", ("x", "2.0", 10)))
    assert score.added_pairs == 0 and score.removed_pairs == 0 and score.acceptable
    assert score.freed_bytes == 5  # its fair share: two users of x 1.0


def test_bytes_weigh_more_than_pair_counts() -> None:
    a = _lock("a", ("big", "1.0", 10_000_000), ("small", "1.0", 10))
    state = scoring.StoreState([a, _lock("b", ("big", "2.0", 10_000_000))])
    # frees one heavy pair, adds two light new ones: fewer pairs would say no, bytes say yes
    after = _lock("a", ("big", "2.0", 10_000_000), ("small", "1.1", 10), ("extra", "1.0", 10))
    score = state.score(a, after)
    assert score.added_pairs > score.removed_pairs - 1 and score.acceptable


def test_downgrade_policy() -> None:
    allowed = planner.downgrade_allowed
    assert allowed("1.2.3", "2.0", "none")  # up is always fine
    assert not allowed("1.2.3", "1.2.1", "none")
    assert allowed("1.2.3", "1.2.1", "patch") and not allowed("1.2.3", "1.1.9", "patch")
    assert allowed("1.2.3", "1.1.9", "minor") and not allowed("1.2.3", "0.9", "minor")
    assert allowed("1.2.3", "0.9", "major")
    old = _lock("a", ("x", "1.2.3", 1), ("y", "2.0", 1))
    new = _lock("a", ("x", "1.2.1", 1), ("y", "2.1", 1))
    assert scoring.downgrades(old, new) == [("x", "1.2.3", "1.2.1")]
    assert scoring.forbidden_downgrades(old, new, "none") == [("x", "1.2.3", "1.2.1")]
    assert scoring.forbidden_downgrades(old, new, "patch") == []


def test_planner_never_plans_a_downgrade_by_default_and_anchors_when_asked() -> None:
    locks = [planner.ProjectLock("a", (LockedPackage(PYPI, "ruff", "0.12.8", (), 5),)),
             planner.ProjectLock("b", (LockedPackage(PYPI, "ruff", "0.16.3", (), 5),))]
    plan = planner.make_plan(locks)
    assert [p.candidates for p in plan.for_project("a").pins] == [("0.16.3",)]
    assert plan.for_project("b").pins == ()
    anchor = planner.anchors(locks, {("a", "ruff")})
    assert anchor == {(PYPI, "ruff"): "0.12.8"}
    down = planner.make_plan(locks, allow_downgrade="minor", anchor=anchor)
    assert [p.candidates for p in down.for_project("b").pins] == [("0.12.8",)]
    assert planner.make_plan(locks, allow_downgrade="patch", anchor=anchor).for_project(
        "b").pins == ()


def test_work_is_ordered_by_bytes_at_stake() -> None:
    def pkg(name: str, version: str, size: int) -> LockedPackage:
        return LockedPackage(PYPI, name, version, (), size)

    locks = [planner.ProjectLock("a", (pkg("light", "1", 10), pkg("torch", "1", 900_000_000))),
             planner.ProjectLock("b", (pkg("light", "2", 10), pkg("torch", "2", 900_000_000)))]
    plan = planner.make_plan(locks)
    assert [t.name for t in plan.targets] == ["torch", "light"]
    assert plan.targets[0].bytes == 900_000_000
    assert [p.name for p in plan.for_project("a").pins] == ["torch", "light"]


def test_wheel_size_picks_the_wheel_this_machine_installs() -> None:
    best = next(iter(sys_tags()))
    mine = f"pkg-1.0-{best.interpreter}-{best.abi}-{best.platform}.whl"
    wheels = [{"url": f"https://x/{mine}", "size": 111},
              {"url": "https://x/pkg-1.0-cp39-cp39-win_amd64.whl", "size": 999},
              {"url": "https://x/pkg-1.0-py3-none-any.whl", "size": 555}]
    assert lockfile.wheel_size(wheels) == 111
    assert lockfile.wheel_size(wheels[1:]) == 555  # the generic wheel fits too
    # no wheel fits this machine: the largest, so a heavy package never weighs nothing
    assert lockfile.wheel_size([{"url": "https://x/p-1-cp39-cp39-win_amd64.whl", "size": 7},
                                {"url": "https://x/p-1-cp39-cp39-win32.whl", "size": 9}]) == 9
    assert lockfile.wheel_size([], {"size": 42}) == 42
    assert lockfile.wheel_size([]) == 0


def test_summary_counts_distinct_wheel_bytes_once() -> None:
    a = _lock("a", ("x", "1.0", 100), ("y", "1.0", 10))
    b = _lock("b", ("x", "1.0", 100), ("y", "2.0", 20))
    summary = lockfile.summarize([a, b])
    assert summary.distinct_pairs == 3 and summary.excess_pairs == 1
    assert summary.distinct_bytes == 130


def test_recovery_never_recreates_a_deleted_project(tmp_path: Path) -> None:
    backups = tmp_path / "align-backups"
    backups.mkdir()
    gone = tmp_path / "gone"
    (backups / "0123456789abcdef.json").write_text(
        json.dumps({"path": str(gone / "uv.lock"), "lock": "version = 1\n"}))
    (backups / ".0123456789abcdef.json.x1y2.tmp").write_text("half a copy")
    notes = Backups(backups).recover()
    assert not gone.exists()
    assert len(notes) == 1 and "is gone" in notes[0]
    assert list(backups.iterdir()) == []


def test_recovery_restores_an_unreadable_lock(tmp_path: Path) -> None:
    backups = tmp_path / "align-backups"
    backups.mkdir()
    project = tmp_path / "p"
    project.mkdir()
    (project / "uv.lock").write_text("version = [")
    (backups / "x.json").write_text(json.dumps({"path": str(project / "uv.lock"),
                                                "lock": "version = 1\n"}))
    [note] = Backups(backups).recover()
    assert "restored" in note and (project / "uv.lock").read_text() == "version = 1\n"


@pytest.mark.parametrize("strategy", ["oldest"])
def test_unknown_strategy_is_an_error(strategy: str) -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        planner.make_plan([], strategy=strategy)  # type: ignore[arg-type]
