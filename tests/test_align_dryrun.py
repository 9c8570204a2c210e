"""``devkit align --dry-run`` plans what the real run does: every pass, stale locks re-locked
first, and nothing written. Real uv against a local index of tiny wheels, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    build_wheel,
    index_of,
    locked_project,
    locked_versions,
    sdist_only,
    write_simple_index,
)

from devkit.store import Store


def _plan(doc: dict[str, Any]) -> dict[str, Any]:
    """What a dry run must predict of a real run: per project its status, moves, released
    parents and blockers; the targets; what is left at several versions."""
    return {
        "projects": {p["name"]: {"status": p["status"], "changes": p["changes"],
                                 "downgrades": p["downgrades"], "released": p["released"],
                                 "blocked": sorted((b["name"], b["kind"], b["wanted"])
                                                   for b in p["blocked"])}
                     for p in doc["projects"]},
        "targets": doc["targets"],
        "spread": doc["after"]["spread"],
        "excess_pairs": doc["after"]["excess_pairs"],
        "changed": doc["changed"],
    }


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, mtime in ns), to see that nothing was written."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


# -- a second pass: a parent released in pass 1 brings a version another project then takes ----
@pytest.fixture
def two_pass_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyparent 1.0 needs tinychild<2 and tinyold; 1.1 allows any tinychild and needs
    tinyhelper>=2 (a package the project did not lock)."""
    return index_of(tmp_path, monkeypatch, "twopass", [
        ("tinychild", "1.0", ()), ("tinychild", "2.0", ()),
        ("tinyhelper", "1.0", ()), ("tinyhelper", "2.0", ()),
        ("tinyold", "1.0", ()),
        ("tinyparent", "1.0", ("tinychild<2", "tinyold")),
        ("tinyparent", "1.1", ("tinychild", "tinyhelper>=2"))])


def test_dry_run_plans_every_pass_of_the_real_run(tmp_path, devkit, two_pass_index) -> None:
    """Pass 1 releases held's tinyparent to 1.1 (to free tinychild), which brings tinyhelper
    2.0; only pass 2 sees tinyhelper at 1.0 and 2.0 and moves ``third`` up to 2.0."""
    root = tmp_path / "p"
    held = locked_project(root, "held", ["tinyparent>=1.0"], "tinyparent==1.0")
    other = locked_project(root, "other", ["tinychild"])
    third = locked_project(root, "third", ["tinyhelper"], "tinyhelper==1.0")
    assert locked_versions(held, "tinychild") == {"1.0"}
    assert locked_versions(held, "tinyhelper") == set()
    assert devkit("projects", "add", held, other, third)[0] == 0
    code, out, err = devkit("sync", third)  # a venv devkit made: the dry run must leave it be
    assert code == 0, (out, err)
    projects = (held, other, third)
    locks = {p: (p / "uv.lock").read_bytes() for p in projects}
    venv = _files(third / ".venv")
    store = Store()
    assert not store.manifest_file.exists()

    code, out, err = devkit("align", "--dry-run", "--json")
    assert code == 0, (out, err)
    dry = json.loads(out)
    assert dry["dry_run"] is True
    assert {p: (p / "uv.lock").read_bytes() for p in projects} == locks
    assert _files(third / ".venv") == venv
    assert not store.manifest_file.exists()
    assert not any(store.align_backup_dir.glob("*")) if store.align_backup_dir.exists() else True
    assert dry["notes"] == [], dry["notes"]

    code, out, err = devkit("align", "--check", "--json")
    assert code == 1, (out, err)  # --check: the same plan, exit 1 since it would change locks
    assert _plan(json.loads(out)) == _plan(dry)
    assert {p: (p / "uv.lock").read_bytes() for p in projects} == locks

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    real = json.loads(out)
    # the scenario needs the second pass: third moves only once held's release brought 2.0
    assert locked_versions(third, "tinyhelper") == {"2.0"}, real
    assert locked_versions(held, "tinyparent") == {"1.1"}
    assert locked_versions(held, "tinychild") == {"2.0"}
    assert _plan(dry) == _plan(real)
    assert real["after"]["spread"] == {}

    # the store is aligned now: both dry kinds agree there is nothing left
    code, out, err = devkit("align", "--check", "--json")
    assert code == 0 and not json.loads(out)["changed"], out


# -- a stale lock: re-locked first, then aligned with holds, caps and scoring ----------------
@pytest.fixture
def drag_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyparent 2.0 brings a new dependency, tinychild, released as 1.0, 1.5 and 2.0;
    tinyextra is what a changed ``pyproject.toml`` adds."""
    return index_of(tmp_path, monkeypatch, "drag", [
        ("tinychild", "1.0", ()), ("tinychild", "1.5", ()), ("tinychild", "2.0", ()),
        ("tinyparent", "1.0", ()), ("tinyparent", "2.0", ("tinychild",)),
        ("tinyextra", "1.0", ())])


def test_dry_run_of_a_stale_lock_plans_the_relock_and_the_alignment(tmp_path, devkit,
                                                                      drag_index) -> None:
    root = tmp_path / "p"
    behind = locked_project(root, "behind", ["tinyparent"], "tinyparent==1.0")
    ahead = locked_project(root, "ahead", ["tinyparent"], "tinychild==1.0")
    assert locked_versions(ahead, "tinychild") == {"1.0"}
    pyproject = behind / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('["tinyparent"]',
                                                       '["tinyparent", "tinyextra"]'))
    assert devkit("projects", "add", behind, ahead)[0] == 0
    locks = {p: (p / "uv.lock").read_bytes() for p in (behind, ahead)}

    code, out, err = devkit("align", "--dry-run", "--json")
    assert code == 0, (out, err)
    dry = json.loads(out)
    assert {p: (p / "uv.lock").read_bytes() for p in (behind, ahead)} == locks
    assert [p["stale"] for p in dry["projects"] if p["name"] == "behind"] == [True]
    # what a dry run cannot see, it says in one line: the new requirements are in no lock yet
    [note] = dry["notes"]
    assert note.startswith("dry run: the real run may differ for 1 project(s): behind (its "
                           "stale lock's new requirements"), note
    code, out, err = devkit("align", "--dry-run")
    assert code == 0, (out, err)
    assert f"note: {note}" in out.replace("\n", " ")

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    real = json.loads(out)
    # uv alone would take tinychild 2.0, which nobody uses; 1.0 is in use and fits
    assert locked_versions(behind, "tinychild") == {"1.0"}, real
    assert locked_versions(behind, "tinyextra") == {"1.0"}
    assert _plan(dry) == _plan(real)


# -- passes down to the anchors (--allow-downgrade) -------------------------------------------
@pytest.fixture
def down_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return index_of(tmp_path, monkeypatch, "down", [
        *[("tinyshared", v, ()) for v in ("1.0", "1.1", "1.5", "2.0")],
        ("tinyother", "1.0", ()), ("tinyother", "1.1", ())])


def test_dry_run_plans_the_downward_passes_too(tmp_path, devkit, down_index) -> None:
    """Up to 1.5 in the first pass, down to low's 1.0 (the anchor) in the next."""
    root = tmp_path / "p"
    low = locked_project(root, "low", ["tinyshared<1.1", "tinyother"], "tinyother==1.0")
    mid = locked_project(root, "mid", ["tinyshared", "tinyother"], "tinyshared==1.1",
                         "tinyother==1.0")
    top = locked_project(root, "top", ["tinyshared<2", "tinyother"])
    assert devkit("projects", "add", low, mid, top)[0] == 0
    locks = {p: (p / "uv.lock").read_bytes() for p in (low, mid, top)}

    code, out, err = devkit("align", "--dry-run", "--json", "--allow-downgrade", "minor")
    assert code == 0, (out, err)
    dry = json.loads(out)
    assert {p: (p / "uv.lock").read_bytes() for p in (low, mid, top)} == locks

    code, out, err = devkit("align", "--json", "--allow-downgrade", "minor")
    assert code == 0, (out, err)
    real = json.loads(out)
    assert locked_versions(mid, "tinyshared") == {"1.0"}, real
    assert _plan(dry) == _plan(real)
    assert dry["downgrades"] == real["downgrades"] != []
    assert dry["notes"] == []

# -- a package only an sdist provides: a dry run never builds ---------------------------------
def test_a_dry_run_that_would_need_a_build_says_so(tmp_path, devkit, monkeypatch) -> None:
    """A real run builds an sdist-only dependency for its metadata; a dry run (``--no-build``)
    cannot: uv's refusal proves no conflict, so the dry run names the project in its note,
    reports the pin as not tried, and spends no run releasing parents for it."""
    from devkit.align import relock

    wheels = [build_wheel(tmp_path / "sd-wheels", "tinyshared", v) for v in ("1.0", "2.0")]
    wheels.append(sdist_only(tmp_path / "sd-wheels"))
    monkeypatch.setenv("UV_DEFAULT_INDEX", write_simple_index(tmp_path / "sd-simple", wheels))
    root = tmp_path / "p"
    built = locked_project(root, "built", ["tinysdist", "tinyshared"],
                           "tinyshared==1.0")
    other = locked_project(root, "other", ["tinyshared"])
    assert devkit("projects", "add", built, other)[0] == 0
    before = (built / "uv.lock").read_bytes()

    code, out, err = devkit("align", "--dry-run", "--json")
    assert code == 0, (out, err)
    dry = json.loads(out)
    assert (built / "uv.lock").read_bytes() == before
    [note] = dry["notes"]
    assert note == f"dry run: the real run may differ for 1 project(s): built ({relock.NO_BUILD})"
    [blocked] = [b for b in dry["blocked"] if b["project"] == "built"]
    assert blocked["name"] == "tinyshared" and blocked["reason"] == relock.NOT_TRIED_NO_BUILD
    # the check, then the one uv run that needed a build: no release, no fallback
    assert [p["uv_runs"] for p in dry["projects"] if p["name"] == "built"] == [2]

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    assert locked_versions(built, "tinyshared") == {"2.0"}

# -- what a dry run cannot know: the wheel size of a version no lock holds yet ---------------
def test_a_dry_run_weighs_a_new_version_by_its_neighbour_and_says_so(tmp_path) -> None:
    """uv's dry-run output names no file: a version no lock holds is weighed like its nearest
    known version, and a verdict that rests on that estimate is named in the report (the real
    run reads the size from the lock uv wrote)."""
    import threading

    from devkit.align import engine, lockfile, relock
    from devkit.align.backups import Backups
    from devkit.align.scoring import StoreState

    pypi = "https://pypi.org/simple"
    pkg = lockfile.LockedPackage

    def lock(*packages: lockfile.LockedPackage) -> lockfile.Lock:
        return lockfile.Lock(tmp_path / "api" / "uv.lock", ">=3.11", packages)

    current = lock(pkg(pypi, "heavy", "1.0", size=1000), pkg(pypi, "light", "1.0", size=10),
                   pkg(pypi, "gone", "1.0", size=300))
    other = lock(pkg(pypi, "heavy", "3.0", size=5000), pkg(pypi, "light", "1.0", size=10))
    state = StoreState([current, other])
    sizes = state.sizes_view()
    assert relock.estimated_size(sizes, (pypi, "heavy", "2.0")) == 1000  # the older neighbour
    assert relock.estimated_size(sizes, (pypi, "heavy", "0.5")) == 1000  # else the newer one
    assert relock.estimated_size(sizes, (pypi, "heavy", "3.0")) == 5000  # known: as it is
    assert relock.estimated_size(sizes, (pypi, "new", "1.0")) == 0

    # a released parent's new version nobody locks, and a dependency it no longer needs
    candidate = relock.predict(current, "Update heavy v1.0 -> v2.0\nRemove gone v1.0\n", sizes)
    assert candidate.sizes()[(pypi, "heavy", "2.0")] == 1000
    outcome = relock.Outcome(tmp_path / "api", "api")
    ctx = relock.Context({}, Backups(tmp_path / "backups"), threading.Event(), state,
                         dry_run=True)
    assert relock.Worker(outcome, ctx, current, b"")._evaluate(candidate) is None  # frees 1300
    assert outcome.uncertain == {relock.UNSIZED}
    note = engine.dry_run_note([outcome, relock.Outcome(tmp_path / "b", "b")])
    assert note == f"dry run: the real run may differ for 1 project(s): api ({relock.UNSIZED})"

    # a plain alignment step (no new version) rests on no estimate: nothing to say
    plain = relock.Outcome(tmp_path / "api", "api")
    aligned = relock.predict(current, "Update heavy v1.0 -> v3.0\n", sizes)
    assert relock.Worker(plain, ctx, current, b"")._evaluate(aligned) is None
    assert plain.uncertain == set() and engine.dry_run_note([plain]) == ""
