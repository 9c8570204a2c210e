"""``devkit doctor``'s checks. Importing this package registers them; module order is display order.

Public API: :func:`make_context`, :func:`run_checks`, plus :mod:`devkit.checks.base` (``REGISTRY``, ``FIXERS``, ``Context``).
"""

from __future__ import annotations

from pathlib import Path

# Imported for their @check registrations; this order is the display order.
from devkit.checks import macos, platform, project, shell, tools, workspace, wsl  # noqa: F401
from devkit.checks import store as _store_checks  # noqa: F401
from devkit.checks import template_version as _template_version_checks  # noqa: F401
from devkit.checks.base import FIXERS, REGISTRY, Context, Result, find_workspace, run_checks
from devkit.hostfacts import Host
from devkit.store import Store

__all__ = ["FIXERS", "REGISTRY", "Context", "Result", "make_context", "run_checks"]


def make_context(path: Path, *, store: Store, host: Host) -> Context:
    """A :class:`Context` for ``path`` (the workspace holding it, if any) on ``host``."""
    return Context(host, store, find_workspace(path), platform.describe(host))
