"""The only module that runs git."""

from __future__ import annotations

import shutil
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
