"""The sweep: every upward pin as a range in one ``uv lock``, end to end against a local index."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import build_wheel, write_simple_index

from devkit import uv
from devkit.align import lockfile
from devkit.store import Store


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


def _uv(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([uv.find_uv(), *args], cwd=path, env=Store().subprocess_env(),
                          capture_output=True, text=True, check=False)


def _project(root: Path, name: str, deps: list[str], *pins: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {json.dumps(deps)}\n")
    proc = _uv(path, "lock", *[a for pin in pins for a in ("-P", pin)])
    assert proc.returncode == 0, proc.stderr
    return path


def _versions(path: Path, name: str) -> set[str]:
    return lockfile.read(path / "uv.lock").versions(name)


def _runs(doc: dict[str, object], name: str) -> int:
    projects = doc["projects"]
    assert isinstance(projects, list)
    return int(next(p["uv_runs"] for p in projects if p["name"] == name))


def test_sweep_moves_parent_and_child_together_in_one_uv_run(tmp_path, devkit, sweep_index,
                                                             uv_calls) -> None:
    root = tmp_path / "p"
    # tinychain 1.0 holds tinyleaf below 2: pinned one at a time, neither could move first
    old = _project(root, "old", ["tinychain", "tinyleaf", "tinyother"],
                   "tinychain==1.0", "tinyleaf==1.0", "tinyother==1.0")
    new = _project(root, "new", ["tinychain", "tinyleaf", "tinyother"])
    assert _versions(new, "tinychain") == {"1.1"} and _versions(new, "tinyleaf") == {"2.0"}
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert {n: _versions(old, n) for n in ("tinychain", "tinyleaf", "tinyother")} == {
        "tinychain": {"1.1"}, "tinyleaf": {"2.0"}, "tinyother": {"1.1"}}
    assert doc["after"]["excess_pairs"] == 0 and doc["blocked"] == []
    # `uv lock --check` before, the sweep, `uv lock --check` after: nothing else
    assert _runs(doc, "old") == 3
    pinned = [c for c in _locks(uv_calls) if c]
    assert pinned == [["tinychain>=1.0,<=1.1", "tinyleaf>=1.0,<=2.0", "tinyother>=1.0,<=1.1"]]
    assert _uv(old, "lock", "--check").returncode == 0


def test_sweep_never_lands_on_a_version_nobody_uses(tmp_path, devkit, sweep_index,
                                                    uv_calls) -> None:
    root = tmp_path / "p"
    # held: tinycap allows tinyshared<1.6; uv's newest fit is 1.5, which no project locks
    held = _project(root, "held", ["tinycap", "tinyshared", "tinyother"],
                    "tinyshared==1.0", "tinyother==1.0")
    mid = _project(root, "mid", ["tinyshared"], "tinyshared==1.1")
    top = _project(root, "top", ["tinyshared", "tinyother"])
    assert _versions(top, "tinyshared") == {"2.0"}
    code, _, err = devkit("projects", "add", held, mid, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert _versions(held, "tinyshared") == {"1.1"}  # the newest in-use version it can reach
    assert _versions(held, "tinyother") == {"1.1"}
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
    old = _project(root, "old", ["tinyshared", "tinyother"], "tinyshared==1.0", "tinyother==1.0")
    new = _project(root, "new", ["tinyshared", "tinyother"])
    monkeypatch.setenv("UV_DEFAULT_INDEX", sweep_index)  # ...that align's environment lacks
    before = (old / "uv.lock").read_bytes()
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err

    code, out, _ = devkit("align", "--json")
    assert code == 1
    doc = json.loads(out)
    [failed] = doc["failed"]
    assert failed["path"] == str(old) and "from another index" in failed["error"]
    assert "UV_DEFAULT_INDEX" in failed["error"]
    assert (old / "uv.lock").read_bytes() == before  # restored byte for byte

    # a dry run cannot see indexes in uv's output: the manifest remembers the refusal
    code, out, _ = devkit("align", "--check", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["changed"] is False
    assert [f["error"] for f in doc["failed"]] == [failed["error"]]


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
    old = _project(root, "old", ["tinychain==1.0", "tinyleaf", "tinyother"],
                   "tinyleaf==1.0", "tinyother==1.0")
    new = _project(root, "new", ["tinychain", "tinyleaf", "tinyother"])
    code, _, err = devkit("projects", "add", old, new)
    assert code == 0, err

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert _versions(old, "tinyother") == {"1.1"} and _versions(old, "tinyleaf") == {"1.0"}
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
    low = _project(root, "low", ["tinyshared<1.1", "tinyother"], "tinyother==1.0")
    mid = _project(root, "mid", ["tinyshared", "tinyother"], "tinyshared==1.1", "tinyother==1.0")
    top = _project(root, "top", ["tinyshared<2", "tinyother"])
    assert _versions(top, "tinyshared") == {"1.5"}
    code, _, err = devkit("projects", "add", low, mid, top)
    assert code == 0, err

    code, out, err = devkit("align", "--json", "--allow-downgrade", "minor")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # up to 1.5 in the first pass, down to low's 1.0 in the next: one change from the original
    assert _versions(mid, "tinyshared") == {"1.0"} and _versions(mid, "tinyother") == {"1.1"}
    [mid_doc] = [p for p in doc["projects"] if p["name"] == "mid"]
    assert sorted((c["name"], c["before"], c["after"]) for c in mid_doc["changes"]) == [
        ("tinyother", ["1.0"], ["1.1"]), ("tinyshared", ["1.1"], ["1.0"])]
    assert {(d["project"], d["name"]) for d in doc["downgrades"]} == {
        ("mid", "tinyshared"), ("top", "tinyshared")}
    assert doc["after"]["spread"] == {}
