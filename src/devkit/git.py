"""The only module that runs git."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output

# Used only when the user has no identity configured, so the first commit never fails.
_FALLBACK_IDENTITY = ("-c", "user.name=devkit", "-c", "user.email=devkit@localhost")


def _git(*args: str, cwd: Path) -> str:
    if shutil.which("git") is None:
        raise DevkitError("git not found on PATH: install git (e.g. `apt-get install git`)")
    try:
        return cmd_output("git", *args, cwd=cwd).stdout
    except CalledProcessError as exc:
        raise DevkitError(f"git {args[0]} failed in {cwd}: {exc.last_line()}") from exc


def has_identity(cwd: Path) -> bool:
    """True when ``user.name`` and ``user.email`` are configured for ``cwd``."""
    return all(
        cmd_output("git", "config", key, cwd=cwd, check=False).stdout.strip()
        for key in ("user.name", "user.email")
    )


def init_and_commit(path: Path, message: str) -> None:
    """``git init`` (branch ``main``) ``path``, add everything and commit. Raises DevkitError."""
    if not (path / ".git").exists():
        _git("init", "-q", "-b", "main", cwd=path)
    commit_all(path, message)


def commit_all(path: Path, message: str) -> None:
    """Stage everything in ``path`` and commit if anything changed. Raises DevkitError."""
    _git("add", "-A", cwd=path)
    if not _git("status", "--porcelain", cwd=path).strip():
        return
    identity = () if has_identity(path) else _FALLBACK_IDENTITY
    _git(*identity, "commit", "-q", "--no-verify", "-m", message, cwd=path)


def config_get(path: Path, key: str) -> str | None:
    """The value of git config ``key`` as seen from ``path``, or None when unset or not a repo."""
    if shutil.which("git") is None:
        return None
    proc = cmd_output("git", "config", "--get", key, cwd=path, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def check_attr(path: Path, attr: str, file: str) -> str | None:
    """``git check-attr ATTR FILE`` value (``lf``, ``unspecified``…), or None outside a repo."""
    if shutil.which("git") is None:
        return None
    proc = cmd_output("git", "check-attr", attr, "--", file, cwd=path, check=False)
    if proc.returncode != 0 or ": " not in proc.stdout:
        return None
    return proc.stdout.strip().rsplit(": ", 1)[-1]


# Options that keep a repository's own config from running code: no hooks, no fsmonitor command
# (git-config(1): core.hooksPath, core.fsmonitor). Used for every call in a repository devkit owns.
NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false")


def run(*args: str, cwd: Path, extra_env: Mapping[str, str] | None = None) -> str:
    """``git ARGS`` in ``cwd`` with ``extra_env`` added to the environment; returns stdout.

    Raises DevkitError when git is missing or exits non-zero (with git's last line).
    """
    if shutil.which("git") is None:
        raise DevkitError("git not found on PATH: install git (e.g. `apt-get install git`)")
    env = {**os.environ, **extra_env} if extra_env else None
    try:
        return cmd_output("git", *args, cwd=cwd, env=env).stdout
    except CalledProcessError as exc:
        name = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        raise DevkitError(f"git {name} failed in {cwd}: {exc.last_line()}") from exc


def status(path: Path) -> list[tuple[str, str]]:
    """``(XY, path)`` for every changed, untracked or unmerged file under ``path``
    (``git status --porcelain=v1 -z --untracked-files=all``; paths relative to ``path``).

    Raises DevkitError outside a work tree.
    """
    out = run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".", cwd=path)
    fields = out.split("\0")
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(fields):
        item = fields[i]
        i += 1
        if len(item) < 4:
            continue
        code, name = item[:2], item[3:]
        if code[0] in "RC":  # a rename/copy is followed by its source path
            i += 1
        entries.append((code, name))
    prefix = run("rev-parse", "--show-prefix", cwd=path).strip()
    return [(c, n.removeprefix(prefix)) for c, n in entries]
