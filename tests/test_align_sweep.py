"""The sweep: every upward pin as a range in one ``uv lock``, end to end against a local index."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from devkit.align import lockfile


@pytest.fixture
def sweep_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``tinyshared`` 1.0/1.1/1.5/2.0, ``tinycap`` 1.0 (needs ``tinyshared<1.6``, no newer
    release), ``tinyother`` 1.0/1.1, ``tinychain`` 1.0 (``tinyleaf<2``) / 1.1 (any), ``tinyleaf``
    1.0/2.0."""
    wheels = tmp_path / "sweep-wheels"
    built = [build_wheel(wheels, "tinyshared", v) for v in ("1.0", "1.1", "1.5", "2.0")]
    built += [build_wheel(wheels, "tinyother", v) for v in ("1.0", "1.1")]
    built += [build_wheel(wheels, "tinyleaf", v) for v in ("1.0", "2.0")]
    built += [build_wheel(wheels, "tinycap", "1.0", requires=("tinyshared<1.6",)),
              build_wheel(wheels, "tinychain", "1.0", requires=("tinyleaf<2",)),
              build_wheel(wheels, "tinychain", "1.1", requires=("tinyleaf",))]
    url = write_simple_index(tmp_path / "sweep-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


@pytest.fixture
def uv_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``DEVKIT_UV`` as a wrapper writing each ``uv lock`` call's arguments to the yielded file."""
    log = tmp_path / "uv-calls.txt"
    script = tmp_path / "uv-logging"
    script.write_text(f'#!/bin/sh\n[ "$1" = lock ] && echo "$*" >> "{log}"\n'
                      f'exec "{uv.find_uv()}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("DEVKIT_UV", str(script))
    uv.find_uv.cache_clear()  # found once per process
    yield log
    uv.find_uv.cache_clear()


def _locks(log: Path) -> list[list[str]]:
    """The ``--upgrade-package`` values of each logged ``uv lock`` call."""
    calls = []
    for line in log.read_text().splitlines():
        words = line.split()
        calls.append([words[i + 1] for i, w in enumerate(words) if w == "--upgrade-package"])
    return calls


def _runs(doc: dict[str, object], name: str) -> int:
    projects = doc["projects"]
    assert isinstance(projects, list)
    return int(next(p["uv_runs"] for p in projects if p["name"] == name))


def test_sweep_moves_parent_and_child_together_in_one_uv_run(tmp_path, devkit, sweep_index,
                                                             uv_calls) -> None:
    root = tmp_path / "p"
    # tinychain 1.0 holds tinyleaf below 2: pinned one at a time, neither could move first
    old = locked_project(root, "old", ["tinychain", "tinyleaf", "tinyother"],
                   "tinychain==1.0", "tinyleaf==1.0", "tinyother==1.0")
    new = locked_project(root, "new", ["tinychain", "tinyleaf", "tinyother"])
    assert locked_versions(new, "tinychain") == {"1.1"} and locked_versions(new, "tinyleaf") == {"2.0"}
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert {n: locked_versions(old, n) for n in ("tinychain", "tinyleaf", "tinyother")} == {
        "tinychain": {"1.1"}, "tinyleaf": {"2.0"}, "tinyother": {"1.1"}}
    assert doc["after"]["excess_pairs"] == 0 and doc["blocked"] == []
    # `uv lock --check` before, the sweep, `uv lock --check` after: nothing else
    assert _runs(doc, "old") == 3
    pinned = [c for c in _locks(uv_calls) if c]
    assert pinned == [["tinychain>=1.0,<=1.1", "tinyleaf>=1.0,<=2.0", "tinyother>=1.0,<=1.1"]]
    assert run_uv(old, "lock", "--check").returncode == 0


def test_sweep_never_lands_on_a_version_nobody_uses(tmp_path, devkit, sweep_index,
                                                    uv_calls) -> None:
    root = tmp_path / "p"
    # held: tinycap allows tinyshared<1.6; uv's newest fit is 1.5, which no project locks
    held = locked_project(root, "held", ["tinycap", "tinyshared", "tinyother"],
                    "tinyshared==1.0", "tinyother==1.0")
    mid = locked_project(root, "mid", ["tinyshared"], "tinyshared==1.1")
    top = locked_project(root, "top", ["tinyshared", "tinyother"])
    assert locked_versions(top, "tinyshared") == {"2.0"}
    code, _, err = devkit("projects", "add", held, mid, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(held, "tinyshared") == {"1.1"}  # the newest in-use version it can reach
    assert locked_versions(held, "tinyother") == {"1.1"}
    assert not any("1.5" in versions for versions in doc["after"]["spread"].values())
    reasons = [b for b in doc["blocked"] if b["project"] == "held"]
    assert [(b["name"], b["wanted"], b["kind"]) for b in reasons] == [
        ("tinyshared", "2.0", "conflict")]
    assert "tinycap depend on tinyshared<1.6" in reasons[0]["reason"]  # uv's explanation
    assert doc["downgrades"] == [] and doc["released"] == []
    ranges = [c for c in _locks(uv_calls) if any(">=1.0,<=" in spec for spec in c)]
    assert [[s for s in c if s.startswith("tinyshared")] for c in ranges] == [
        ["tinyshared>=1.0,<=2.0"], ["tinyshared>=1.0,<=1.1"]]  # 1.5 seen, range narrowed

    code, out, _ = devkit("align", "--check", "--json")
    assert code == 0, out
    assert json.loads(out)["changed"] is False


def test_a_lock_made_with_another_index_is_left_alone(tmp_path, devkit, sweep_index,
                                                      monkeypatch) -> None:
    root = tmp_path / "p"
    mirror = write_simple_index(tmp_path / "mirror-simple",
                                sorted((tmp_path / "sweep-wheels").glob("*.whl")))
    monkeypatch.setenv("UV_DEFAULT_INDEX", mirror)  # both locks are made with a mirror...
    old = locked_project(root, "old", ["tinyshared", "tinyother"], "tinyshared==1.0", "tinyother==1.0")
    new = locked_project(root, "new", ["tinyshared", "tinyother"])
    monkeypatch.setenv("UV_DEFAULT_INDEX", sweep_index)  # ...that align's environment lacks
    before = {p: (p / "uv.lock").read_bytes() for p in (old, new)}
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err

    code, out, _ = devkit("align", "--json")
    assert code == 1
    doc = json.loads(out)
    # uv calls both locks stale here; re-locking either would move it to the other index
    errors = {f["path"]: f["error"] for f in doc["failed"]}
    assert set(errors) == {str(old), str(new)}
    assert all("from another index" in e and "UV_DEFAULT_INDEX" in e for e in errors.values())
    assert {p: (p / "uv.lock").read_bytes() for p in (old, new)} == before  # byte for byte

    # a dry run cannot see indexes in uv's output: the manifest remembers the refusal
    code, out, _ = devkit("align", "--check", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["changed"] is False
    assert {f["path"]: f["error"] for f in doc["failed"]} == errors


def test_index_moves_names_each_package_that_changes_index() -> None:
    from devkit.align.relock import index_moves

    def lock(*packages: tuple[str, str, str]) -> lockfile.Lock:
        return lockfile.Lock(Path("uv.lock"), ">=3.11", tuple(lockfile.LockedPackage(*p) for p in packages))

    before = lock(("https://mirror/simple", "a", "1"), ("https://mirror/simple", "b", "1"))
    after = lock(("https://pypi.org/simple", "a", "2"), ("https://mirror/simple", "b", "2"),
                 ("https://pypi.org/simple", "c", "1"))
    assert index_moves(before, after) == [("a", "https://mirror/simple", "https://pypi.org/simple")]
    assert index_moves(before, before) == []


def test_a_parent_the_project_pins_exactly_is_not_released(tmp_path, devkit, sweep_index,
                                                           uv_calls) -> None:
    root = tmp_path / "p"
    old = locked_project(root, "old", ["tinychain==1.0", "tinyleaf", "tinyother"],
                   "tinyleaf==1.0", "tinyother==1.0")
    new = locked_project(root, "new", ["tinychain", "tinyleaf", "tinyother"])
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(old, "tinyother") == {"1.1"} and locked_versions(old, "tinyleaf") == {"1.0"}
    blocked = {b["name"]: b for b in doc["blocked"]}
    assert blocked["tinyleaf"]["kind"] == "conflict"
    assert "depends on tinyleaf<2" in blocked["tinyleaf"]["reason"]
    assert "held at the current version by align" not in blocked["tinyleaf"]["reason"]
    assert blocked["tinychain"]["kind"] == "requirement"
    # check, sweep, the refused pin, check: no run spent releasing what the project pins
    assert not any(spec.startswith("tinychain>=") for c in _locks(uv_calls) for spec in c)
    assert _runs(doc, "old") == 4


def test_changes_over_several_passes_are_reported_from_the_original_lock(tmp_path, devkit,
                                                                         sweep_index) -> None:
    root = tmp_path / "p"
    low = locked_project(root, "low", ["tinyshared<1.1", "tinyother"], "tinyother==1.0")
    mid = locked_project(root, "mid", ["tinyshared", "tinyother"], "tinyshared==1.1", "tinyother==1.0")
    top = locked_project(root, "top", ["tinyshared<2", "tinyother"])
    assert locked_versions(top, "tinyshared") == {"1.5"}
    code, _, err = devkit("projects", "add", low, mid, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json", "--allow-downgrade", "minor")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # up to 1.5 in the first pass, down to low's 1.0 in the next: one change from the original
    assert locked_versions(mid, "tinyshared") == {"1.0"} and locked_versions(mid, "tinyother") == {"1.1"}
    [mid_doc] = [p for p in doc["projects"] if p["name"] == "mid"]
    assert sorted((c["name"], c["before"], c["after"]) for c in mid_doc["changes"]) == [
        ("tinyother", ["1.0"], ["1.1"]), ("tinyshared", ["1.1"], ["1.0"])]
    assert {(d["project"], d["name"]) for d in doc["downgrades"]} == {
        ("mid", "tinyshared"), ("top", "tinyshared")}
    assert doc["after"]["spread"] == {}


def test_a_stale_lock_is_relocked_first_then_aligned_with_holds(tmp_path, devkit,
                                                                sweep_index) -> None:
    root = tmp_path / "p"
    stale = locked_project(root, "stale", ["tinyshared", "tinyother"], "tinyshared==1.1",
                           "tinyother==1.0")
    top = locked_project(root, "top", ["tinyshared", "tinyother"])
    # the project now asks for tinyshared<1.1: `uv lock` itself must move it down to 1.0
    pyproject = stale / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tinyshared"', '"tinyshared<1.1"'))
    code, _, err = devkit("projects", "add", stale, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    [entry] = [p for p in doc["projects"] if p["name"] == "stale"]
    assert entry["stale"] is True and entry["status"] == "aligned"
    assert sorted((c["name"], c["before"], c["after"]) for c in entry["changes"]) == [
        ("tinyother", ["1.0"], ["1.1"]), ("tinyshared", ["1.1"], ["1.0"])]
    assert entry["downgrades"] == [] and doc["downgrades"] == []  # the re-lock's, not align's
    assert run_uv(stale, "lock", "--check").returncode == 0
    code, out, _ = devkit("align", "--check")
    assert code == 0, out


# recorded from uv 0.13.9: `uv lock --offline -P requests==2.26.0` with a cache lacking it
OFFLINE_MISS_OUTPUT = """\
error: No solution found when resolving dependencies for split (markers: python_full_version >= '3.12')
  cause: Because there is no version of requests==2.26.0 and your project depends on requests==2.26.0, we can conclude that your project's requirements are unsatisfiable.

hint: Packages were unavailable because the network was disabled. When the network is disabled, registry packages may only be read from the cache.
"""


def test_needs_network_reads_uv_offline_hint() -> None:
    assert uv.needs_network(OFFLINE_MISS_OUTPUT)
    assert uv.is_conflict(OFFLINE_MISS_OUTPUT)  # worded as a conflict: the hint tells them apart
    assert not uv.needs_network(OFFLINE_MISS_OUTPUT.split("hint:")[0])


def test_runs_go_online_only_when_the_cache_lacks_data(tmp_path, devkit, sweep_index,
                                                       monkeypatch) -> None:
    root = tmp_path / "p"
    old = locked_project(root, "old", ["tinyshared", "tinyother"], "tinyshared==1.0",
                         "tinyother==1.0")
    new = locked_project(root, "new", ["tinyshared", "tinyother"])
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err
    # a uv whose cache never has what a pinned offline run needs
    log = tmp_path / "calls.txt"
    script = tmp_path / "uv-cold-cache"
    hint = OFFLINE_MISS_OUTPUT.replace('"', '\\"').replace("`", "\\`")
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$*" in *--upgrade-package*--offline*|*--offline*--upgrade-package*)\n'
        f'  printf "%s" "{hint}" >&2; exit 1;;\n'
        "esac\n"
        f'exec "{uv.find_uv()}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("DEVKIT_UV", str(script))
    uv.find_uv.cache_clear()
    try:
        code, out, err = devkit("align", "--json")
    finally:
        uv.find_uv.cache_clear()
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(old, "tinyshared") == {"2.0"}
    pinned = [line for line in log.read_text().splitlines() if "--upgrade-package" in line]
    assert [("--offline" in line) for line in pinned] == [True, False]  # one sweep, retried online
    assert _runs(doc, "old") == 4  # check, sweep offline, sweep online, check
