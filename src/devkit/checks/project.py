"""Project checks: ``.venv`` matches the pinned Python, ``uv lock --check`` passes, the workspace is
registered."""

from __future__ import annotations

import shlex
from pathlib import Path

from devkit.checks.base import Context, Outcome, check, fail, ok, prefetch, safe_fix, warn
from devkit.errors import DevkitError
from devkit.hostfacts import RunResult


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
    """The workspace's Python: first line of ``.python-version``, else the ``python_version``
    answer (``3.11``), or None."""
    try:
        line = (_ws(ctx) / ".python-version").read_text(encoding="utf-8").strip().splitlines()
        if line and line[0].strip():
            return line[0].strip()
    except OSError:
        pass
    assert ctx.workspace is not None
    return ctx.workspace.answers.get("python_version") or None


def version_matches(pinned: str, actual: str) -> bool:
    """``3.11`` matches ``3.11.7``; ``3.11.7`` matches only itself (``cpython-`` prefix ignored)."""
    want = pinned.removeprefix("cpython-").removeprefix("python").split(".")
    have = actual.split(".")
    return have[: len(want)] == want


@check("workspace.venv", ".venv matches the pinned Python", workspace=True)
def venv_check(ctx: Context) -> Outcome:
    """``.venv`` exists, its interpreter is present and its version matches ``.python-version``."""
    ws = _ws(ctx)
    venv = ws / ".venv"
    resync = f"cd {shlex.quote(str(ws))} && rm -rf .venv && uv sync"
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
    if pinned and actual and not version_matches(pinned, actual):
        return fail(f".venv runs Python {actual}, the workspace pins {pinned}", resync)
    return ok(f".venv runs Python {actual or '?'}" + (f" (pinned {pinned})" if pinned else ""))


def lock_check_run(ctx: Context) -> RunResult:
    """``uv lock --check --offline`` in the workspace, with the store's variables (memoised)."""
    ws = _ws(ctx)
    uv = ctx.host.which("uv") or "uv"
    return ctx.run(uv, "lock", "--check", "--offline", cwd=ws, env=ctx.tool_env())


@prefetch
def _start_lock_check(ctx: Context) -> None:
    # Not without the cache directory: uv would create it, under the "uv cache directory" check.
    if ctx.workspace is not None and (ctx.workspace.path / "uv.lock").is_file() \
            and ctx.store.uv_cache_dir.is_dir() and ctx.host.which("uv"):
        lock_check_run(ctx)


@check("workspace.lock", "uv.lock is up to date", requires=("tools.uv", "store.cache-dir"),
       workspace=True)
def lock_check(ctx: Context) -> Outcome:
    """``uv lock --check --offline`` (``--offline``: never wait on the network; notes/uv.md §6)."""
    ws = _ws(ctx)
    cd = f"cd {shlex.quote(str(ws))} && "
    if not (ws / "uv.lock").is_file():
        return fail("uv.lock is missing", cd + "uv lock")
    result = lock_check_run(ctx)
    if result.ok:
        return ok("uv.lock matches pyproject.toml")
    text = (result.stderr + result.stdout).lower()
    if "needs to be updated" in text:
        return fail("uv.lock does not match pyproject.toml", cd + "uv lock")
    if result.error or "offline" in text or "network" in text:
        return warn(f"cannot check uv.lock offline: {result.last_line()}", cd + "uv lock --check")
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


@safe_fix("workspace.registered")
def fix_registered(ctx: Context) -> str:
    """Add the workspace to the registry."""
    from devkit.registry import Registry

    project, _ = Registry(ctx.store).add(_ws(ctx))
    return f"registered {project.path} as {project.name!r}"
