"""The only module that runs mise (https://mise.jdx.dev)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output

TIMEOUT = 30.0  # seconds


def find() -> str | None:
    """Path of mise on PATH, or None."""
    return shutil.which("mise")


def trust(path: Path, *, env: Mapping[str, str] | None = None) -> None:
    """``mise trust PATH`` (remembered under mise's state dir). Raises DevkitError on failure."""
    try:
        cmd_output("mise", "trust", str(path), cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"mise trust failed in {path}: {exc.last_line()}") from exc


def is_trusted(path: Path, *, env: Mapping[str, str] | None = None) -> bool | None:
    """``mise trust --show``: True/False for the config in ``path``, None when mise can't say."""
    proc = cmd_output(
        "mise", "trust", "--show", cwd=path, env=env, check=False, timeout=TIMEOUT
    )
    return parse_trust_show(proc.stdout)


def parse_trust_show(stdout: str) -> bool | None:
    """Parse ``mise trust --show`` lines (``<path>: trusted`` / ``: untrusted``).

    True when every listed config is trusted, False when one is not, None when none is listed
    (../shared/notes/mise-direnv.md §2).
    """
    states = [ln.rsplit(":", 1)[-1].strip() for ln in stdout.splitlines() if ":" in ln]
    if not states:
        return None
    return all(s == "trusted" for s in states)


def env_json(path: Path, *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``mise env --json`` computed in ``path``. Raises DevkitError (e.g. untrusted config)."""
    try:
        proc = cmd_output("mise", "env", "--json", cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"mise env failed in {path}: {exc.last_line()}") from exc
    data = json.loads(proc.stdout or "{}")
    return {str(k): str(v) for k, v in data.items()}
