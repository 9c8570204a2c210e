"""``devkit doctor``'s checks.

Every module of this package is imported for its ``@check`` registrations (any order); what the
user sees, and the ``--json`` document, follow :data:`ORDER` alone. A new check module needs its
name in :data:`MODULES` and its check id(s) in :data:`ORDER` (a test fails when either is
missing).

Public API: :data:`ORDER`, :func:`make_context`, :func:`run_checks`, plus
:mod:`devkit.checks.base` (``REGISTRY``, ``FIXERS``, ``Context``).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from devkit.checks import platform, tools
from devkit.checks.base import FIXERS, REGISTRY, Context, Result, find_workspace, run_checks
from devkit.hostfacts import Host
from devkit.store import Store

__all__ = ["FIXERS", "ORDER", "REGISTRY", "Context", "Result", "make_context", "run_checks"]

#: Display (and ``--json``) order of every check id: machine first, then the workspace, the store
#: and the platform-specific checks.
ORDER: tuple[str, ...] = (
    "platform",
    "tools.uv",
    "tools.mise",
    "tools.git",
    "tools.direnv",
    "shell.mise-active",
    "shell.mise-rc",
    "shell.direnv-hook",
    "git.autocrlf",
    "workspace.git",
    "workspace.envrc-lf",
    "workspace.gitattributes",
    "workspace.private-excluded",
    "workspace.private-tracked",
    "workspace.mise-trusted",
    "workspace.mise-env",
    "workspace.direnv-allowed",
    "workspace.direnv-env",
    "workspace.approved-unchanged",
    "workspace.python",
    "workspace.venv",
    "workspace.venv-current",
    "workspace.lock",
    "workspace.registered",
    "workspace.test-holds",
    "workspace.template-version",
    "services.docker",
    "services.daemon",
    "services.compose",
    "services.postgres",
    "services.redis",
    "store.cache-dir",
    "store.links",
    "store.venv-linked",
    "store.permissions",
    "store.disk",
    "store.gc",
    "wsl.workspace-location",
    "wsl.windows-path",
    "wsl.vscode",
    "macos.apfs-clone",
    "macos.homebrew-python",
)

#: Every module of this package that registers checks (a test compares it with the package's
#: files): imported by name, not found with pkgutil (~1 ms of doctor's start-up).
MODULES = ("macos", "platform", "private", "project", "services", "shell", "store",
           "template_version", "tools", "workspace", "wsl")
for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")


def make_context(path: Path, *, store: Store, host: Host, warm: bool = False) -> Context:
    """A :class:`Context` for ``path`` (the workspace holding it, if any) on ``host``.

    ``warm`` starts the tools' ``--version`` probes in a background thread first, so that they
    run while the answers file is read (PyYAML's import alone costs ~20 ms).
    """
    ctx = Context(host, store, None, platform.describe(host))
    if warm:
        threading.Thread(target=tools.warm_versions, args=(ctx,), daemon=True).start()
    ctx.workspace = find_workspace(path, store)
    return ctx
