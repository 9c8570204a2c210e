"""The uv-run budget: per project and pass; a pin it leaves untried is no known conflict.

Real uv against the local index (tinyshared 1.0/1.1/2.0, tinyother 1.0/2.0); the worker is
driven directly, one ``run_project`` call per pass, as the engine does.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

from devkit import uv
from devkit.align import lockfile, planner
from devkit.align.backups import Backups
from devkit.align.relock import Context, Outcome, not_tried, run_project
from devkit.align.scoring import StoreState
from devkit.store import Store


def _project(root: Path, name: str = "proj", version: str = "1.0") -> Path:
    """A project locking tinyshared and tinyother at ``version`` (1.0 or 2.0)."""
    path = root / name
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {json.dumps(['tinyshared', 'tinyother'])}\n")
    proc = subprocess.run([uv.find_uv(), "lock", "-P", f"tinyshared=={version}",
                           "-P", f"tinyother=={version}"],
                          cwd=path, env=Store().subprocess_env(), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return path


def _pin(lock: lockfile.Lock, name: str, target: str) -> planner.Pin:
    (package,) = [p for p in lock.packages if p.name == name]
    return planner.Pin(package.index, name, package.version, target, (target,))


def _context(path: Path, max_runs: int) -> Context:
    """The store holds ``path``'s lock and another project's, already at 2.0 (moving there
    adds no pair)."""
    other = path.parent / "other"
    if not other.exists():
        _project(path.parent, "other", "2.0")
    locks = [lockfile.read(p / "uv.lock") for p in (path, other)]
    store = Store()
    return Context(store.subprocess_env(), Backups(store.align_backup_dir), threading.Event(),
                   StoreState(locks), max_runs=max_runs)


def _pass(path: Path, outcome: Outcome, ctx: Context, *names: str) -> None:
    lock = lockfile.read(path / "uv.lock")
    plan = planner.ProjectPlan(str(path), tuple(_pin(lock, n, "2.0") for n in names), ())
    run_project(outcome, plan, ctx, check_first=False)
    ctx.backups.discard_all()


def test_budget_is_per_pass(tmp_path: Path) -> None:
    path = _project(tmp_path)
    ctx = _context(path, max_runs=1)
    outcome = Outcome(path, "proj")
    _pass(path, outcome, ctx, "tinyshared")  # pass 1: one uv run, the whole budget
    _pass(path, outcome, ctx, "tinyother")  # pass 2 has its own budget
    after = lockfile.read(path / "uv.lock")
    assert after.versions("tinyshared") == {"2.0"}
    assert after.versions("tinyother") == {"2.0"}
    assert outcome.blocked == [] and outcome.failed_moves == set()


def test_untried_pin_is_not_a_known_conflict_and_a_later_pass_moves_it(tmp_path: Path) -> None:
    path = _project(tmp_path)
    before = (path / "uv.lock").read_bytes()
    outcome = Outcome(path, "proj")
    _pass(path, outcome, _context(path, max_runs=0), "tinyother")
    assert (path / "uv.lock").read_bytes() == before
    assert [b.name for b in outcome.blocked] == ["tinyother"]
    assert not_tried(outcome.blocked[0].reason)
    assert outcome.failed_moves == set()  # never asked: the next pass (and run) may try it

    _pass(path, outcome, _context(path, max_runs=5), "tinyother")
    assert lockfile.read(path / "uv.lock").versions("tinyother") == {"2.0"}
    assert outcome.blocked == []  # the untried entry of the first pass is gone
