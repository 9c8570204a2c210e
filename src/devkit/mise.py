"""The only module that runs mise (https://mise.jdx.dev) or reads its state.

Never call ``mise trust --show`` (it loads, hence evaluates, the config it reports on), nor
``mise exec``/``run``/``install`` in a foreign workspace (they trust their config on the way):
trust state is read from mise's state directory instead, see :func:`is_trusted`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output

TIMEOUT = 30.0  # seconds

#: Config files mise reads from a project directory (mise docs, configuration: "mise.toml"),
#: relative to that directory. Every one of them shares the directory's trust.
CONFIG_NAMES = (
    "mise.toml", "mise.local.toml", ".mise.toml", ".mise.local.toml",
    "mise/config.toml", ".mise/config.toml", ".mise/config.local.toml", ".config/mise.toml",
    ".config/mise/config.toml", ".config/mise/config.local.toml", ".rtx.toml",
)


def find() -> str | None:
    """Path of mise on PATH, or None."""
    return shutil.which("mise")


def trust(path: Path, *, env: Mapping[str, str] | None = None) -> None:
    """``mise trust PATH`` (remembered under mise's state dir). Raises DevkitError on failure.

    Only for a config devkit can prove it wrote: mise loads the config right after trusting it.
    """
    try:
        cmd_output("mise", "trust", str(path), cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"mise trust failed in {path}: {exc.last_line()}") from exc


def state_dir(environ: Mapping[str, str]) -> Path:
    """mise's state directory: ``MISE_STATE_DIR``, else ``$XDG_STATE_HOME/mise``, else
    ``~/.local/state/mise`` (mise docs, directories: "~/.local/state/mise")."""
    if environ.get("MISE_STATE_DIR"):
        return Path(environ["MISE_STATE_DIR"]).expanduser()
    home = Path(environ.get("HOME") or Path.home())
    return Path(environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "mise"


def config_root(config: Path) -> Path:
    """The project directory a config file belongs to: ``/p`` for ``/p/.mise.toml``,
    ``/p/.mise/config.toml``, ``/p/.config/mise.toml`` and ``/p/.config/mise/config.toml``."""
    parent = config.parent
    if parent.name == "mise" and parent.parent.name == ".config":
        return parent.parent.parent
    if parent.name in (".mise", "mise") or (parent.name == ".config" and config.name == "mise.toml"):
        return parent.parent
    return parent


def _links_to(directory: Path, targets: set[Path]) -> bool:
    """True when an entry of ``directory`` is a symlink (or, as mise writes where symlinks are
    unavailable, a file holding a path) that names one of ``targets``."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    for entry in entries:
        if entry.name.endswith(".hash"):
            continue
        try:
            if entry.is_symlink():
                target = Path(os.readlink(entry.path))
                target = target if target.is_absolute() else directory / target
            elif entry.is_file(follow_symlinks=False):
                with open(entry.path, encoding="utf-8", errors="replace") as fh:
                    target = Path(fh.read(4096).strip())
            else:
                continue
            if target.resolve() in targets:
                return True
        except (OSError, ValueError, RuntimeError):
            continue
    return False


def _paths(value: str) -> list[Path]:
    return [Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip()]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def is_trusted(config: Path, environ: Mapping[str, str]) -> bool:
    """Would mise load ``config`` as trusted? Read from mise's own state, never by running mise.

    Layout of mise 2026.9 (verified with ``mise trust`` in an empty HOME):
    ``<state_dir>/trusted-configs/<dir>-<file>-<hash>`` is a symlink to the trusted project
    directory (older releases link the config file itself), ``ignored-configs/`` likewise for
    configs the user declined; ``MISE_TRUSTED_CONFIG_PATHS`` / ``MISE_IGNORED_CONFIG_PATHS``
    (``:``-separated) trust or ignore everything below them (mise docs, cli/trust and settings
    ``trusted_config_paths``). In paranoid mode (``MISE_PARANOID``) mise also compares a content
    hash this function does not know how to check: it answers False. Anything unreadable or
    unknown is untrusted. ``CI`` (which makes mise trust everything) is deliberately ignored:
    devkit itself only loads configs someone trusted. Raises nothing.
    """
    try:
        real = config.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    root = config_root(real)
    targets = {real, root}
    state = state_dir(environ)
    ignored = _paths(environ.get("MISE_IGNORED_CONFIG_PATHS", ""))
    if any(real.is_relative_to(p) for p in ignored) or _links_to(state / "ignored-configs", targets):
        return False
    if any(real.is_relative_to(p) for p in _paths(environ.get("MISE_TRUSTED_CONFIG_PATHS", ""))):
        return True
    if _truthy(environ.get("MISE_PARANOID")):
        return False
    return _links_to(state / "trusted-configs", targets)


def configs_in(directory: Path) -> list[str]:
    """Names (relative to ``directory``) of the mise config files it holds, plus any
    environment-specific ``.mise.<env>.toml`` / ``mise.<env>.toml``."""
    found = [name for name in CONFIG_NAMES if (directory / name).exists()]
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        names = []
    for name in names:
        if name.endswith(".toml") and name.startswith(("mise.", ".mise.")) and name not in found:
            found.append(name)
    conf_d = directory / ".config" / "mise" / "conf.d"
    if conf_d.is_dir():
        found.append(".config/mise/conf.d/")
    return found


def parse_env_json(stdout: str) -> dict[str, str] | None:
    """The object printed by ``mise env --json`` as text values, or None when it is not one."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def env_json(path: Path, *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``mise env --json`` computed in ``path``. Raises DevkitError (e.g. untrusted config).

    Evaluates the config (``_.source`` scripts, ``{{ exec() }}`` templates): call it only on a
    config :func:`is_trusted` says is trusted.
    """
    try:
        proc = cmd_output("mise", "env", "--json", cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"mise env failed in {path}: {exc.last_line()}") from exc
    data = parse_env_json(proc.stdout or "{}")
    if data is None:
        raise DevkitError(f"mise env in {path} did not print a JSON object")
    return data
