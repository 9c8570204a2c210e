"""Tests as the gate of ``devkit align --test``: a changed lock is kept only if no test breaks.

For each project align changed, in turn (one project at a time, so no two ``uv sync`` unpack the
same wheel into the cache at once): the lock it had is written back and the venv synced to it
(``uv sync --locked``), the tests run (the *baseline*); then the new lock, sync, tests again. A
test that passed before and does not pass after (it fails, errors, or no longer runs, as with a
collection error), or a failure that is new, is a regression; failures already present in the
baseline do not count (test ids from a JUnit XML report). On a regression the lock and venv go
back to the baseline, and the changed packages are bisected: uv re-locks with a subset held at
its old version (``uv lock -P NAME==OLD``, every other package pinned to its new version) and
the tests run on each candidate, until the culprits are found; every other change is kept. The
culprits are held for that project (blockers of kind ``tests``, remembered in the alignment
manifest until the project's requirements change).

Running a project's tests runs its code: that is what ``--test`` asks for, so it never happens
in ``--dry-run`` or ``--check``. The command comes from ``--test-command`` (split with
:func:`shlex.split`, run without a shell), else the workspace's ``test`` task read from its
``.mise.toml`` with :mod:`tomllib` only when devkit can prove it rendered that file
(:func:`devkit.trust.is_rendered`; devkit never runs ``mise run``, which would load the config),
else :data:`DEFAULT_COMMAND`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import subprocess
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import filelock

from devkit import trust, uv, workspace_code
from devkit.align import lockfile, planner
from devkit.align.relock import Outcome, diff, holds, index_moves
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_bytes

DEFAULT_COMMAND = ("uv", "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider")
JUNIT_ENV = "DEVKIT_TEST_JUNIT_XML"  # a JUnit XML report path any test command may write
TEST_TIMEOUT = 3600.0  # seconds for one run of a project's tests
MAX_BISECT_RUNS = 8  # candidate locks tested per project while looking for the culprits
SHELL_SYNTAX = ("|", "&", ";", "<", ">", "$", "`", "{{", "\n")  # a task needing a shell
TAIL_LINES = 5  # lines of a test run's output kept for the report
MAX_HELD_IDS = 20  # failing test ids a hold keeps (a collection error stops every test: 1 + all)

Outcome_ = Literal["passed", "failed", "skipped"]


@dataclasses.dataclass(frozen=True)
class TestCommand:
    """The argv that runs one project's tests and where it came from."""

    __test__ = False  # not a pytest test class, whatever its name

    argv: tuple[str, ...]
    source: str  # "--test-command" | "mise task test" | "default"

    @property
    def pytest(self) -> bool:
        """Does the command run pytest (then devkit adds ``--junitxml``)?"""
        names = [Path(a).name for a in self.argv]
        return any(n in ("pytest", "py.test") for n in names) or any(
            a == "-m" and b == "pytest" for a, b in zip(self.argv, self.argv[1:], strict=False))

    def display(self) -> str:
        """The command as a shell would show it."""
        return shlex.join(self.argv)


def parse_command(text: str) -> tuple[str, ...]:
    """``--test-command`` split like a POSIX shell would (:func:`shlex.split`; no shell runs it).

    Raises DevkitError when it is empty or its quotes do not close.
    """
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise DevkitError(f"--test-command {text!r}: {exc}") from None
    if not argv:
        raise DevkitError("--test-command is empty")
    return argv


def mise_test_task(path: Path, store: Store) -> tuple[str, ...] | None:
    """The argv of the ``test`` task in ``path/.mise.toml``, or None.

    Read with :mod:`tomllib` (``[tasks.test] run = "…"`` or ``[tasks] test = "…"``), and only
    when ``.mise.toml`` is byte-for-byte a config devkit rendered (:func:`devkit.trust.is_rendered`):
    another config is not devkit's to interpret, and ``mise run`` is never used (it would load
    the config). A task that is not one plain command (a list, shell syntax such as ``&&`` or
    ``$VAR``, mise templates) gives None, so the default command runs instead.
    """
    if not trust.is_rendered(path, ".mise.toml", store):
        return None
    try:
        doc = tomllib.loads((path / ".mise.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    tasks = doc.get("tasks")
    task = tasks.get("test") if isinstance(tasks, dict) else None
    run = task.get("run") if isinstance(task, dict) else task
    if not isinstance(run, str) or any(s in run for s in SHELL_SYNTAX):
        return None
    with contextlib.suppress(ValueError):
        return tuple(shlex.split(run)) or None
    return None


def resolve_command(path: Path, store: Store, override: tuple[str, ...] | None) -> TestCommand:
    """The test command of project ``path``: ``override`` (``--test-command``), else its
    workspace's ``test`` task (:func:`mise_test_task`), else :data:`DEFAULT_COMMAND`."""
    if override:
        return TestCommand(override, "--test-command")
    task = mise_test_task(path, store)
    if task:
        return TestCommand(task, "mise task test")
    return TestCommand(DEFAULT_COMMAND, "default")


@dataclasses.dataclass(frozen=True)
class TestRun:
    """One run of a project's tests: exit code and, when a JUnit XML report was written, each
    test id's outcome."""

    __test__ = False  # not a pytest test class, whatever its name

    exit_code: int | None  # None: could not start, or timed out
    results: Mapping[str, Outcome_]
    reported: bool  # a JUnit XML report was read
    seconds: float
    tail: str = ""  # the last lines of its output

    def ids(self, outcome: Outcome_) -> set[str]:
        """The test ids with that outcome."""
        return {t for t, o in self.results.items() if o == outcome}

    @property
    def usable(self) -> bool:
        """Can a later run be compared with this one: a report, or a clean exit?"""
        return self.reported or self.exit_code == 0

    def to_json(self) -> dict[str, object]:
        """``{"exit_code", "passed", "failed", "skipped", "seconds"}`` (counts)."""
        return {"exit_code": self.exit_code, "passed": len(self.ids("passed")),
                "failed": len(self.ids("failed")), "skipped": len(self.ids("skipped")),
                "seconds": round(self.seconds, 3)}


def read_junit(path: Path) -> dict[str, Outcome_] | None:
    """Test id (``classname::name``) -> outcome from a JUnit XML report, or None when absent or
    unreadable. ``<failure>`` and ``<error>`` count as failed (pytest reports a collection error
    as an ``<error>`` test case named after the module), ``<skipped>`` as skipped."""
    try:
        root = ET.parse(path).getroot()  # the project's own tests wrote it (expat: no external entities)
    except (OSError, ET.ParseError):
        return None
    results: dict[str, Outcome_] = {}
    for case in root.iter("testcase"):
        classname, name = case.get("classname") or "", case.get("name") or ""
        test_id = f"{classname}::{name}" if classname else name
        tags = {child.tag for child in case}
        outcome: Outcome_ = "failed" if tags & {"failure", "error"} else (
            "skipped" if "skipped" in tags else "passed")
        if results.get(test_id) != "failed":  # a test that errors in teardown stays failed
            results[test_id] = outcome
    return results


def run_tests(path: Path, command: TestCommand, env: Mapping[str, str]) -> TestRun:
    """Run ``command`` in ``path`` (no shell) and read its JUnit XML report.

    A pytest command gets ``--junitxml=FILE``; every command gets ``DEVKIT_TEST_JUNIT_XML=FILE``
    in its environment, where it may write one. Output is captured (its last lines kept).
    Times out after :data:`TEST_TIMEOUT` seconds. Raises nothing: a command that cannot start
    or times out gives ``exit_code`` None.
    """
    with tempfile.TemporaryDirectory(prefix="devkit-test-") as tmp:
        report = Path(tmp) / "junit.xml"
        argv = list(command.argv)
        if command.pytest and not any(a.startswith("--junitxml") for a in argv):
            argv.append(f"--junitxml={report}")
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=path, env={**env, JUNIT_ENV: str(report)},
                                  capture_output=True, text=True, errors="replace",
                                  timeout=TEST_TIMEOUT, check=False)
            code: int | None = proc.returncode
            output = (proc.stdout or "") + (proc.stderr or "")
        except subprocess.TimeoutExpired:
            code, output = None, f"timed out after {TEST_TIMEOUT:.0f} s"
        except OSError as exc:
            code, output = None, f"cannot run {argv[0]}: {exc}"
        seconds = time.monotonic() - started
        results = read_junit(report)
    tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
    return TestRun(code, results or {}, results is not None, seconds, tail)


def regressions(before: TestRun, after: TestRun) -> list[str]:
    """Test ids that got worse from ``before`` to ``after``: new failures first (a collection
    error names the module that no longer imports), then passes that no longer pass, each sorted.

    With a report before: tests that passed before and did not pass after (failed, or no longer
    run: with no report after, none ran), and tests failing after that did not fail before (a
    new collection error). Failures present before do not count. When that finds nothing, or
    there was no report before, the exit codes decide: a clean exit before and not after gives
    one pseudo id, ``(exit N)``.
    """
    if before.reported:
        # no report after (a crash, a timeout): every test that passed before no longer runs
        failing = after.ids("failed") - before.ids("failed")
        gone = before.ids("passed") - after.ids("passed") - failing
        if failing or gone:
            return sorted(failing) + sorted(gone)
    if before.exit_code == 0 and after.exit_code != 0:
        return [f"(exit {after.exit_code})" if after.exit_code is not None
                else f"(did not finish: {after.tail})"]
    return []


@dataclasses.dataclass
class Gate:
    """What the tests said about one project's new lock (``projects[].tests`` in ``--json``)."""

    command: TestCommand
    baseline: TestRun | None = None
    after: TestRun | None = None
    regressions: list[str] = dataclasses.field(default_factory=list)
    held: list[str] = dataclasses.field(default_factory=list)  # names held back for the tests
    runs: int = 0  # test runs, baseline included
    seconds: float = 0.0  # wall time of the whole gate (syncs, re-locks, test runs)
    note: str = ""  # why the project was not gated, or how the bisection ended

    def to_json(self) -> dict[str, object]:
        """``{"command", "source", "baseline", "after", "regressions", "held", "runs",
        "seconds", "note"}``."""
        return {"command": self.command.display(), "source": self.command.source,
                "baseline": self.baseline.to_json() if self.baseline else None,
                "after": self.after.to_json() if self.after else None,
                "regressions": self.regressions, "held": self.held, "runs": self.runs,
                "seconds": round(self.seconds, 3), "note": self.note}


class _Project:
    """The gate of one project: lock writes, syncs and test runs, counted."""

    def __init__(self, outcome: Outcome, env: Mapping[str, str], gate: Gate) -> None:
        self.outcome = outcome
        self.env = dict(env)
        self.gate = gate
        self.lock_path = outcome.path / "uv.lock"

    def put(self, data: bytes) -> None:
        """Make ``data`` the lock and sync the venv to it. Raises uv.UvError, OSError."""
        if self.lock_path.read_bytes() != data:
            atomic_write_bytes(self.lock_path, data)
        uv.sync(self.outcome.path, env=self.env)

    def test(self) -> TestRun:
        self.gate.runs += 1
        return run_tests(self.outcome.path, self.gate.command, self.env)

    def relock(self, base: bytes, specs: list[str]) -> bytes | None:
        """The lock uv finds from ``base`` with every ``specs`` pin (``-P``); None when uv finds
        none or would move a package to another index. Leaves ``base`` as the lock."""
        self.put_lock(base)
        try:
            uv.lock_cache_first(self.outcome.path, env=self.env, upgrade_packages=specs,
                                on_run=self._count)
        except uv.UvError as exc:
            if uv.is_conflict(exc.output):
                return None
            raise
        data = self.lock_path.read_bytes()
        self.put_lock(base)
        if index_moves(lockfile.parse(base, self.lock_path), lockfile.parse(data, self.lock_path)):
            return None
        return data

    def put_lock(self, data: bytes) -> None:
        if self.lock_path.read_bytes() != data:
            atomic_write_bytes(self.lock_path, data)

    def _count(self) -> None:
        self.outcome.uv_runs += 1


def gate_project(outcome: Outcome, base: bytes, env: Mapping[str, str], command: TestCommand,
                 *, first: lockfile.Lock | None = None) -> list[planner.Blocked]:
    """Keep ``outcome``'s new lock (on disk) only as far as its tests allow; returns the holds.

    ``base`` is the lock to compare against (the project's lock before align, or a stale lock's
    plain re-lock); ``first`` the lock before align touched it, for the reported changes. Ends
    with the lock on disk and the venv synced to it: the new lock when no test regressed, else
    the new lock minus the culprits (blockers of kind ``tests``, returned), or ``base`` when
    they cannot be isolated within :data:`MAX_BISECT_RUNS` runs. ``outcome`` is updated
    (``changes``, ``after``, ``downgrades``, ``status``, ``tests``, ``test_seconds``). Raises
    uv.UvError or OSError when a lock cannot be written or synced (the caller restores the lock);
    KeyboardInterrupt as it comes.
    """
    started = time.monotonic()
    gate = Gate(command)
    project = _Project(outcome, env, gate)
    new = project.lock_path.read_bytes()
    try:
        try:
            project.put(base)
        except uv.UvError as exc:
            gate.note = f"not tested: the venv cannot be synced to the lock before aligning ({exc})"
            project.put(new)
            return []
        gate.baseline = project.test()
        if not gate.baseline.usable:
            gate.note = (f"not tested: the tests do not pass before aligning (exit "
                         f"{gate.baseline.exit_code}) and wrote no JUnit XML report"
                         + (f": {gate.baseline.tail}" if gate.baseline.tail else ""))
            project.put(new)
            return []
        try:
            project.put(new)
            gate.after = project.test()
            gate.regressions = regressions(gate.baseline, gate.after)
        except uv.UvError as exc:
            gate.regressions = [f"(uv sync fails: {exc})"]
        if not gate.regressions:
            return []
        final, culprits = _bisect(project, base, new)
        project.put(final)
        return _record(outcome, gate, base, new, final, culprits, first)
    finally:
        gate.seconds = time.monotonic() - started
        outcome.tests = gate.to_json()
        outcome.test_seconds = gate.seconds


def _bisect(project: _Project, base: bytes, new: bytes) -> tuple[bytes, list[str]]:
    """The best lock between ``base`` and ``new`` and the names held back to get it.

    Splits the packages ``new`` moves (one version before and after) in halves: holding one half
    at its old version (the rest at their new versions), do the tests pass? Narrows to one
    culprit, checks that holding it (and the ones found before) is enough, and repeats while
    not. Each candidate lock is made by uv (:func:`_candidate`). When uv cannot lock a half held
    (a moved package needs another one's new version), that says nothing about the tests: the
    other half is held instead, and the search goes on from its answer. Returns ``(base, every
    moved name)`` when the budget of :data:`MAX_BISECT_RUNS` test runs runs out, or when neither
    half can be locked.
    """
    path = project.lock_path
    old_lock, new_lock = lockfile.parse(base, path), lockfile.parse(new, path)
    old_at, new_at = holds(old_lock), holds(new_lock)
    moved = [c.name for c in diff(old_lock, new_lock)
             if len(c.before) == 1 and len(c.after) == 1 and c.name in new_at]
    assert project.gate.baseline is not None
    baseline = project.gate.baseline
    tried: dict[frozenset[str], tuple[bool | None, bytes | None]] = {}
    budget = [MAX_BISECT_RUNS]

    def attempt(held: frozenset[str]) -> tuple[bool | None, bytes | None]:
        """(True, lock) when the tests pass on the candidate holding ``held``, (False, None)
        when they fail (or its venv cannot be synced), (None, None) when uv cannot lock it."""
        if held >= set(moved):
            return True, base  # holding every move is the baseline, whose tests passed
        if held in tried:
            return tried[held]
        if budget[0] <= 0:
            raise _OutOfRuns
        candidate = _candidate(project, base, held, old_at, new_at)
        result: tuple[bool | None, bytes | None] = (None, None)
        if candidate is not None:
            budget[0] -= 1
            try:
                project.put(candidate)
                passed = not regressions(baseline, project.test())
                result = (True, candidate) if passed else (False, None)
            except uv.UvError:
                result = (False, None)
        tried[held] = result
        return result

    found: list[str] = []
    try:
        while True:
            suspects = [n for n in moved if n not in found]
            while len(suspects) > 1:
                half, rest = suspects[: len(suspects) // 2], suspects[len(suspects) // 2:]
                passed, _ = attempt(frozenset([*found, *half]))
                if passed is None:  # no lock holds that half: ask the other one
                    other, _ = attempt(frozenset([*found, *rest]))
                    if other is None:
                        raise _OutOfRuns
                    passed = not other
                suspects = half if passed else rest
            if not suspects:
                return base, moved
            found.append(suspects[0])
            passed, kept = attempt(frozenset(found))
            if passed and kept is not None:
                return kept, found
    except _OutOfRuns:
        project.gate.note = (f"culprits not isolated within {MAX_BISECT_RUNS} runs: every move "
                             f"of this project is held")
        return base, moved


def _candidate(project: _Project, base: bytes, held: frozenset[str], old_at: Mapping[str, str],
               new_at: Mapping[str, str]) -> bytes | None:
    """The lock uv finds from ``base`` with ``held`` at their old versions, or None.

    First every other package of the new lock pinned to its new version (``-P NAME==NEW``);
    when uv finds no such lock (a moved parent needs a held child's new version), the other
    moved packages may stay anywhere between their old and new versions (``-P
    'NAME>=LOW,<=HIGH'``, the range form align itself uses), and packages the new lock added
    are left to uv.
    """
    exact = [f"{n}=={old_at[n] if n in held else v}" for n, v in new_at.items()]
    candidate = project.relock(base, exact)
    if candidate is not None:
        return candidate
    ranged = []
    for name, version in new_at.items():
        old = old_at.get(name)
        if old is None:
            continue
        if name in held or old == version:
            ranged.append(f"{name}=={old}")
        else:
            low, high = sorted((old, version), key=lockfile.version_key)
            ranged.append(f"{name}>={low},<={high}")
    return project.relock(base, ranged)


class _OutOfRuns(Exception):
    """The bisection's budget of test runs is spent."""


def _record(outcome: Outcome, gate: Gate, base: bytes, new: bytes, final: bytes,
            culprits: list[str], first: lockfile.Lock | None) -> list[planner.Blocked]:
    path = outcome.path / "uv.lock"
    old_lock, new_lock = lockfile.parse(base, path), lockfile.parse(final, path)
    wanted = lockfile.parse(new, path)
    after = lockfile.parse(final, path)
    outcome.after = after
    outcome.changes = diff(first or old_lock, after)
    outcome.downgrades = [c for c in diff(old_lock, after) if c.downgrade]
    outcome.released = [r for r in outcome.released if after.versions(r.name) == {r.after}]
    outcome.status = "aligned" if outcome.changes or outcome.stale else "unchanged"
    gate.held = sorted(culprits)
    index = {p.name: p.index for p in wanted.packages}
    shown = ", ".join(gate.regressions[:3]) + (
        f" and {len(gate.regressions) - 3} more" if len(gate.regressions) > 3 else "")
    blocked = []
    for name in gate.held:
        (current,) = old_lock.versions(name)
        (target,) = wanted.versions(name)
        if new_lock.versions(name) == {target}:
            continue
        blocked.append(planner.Blocked(
            outcome.name, index.get(name, ""), name, current, target,
            f"tests that pass with {name} {current} fail with {target}: {shown}", "tests",
            tuple(gate.regressions[:MAX_HELD_IDS])))
    return blocked


def gate_all(outcomes: list[Outcome], originals: Callable[[Outcome], bytes | None],
             store: Store, override: tuple[str, ...] | None,
             progress: Callable[[], None] = lambda: None) -> dict[Path, list[planner.Blocked]]:
    """Run :func:`gate_project` on every changed project, one after the other.

    ``originals(outcome)`` gives the lock to compare against (None: not gated). Returns the
    holds per project path. A project whose lock cannot be written or synced is restored to
    that lock and marked failed; the others go on.
    """
    env = store.subprocess_env()
    env.pop(JUNIT_ENV, None)
    found: dict[Path, list[planner.Blocked]] = {}
    for outcome in outcomes:
        try:
            _gate_one(outcome, originals(outcome), env, store, override, found)
        finally:
            progress()
    return found



def _gate_one(outcome: Outcome, base: bytes | None, env: dict[str, str], store: Store,
              override: tuple[str, ...] | None, found: dict[Path, list[planner.Blocked]]) -> None:
    if outcome.status != "aligned" or base is None:
        return
    with contextlib.suppress(OSError):
        if (outcome.path / "uv.lock").read_bytes() == base:
            return  # a stale lock's plain re-lock and nothing else: uv's doing, not align's
    command = resolve_command(outcome.path, store, override)
    try:
        found[outcome.path] = gate_project(outcome, base, env, command, first=outcome.original)
    except (DevkitError, OSError) as exc:
        with contextlib.suppress(OSError, DevkitError):
            atomic_write_bytes(outcome.path / "uv.lock", base)
            uv.sync(outcome.path, env=env)
        outcome.status, outcome.error = "failed", f"--test: {exc}; lock restored"
        outcome.changes, outcome.released, outcome.downgrades = [], [], []
        outcome.after = None
    # the gate's own `uv sync` made this venv what it is: later read-only commands may check it
    with contextlib.suppress(OSError, filelock.Timeout):
        workspace_code.record_venv(outcome.path, store)
