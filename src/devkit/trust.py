"""Whether a workspace's environment configs (``.mise.toml``, ``.envrc``) may be loaded.

Interface shared by ``devkit new``, ``devkit doctor --fix``, ``devkit update`` and ``devkit adopt``.
Trust state is read without asking mise or direnv to load the config (loading an untrusted config
can run its code), and devkit trusts only a config it can prove it rendered.
"""

from __future__ import annotations

from pathlib import Path

from devkit.store import Store


def trust_if_rendered(workspace: Path, store: Store) -> list[str]:
    """Approve (``mise trust`` / ``direnv allow``) each of ``workspace``'s loader configs that devkit
    can prove it rendered; returns one line per config saying what was done or why not.

    Never raises for an unproven config (it is left untrusted and the line says so); raises
    DevkitError only when the approving tool itself fails.
    """
    raise NotImplementedError
