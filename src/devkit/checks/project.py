"""Project checks: the pinned Python is available, ``.venv`` matches it and ``uv.lock``, the lock is
up to date, the workspace is registered.

uv runs only offline and without building (``--offline --no-build``), and not at all when it would
run code from the workspace anyway: ``--no-build`` does not stop uv from calling the project's own
build backend when its metadata is dynamic (verified with uv 0.13.9 and an in-tree backend), and a
path in ``.python-version`` is an interpreter uv executes. :func:`uv_blocker` says when.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from devkit import workspace_code
from devkit.checks.base import Context, Outcome, check, fail, ok, prefetch, safe_fix, skip, warn
from devkit.errors import DevkitError
from devkit.hostfacts import RunResult
from devkit.workspace_code import is_version_request

if TYPE_CHECKING:
    from devkit.verified import Verified


def _ws(ctx: Context) -> Path:
    assert ctx.workspace is not None  # workspace checks run only inside one
    return ctx.workspace.path


def read_pyvenv_cfg(venv: Path) -> dict[str, str] | None:
    """``key = value`` pairs of ``venv/pyvenv.cfg`` (PEP 405), or None when unreadable."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    pairs = (line.partition("=") for line in text.splitlines())
    return {k.strip(): v.strip() for k, sep, v in pairs if sep}


def pinned_python(ctx: Context) -> str | None:
    """The workspace's Python: first line of ``.python-version`` (undecodable bytes replaced),
    else the ``python_version`` answer (``3.11``), or None."""
    found = workspace_code.pinned_request(_ws(ctx))
    if found is not None:
        return found
    assert ctx.workspace is not None
    return ctx.workspace.answers.get("python_version") or None


def version_matches(pinned: str, actual: str) -> bool:
    """``3.11`` matches ``3.11.7``; ``3.11.7`` matches only itself (``cpython-`` prefix ignored)."""
    want = re.sub(r"^(cpython[-@]?|python)", "", pinned.lower()).rstrip("t").split(".")
    have = actual.split(".")
    return have[: len(want)] == want


def uv_blocker(ctx: Context) -> str | None:
    """Why uv must not run in the workspace (it would execute workspace code), or None (memoised).

    Reasons: ``.python-version`` is not a plain version request (a path there is an interpreter
    uv runs); ``.venv`` is not the one devkit created, or ``.venv/bin/python`` resolves inside
    the workspace (uv queries it); the project or a local package (``uv.lock``, ``pyproject.toml``
    sources) has dynamic metadata uv can only get by building. See
    :func:`devkit.workspace_code.uv_blocker`.
    """
    return ctx.memo(("uv-blocker", str(_ws(ctx))), lambda: _uv_blocker(ctx))


def _uv_blocker(ctx: Context) -> str | None:
    foreign = foreign_venv(ctx)
    if foreign:
        return foreign.reason
    return workspace_code.uv_blocker(_ws(ctx), pinned_python(ctx), store=ctx.store,
                                     venv_checked=True)


def foreign_venv(ctx: Context) -> workspace_code.ForeignVenv | None:
    """:func:`devkit.workspace_code.foreign_venv` for the workspace (memoised)."""
    ws = _ws(ctx)
    return ctx.memo(("foreign-venv", str(ws)),
                    lambda: workspace_code.foreign_venv(ws, ctx.store, memo=verified_memo(ctx)))


def _blocked(ctx: Context, reason: str) -> Outcome:
    return skip(f"cannot check without building or running workspace code: {reason}")


# -- the pinned Python --------------------------------------------------------------------------

def _find_cwd(ctx: Context) -> Path:
    """A directory outside the workspace to run ``uv python find`` in (no project, no .venv)."""
    for candidate in (ctx.store.home, Path(ctx.host.home), Path("/")):
        if candidate.is_dir():
            return candidate
    return Path("/")


def python_find(ctx: Context, request: str) -> RunResult:
    """``uv python find --offline --no-python-downloads --no-project REQUEST`` (memoised), run
    outside the workspace with the store's variables (so ``UV_PYTHON_INSTALL_DIR`` counts)."""
    uv = ctx.host.which("uv") or "uv"
    return ctx.run(uv, "python", "find", "--offline", "--no-python-downloads", "--no-project",
                   request, cwd=_find_cwd(ctx), env=ctx.tool_env())


@check("workspace.python", "pinned Python available to uv", requires=("tools.uv", "store.cache-dir"),
       workspace=True)
def python_available(ctx: Context) -> Outcome:
    """``uv python find`` (offline, no downloads) finds the ``.python-version`` request."""
    ws = _ws(ctx)
    pinned = pinned_python(ctx)
    if pinned is None:
        fix = f"cd {shlex.quote(str(ws))} && uv python pin 3.11"
        from devkit.checks.private import record_of

        try:
            private = record_of(ctx) is not None
        except DevkitError:
            private = True
        if private:  # a repository the user does not own: keep the new file out of git too
            fix += ' && echo /.python-version >> "$(git rev-parse --git-path info/exclude)"'
        return warn("no .python-version: uv picks any Python", fix)
    if not is_version_request(pinned):
        return fail(f".python-version holds {pinned!r}, not a Python version: devkit does not "
                    "pass it to uv (a path there is a program uv would run)",
                    f"cd {shlex.quote(str(ws))} && uv python pin 3.11")
    result = python_find(ctx, pinned)
    if result.ok:
        return ok(f"Python {pinned}: {result.stdout.strip()}")
    if result.error:
        return warn(f"cannot run `uv python find`: {result.error}", None)
    request = re.sub(r"^(cpython[-@]?|python)", "", pinned, flags=re.IGNORECASE)
    return fail(f"uv finds no Python {pinned} (offline, installs under "
                f"{ctx.store.python_install_dir}): {result.last_line()}",
                f"uv python install {request}")


@check("workspace.venv", ".venv matches the pinned Python", workspace=True)
def venv_check(ctx: Context) -> Outcome:
    """``.venv`` exists, its interpreter is present and its version matches ``.python-version``
    (read from ``pyvenv.cfg``: nothing runs), and devkit created it (else uv, which runs its
    interpreter, is not run there: :func:`devkit.workspace_code.foreign_venv`)."""
    ws = _ws(ctx)
    venv = ws / ".venv"
    resync = f"cd {shlex.quote(str(ws))} && rm -rf .venv && uv sync"
    left = [p.name for p in workspace_code.leftovers(ws, ctx.store)]
    if left:  # `devkit sync` puts the old venv back or deletes it, under the workspace mutex
        missing = "" if venv.exists() else "; .venv itself is missing"
        return warn(f"an interrupted devkit sync left the old .venv in {', '.join(left)}"
                    f"{missing}", f"devkit sync {shlex.quote(str(ws))}")
    if not venv.exists():
        return fail(".venv does not exist", f"cd {shlex.quote(str(ws))} && uv sync")
    cfg = read_pyvenv_cfg(venv)
    if cfg is None:
        return fail(".venv has no readable pyvenv.cfg: not a virtual environment", resync)
    actual = cfg.get("version_info") or cfg.get("version") or ""
    python = venv / "bin" / "python"
    if not python.exists():  # follows the symlink: a removed base interpreter breaks it
        return fail(f"{python} is missing or points at a removed interpreter", resync)
    pinned = pinned_python(ctx)
    if pinned and not is_version_request(pinned):
        pinned = None
    if pinned and actual and not version_matches(pinned, actual):
        return fail(f".venv runs Python {actual}, the workspace pins {pinned}", resync)
    foreign = foreign_venv(ctx)
    if foreign:
        return warn(f"{foreign.reason}; review it, then replace it" if foreign.fix
                    else foreign.reason, foreign.fix or None)
    return ok(f".venv runs Python {actual or '?'}" + (f" (pinned {pinned})" if pinned else ""))


#: Seconds uv may wait for a lock on the cache or the venv held by another uv (``UV_LOCK_TIMEOUT``,
#: uv 0.9.4+): the doctor reports rather than waits.
UV_LOCK_TIMEOUT = "10"


def verified_memo(ctx: Context, *, for_sync: bool = False) -> Verified | None:
    """The memo of what uv verified (:mod:`devkit.verified`), for the uv on PATH (memoised).

    Its version comes from the ``uv --version`` run the ``tools.uv`` check makes anyway, so no
    uv runs twice. ``for_sync``: for :func:`devkit.uv.sync_check`, which runs
    :func:`devkit.uv.find_uv`'s binary; None when that is another binary (or uv cannot tell its
    version): then every check runs uv.
    """
    memo = ctx.memo(("verified-memo",), lambda: _make_memo(ctx))
    if memo is None or not for_sync:
        return memo
    from devkit import uv

    try:
        same = uv.find_uv() == ctx.host.which("uv")
    except DevkitError:
        same = False
    return memo if same else None


def _make_memo(ctx: Context) -> Verified | None:
    from devkit import uv
    from devkit.checks.tools import version_run
    from devkit.verified import Verified

    path = ctx.host.which("uv")
    if path is None:
        return None
    result = version_run(ctx, path)
    version = uv.parse_version(result.stdout + result.stderr) if result.ok else None
    if version is None:
        return None
    return Verified(ctx.store, uv_version=version, env=ctx.tool_env(),
                    projects=[ctx.workspace.path] if ctx.workspace else [])


def save_verified(ctx: Context) -> None:
    """Write what this doctor run learnt into the memo (once, at the end; never raises)."""
    memo = ctx.memo(("verified-memo",), lambda: None)
    if memo is not None:
        memo.save()


def sync_check(ctx: Context) -> tuple[bool, list[str]]:
    """:func:`devkit.uv.sync_check` for the workspace (memoised; raises its errors); no uv run
    when the memo knows uv said "current" for exactly this state."""
    from devkit import verified

    ws = _ws(ctx)
    env = ctx.tool_env(UV_LOCK_TIMEOUT=UV_LOCK_TIMEOUT)
    return ctx.memo(("sync-check", str(ws)), lambda: verified.sync_check(
        ws, env=env, memo=verified_memo(ctx, for_sync=True)))


@check("workspace.venv-current", ".venv matches uv.lock",
       requires=("tools.uv", "workspace.venv", "workspace.lock"), workspace=True)
def venv_current(ctx: Context) -> Outcome:
    """``uv sync --check --locked --offline --no-build``: after ``devkit align`` or a ``git pull``
    that changed ``uv.lock``, ``.venv`` still holds the old versions until the next sync."""
    ws = _ws(ctx)
    blocker = uv_blocker(ctx)
    if blocker:
        return _blocked(ctx, blocker)
    try:
        current, changes = sync_check(ctx)
    except DevkitError as exc:
        return warn(f"cannot compare .venv with uv.lock: {exc}", f"devkit sync {shlex.quote(str(ws))}")
    if current:
        return ok(".venv holds exactly what uv.lock pins")
    shown = ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
    return warn(f".venv differs from uv.lock ({shown or 'uv: the environment is outdated'})",
                f"devkit sync {shlex.quote(str(ws))}")


def lock_check_run(ctx: Context) -> RunResult:
    """``uv lock --check --offline --no-build`` in the workspace, with the store's variables
    (memoised); not run (an empty success) when the memo knows uv said "locked" for exactly
    this state."""
    ws = _ws(ctx)
    return ctx.memo(("lock-check", str(ws)), lambda: _lock_check(ctx, ws))


def _lock_check(ctx: Context, ws: Path) -> RunResult:
    memo = verified_memo(ctx)
    key = memo.key("lock", ws) if memo is not None else None
    if memo is not None and memo.known("lock", ws, key):
        return RunResult(0)
    uv = ctx.host.which("uv") or "uv"
    result = ctx.run(uv, "lock", "--check", "--offline", "--no-build", cwd=ws,
                     env=ctx.tool_env(UV_LOCK_TIMEOUT=UV_LOCK_TIMEOUT))
    if memo is not None and result.ok:
        memo.remember("lock", ws, key)
    elif memo is not None:
        memo.forget("lock", ws)
    return result


@prefetch
def _start_uv(ctx: Context) -> None:
    # Not without the cache directory: uv would create it, under the "uv cache directory" check.
    if ctx.workspace is None or not (ctx.workspace.path / "uv.lock").is_file() \
            or not ctx.store.uv_cache_dir.is_dir() or not ctx.host.which("uv") or uv_blocker(ctx):
        return
    lock_check_run(ctx)
    if (ctx.workspace.path / ".venv" / "pyvenv.cfg").is_file():
        try:
            sync_check(ctx)
        except DevkitError:
            pass  # reported by the check


@prefetch
def _start_python_find(ctx: Context) -> None:
    if ctx.workspace is None or not ctx.host.which("uv") or not ctx.store.uv_cache_dir.is_dir():
        return  # uv would create the cache directory, under the "uv cache directory" check
    pinned = pinned_python(ctx)
    if pinned and is_version_request(pinned):
        python_find(ctx, pinned)


@check("workspace.lock", "uv.lock is up to date", requires=("tools.uv", "store.cache-dir"),
       workspace=True)
def lock_check(ctx: Context) -> Outcome:
    """``uv lock --check --offline --no-build``; not run when uv would build or run workspace
    code anyway (see :func:`uv_blocker`)."""
    ws = _ws(ctx)
    cd = f"cd {shlex.quote(str(ws))} && "
    if not (ws / "uv.lock").is_file():
        return fail("uv.lock is missing", cd + "uv lock")
    blocker = uv_blocker(ctx)
    if blocker:
        return _blocked(ctx, blocker)
    result = lock_check_run(ctx)
    if result.ok:
        return ok("uv.lock matches pyproject.toml")
    text = (result.stderr + result.stdout).lower()
    if "needs to be updated" in text:
        return fail("uv.lock does not match pyproject.toml", cd + "uv lock")
    if result.error or "offline" in text or "network" in text or "--no-build" in text:
        return warn(f"cannot check uv.lock offline without building: {result.last_line()}",
                    cd + "uv lock --check")
    return fail(f"`uv lock --check` failed: {result.last_line()}", cd + "uv lock")


@check("workspace.registered", "registered with devkit", workspace=True)
def registered(ctx: Context) -> Outcome:
    """The workspace is in ``$DEVKIT_HOME/projects.json`` (``devkit align`` sees only those)."""
    from devkit.registry import Registry  # lazy: filelock costs ~10 ms of start-up

    ws = _ws(ctx)
    try:
        project = Registry(ctx.store).find(ws)
    except DevkitError as exc:
        return fail(str(exc), f"mv {shlex.quote(str(ctx.store.registry_file))}{{,.bak}} "
                              f"&& devkit projects add {shlex.quote(str(ws))}")
    if project is None:
        return warn(f"{ws} is not in the registry: `devkit align` will skip it",
                    f"devkit projects add {shlex.quote(str(ws))}")
    return ok(f"registered as {project.name!r}")


@check("workspace.test-holds", "no package held back by failing tests", workspace=True)
def test_holds(ctx: Context) -> Outcome:
    """Moves ``devkit align --test`` refused because they broke this workspace's tests, as the
    alignment manifest records them (read only; held while the requirements are unchanged)."""
    from devkit.align import manifest  # lazy: doctor reads this one file only

    ws = _ws(ctx)
    held = manifest.recall_test_holds(ctx.store, [ws]).get(ws)
    if held is None or not held.blocked:
        return ok("devkit align holds no package back for failing tests")
    moves = ", ".join(f"{b.name} {b.current} (not {b.wanted}: "
                      f"{', '.join(b.tests[:2])}{', …' if len(b.tests) > 2 else ''})"
                      for b in held.blocked)
    return warn(f"failing tests hold back {moves}",
                f"fix the tests, then: devkit align --clear-holds {shlex.quote(str(ws))} --test")


@safe_fix("workspace.registered")
def fix_registered(ctx: Context) -> str:
    """Add the workspace to the registry."""
    from devkit.registry import Registry

    project, _ = Registry(ctx.store).add(_ws(ctx))
    return f"registered {project.path} as {project.name!r}"
