"""``devkit align`` (placeholder until the align issue lands)."""

from __future__ import annotations

from pathlib import Path

from devkit.store import Store


def align_new_project(path: Path, *, store: Store) -> None:
    """Move a fresh lock onto versions already used by other workspaces (not yet implemented)."""


def align(paths: list[Path], *, store: Store, **_: object) -> int:
    """Not implemented yet."""
    raise NotImplementedError
