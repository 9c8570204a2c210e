"""Parallel syncs never unpack one wheel twice into the shared cache.

Two uv processes that install the same not-yet-cached wheel at once may both unpack it into
``archive-v0`` (uv 0.13.9 from PyPI: four parallel ``uv sync --locked`` of one wheel left four
copies; venvs then split between them). ``devkit sync`` first syncs, one at a time, the
workspaces whose lock lists a wheel the cache lacks, and the rest in parallel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import locked_project

from devkit.store import Store


def _copies(cache: Path, dist: str) -> list[Path]:
    return sorted(cache.glob(f"archive-v0/*/{dist}.dist-info"))


def test_workspaces_needing_uncached_wheels_are_synced_one_at_a_time(
        tmp_path: Path, devkit, store: Store) -> None:
    root = tmp_path / "p"
    cold = [locked_project(root, f"cold{i}", ["tinyshared", "tinyother"]) for i in range(3)]
    assert devkit("projects", "add", *cold)[0] == 0
    code, out, err = devkit("sync", "--all", "--jobs", "3", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # all three needed tinyshared and tinyother, which the cache lacked: the first synced alone,
    # the others waited for it, then found nothing missing
    waited = [w["path"] for w in doc["workspaces"] if w["waited_for_cache"]]
    assert waited == [str(cold[1]), str(cold[2])]
    assert all(w["status"] == "synced" for w in doc["workspaces"])
    assert len(_copies(store.uv_cache_dir, "tinyshared-2.0")) == 1
    assert len(_copies(store.uv_cache_dir, "tinyother-2.0")) == 1
    # warm: everything cached, nothing waits
    more = [locked_project(root, f"warm{i}", ["tinyshared"], "tinyshared==2.0") for i in range(2)]
    assert devkit("projects", "add", *more)[0] == 0
    code, out, err = devkit("sync", "--all", "--jobs", "3", "--json")
    assert code == 0, (out, err)
    assert not any(w["waited_for_cache"] for w in json.loads(out)["workspaces"])


@pytest.mark.network
def test_parallel_sync_from_an_empty_cache_unpacks_each_wheel_once(
        tmp_path: Path, devkit, monkeypatch, store: Store) -> None:
    monkeypatch.delenv("UV_OFFLINE")
    monkeypatch.delenv("UV_DEFAULT_INDEX")
    deps = ["pip==24.0", "six==1.16.0"]  # small, pure-Python, on PyPI for years
    projects = [locked_project(tmp_path / "p", f"p{i}", deps) for i in range(4)]
    cache = store.uv_cache_dir
    for path in cache.glob("archive-v0/*"):
        raise AssertionError(f"locking unpacked {path}: the cache is not empty")
    assert devkit("projects", "add", *projects)[0] == 0
    code, out, err = devkit("sync", "--all", "--jobs", "4")
    assert code == 0, (out, err)
    assert len(_copies(cache, "pip-24.0")) == 1
    assert len(_copies(cache, "six-1.16.0")) == 1
