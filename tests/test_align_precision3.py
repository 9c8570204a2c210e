"""align's precision, third round: a forked package dragged down is a downgrade, and a package
align did not pin stays on a version in use when one fits. Real uv against a local index of
tiny wheels, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import (
    index_of,
    locked_project,
    locked_versions,
    run_uv,
)


# -- 1. a fork branch moved down is a downgrade ------------------------------------------------
@pytest.fixture
def fork_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyreq 2.0 needs tinyidna<2, tinyreq 1.0 and 3.0 take any: pinning tinyidna 2.0 drags
    the branch that may not have tinyreq 3 down to 1.0 (as requests 2.27.1 -> 2.15.1)."""
    return index_of(tmp_path, monkeypatch, "fork", [
        ("tinyidna", "1.0", ()), ("tinyidna", "2.0", ()),
        ("tinyreq", "1.0", ("tinyidna",)), ("tinyreq", "2.0", ("tinyidna<2",)),
        ("tinyreq", "3.0", ("tinyidna",))])


def _forked(root: Path) -> Path:
    forked = locked_project(root, "forked", ["tinyreq<3 ; python_version < '3.12'",
                                             "tinyreq ; python_version >= '3.12'"], "tinyidna==1.0")
    assert locked_versions(forked, "tinyreq") == {"2.0", "3.0"}
    assert locked_versions(forked, "tinyidna") == {"1.0"}
    # uv itself takes the older-Python branch down to tinyreq 1.0 for tinyidna 2.0
    proc = run_uv(forked, "lock", "--dry-run", "-P", "tinyidna==2.0")
    assert proc.returncode == 0 and "tinyreq v2.0, v3.0 -> v1.0, v3.0" in proc.stderr, proc.stderr
    return forked


def test_a_fork_branch_dragged_down_is_refused_as_a_downgrade(tmp_path, devkit, fork_index) -> None:
    root = tmp_path / "p"
    forked = _forked(root)
    other = locked_project(root, "other", ["tinyidna", "tinyreq==1.0"])
    assert locked_versions(other, "tinyidna") == {"2.0"}
    assert devkit("projects", "add", forked, other)[0] == 0
    before = (forked / "uv.lock").read_bytes()

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert (forked / "uv.lock").read_bytes() == before, doc
    assert doc["downgrades"] == []
    [blocked] = [b for b in doc["blocked"] if b["name"] == "tinyidna"]
    assert blocked["kind"] == "downgrade", blocked
    assert "tinyreq 2.0 -> 1.0" in blocked["reason"], blocked


def test_a_fork_branch_moved_down_is_reported_when_the_policy_allows(
        tmp_path, devkit, fork_index) -> None:
    root = tmp_path / "p"
    forked = _forked(root)
    other = locked_project(root, "other", ["tinyidna", "tinyreq==1.0"])
    assert devkit("projects", "add", forked, other)[0] == 0

    code, out, err = devkit("align", "--json", "--allow-downgrade", "major")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(forked, "tinyidna") == {"2.0"}, doc
    assert locked_versions(forked, "tinyreq") == {"1.0", "3.0"}
    assert {"project": "forked", "name": "tinyreq", "before": ["2.0", "3.0"],
            "after": ["1.0", "3.0"]} in doc["downgrades"], doc["downgrades"]


def test_moved_down_compares_a_fork_by_its_ends() -> None:
    from devkit.align.planner import moved_down

    assert moved_down(["2.27.1", "2.31.0", "2.32.4"], ["2.15.1", "2.32.4"]) == [("2.27.1", "2.15.1")]
    assert moved_down(["1.0", "2.0"], ["1.5"]) == [("2.0", "1.5")]  # the newest branch fell
    assert moved_down(["1.0", "2.0"], ["1.5", "2.0"]) == []  # the older branch moved up
    assert moved_down(["2.0"], ["1.0"]) == [("2.0", "1.0")]
    assert moved_down(["2.0"], ["2.1"]) == [] and moved_down([], ["1.0"]) == []
# -- 2. a package align did not pin stays on a version in use when one fits -------------------
@pytest.fixture
def drag_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyx 2.0 needs tinypar>=2; tinypar 2.0 brings tinykid in, whose newest release is 3.0."""
    return index_of(tmp_path, monkeypatch, "drag", [
        ("tinykid", "1.0", ()), ("tinykid", "2.0", ()), ("tinykid", "3.0", ()),
        ("tinypar", "1.0", ()), ("tinypar", "2.0", ("tinykid",)),
        ("tinyx", "1.0", ()), ("tinyx", "2.0", ("tinypar>=2",))])


def _kids(*paths: Path) -> set[str]:
    return {v for path in paths for v in locked_versions(path, "tinykid")}


def test_a_dragged_child_lands_on_a_version_in_use(tmp_path, devkit, drag_index) -> None:
    root = tmp_path / "p"
    moving = locked_project(root, "moving", ["tinyx", "tinypar"], "tinyx==1.0", "tinypar==1.0")
    assert locked_versions(moving, "tinykid") == set()
    ahead = locked_project(root, "ahead", ["tinyx"], "tinykid==2.0")
    behind = locked_project(root, "behind", ["tinykid"], "tinykid==1.0")
    assert (locked_versions(ahead, "tinyx"), _kids(ahead), _kids(behind)) == ({"2.0"}, {"2.0"}, {"1.0"})
    # plain uv takes tinykid's newest release, which nobody locks
    proc = run_uv(moving, "lock", "--dry-run", "-P", "tinyx==2.0", "-P", "tinypar==2.0")
    assert proc.returncode == 0 and "tinykid v3.0" in proc.stderr, proc.stderr
    assert devkit("projects", "add", moving, ahead, behind)[0] == 0

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(moving, "tinyx") == {"2.0"}, doc
    assert _kids(moving, ahead, behind) <= {"1.0", "2.0"}, doc
    assert locked_versions(moving, "tinykid") == {"2.0"}
    assert run_uv(moving, "lock", "--check").returncode == 0


