"""Checks as data: a registry of :class:`Check`, a :class:`Context` they read, and
:func:`run_checks`, which runs them concurrently while honouring prerequisites.

A check is a function ``(Context) -> Outcome`` registered with :func:`check` under a stable id.
``requires`` names checks that must be ``ok`` or ``warn`` first; otherwise the check is ``skip``
with the prerequisite's finding as the reason (no mise → "config trusted" is skipped, not a second
failure). A check that does not apply here (a WSL check on macOS) says so through ``applies`` (or
returns :func:`not_applicable`): a ``skip`` that the human output hides unless ``--verbose``.
Display order is the explicit list :data:`devkit.checks.ORDER`, never import order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import graphlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from devkit import project_url, workspaces
from devkit.hostfacts import DEFAULT_TIMEOUT, Host, RunResult
from devkit.store import Store
from devkit.util import atomic_write_text

STATUSES = ("ok", "warn", "fail", "skip")
T = TypeVar("T")


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
    """A registered check. ``workspace`` checks run only inside a devkit workspace.

    ``applies`` returns None when the check applies in a context, else the reason it does not
    (``"not macOS"``); it is asked before prerequisites, so a macOS check is hidden on Linux even
    when its prerequisite failed.
    """

    id: str
    title: str
    func: Callable[[Context], Outcome]
    requires: tuple[str, ...] = ()
    workspace: bool = False
    applies: Callable[[Context], str | None] | None = None


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
    id: str, title: str, *, requires: Sequence[str] = (), workspace: bool = False,
    applies: Callable[[Context], str | None] | None = None,
) -> Callable[[Callable[[Context], Outcome]], Callable[[Context], Outcome]]:
    """Register the decorated function as check ``id`` (display order: ``devkit.checks.ORDER``).

    Raises ValueError on a duplicate id.
    """

    def register(func: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        REGISTRY[id] = Check(id, title, func, tuple(requires), workspace, applies)
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


def only_on(system: str) -> Callable[[Context], str | None]:
    """An ``applies`` predicate: the check applies only when ``platform.system`` is ``system``."""
    label = {"macos": "macOS"}.get(system, system)

    def applies(ctx: Context) -> str | None:
        return None if ctx.platform.get("system") == system else f"not {label}"

    return applies


def only_on_wsl(ctx: Context) -> str | None:
    """An ``applies`` predicate: the check applies only under WSL."""
    return None if ctx.wsl is not None else "not WSL"


@dataclasses.dataclass(frozen=True)
class Workspace:
    """A devkit workspace (:mod:`devkit.workspaces`): its root and its answers (values as text;
    {} for an adopted project, which has no answers file)."""

    path: Path
    answers: Mapping[str, str]
    detected: str | None = None  # the loader the configs present say, when there are no answers

    @property
    def loader(self) -> str:
        """``env_loader``: the answer, else the detected loader, else ``mise``."""
        return self.answers.get("env_loader") or self.detected or "mise"

    @property
    def uses_mise(self) -> bool:
        """True when ``.mise.toml`` loads the environment."""
        return self.loader in ("mise", "both")

    @property
    def uses_direnv(self) -> bool:
        """True when ``.envrc`` loads the environment."""
        return self.loader in ("direnv", "both")


YAML_MEMO_SIZE = 256  # documents kept in Store.yaml_memo_file (answers and compose files)
_YAML_LOCK = threading.Lock()


def load_yaml(store: Store, text: str) -> Any:
    """:func:`devkit.workspaces.load_yaml`, remembered in ``store.yaml_memo_file`` by the SHA-256
    of ``text``: an answers or compose file unchanged since a doctor last read it is taken from
    there without importing PyYAML (~30 ms of start-up). Only documents that JSON holds exactly
    (mappings with text keys, lists, text, numbers, booleans, null) are kept; written atomically,
    only in an existing store (doctor creates none). Raises ValueError when ``text`` is not
    YAML."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    file = store.yaml_memo_file
    with _YAML_LOCK:
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            docs = doc["docs"] if isinstance(doc, dict) and doc.get("version") == 1 else {}
            docs = docs if isinstance(docs, dict) else {}
        except (OSError, ValueError, KeyError):
            docs = {}
        entry = docs.get(digest)
        if isinstance(entry, dict) and "data" in entry:
            return entry["data"]
        if isinstance(entry, dict) and entry.get("invalid"):
            raise ValueError(str(entry["invalid"]))
        try:
            data = workspaces.load_yaml(text)
            entry = {"data": data}
        except ValueError as exc:
            data, entry = exc, {"invalid": str(exc) or "not YAML"}
        try:
            exact = json.loads(json.dumps(entry)) == entry
        except (TypeError, ValueError):  # dates, non-text keys…: not kept
            exact = False
        if exact and store.home.is_dir():
            docs.pop(digest, None)
            docs[digest] = entry
            kept = dict(list(docs.items())[-YAML_MEMO_SIZE:])
            with contextlib.suppress(OSError):
                atomic_write_text(file, json.dumps({"version": 1, "docs": kept}) + "\n")
    if isinstance(data, ValueError):
        raise data
    return data


def find_workspace(path: Path, store: Store | None = None) -> Workspace | None:
    """The devkit workspace holding ``path`` (:func:`devkit.workspaces.find`: ``.envrc.sh`` next
    to ``pyproject.toml``, or devkit's answers file), its answers read through :func:`load_yaml`
    when ``store`` is given. None outside one; never raises."""
    found = workspaces.find(path) if store is None \
        else workspaces.find(path, lambda text: load_yaml(store, text))
    if found is None:
        return None
    return Workspace(found.path, found.answers, None if found.has_answers else found.loader)


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
        self._memo: dict[Hashable, concurrent.futures.Future[Any]] = {}

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

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per ``key`` for this context, concurrently safe: other callers wait
        for the first one's result, and when ``compute`` raises, every caller gets the same
        exception (nobody is left waiting)."""
        with self._lock:
            future = self._memo.get(key)
            owner = future is None
            if owner:
                future = self._memo[key] = concurrent.futures.Future()
        assert future is not None
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return cast(T, future.result())

    def run(self, *cmd: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> RunResult:
        """``host.run`` memoised on (cmd, cwd, env) through :meth:`memo`: checks sharing a probe
        run it once."""
        key = ("run", cmd, str(cwd), tuple(sorted((env or {}).items())))
        return self.memo(key, lambda: self.host.run(cmd, cwd=cwd, env=env, timeout=timeout))


def selected(ctx: Context, ids: Sequence[str] | None = None,
             order: Sequence[str] | None = None) -> list[Check]:
    """Registered checks that run in ``ctx`` (workspace checks only in a workspace), in ``order``
    (default ``devkit.checks.ORDER``; ids missing from it come last, by id)."""
    if order is None:
        from devkit.checks import ORDER  # the package imports this module first

        order = ORDER
    rank = {check_id: n for n, check_id in enumerate(order)}
    chosen = [c for c in REGISTRY.values()
              if (ctx.workspace is not None or not c.workspace) and (ids is None or c.id in ids)]
    return sorted(chosen, key=lambda c: (rank.get(c.id, len(rank)), c.id))


def run_checks(ctx: Context, ids: Sequence[str] | None = None, *, jobs: int = 6,
               order: Sequence[str] | None = None) -> list[Result]:
    """Run the selected checks concurrently; results come back in ``order`` (default
    ``devkit.checks.ORDER``).

    ``jobs`` threads: the prefetched tool runs (five at most) and a check at once; more only
    fight over the GIL (on 2 cores, 40 interleaved doctor runs each: 140 ms with 16 threads,
    135 ms with 4, 131 ms with 3; up to 20 ms apart under load).

    Checks are submitted in a topological order of their prerequisites (``graphlib``) and the
    pool is FIFO, so a dependent only ever waits on a check that is already running: no deadlock
    with ``jobs`` < number of checks. Probes registered with :func:`prefetch` start first (only
    when all checks run). Raises ValueError when prerequisites form a cycle.
    """
    checks = selected(ctx, ids, order)
    if not checks:
        return []
    futures: dict[str, concurrent.futures.Future[Result]] = {}
    submit_order = dependency_order(checks)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        if ids is None:
            for probe in PREFETCH:
                pool.submit(probe, ctx)  # results are memoised in ctx; errors resurface in checks
        for item in submit_order:
            deps = [futures[r] for r in item.requires if r in futures]
            futures[item.id] = pool.submit(_run_one, ctx, item, deps)
    return [futures[c.id].result() for c in checks]


def dependency_order(checks: Sequence[Check]) -> list[Check]:
    """``checks`` with every prerequisite before its dependents (``graphlib.TopologicalSorter``;
    ties keep the order of ``checks``). Raises ValueError when prerequisites form a cycle."""
    by_id = {c.id: c for c in checks}
    rank = {c.id: n for n, c in enumerate(checks)}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for item in checks:
        sorter.add(item.id, *(d for d in item.requires if d in by_id))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise ValueError(f"check prerequisites form a cycle: {' -> '.join(exc.args[1])}") from exc
    ordered: list[Check] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        ordered.extend(by_id[r] for r in ready)
        sorter.done(*ready)
    return ordered


def _run_one(ctx: Context, item: Check, deps: list[concurrent.futures.Future[Result]]) -> Result:
    reason = item.applies(ctx) if item.applies is not None else None
    if reason is not None:
        return Result(item.id, item.title, "skip", reason, None, False)
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
