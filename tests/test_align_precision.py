"""align's precision: it never leaves a project with a fork its lock did not have, and a move
that drags a package along takes a version in use before anything newer. Real uv, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import build_wheel, locked_project, locked_versions, write_simple_index

FORKING = ("tinyshared>=2; python_version>='3.12'", "tinyshared<2; python_version<'3.12'")


@pytest.fixture
def fork_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyparent 2.0 needs tinyshared<2 below Python 3.12 and >=2 from 3.12: a project with
    ``requires-python >=3.11`` that takes it locks tinyshared twice (a fork)."""
    wheels = tmp_path / "fork-wheels"
    built = [build_wheel(wheels, "tinyshared", v) for v in ("1.0", "2.0")]
    built.append(build_wheel(wheels, "tinyparent", "1.0", requires=("tinyshared",)))
    built.append(build_wheel(wheels, "tinyparent", "2.0", requires=FORKING))
    url = write_simple_index(tmp_path / "fork-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


def test_align_never_creates_a_fork(tmp_path, devkit, fork_index) -> None:
    root = tmp_path / "p"
    single = locked_project(root, "single", ["tinyparent", "tinyshared"],
                            "tinyparent==1.0", "tinyshared==1.0")
    forked = locked_project(root, "forked", ["tinyparent", "tinyshared"])
    assert locked_versions(forked, "tinyshared") == {"1.0", "2.0"}  # forked by its own choice
    assert devkit("projects", "add", single, forked)[0] == 0

    code, out, _ = devkit("align", "--dry-run", "--json")
    assert code == 0 and not any(len(v) > 1 for p in json.loads(out)["projects"]
                                 if p["name"] == "single" for c in p["changes"]
                                 for v in [c["after"]]), out
    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    assert len(locked_versions(single, "tinyshared")) == 1, out
    # tinyshared alone moves (no fork); tinyparent 2.0 would fork it below Python 3.12: held
    assert locked_versions(single, "tinyshared") == {"2.0"}
    assert locked_versions(single, "tinyparent") == {"1.0"}
    doc = json.loads(out)
    assert [b["name"] for b in doc["blocked"] if b["project"] == "single"] == ["tinyparent"]


@pytest.fixture
def drag_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyparent 2.0 brings a new dependency, tinychild, released as 1.0, 1.5 and 2.0."""
    wheels = tmp_path / "drag-wheels"
    built = [build_wheel(wheels, "tinychild", v) for v in ("1.0", "1.5", "2.0")]
    built.append(build_wheel(wheels, "tinyparent", "1.0"))
    built.append(build_wheel(wheels, "tinyparent", "2.0", requires=("tinychild",)))
    url = write_simple_index(tmp_path / "drag-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


def test_a_dragged_package_takes_a_version_in_use_before_anything_newer(tmp_path, devkit,
                                                                          drag_index) -> None:
    root = tmp_path / "p"
    behind = locked_project(root, "behind", ["tinyparent"], "tinyparent==1.0")
    ahead = locked_project(root, "ahead", ["tinyparent"], "tinychild==1.0")
    assert locked_versions(ahead, "tinyparent") == {"2.0"}
    assert locked_versions(ahead, "tinychild") == {"1.0"}
    assert devkit("projects", "add", behind, ahead)[0] == 0

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    # uv alone would take tinychild 2.0, which nobody uses; 1.0 is in use and fits
    assert locked_versions(behind, "tinyparent") == {"2.0"}, out
    assert locked_versions(behind, "tinychild") == {"1.0"}
    assert json.loads(out)["after"]["spread"] == {}
