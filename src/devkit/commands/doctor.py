"""``devkit doctor [PATH] [--json] [--verbose] [--fix]``: check the machine and the workspace.

Checks live in :mod:`devkit.checks`; this module runs them, applies the safe fixes and
renders the results: one line per check with ✓ ! ✗ (flutter doctor's markers, ASCII where the
terminal cannot print them), the fix indented below, a summary line; or a stable JSON document.
Exit 0 when no check failed, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from devkit import __version__
from devkit.checks import FIXERS, Context, Result, make_context, run_checks
from devkit.checks.project import save_verified
from devkit.errors import DevkitError
from devkit.hostfacts import Host
from devkit.store import Store

MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
ASCII_MARKS = {"ok": "[ok]", "warn": "[!!]", "fail": "[XX]", "skip": "[--]"}
COLORS = {"ok": "32", "warn": "33", "fail": "31", "skip": "2"}  # green, yellow, red, dim


def doctor(
    path: Path,
    *,
    store: Store,
    as_json: bool = False,
    verbose: bool = False,
    fix: bool = False,
    host: Host | None = None,
    out: TextIO | None = None,
) -> int:
    """Check the machine and, when ``path`` is in a devkit workspace, the workspace.

    ``host`` defaults to the live machine (tests pass a ``RecordedHost``); ``out`` to stdout.
    Returns 1 when a check failed, else 0. Raises DevkitError when ``path`` is not a directory.
    """
    host = host or Host()
    stream = out or sys.stdout
    target = _directory(path)
    ctx = make_context(target, store=store, host=host, warm=True)
    applied: list[str] = []
    if fix:
        # Checked and fixed under the workspace's mutex: concurrent `doctor --fix` runs see each
        # other's fixes instead of applying them twice.
        with fix_mutex(store, ctx):
            results = run_checks(ctx)
            applied = apply_fixes(ctx, results)
        if applied:  # re-check everything: a fix can unblock the checks that depend on it
            ctx = make_context(target, store=store, host=host)
            results = run_checks(ctx)
    else:
        results = run_checks(ctx)
    save_verified(ctx)
    if as_json:
        json.dump(document(ctx, results, applied if fix else None), stream, indent=2)
        stream.write("\n")
    else:
        render(ctx, results, applied, stream=stream, verbose=verbose, fix=fix)
    return 1 if any(r.status == "fail" for r in results) else 0


def _directory(path: Path) -> Path:
    target = path.expanduser().absolute()
    try:
        if not target.exists():
            raise DevkitError(f"{path}: no such directory")
        if not target.is_dir():
            raise DevkitError(f"{path} is not a directory: pass a workspace directory")
    except OSError as exc:
        raise DevkitError(f"cannot access {path}: {exc.strerror or exc}") from exc
    return target


FIX_MUTEX_TIMEOUT = 120.0  # seconds to wait for another `doctor --fix` on the same workspace


@contextlib.contextmanager
def fix_mutex(store: Store, ctx: Context) -> Iterator[None]:
    """Hold the workspace's mutex (:meth:`devkit.store.Store.workspace_mutex`), or
    ``Store.mutex("fix-machine")`` outside a workspace. Raises DevkitError when another command
    holds it for 120 s."""
    import filelock

    if ctx.workspace:  # the mutex every command writing in the workspace takes
        with store.workspace_mutex(ctx.workspace.path, command="devkit doctor --fix",
                                   timeout=FIX_MUTEX_TIMEOUT):
            yield
        return
    try:
        with store.mutex("fix-machine", timeout=FIX_MUTEX_TIMEOUT):
            yield
    except filelock.Timeout as exc:
        raise DevkitError("another `devkit doctor --fix` is still fixing machine: try again "
                          "when it is done") from exc


def apply_fixes(ctx: Context, results: Sequence[Result]) -> list[str]:
    """Run the safe fix of every failed or warned check that has one; one line per attempt.

    A fixer shared by several checks (trust) runs once. The caller holds :func:`fix_mutex`.
    """
    done = []
    ran: set[object] = set()
    for result in results:
        fixer = FIXERS.get(result.id)
        if fixer is None or result.status not in ("fail", "warn") or fixer in ran:
            continue
        ran.add(fixer)
        try:
            done.append(f"{result.title}: {fixer(ctx)}")
        except (DevkitError, OSError) as exc:
            done.append(f"{result.title}: not fixed: {exc}")
    return done


def summary(results: Sequence[Result]) -> dict[str, int]:
    """Counts per status, always with all four keys."""
    counts = {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
    for result in results:
        counts[result.status] += 1
    return counts


def document(ctx: Context, results: Sequence[Result], applied: list[str] | None) -> dict[str, Any]:
    """The ``--json`` document (stable; see docs/doctor.md)."""
    doc: dict[str, Any] = {
        "devkit_version": __version__,
        "platform": dict(ctx.platform),
        "workspace": str(ctx.workspace.path) if ctx.workspace else None,
        "checks": [r.to_json() for r in results],
        "summary": summary(results),
    }
    if applied is not None:
        doc["fixes_applied"] = applied
    return doc


def _supports(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _use_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    if "NO_COLOR" in env or env.get("TERM") == "dumb":  # https://no-color.org
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def render(ctx: Context, results: Sequence[Result], applied: Sequence[str], *, stream: TextIO,
           verbose: bool = False, fix: bool = False) -> None:
    """Human output: a header, one line per check (fix indented below), a summary line."""
    marks = MARKS if _supports(stream, "".join(MARKS.values()) + "—") else ASCII_MARKS
    color = _use_color(stream, ctx.host.env)

    def paint(status: str, text: str) -> str:
        return f"\033[{COLORS[status]}m{text}\033[0m" if color else text

    where = (f"workspace {ctx.workspace.path} (env_loader {ctx.workspace.loader})"
             if ctx.workspace else "not in a devkit workspace: checking this machine only")
    print(f"devkit doctor {__version__}: {where}", file=stream)
    for line in applied:
        print(f"  fixed: {line}", file=stream)
    for r in results:
        if not (r.relevant or verbose):
            continue
        timing = f" [{r.seconds * 1000:.0f} ms]" if verbose else ""
        print(f"{paint(r.status, marks[r.status])} {r.title}: {r.message}{timing}", file=stream)
        if r.fix:
            for n, line in enumerate(r.fix.splitlines()):
                print(f"    {'fix: ' if n == 0 else '     '}{line}", file=stream)
    print(_summary_line(results, fix=fix, verbose=verbose), file=stream)


def _summary_line(results: Sequence[Result], *, fix: bool, verbose: bool = False) -> str:
    counts = summary(results)
    hidden = sum(not r.relevant for r in results)
    skipped = f"{counts['skip']} skipped"
    if hidden and not verbose:
        skipped += f" ({hidden} not applicable here, shown with -v)"
    parts = [f"{counts['fail']} failed", f"{counts['warn']} warning{'s' * (counts['warn'] != 1)}",
             f"{counts['ok']} ok", skipped]
    line = ", ".join(parts)
    fixable = [r for r in results if r.status in ("fail", "warn") and r.id in FIXERS]
    if fixable and not fix:
        line += f"; `devkit doctor --fix` applies {len(fixable)} safe fix{'es' * (len(fixable) != 1)}"
    if not counts["fail"] and not counts["warn"]:
        line = "No issues found. " + line
    return line
