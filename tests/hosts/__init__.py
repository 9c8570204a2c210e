"""Recorded hosts (``<name>.json``) and helpers for the ``devkit doctor`` tests.

Each recording holds the facts devkit reads through :mod:`devkit.hostfacts` on that platform:
``/proc`` and ``/etc`` files, environment, executables on PATH and tool outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from devkit.checks import Context, Result, make_context, run_checks
from devkit.checks.base import REGISTRY
from devkit.hostfacts import Host, RecordedHost
from devkit.store import Store

HERE = Path(__file__).parent


def load(name: str) -> RecordedHost:
    """The recording ``tests/hosts/<name>.json``."""
    return RecordedHost.load(HERE / f"{name}.json")


def context(path: Path, host: Host, store: Store | None = None) -> Context:
    """A doctor context for ``path`` on ``host`` (store from the isolated test environment)."""
    return make_context(path, store=store or Store(), host=host)


def _with_requires(ids: Iterable[str]) -> list[str]:
    todo, seen = list(ids), []
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.append(current)
            todo.extend(REGISTRY[current].requires)
    return seen


def run_one(ctx: Context, check_id: str) -> Result:
    """Run ``check_id`` (and its prerequisites) and return its result."""
    results = run_checks(ctx, _with_requires([check_id]))
    return next(r for r in results if r.id == check_id)


def statuses(results: Sequence[Result]) -> dict[str, str]:
    """``{check id: status}``."""
    return {r.id: r.status for r in results}


def newly_bad(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    """Checks that turned ``warn``/``fail`` in ``after`` (dependents turning ``skip`` are fine)."""
    return {k: v for k, v in after.items() if v in ("warn", "fail") and before.get(k) != v}


def write_workspace(root: Path, *, loader: str = "mise", python: str = "3.11",
                    venv_home: str | None = None, venv_version: str = "3.11.7") -> Path:
    """A workspace made of files only (no tools run): answers, ``.envrc.sh``, optional ``.venv``."""
    import sys

    root.mkdir(parents=True, exist_ok=True)
    (root / ".copier-answers.yml").write_text(
        f"_commit: v0.1.0\nenv_loader: {loader}\nproject_name: {root.name}\n"
        f"python_version: '{python}'\n")
    (root / ".python-version").write_text(python + "\n")
    (root / ".envrc.sh").write_text("export DEVKIT_PROJECT=x\n")
    (root / ".gitattributes").write_text("*.sh text eol=lf\n")
    if venv_home is not None:
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "pyvenv.cfg").write_text(
            f"home = {venv_home}\nimplementation = CPython\nversion_info = {venv_version}\n")
        (root / ".venv" / "bin" / "python").symlink_to(sys.executable)
    return root
