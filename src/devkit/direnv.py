"""The only module that runs direnv (https://direnv.net) or parses its output."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output

TIMEOUT = 30.0  # seconds


def find() -> str | None:
    """Path of direnv on PATH, or None."""
    return shutil.which("direnv")


def allow(path: Path, *, env: Mapping[str, str] | None = None) -> None:
    """``direnv allow PATH``: approve the current ``.envrc`` content. Raises DevkitError.

    Only for an ``.envrc`` devkit can prove it wrote: direnv runs an allowed ``.envrc`` on ``cd``.
    """
    try:
        cmd_output("direnv", "allow", str(path), cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"direnv allow failed in {path}: {exc.last_line()}") from exc


def deny(path: Path, *, env: Mapping[str, str] | None = None) -> None:
    """``direnv deny PATH``: revoke the approval of ``PATH``'s ``.envrc`` (evaluates nothing).
    Raises DevkitError on failure."""
    try:
        cmd_output("direnv", "deny", str(path), cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"direnv deny failed in {path}: {exc.last_line()}") from exc


def is_allowed(path: Path, *, env: Mapping[str, str] | None = None) -> bool | None:
    """Is the ``.envrc`` found from ``path`` allowed? From ``direnv status``, which reads direnv's
    allow/deny state (``$XDG_DATA_HOME/direnv/allow/<sha256 of path and content>``) and the
    ``whitelist`` settings without evaluating the ``.envrc`` (verified with direnv 2.32: an
    ``.envrc`` that touches a file does not run). None when direnv reports no ``.envrc`` or
    cannot run.
    """
    try:
        proc = cmd_output("direnv", "status", cwd=path, env=env, check=False, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_status(proc.stdout)


def parse_status(stdout: str) -> bool | None:
    """Parse ``direnv status``: ``Found RC allowed true`` (2.32) or ``0`` (newer) means allowed.

    Returns None when no ``.envrc`` was reported.
    """
    for line in stdout.splitlines():
        if line.startswith("Found RC allowed"):
            return line.rsplit(" ", 1)[-1].strip() in ("true", "0")
    return None


def parse_export_json(stdout: str) -> dict[str, str | None] | None:
    """The object printed by ``direnv export json`` (variables to set; None means unset).

    An empty output (nothing to change) is ``{}``; None when the output is not a JSON object.
    """
    if not stdout.strip():
        return {}
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): None if v is None else str(v) for k, v in data.items()}
