"""The only module that runs mise (https://mise.jdx.dev) or reads its state.

Never call ``mise trust --show`` (it loads, hence evaluates, the config it reports on), nor
``mise exec``/``run``/``install`` in a foreign workspace (they trust their config on the way):
trust state is read from mise's state directory instead, see :func:`is_trusted`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
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


def untrust(path: Path, *, env: Mapping[str, str] | None = None) -> None:
    """``mise trust --untrust PATH``: forget the trust of ``PATH``'s config (reads and runs
    nothing of it). Raises DevkitError on failure."""
    try:
        cmd_output("mise", "trust", "--untrust", str(path), cwd=path, env=env, timeout=TIMEOUT)
    except CalledProcessError as exc:
        raise DevkitError(f"mise trust --untrust failed in {path}: {exc.last_line()}") from exc


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


def _links_to_one(directory: Path, entry: os.DirEntry[str], targets: set[Path]) -> bool:
    """True when ``entry`` of ``directory`` is a symlink (or, as mise writes where symlinks are
    unavailable, a file holding a path) that names one of ``targets``."""
    if entry.name.endswith(".hash"):
        return False
    try:
        if entry.is_symlink():
            target = Path(os.readlink(entry.path))
            target = target if target.is_absolute() else directory / target
        elif entry.is_file(follow_symlinks=False):
            with open(entry.path, encoding="utf-8", errors="replace") as fh:
                target = Path(fh.read(4096).strip())
        else:
            return False
        return target.resolve() in targets
    except (OSError, ValueError, RuntimeError):
        return False


def _links_to(directory: Path, targets: set[Path]) -> bool:
    """True when an entry of ``directory`` names one of ``targets`` (:func:`_links_to_one`)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    return any(_links_to_one(directory, entry, targets) for entry in entries)


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


#: Names mise also reads from a project directory, besides :data:`CONFIG_NAMES` and the
#: ``mise.<env>.toml`` / ``.mise.<env>.toml`` / ``*.local.toml`` variants (mise docs, configuration
#: and config-environments): asdf's ``.tool-versions`` and ``.miserc.toml``, mise's early settings
#: whose ``override_config_filenames`` make it load other file names instead.
EXTRA_NAMES = (".tool-versions", ".miserc.toml", ".config/mise.local.toml", ".config/miserc.toml",
               ".rtx.local.toml")
#: Directories of a project whose ``*.toml`` files mise reads (``conf.d/``, ``config.toml``,
#: ``miserc.toml``): every one of them is listed, whatever its name.
CONFIG_DIRS = (".config/mise", ".mise", "mise")
_VARIANT = re.compile(r"\.?(mise|rtx)\.[^/]*toml")
#: Settings (environment variables) naming config files or file names mise then reads (mise docs,
#: settings and configuration): file names looked up in every project directory ...
NAME_SETTINGS = ("MISE_OVERRIDE_CONFIG_FILENAMES", "MISE_OVERRIDE_TOOL_VERSIONS_FILENAMES",
                 "MISE_DEFAULT_CONFIG_FILENAME", "MISE_DEFAULT_TOOL_VERSIONS_FILENAME",
                 "MISE_ENV_FILE")
#: ... and paths of global config files or directories.
PATH_SETTINGS = ("MISE_CONFIG_FILE", "MISE_GLOBAL_CONFIG_FILE", "MISE_SYSTEM_CONFIG_FILE",
                 "MISE_CONFIG_DIR", "MISE_SYSTEM_CONFIG_DIR", "MISE_GLOBAL_CONFIG_ROOT")
#: Keys of a ``.miserc.toml`` that name the files mise loads.
MISERC_NAME_KEYS = ("override_config_filenames", "override_tool_versions_filenames",
                    "default_config_filename", "default_tool_versions_filename")


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _toml_files_below(directory: Path, depth: int = 3) -> list[Path]:
    """Every ``*.toml`` file (or symlink) under ``directory``, ``depth`` levels deep at most."""
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False) and depth > 1:
                found += _toml_files_below(path, depth - 1)
            elif entry.name.endswith(".toml"):
                found.append(path)
        except OSError:
            continue
    return found


def configs_in(directory: Path, extra_names: Sequence[str] = ()) -> list[str]:
    """Names (relative to ``directory``, ``/``-separated) of the files mise would read as
    configuration of ``directory``: :data:`CONFIG_NAMES`, :data:`EXTRA_NAMES`, ``extra_names``
    (from :func:`redirected_names`), every ``mise.*.toml``/``.mise.*.toml`` variant (``MISE_ENV``
    environments, ``local`` files) and every ``*.toml`` below :data:`CONFIG_DIRS` (``conf.d/``).

    Each of them shares the directory's trust (verified with mise 2026.9: after ``mise trust
    DIR``, ``mise.local.toml``, ``.config/mise/conf.d/x.toml``, ``mise.dev.toml`` with
    ``MISE_ENV=dev`` and a file named by ``.miserc.toml`` all ran their ``_.source``). Reads the
    directory only; raises nothing.
    """
    found: list[str] = []

    def add(name: str) -> None:
        if name not in found:
            found.append(name)

    for name in (*CONFIG_NAMES, *EXTRA_NAMES, *extra_names):
        if name and not name.startswith("/") and _exists(directory / name):
            add(name)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        names = []
    for name in names:
        if _VARIANT.fullmatch(name):
            add(name)
    for sub in CONFIG_DIRS:
        for path in _toml_files_below(directory / sub):
            add(path.relative_to(directory).as_posix())
    return found


def _split(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[,:]", value) if v.strip()]


def global_configs(environ: Mapping[str, str]) -> list[Path]:
    """The user's and the system's mise config files (not a project's): ``MISE_CONFIG_DIR`` (else
    ``$XDG_CONFIG_HOME/mise``, else ``~/.config/mise``) and ``MISE_SYSTEM_CONFIG_DIR`` (else
    ``/etc/mise``) with every ``*.toml`` below them, ``~/.tool-versions`` and the files the
    :data:`PATH_SETTINGS` name. Only those that exist; raises nothing."""
    home = Path(environ.get("HOME") or Path.home())
    config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    dirs = [Path(environ.get("MISE_CONFIG_DIR") or config_home / "mise"),
            Path(environ.get("MISE_SYSTEM_CONFIG_DIR") or "/etc/mise")]
    found: list[Path] = []
    for directory in dirs:
        found += _toml_files_below(directory.expanduser())
    for key in PATH_SETTINGS:
        value = environ.get(key)
        if value:
            path = Path(value).expanduser()
            found += _toml_files_below(path) if path.is_dir() else [path] if _exists(path) else []
    if _exists(home / ".tool-versions"):
        found.append(home / ".tool-versions")
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def redirected_names(workspace: Path, environ: Mapping[str, str]) -> list[str]:
    """File names mise would also read in each project directory because of the user's settings:
    the :data:`NAME_SETTINGS` environment variables and, in every ``.miserc.toml`` of
    ``workspace`` and the directories above it (and ``miserc.toml`` in the global config
    directories), the :data:`MISERC_NAME_KEYS` (read as TOML, nothing evaluated). Raises nothing (an unreadable file adds nothing).
    """
    names: list[str] = []
    for key in NAME_SETTINGS:
        names += _split(environ.get(key, ""))
    rcs = [p / ".miserc.toml" for p in (workspace, *workspace.parents)]
    rcs += [p for p in global_configs(environ) if p.name == "miserc.toml"]
    for rc in rcs:
        try:
            text = rc.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        import tomllib  # only where a .miserc.toml exists: doctor reads none on most machines

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue
        for key in MISERC_NAME_KEYS:
            value = data.get(key)
            values = value if isinstance(value, list) else [value]
            names += [str(v) for v in values if isinstance(v, str) and v.strip()]
    return list(dict.fromkeys(names))


def path_settings_inside(workspace: Path, environ: Mapping[str, str]) -> list[str]:
    """``KEY=VALUE`` for each :data:`PATH_SETTINGS` variable naming a path inside ``workspace``
    (mise would read a global config from the workspace). Raises nothing."""
    inside = []
    root = workspace.resolve()
    for key in PATH_SETTINGS:
        value = environ.get(key)
        if not value:
            continue
        try:
            if Path(value).expanduser().resolve().is_relative_to(root):
                inside.append(f"{key}={value}")
        except (OSError, RuntimeError):
            continue
    return inside


def parent_configs(workspace: Path, extra_names: Sequence[str] = ()) -> list[Path]:
    """The mise config files in the directories above ``workspace`` (mise reads them all from the
    workspace, nearest first). Raises nothing."""
    found: list[Path] = []
    for directory in workspace.resolve().parents:
        found += [directory / name for name in configs_in(directory, extra_names)]
    return found


def trusted_at(config: Path, environ: Mapping[str, str]) -> float | None:
    """When (``st_mtime`` of the link, in seconds since the epoch) mise's state recorded the trust
    of ``config``'s directory, or None when no trusted-configs entry names it. ``mise trust``
    leaves an existing link alone: only ``mise trust --untrust`` followed by ``mise trust`` makes
    a new one (verified with mise 2026.9). Raises nothing."""
    try:
        real = config.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    targets = {real, config_root(real)}
    directory = state_dir(environ) / "trusted-configs"
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return None
    for entry in entries:
        if _links_to_one(directory, entry, targets):
            try:
                return entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                return None
    return None


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
