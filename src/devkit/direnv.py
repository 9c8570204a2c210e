"""The only module that runs direnv (https://direnv.net)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output

TIMEOUT = 30.0  # seconds


def find() -> str | None:
    """Path of direnv on PATH, or None."""
    return shutil.which("direnv")


def allow(path: Path, *, env: Mapping[str, str] | None = None) -> None:
    """``direnv allow PATH``: approve the current ``.envrc`` content. Raises DevkitError."""
    try:
        cmd_output("direnv", "allow", str(path), cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"direnv allow failed in {path}: {exc.last_line()}") from exc


def is_allowed(path: Path, *, env: Mapping[str, str] | None = None) -> bool | None:
    """From ``direnv status``: ``Found RC allowed true`` or ``0`` (newer direnv) means allowed."""
    proc = cmd_output("direnv", "status", cwd=path, env=env, check=False, timeout=TIMEOUT)
    return parse_status(proc.stdout)


def parse_status(stdout: str) -> bool | None:
    """Parse ``direnv status``: ``Found RC allowed true`` (2.32) or ``0`` (newer) means allowed.

    Returns None when no ``.envrc`` was reported (../shared/notes/mise-direnv.md §8).
    """
    for line in stdout.splitlines():
        if line.startswith("Found RC allowed"):
            return line.rsplit(" ", 1)[-1].strip() in ("true", "0")
    return None
