"""Tools: uv, mise, git and (when the workspace uses it) direnv are found, parse their version, are
new enough and, on WSL, are Linux binaries rather than Windows ones reached via ``/mnt/``."""

from __future__ import annotations

import re
from typing import Any

from devkit import toolversions
from devkit.checks.base import Context, Outcome, check, fail, not_applicable, ok, safe_fix, warn
from devkit.errors import DevkitError
from devkit.hostfacts import Host, RunResult

# The oldest versions devkit supports, in one place. Why these floors:
# - uv 0.9: devkit itself depends on uv>=0.9 (pyproject.toml); the lock/cache behaviour devkit relies
#   on (exclusive cache lock for prune, 0.8.19; UV_LOCK_TIMEOUT, 0.9.4) is there (uv changelog).
# - mise 2026.5: the template sets `python.uv_venv_auto = "source"`; mise 2025.5 took only a boolean
#   there (src/uv.rs, docs.rs/crate/mise/2025.5.7), 2026.5.5 has the "source"/"create|source"
#   values (docs.rs/crate/mise/2026.5.5, src/uv.rs). Tested with 2026.9.15.
# - git 2.31: devkit neutralises a repository's code-running settings through GIT_CONFIG_COUNT /
#   GIT_CONFIG_KEY_<n> (git-config(1) ENVIRONMENT), which git reads since 2.31 (older ones ignore
#   them); `git init -b main` needs 2.28.
# - direnv 2.30: `source_env` and the `direnv status` "Found RC allowed" line devkit parses.
MIN_VERSIONS: dict[str, tuple[int, ...]] = {
    "uv": (0, 9), "mise": (2026, 5), "git": (2, 31), "direnv": (2, 30),
}

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first ``X.Y[.Z]`` in a ``--version`` output (``uv 0.13.9 (…)``, ``2026.9.15 linux-x64``,
    ``git version 2.39.5``, ``2.32.1``) as a tuple of ints, or None."""
    match = _VERSION.search(text)
    if match is None:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


def install_hint(ctx: Context, name: str) -> str:
    """The exact command that installs ``name`` on this platform."""
    macos = ctx.platform.get("system") == "macos"
    return {
        "uv": "curl -LsSf https://astral.sh/uv/install.sh | sh",
        "mise": "curl https://mise.run | sh",
        "git": "xcode-select --install" if macos else "sudo apt-get install git",
        "direnv": "brew install direnv" if macos else "sudo apt-get install direnv",
    }[name]


def upgrade_hint(ctx: Context, name: str) -> str:
    """The exact command that upgrades ``name``."""
    return {"uv": "uv self update", "mise": "mise self-update"}.get(name) or install_hint(ctx, name)


def _windows_binary(ctx: Context, path: str) -> bool:
    return ctx.wsl is not None and (path.startswith("/mnt/") or path.lower().endswith(".exe"))


def tool_path(ctx: Context, name: str) -> str | None:
    """``name`` on PATH (on WSL also ``name.exe``: a Windows binary first on PATH is reported)."""
    names = (name, f"{name}.exe") if ctx.wsl else (name,)
    return ctx.host.which(*names)


def _known_versions(ctx: Context) -> dict[str, Any]:
    """:func:`devkit.toolversions.read`, once per ``ctx``."""
    return ctx.memo(("tool-versions",), lambda: toolversions.read(ctx.store))


def version_run(ctx: Context, path: str) -> RunResult:
    """``PATH --version`` (memoised in ``ctx``).

    On the live host, a successful output is also remembered in the store
    (:mod:`devkit.toolversions`) under its binary's identity, and read back while
    the binary is the same file: each ``--version`` costs a process start (``mise --version``
    100-250 ms), and the version of an unchanged file cannot change. Recorded hosts (WSL2/macOS
    facts) always go through ``ctx.run``.
    """
    return ctx.memo(("version", path), lambda: _version(ctx, path))


def _version(ctx: Context, path: str) -> RunResult:
    key = toolversions.binary_key(path) if type(ctx.host) is Host else None
    if key is not None:
        found = toolversions.known(_known_versions(ctx), path, key)
        if found is not None:
            return RunResult(0, *found)
    result = ctx.run(path, "--version", timeout=5.0)
    if key is not None and result.ok and toolversions.binary_key(path) == key:
        toolversions.remember(ctx.store, path, key, result.stdout, result.stderr)
    return result


def warm_versions(ctx: Context) -> None:
    """Start the ``--version`` runs of uv, mise and git (results memoised in ``ctx``). Never
    raises: a failure resurfaces in the check."""
    for name in ("mise", "uv", "git"):
        path = tool_path(ctx, name)
        if path is not None and not _windows_binary(ctx, path):
            try:
                version_run(ctx, path)
            except Exception:  # noqa: BLE001,S112  # reported by the check itself
                continue


def tool_outcome(ctx: Context, name: str, *, required: bool = True) -> Outcome:
    """Find ``name`` on PATH (on WSL also ``name.exe``), run ``--version``, compare to MIN_VERSIONS."""
    path = tool_path(ctx, name)
    if path is None:
        missing = warn if not required else fail
        return missing(f"{name} not found on PATH", install_hint(ctx, name))
    return tool_outcome_at(ctx, name, path)


def tool_outcome_at(ctx: Context, name: str, path: str) -> Outcome:
    """Run ``path --version`` for tool ``name`` and compare it to MIN_VERSIONS."""
    if _windows_binary(ctx, path):
        # appendWindowsPath puts Windows tools on PATH; they cannot handle Linux paths
        # (astral-sh/uv#12155, microsoft/WSL#4234).
        return fail(f"{name} resolves to a Windows binary: {path}",
                    f"install the Linux {name} ({install_hint(ctx, name)}) and set "
                    "appendWindowsPath = false under [interop] in /etc/wsl.conf, "
                    "then run `wsl.exe --shutdown` from Windows")
    result = version_run(ctx, path)
    if not result.ok:
        return fail(f"`{path} --version` failed: {result.last_line()}",
                    f"reinstall {name}: {install_hint(ctx, name)}")
    version = parse_version(result.stdout + result.stderr)
    if version is None:
        return warn(f"cannot read the version of {path} from {result.last_line()!r}", None)
    minimum = MIN_VERSIONS[name]
    if version < minimum:
        return fail(f"{name} {_dotted(version)} is older than {_dotted(minimum)}, the oldest devkit "
                    "supports", upgrade_hint(ctx, name))
    return ok(f"{name} {_dotted(version)} ({path})")


@check("tools.uv", "uv")
def uv_check(ctx: Context) -> Outcome:
    """uv for your shell and the workspaces' tasks: on PATH, or the link ``$DEVKIT_HOME/bin/uv``
    to the uv devkit uses (every workspace's ``.envrc.sh`` puts ``$DEVKIT_HOME/bin`` on PATH)."""
    link = ctx.store.bin_dir / "uv"
    if tool_path(ctx, "uv") is not None:
        return tool_outcome(ctx, "uv")
    from devkit import uv

    target = uv.exposed(ctx.store.bin_dir)
    if target is None:
        try:
            uv.find_uv()
        except DevkitError:
            return fail("uv not found: not on PATH, and devkit has none to link",
                        "pip install uv (in devkit's venv), or "
                        f"{install_hint(ctx, 'uv')}; then devkit doctor --fix")
        return fail(f"uv not found on PATH and {link} does not lead to devkit's uv: workspace "
                    "tasks (`mise run check`, `uv run …`) cannot run uv",
                    "devkit doctor --fix   # links devkit's uv into " + str(ctx.store.bin_dir))
    outcome = tool_outcome_at(ctx, "uv", str(link))
    if outcome.status != "ok":
        return outcome
    return ok(f"{outcome.message}: devkit's uv ({target}), on PATH inside every workspace")


@safe_fix("tools.uv")
def fix_uv_link(ctx: Context) -> str:
    """Link ``$DEVKIT_HOME/bin/uv`` (and ``uvx``) to the uv devkit uses (:func:`devkit.uv.expose`)."""
    from devkit import uv

    target = uv.expose(ctx.store.bin_dir)
    return f"linked {ctx.store.bin_dir / 'uv'} -> {target}"


@check("tools.mise", "mise")
def mise_check(ctx: Context) -> Outcome:
    """mise is needed by workspaces that load their environment with it (the default)."""
    ws = ctx.workspace
    return tool_outcome(ctx, "mise", required=ws is None or ws.uses_mise)


@check("tools.git", "git")
def git_check(ctx: Context) -> Outcome:
    """git: every workspace is a repository."""
    return tool_outcome(ctx, "git")


@check("tools.direnv", "direnv")
def direnv_check(ctx: Context) -> Outcome:
    """direnv, only when the workspace's ``env_loader`` is ``direnv`` or ``both``."""
    if ctx.workspace is None or not ctx.workspace.uses_direnv:
        return not_applicable("the workspace does not use direnv")
    return tool_outcome(ctx, "direnv")
