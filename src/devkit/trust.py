"""Whether a workspace's environment configs (``.mise.toml``, ``.envrc``) may be loaded.

Interface shared by ``devkit new``, ``devkit doctor --fix``, ``devkit update`` and ``devkit adopt``.
Trust state is read without asking mise or direnv to load the config (loading an untrusted config
can run its code), and devkit trusts only a config it can prove it rendered: the SHA-256 of each
file it rendered is recorded in ``Store.rendered_file`` right after rendering, and a config is
proven when its current content has that hash. A comment inside a file proves nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from devkit import direnv, mise
from devkit.store import Store
from devkit.util import atomic_write_text

#: The files of a workspace whose render is recorded: the two loader configs and the script both
#: of them run (``_.source = "./.envrc.sh"`` in ``.mise.toml``, ``source_env`` in ``.envrc``).
RENDERED_NAMES = (".mise.toml", ".envrc", ".envrc.sh")
MUTEX_TIMEOUT = 30.0  # seconds to wait for another devkit writing the record


def _key(workspace: Path, name: str) -> str:
    return str(workspace.resolve() / name)


def _digest(path: Path) -> str | None:
    """SHA-256 (hex) of a regular file (not a symlink), or None when absent/unreadable."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _load(store: Store) -> dict[str, str]:
    try:
        data = json.loads(store.rendered_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    configs = data.get("configs") if isinstance(data, dict) else None
    if not isinstance(configs, dict):
        return {}
    return {str(k): str(v) for k, v in configs.items()}


def record_rendered(workspace: Path, store: Store) -> None:
    """Record the SHA-256 of ``workspace``'s ``.mise.toml``, ``.envrc`` and ``.envrc.sh`` as
    rendered by devkit. Call it right after devkit itself wrote them (new, update, adopt).

    Absent files drop their record. The record (``store.rendered_file``, mode 0600) is replaced
    atomically under ``store.mutex("rendered")``. Raises OSError when the store is not writable and
    ``filelock.Timeout`` after 30 s of waiting for another writer.
    """
    digests = {_key(workspace, name): _digest(workspace / name) for name in RENDERED_NAMES}
    with store.mutex("rendered", timeout=MUTEX_TIMEOUT):
        configs = _load(store)
        for key, digest in digests.items():
            if digest is None:
                configs.pop(key, None)
            else:
                configs[key] = digest
        text = json.dumps({"version": 1, "configs": dict(sorted(configs.items()))}, indent=2)
        atomic_write_text(store.rendered_file, text + "\n")
        os.chmod(store.rendered_file, 0o600)


def is_rendered(workspace: Path, name: str, store: Store) -> bool:
    """True when ``workspace/name`` is a regular file whose content is exactly what devkit
    recorded for that path with :func:`record_rendered`. Raises nothing."""
    digest = _digest(workspace / name)
    return digest is not None and _load(store).get(_key(workspace, name)) == digest


def mise_trusted(config: Path, environ: Mapping[str, str]) -> bool:
    """Would mise load ``config`` (a ``.mise.toml`` path) as trusted? Read from mise's state
    directory without running mise (see :func:`devkit.mise.is_trusted`); unknown is False."""
    return mise.is_trusted(config, environ)


def direnv_allowed(workspace: Path, environ: Mapping[str, str]) -> bool | None:
    """Is ``workspace/.envrc`` allowed? ``direnv status`` (which does not evaluate the
    ``.envrc``); None when direnv cannot tell (not installed, no ``.envrc``)."""
    if direnv.find() is None:
        return None
    return direnv.is_allowed(workspace, env=environ)


def unproven(workspace: Path, names: tuple[str, ...], store: Store) -> list[str]:
    """Those of ``names`` present in ``workspace`` that are not proven rendered (missing
    ``.envrc.sh`` counts as proven: then there is nothing to run)."""
    present = [n for n in names if (workspace / n).exists() or (workspace / n).is_symlink()]
    return [n for n in present if not is_rendered(workspace, n, store)]


def trust_if_rendered(workspace: Path, store: Store) -> list[str]:
    """Approve (``mise trust`` / ``direnv allow``) each of ``workspace``'s loader configs that devkit
    can prove it rendered; returns one line per config saying what was done or why not.

    ``.mise.toml`` is trusted only when it and ``.envrc.sh`` are proven and no other mise config
    sits in the directory (mise trusts a whole directory). ``.envrc`` is allowed only when it and
    ``.envrc.sh`` are proven. Never raises for an unproven config (it is left untrusted and the line
    says so); raises DevkitError only when the approving tool itself fails.
    """
    lines: list[str] = []
    environ = dict(os.environ)
    config = workspace / ".mise.toml"
    if config.exists():
        lines.append(_trust_mise(workspace, config, store, environ))
    if (workspace / ".envrc").exists():
        lines.append(_allow_direnv(workspace, store, environ))
    return lines


def _refusal(workspace: Path, names: list[str], command: str) -> str:
    listed = ", ".join(names)
    return (f"not trusted: {listed} in {workspace} {'is' if len(names) == 1 else 'are'} not "
            f"what devkit rendered there; review {'it' if len(names) == 1 else 'them'}, then run "
            f"`{command}` yourself")


def _trust_mise(workspace: Path, config: Path, store: Store, environ: dict[str, str]) -> str:
    command = f"mise trust {workspace}"
    bad = unproven(workspace, (".mise.toml", ".envrc.sh"), store)
    if bad:
        return _refusal(workspace, bad, command)
    others = [n for n in mise.configs_in(workspace) if n != ".mise.toml"]
    if others:
        return (f"not trusted: mise would also trust {', '.join(others)} in {workspace}; review, "
                f"then run `{command}` yourself")
    if mise.is_trusted(config, environ):
        return f"{config} is already trusted"
    if mise.find() is None:
        return f"mise is not installed: install it, then run `{command}`"
    mise.trust(workspace, env={**environ, "MISE_OFFLINE": "1"})
    return f"ran `{command}`"


def _allow_direnv(workspace: Path, store: Store, environ: dict[str, str]) -> str:
    command = f"direnv allow {workspace}"
    bad = unproven(workspace, (".envrc", ".envrc.sh"), store)
    if bad:
        return _refusal(workspace, bad, command)
    if direnv.find() is None:
        return f"direnv is not installed: install it, then run `{command}`"
    if direnv.is_allowed(workspace, env=environ):
        return f"{workspace / '.envrc'} is already allowed"
    direnv.allow(workspace, env=environ)
    return f"ran `{command}`"


__all__ = ["direnv_allowed", "is_rendered", "mise_trusted", "record_rendered",
           "trust_if_rendered", "unproven"]
