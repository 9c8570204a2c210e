"""Checks as data (STYLE.md practice 7): a registry of :class:`Check`, a :class:`Context` they
read, and :func:`run_checks`, which runs them concurrently while honouring prerequisites.

A check is a function ``(Context) -> Outcome`` registered with :func:`check` under a stable id.
``requires`` names checks that must be ``ok`` or ``warn`` first; otherwise the check is ``skip``
with the prerequisite's finding as the reason (issue 3: no mise → "config trusted" is skipped, not
a second failure). A check that does not apply here (a WSL check on macOS) returns
:func:`not_applicable`: a ``skip`` that the human output hides unless ``--verbose``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit import project_url
from devkit.hostfacts import DEFAULT_TIMEOUT, Host, RunResult
from devkit.store import Store

STATUSES = ("ok", "warn", "fail", "skip")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a check found: ``status`` (one of STATUSES), a one-line ``message`` and the ``fix``."""

    status: str
    message: str
    fix: str | None = None
    relevant: bool = True


def ok(message: str) -> Outcome:
    """All good."""
    return Outcome("ok", message)


def warn(message: str, fix: str | None) -> Outcome:
    """A problem that does not stop devkit from working; ``fix`` is the exact command or change."""
    return Outcome("warn", message, fix)


def fail(message: str, fix: str | None) -> Outcome:
    """A problem that breaks devkit (exit 1); ``fix`` is the exact command or file change."""
    return Outcome("fail", message, fix)


def skip(message: str) -> Outcome:
    """The check could not be made (a missing prerequisite); ``message`` says why."""
    return Outcome("skip", message)


def not_applicable(reason: str) -> Outcome:
    """The check does not apply on this host or workspace (hidden from human output)."""
    return Outcome("skip", reason, relevant=False)


@dataclasses.dataclass(frozen=True)
class Check:
    """A registered check. ``workspace`` checks run only inside a devkit workspace."""

    id: str
    title: str
    func: Callable[[Context], Outcome]
    requires: tuple[str, ...] = ()
    workspace: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    """A check's outcome with its identity; ``seconds`` is its own run time (wall clock)."""

    id: str
    title: str
    status: str
    message: str
    fix: str | None = None
    relevant: bool = True
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The stable ``--json`` shape: id, title, status, message, fix (None when ok)."""
        return {"id": self.id, "title": self.title, "status": self.status,
                "message": self.message, "fix": self.fix}


REGISTRY: dict[str, Check] = {}
FIXERS: dict[str, Callable[[Context], str]] = {}
PREFETCH: list[Callable[[Context], object]] = []


def prefetch(func: Callable[[Context], object]) -> Callable[[Context], object]:
    """Register a probe started before any check: it calls :meth:`Context.run` with exactly the
    arguments a check will use, so that slow tool calls do not wait behind prerequisites."""
    PREFETCH.append(func)
    return func


def check(
    id: str, title: str, *, requires: Sequence[str] = (), workspace: bool = False
) -> Callable[[Callable[[Context], Outcome]], Callable[[Context], Outcome]]:
    """Register the decorated function as check ``id``; registration order is display order."""

    def register(func: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        REGISTRY[id] = Check(id, title, func, tuple(requires), workspace)
        return func

    return register


def safe_fix(id: str) -> Callable[[Callable[[Context], str]], Callable[[Context], str]]:
    """Register the decorated function as ``--fix`` for check ``id``.

    It returns what it did (one line) and raises DevkitError or OSError when it cannot.
    """

    def register(func: Callable[[Context], str]) -> Callable[[Context], str]:
        FIXERS[id] = func
        return func

    return register


@dataclasses.dataclass(frozen=True)
class Workspace:
    """A devkit workspace: its root and the answers of ``.copier-answers.yml``."""

    path: Path
    answers: Mapping[str, str]

    @property
    def loader(self) -> str:
        """``env_loader`` answer: ``mise`` (default), ``direnv`` or ``both``."""
        return self.answers.get("env_loader", "mise")

    @property
    def uses_mise(self) -> bool:
        """True when ``.mise.toml`` loads the environment."""
        return self.loader in ("mise", "both")

    @property
    def uses_direnv(self) -> bool:
        """True when ``.envrc`` loads the environment."""
        return self.loader in ("direnv", "both")


def parse_answers(text: str) -> dict[str, str]:
    """Top-level ``key: value`` pairs of a copier answers file (flat YAML, quotes stripped)."""
    answers = {}
    for line in text.splitlines():
        if line.startswith((" ", "#", "-")) or ":" not in line:
            continue
        key, _, value = line.partition(":")
        answers[key.strip()] = value.strip().strip("'\"")
    return answers


def find_workspace(path: Path) -> Workspace | None:
    """The devkit workspace holding ``path``: the nearest directory up from ``path`` with a
    ``.copier-answers.yml`` that has an ``env_loader`` answer. None outside one; never raises."""
    for directory in (path, *path.parents):
        answers_file = directory / ".copier-answers.yml"
        try:
            text = answers_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        answers = parse_answers(text)
        return Workspace(directory, answers) if "env_loader" in answers else None
    return None


class Context:
    """What checks read: the host, the store, the workspace (or None) and memoised tool runs."""

    def __init__(self, host: Host, store: Store, workspace: Workspace | None,
                 platform: Mapping[str, Any] | None = None) -> None:
        """``platform`` is the dict from :func:`devkit.checks.platform.describe`."""
        self.host = host
        self.store = store
        self.workspace = workspace
        self.platform: Mapping[str, Any] = platform or {}
        self._lock = threading.Lock()
        self._runs: dict[tuple[Any, ...], concurrent.futures.Future[RunResult]] = {}

    @property
    def wsl(self) -> int | None:
        """1 or 2 under WSL, else None."""
        value = self.platform.get("wsl")
        return int(value) if value else None

    def tool_env(self, **extra: str) -> dict[str, str]:
        """The host environment plus the store's variables (as a workspace shell has them)."""
        env = {**self.host.env, **self.store.env(), **extra}
        env.pop("VIRTUAL_ENV", None)
        return env

    def run(self, *cmd: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> RunResult:
        """``host.run`` memoised on (cmd, cwd): checks sharing a probe run it once, concurrently safe."""
        key = (cmd, str(cwd), tuple(sorted((env or {}).items())))
        with self._lock:
            future = self._runs.get(key)
            owner = future is None
            if owner:
                future = self._runs[key] = concurrent.futures.Future()
        assert future is not None
        if owner:
            future.set_result(self.host.run(cmd, cwd=cwd, env=env, timeout=timeout))
        return future.result()


def selected(ctx: Context, ids: Sequence[str] | None = None) -> list[Check]:
    """Registered checks that run in ``ctx`` (workspace checks only in a workspace), in order."""
    return [c for c in REGISTRY.values()
            if (ctx.workspace is not None or not c.workspace) and (ids is None or c.id in ids)]


def run_checks(ctx: Context, ids: Sequence[str] | None = None, *, jobs: int = 16) -> list[Result]:
    """Run the selected checks concurrently; results come back in registration order.

    Prerequisites are submitted before their dependents and the pool is FIFO, so a dependent only
    ever waits on a check that is already running: no deadlock with ``jobs`` < number of checks.
    Probes registered with :func:`prefetch` start first (only when all checks run).
    """
    checks = selected(ctx, ids)
    if not checks:
        return []
    futures: dict[str, concurrent.futures.Future[Result]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        if ids is None:
            for probe in PREFETCH:
                pool.submit(probe, ctx)  # results are memoised in ctx; errors resurface in checks
        for item in _dependency_order(checks):
            deps = [futures[r] for r in item.requires if r in futures]
            futures[item.id] = pool.submit(_run_one, ctx, item, deps)
    return [futures[c.id].result() for c in checks]


def _dependency_order(checks: Sequence[Check]) -> list[Check]:
    """``checks`` with every prerequisite before its dependents (else registration order)."""
    by_id = {c.id: c for c in checks}
    ordered: dict[str, Check] = {}

    def visit(item: Check, path: tuple[str, ...]) -> None:
        if item.id in ordered:
            return
        if item.id in path:
            raise ValueError(f"check prerequisites form a cycle: {' -> '.join(path)}")
        for dep in item.requires:
            if dep in by_id:
                visit(by_id[dep], (*path, item.id))
        ordered[item.id] = item

    for item in checks:
        visit(item, ())
    return list(ordered.values())


def _run_one(ctx: Context, item: Check, deps: list[concurrent.futures.Future[Result]]) -> Result:
    for dep in deps:
        done = dep.result()
        if done.status in ("fail", "skip"):
            reason = f"needs “{done.title}”: {done.message}"
            return Result(item.id, item.title, "skip", reason, None, done.relevant)
    start = time.perf_counter()
    try:
        outcome = item.func(ctx)
    except Exception as exc:  # noqa: BLE001  # one broken check must not hide the others
        outcome = fail(f"the check itself failed: {type(exc).__name__}: {exc}",
                       f"report this at {project_url('Issues') or 'devkit’s issue tracker'} "
                       "with `devkit doctor -v`")
    seconds = time.perf_counter() - start
    fix = None if outcome.status in ("ok", "skip") else outcome.fix
    return Result(item.id, item.title, outcome.status, outcome.message, fix, outcome.relevant,
                  seconds)
