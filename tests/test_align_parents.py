"""Releasing blocking parents upward, end to end: real uv against a local index of tiny wheels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import (
    build_wheel,
    locked_project,
    locked_versions,
    run_uv,
    write_simple_index,
)

from devkit import uv


@pytest.fixture
def parent_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``tinyparent`` 1.0 pins ``tinyshared<2``, its next release allows 2.0; ``tinyold`` 1.0
    pins ``tinyshared<2`` and only its *older* release 0.5 allows 2.0."""
    wheels = tmp_path / "parent-wheels"
    built = [build_wheel(wheels, "tinyshared", v) for v in ("1.0", "1.1", "2.0")]
    built += [build_wheel(wheels, "tinyparent", "1.0", requires=("tinyshared<2",)),
              build_wheel(wheels, "tinyparent", "1.1", requires=("tinyshared",)),
              build_wheel(wheels, "tinyold", "0.5", requires=("tinyshared",)),
              build_wheel(wheels, "tinyold", "1.0", requires=("tinyshared<2",))]
    url = write_simple_index(tmp_path / "parent-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


def test_blocking_parent_moves_up_and_the_child_aligns(tmp_path, devkit, parent_index) -> None:
    root = tmp_path / "p"
    held = locked_project(root, "held", ["tinyparent", "tinyshared"], "tinyparent==1.0", "tinyshared==1.1")
    top = locked_project(root, "top", ["tinyshared"])
    assert locked_versions(top, "tinyshared") == {"2.0"}
    code, out, err = devkit("projects", "add", held, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(held, "tinyshared") == {"2.0"}
    assert locked_versions(held, "tinyparent") == {"1.1"}  # up, never down
    assert doc["released"] == [{"project": "held", "name": "tinyparent", "before": "1.0",
                                "after": "1.1", "for": "tinyshared"}]
    assert doc["after"]["excess_pairs"] == 0 and doc["blocked"] == []
    assert doc["downgrades"] == []
    assert run_uv(held, "lock", "--check").returncode == 0

    code, out, _ = devkit("align", "--check")
    assert code == 0, out
    code, out, _ = devkit("align")
    assert "Parents moved up" not in out  # a second run has nothing to do


def test_parent_is_never_moved_down(tmp_path, devkit, parent_index) -> None:
    root = tmp_path / "p"
    held = locked_project(root, "held", ["tinyold", "tinyshared"], "tinyold==1.0", "tinyshared==1.1")
    top = locked_project(root, "top", ["tinyshared"])
    before = (held / "uv.lock").read_bytes()
    code, _, err = devkit("projects", "add", held, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # only tinyold 0.5 allows tinyshared 2.0: a bare `-P tinyold` would take it; align must not
    assert (held / "uv.lock").read_bytes() == before
    [blocked] = doc["blocked"]
    assert blocked["kind"] == "conflict" and "tinyold" in blocked["reason"]
    assert "depends on tinyshared<2" in blocked["reason"]
    assert blocked["reason"].endswith("[moving tinyold up did not help]")
    assert doc["released"] == []


def test_uv_output_parsers_on_real_uv_output(tmp_path, parent_index) -> None:
    path = locked_project(tmp_path, "p", ["tinyparent", "tinyshared"], "tinyparent==1.0",
                    "tinyshared==1.1")
    conflict = run_uv(path, "lock", "-P", "tinyparent==1.0", "-P", "tinyshared==2.0")
    assert conflict.returncode == 1
    assert uv.is_conflict(conflict.stderr)
    assert uv.conflict_parents(conflict.stderr) == ["tinyparent"]
    assert uv.mentions(conflict.stderr, "tinyshared==2.0")
    assert not uv.mentions(conflict.stderr, "tinyshared==2.0.1")
    reason = uv.conflict_reason(conflict.stderr, "p")
    assert reason.startswith("Because tinyparent") and "\n" not in reason
    assert "project p depends on tinyparent==1.0" in reason and "your project" not in reason

    dry = run_uv(path, "lock", "--dry-run", "-P", "tinyparent>=1.0", "-P", "tinyshared==2.0")
    assert dry.returncode == 0, dry.stderr
    assert sorted(uv.lock_changes(dry.stderr)) == [("tinyparent", ["1.0"], ["1.1"]),
                                                   ("tinyshared", ["1.1"], ["2.0"])]
    (path / "pyproject.toml").write_text((path / "pyproject.toml").read_text().replace(
        '"tinyshared"]', '"tinyshared", "tinyold"]'))
    stale = run_uv(path, "lock", "--check")
    assert stale.returncode == 1 and uv.is_stale(stale.stderr)
    added = run_uv(path, "lock", "--dry-run")
    assert ("tinyold", [], ["1.0"]) in uv.lock_changes(added.stderr)


def test_conflict_parents_reads_uv_wording() -> None:
    # sentences as uv 0.13 prints them on the real corpus
    text = ("  cause: Because opentelemetry-sdk==1.32.1 depends on opentelemetry-api==1.32.1 and "
            "project saleor depends on opentelemetry-api==1.40.0, we can conclude that …\n"
            "      And because slacktokens>=0.2.6 depends on pycookiecheat==0.8.0 and "
            "django-stubs[compatible-mypy]==5.2.2 depends on mypy>=1.13,<1.18 and "
            "saleor:dev depends on django-stubs, we can conclude …")
    assert uv.conflict_parents(text) == ["opentelemetry-sdk", "slacktokens", "django-stubs"]
