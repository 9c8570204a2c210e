"""Whether a workspace's environment configs (``.mise.toml``, ``.envrc``) may be loaded.

Interface shared by ``devkit new``, ``devkit doctor --fix``, ``devkit update`` and ``devkit adopt``.
Trust state is read without asking mise or direnv to load the config (loading an untrusted config
can run its code).

The approval rule: devkit approves a loader config (``mise trust`` / ``direnv allow``) only when
every file inside the workspace that the loader would execute or read is byte for byte what
devkit rendered from its own template (the store's template, or a ``--template`` the user gave
to ``devkit new``; never a source read from a cloned answers file), and that set of files is
closed:

* mise: ``.mise.toml`` is the only config file mise would read from the workspace
  (:func:`devkit.mise.configs_in`: local and ``MISE_ENV`` variants, ``.config/mise/``,
  ``conf.d/``, ``.tool-versions``, ``.miserc.toml`` and the file names the user's settings or
  ``.miserc.toml`` files redirect mise to), and it and ``.envrc.sh`` (its ``_.source``) are
  proven; direnv: ``.envrc`` and ``.envrc.sh`` are proven.
* ``.envrc.local.sh``, which ``.envrc.sh`` sources first, is a per-user file devkit never
  renders: one committed to git, or present when ``devkit adopt`` found the project, is refused.
* Proven means: the SHA-256 of the file devkit rendered is recorded in ``Store.rendered_file``,
  keyed by its path, and the file (a regular file, not a symlink) still has that hash. A comment
  inside a file proves nothing.
* Ownership and permissions are read through symlinks (``os.stat``): the store and its record,
  the workspace and every file the loader runs must be the user's and writable by nobody else
  (a group-writable file is accepted only in the user's private group); files outside the
  workspace (parent directories' and global mise configs) cannot match a render and must only be
  the user's (or root's) and writable by nobody else.

Anything else is not approved, with one line saying which file and the command to approve it
after reviewing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat
from collections.abc import Mapping
from pathlib import Path

from devkit import direnv, git, mise
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text

#: The files of a workspace whose render is recorded: the two loader configs and the script both
#: of them run (``_.source = "./.envrc.sh"`` in ``.mise.toml``, ``source_env`` in ``.envrc``).
RENDERED_NAMES = (".mise.toml", ".envrc", ".envrc.sh")
#: The per-user script the template's ``.envrc.sh`` sources first (git-ignored, never rendered).
LOCAL_SCRIPT = ".envrc.local.sh"
#: What each loader reads or runs inside the workspace when its config is devkit's render.
LOADER_FILES = {"mise": (".mise.toml", ".envrc.sh"), "direnv": (".envrc", ".envrc.sh")}
MUTEX_TIMEOUT = 30.0  # seconds to wait for another devkit writing the record
PARANOID_URL = "https://mise.jdx.dev/paranoid.html"


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


def render_of(directory: Path) -> dict[str, bytes]:
    """The bytes of each of :data:`RENDERED_NAMES` that ``directory`` (a fresh render of devkit's
    template) holds as a regular file: the argument :func:`record_rendered` compares with."""
    found: dict[str, bytes] = {}
    for name in RENDERED_NAMES:
        path = directory / name
        try:
            if stat.S_ISREG(path.lstat().st_mode):
                found[name] = path.read_bytes()
        except OSError:
            continue
    return found


def record_rendered(workspace: Path, store: Store,
                    rendered: Mapping[str, bytes] | None = None) -> list[str]:
    """Record the SHA-256 of those of ``workspace``'s ``.mise.toml``, ``.envrc`` and ``.envrc.sh``
    that devkit rendered; returns the names recorded.

    ``rendered`` maps each name to the bytes devkit's own template rendered for it (a render in a
    temporary directory, :func:`render_of`): a workspace file is recorded only when it has
    exactly those bytes, so a file the repository brought is never recorded as devkit's. None
    means devkit has just written the workspace's files itself (``devkit new``). A file that
    differs keeps its previous record (what devkit last approved, which doctor compares with);
    an absent file drops its record. The record (``store.rendered_file``, mode 0600) is replaced
    atomically under ``store.mutex("rendered")``. Raises OSError when the store is not writable
    and ``filelock.Timeout`` after 30 s of waiting for another writer.
    """
    digests: dict[str, str | None] = {}
    recorded: list[str] = []
    for name in RENDERED_NAMES:
        digest = _digest(workspace / name)
        if digest is not None and rendered is not None and (
                name not in rendered or hashlib.sha256(rendered[name]).hexdigest() != digest):
            continue  # not devkit's render: leave the previous record alone
        digests[_key(workspace, name)] = digest
        if digest is not None:
            recorded.append(name)
    with store.mutex("rendered", timeout=MUTEX_TIMEOUT):
        configs = _load(store)
        for key, value in digests.items():
            if value is None:
                configs.pop(key, None)
            else:
                configs[key] = value
        text = json.dumps({"version": 1, "configs": dict(sorted(configs.items()))}, indent=2)
        atomic_write_text(store.rendered_file, text + "\n")
        os.chmod(store.rendered_file, 0o600)
    return recorded


def is_rendered(workspace: Path, name: str, store: Store) -> bool:
    """True when ``workspace/name`` is a regular file whose content is exactly what devkit
    recorded for that path with :func:`record_rendered`. Raises nothing."""
    digest = _digest(workspace / name)
    return digest is not None and _load(store).get(_key(workspace, name)) == digest


def changed_since_recorded(workspace: Path, store: Store) -> list[str]:
    """Those of :data:`RENDERED_NAMES` that devkit recorded for ``workspace`` (approved) and that
    now differ from the record (edited, replaced by a symlink, or pulled from git). Raises
    nothing."""
    configs = _load(store)
    changed = []
    for name in RENDERED_NAMES:
        recorded = configs.get(_key(workspace, name))
        path = workspace / name
        if recorded is not None and (path.exists() or path.is_symlink()) \
                and _digest(path) != recorded:
            changed.append(name)
    return changed


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


# -- ownership and permissions -------------------------------------------------------------------
def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _private_group(gid: int) -> bool:
    """True when ``gid`` is the user's own private group (the user private group scheme: a group
    named after the user, the user's primary group, with no other member)."""
    import grp

    try:
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    me = _user_name(os.getuid())
    return gid == os.getgid() and group.gr_name == me and set(group.gr_mem) <= {me}


def unsafe(path: Path, *, allow_root: bool = False) -> str | None:
    """Why another user could change ``path`` (read through symlinks, ``os.stat``), or None.

    Not owned by the user (root too with ``allow_root``: root can change anything anyway), writable
    by others, or writable by a group other than the user's private group. A missing path is
    None; one that cannot be read is a reason. Raises nothing; None where there are no uids.
    """
    if not hasattr(os, "getuid"):
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if st.st_uid != os.getuid() and not (allow_root and st.st_uid == 0):
        return f"is owned by {_user_name(st.st_uid)}, not by you"
    if st.st_mode & stat.S_IWOTH:
        return "is writable by every user"
    if st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid):
        return "is writable by its group"
    return None


def store_problem(store: Store) -> str | None:
    """One line when devkit's record of what it rendered could have been written by someone
    else: ``DEVKIT_HOME`` or ``rendered.json`` (read through symlinks) not the user's or writable
    by others, or a directory above ``DEVKIT_HOME`` that another user may rename entries in.
    Then devkit trusts nothing. None when safe (or when the store does not exist yet, or the
    system has no uids)."""
    if not hasattr(os, "getuid"):
        return None
    fix = f"chmod go-w {shlex.quote(str(store.home))}; `devkit doctor` lists the store's paths"
    for path in (store.home, store.rendered_file):
        reason = unsafe(path)
        if reason:
            return (f"not trusted: devkit's record of what it rendered ({path}) {reason}, so "
                    f"it proves nothing; fix it ({fix}), then run `devkit doctor --fix` again")
    try:
        real = store.home.resolve()
    except (OSError, RuntimeError):
        return None
    for parent in real.parents:
        try:
            st = os.stat(parent)
        except OSError:
            continue
        writable = st.st_mode & stat.S_IWOTH or (
            st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid))
        if (writable and not st.st_mode & stat.S_ISVTX) or st.st_uid not in (0, os.getuid()):
            return (f"not trusted: {parent}, above devkit's store {real}, can be changed by "
                    f"another user, so the store's record proves nothing; move DEVKIT_HOME "
                    "to a directory only you can write")
    return None


# -- the approval rule ---------------------------------------------------------------------------
def _tracked(workspace: Path, name: str) -> bool:
    """Is ``name`` committed in the git repository holding ``workspace``? (``git ls-files``,
    with :func:`devkit.git.environment`.) False outside a repository; True when git cannot tell
    (a repository whose own config runs commands is refused: not proven uncommitted)."""
    try:
        return bool(git.tracked(workspace, name))
    except (DevkitError, OSError):
        return True


def _committed_local(workspace: Path) -> bool:
    """Is ``.envrc.local.sh`` in ``workspace`` and committed to git? ``.envrc.sh`` sources it only
    when it is there (``[ -f ./.envrc.local.sh ]``), so git is asked nothing when it is absent."""
    local = workspace / LOCAL_SCRIPT
    return (local.exists() or local.is_symlink()) and _tracked(workspace, LOCAL_SCRIPT)


def _local_problem(workspace: Path, command: str, *, adopting: bool) -> str | None:
    local = workspace / LOCAL_SCRIPT
    if not (local.exists() or local.is_symlink()):
        return None
    q = shlex.quote(str(workspace))
    if _tracked(workspace, LOCAL_SCRIPT):
        return (f"not trusted: {local} is committed to git, but it is a per-user file that "
                f".envrc.sh runs first: review it, take it out of git (`git -C {q} rm --cached "
                f"{LOCAL_SCRIPT}`; it is git-ignored), then run `{command}` yourself")
    if adopting:
        return (f"not trusted: {local} was already in the project (devkit did not create it), "
                f"and .envrc.sh runs it first: it is a per-user file; review it (or remove it), "
                f"then run `{command}` yourself")
    reason = unsafe(local)
    if reason:
        return f"not trusted: {local} {reason}; fix that, then run `{command}` yourself"
    return None


def _refusal(workspace: Path, names: list[str], command: str) -> str:
    listed = ", ".join(names)
    return (f"not trusted: {listed} in {workspace} {'is' if len(names) == 1 else 'are'} not "
            f"what devkit rendered there; review {'it' if len(names) == 1 else 'them'}, then run "
            f"`{command}` yourself")


def _permission_problem(workspace: Path, names: tuple[str, ...], command: str) -> str | None:
    for path in (workspace, *(workspace / n for n in names)):
        reason = unsafe(path)
        if reason:
            return f"not trusted: {path} {reason}; fix that, then run `{command}` yourself"
    return None


def mise_problems(workspace: Path, store: Store, environ: Mapping[str, str], *,
                  adopting: bool = False) -> list[str]:
    """Why devkit must not trust ``workspace``'s ``.mise.toml`` (one line each, naming the file
    and the command to approve it by hand), or [] when the approval rule holds. ``adopting``:
    devkit did not create the workspace, so an ``.envrc.local.sh`` found there is the
    project's, not the user's. Reads files only (and ``git ls-files``); raises nothing."""
    command = f"mise trust {shlex.quote(str(workspace))}"
    problems: list[str] = []
    extra_names = mise.redirected_names(workspace, environ)
    others = [n for n in mise.configs_in(workspace, extra_names) if n != ".mise.toml"]
    others += mise.path_settings_inside(workspace, environ)
    if others:
        problems.append(f"not trusted: mise would also trust {', '.join(others)} in {workspace}, "
                        f"which devkit did not render; review, then run `{command}` yourself")
    problems += _loader_file_problems(workspace, LOADER_FILES["mise"], command, store,
                                      adopting=adopting)
    for path in (*mise.parent_configs(workspace, extra_names), *mise.global_configs(environ)):
        reason = unsafe(path, allow_root=True)
        if reason:
            problems.append(f"not trusted: mise also reads {path}, which {reason}; fix that "
                            f"(`chmod go-w` it, or remove it), then run `{command}` yourself")
            break
    return problems


def direnv_problems(workspace: Path, store: Store, *, adopting: bool = False) -> list[str]:
    """:func:`mise_problems` for ``workspace``'s ``.envrc`` (``.envrc``, ``.envrc.sh`` and
    ``.envrc.local.sh``: what ``source_env ./.envrc.sh`` runs). Raises nothing."""
    command = f"direnv allow {shlex.quote(str(workspace))}"
    return _loader_file_problems(workspace, LOADER_FILES["direnv"], command, store,
                                 adopting=adopting)


def _loader_file_problems(workspace: Path, names: tuple[str, ...], command: str, store: Store,
                          *, adopting: bool) -> list[str]:
    """What keeps the loader's own files ``names`` in ``workspace`` from approval: not devkit's
    render, a project-supplied ``.envrc.local.sh``, ownership or permissions."""
    problems = []
    bad = unproven(workspace, names, store)
    if bad:
        problems.append(_refusal(workspace, bad, command))
    local = _local_problem(workspace, command, adopting=adopting)
    if local:
        problems.append(local)
    perms = _permission_problem(workspace, names, command)
    if perms:
        problems.append(perms)
    return problems


def trust_if_rendered(workspace: Path, store: Store, *, adopting: bool = False) -> list[str]:
    """Approve (``mise trust`` / ``direnv allow``) each of ``workspace``'s loader configs for which
    the approval rule holds (module docstring); returns one line per config saying what was done
    or, naming the file, why not.

    Everything is checked before anything is approved: when the store's record could have been
    written by someone else (:func:`store_problem`), nothing is. ``adopting`` as in
    :func:`mise_problems`. Never raises for a config that fails the rule (it is left untrusted and
    the line says so); raises DevkitError only when the approving tool itself fails.
    """
    environ = dict(os.environ)
    loaders = []
    if (workspace / ".mise.toml").exists():
        loaders.append("mise")
    if (workspace / ".envrc").exists():
        loaders.append("direnv")
    problem = store_problem(store)
    if problem:
        return [problem for _ in loaders]
    lines: list[str] = []
    for loader in loaders:
        if loader == "mise":
            found = mise_problems(workspace, store, environ, adopting=adopting)
            lines.append(found[0] if found else _trust_mise(workspace, environ))
        else:
            found = direnv_problems(workspace, store, adopting=adopting)
            lines.append(found[0] if found else _allow_direnv(workspace, environ))
    return lines


def _trust_mise(workspace: Path, environ: dict[str, str]) -> str:
    command = f"mise trust {workspace}"
    config = workspace / ".mise.toml"
    if mise.is_trusted(config, environ):
        return f"{config} is already trusted"
    if mise.find() is None:
        return f"mise is not installed: install it, then run `{command}`"
    mise.trust(workspace, env={**environ, "MISE_OFFLINE": "1"})
    return f"ran `{command}`"


def _allow_direnv(workspace: Path, environ: dict[str, str]) -> str:
    command = f"direnv allow {workspace}"
    if direnv.find() is None:
        return f"direnv is not installed: install it, then run `{command}`"
    if direnv.is_allowed(workspace, env=environ):
        return f"{workspace / '.envrc'} is already allowed"
    direnv.allow(workspace, env=environ)
    return f"ran `{command}`"


def approval_drift(workspace: Path, store: Store, environ: Mapping[str, str], *,
                   mise_approved: bool, direnv_approved: bool) -> list[str]:
    """What changed in ``workspace`` since devkit approved its loader configs, for those still
    approved (``mise_approved``: mise trusts ``.mise.toml``; ``direnv_approved``: direnv allows
    ``.envrc``): the recorded files whose content changed (:func:`changed_since_recorded`), and
    files that joined the set the loader reads (another mise config, a committed
    ``.envrc.local.sh``). mise's default trust is by path, so such a change is loaded on the
    next ``cd`` without anyone reviewing it. A change made before the user trusted the directory
    again (``mise trust --untrust`` then ``mise trust``, newer than the file) is not reported.
    One line each; [] when nothing changed or devkit never approved the workspace. Raises
    nothing."""
    configs = _load(store)
    if not any(_key(workspace, n) in configs for n in RENDERED_NAMES):
        return []
    changed = changed_since_recorded(workspace, store)
    lines: list[str] = []
    if mise_approved:
        since = mise.trusted_at(workspace / ".mise.toml", environ)
        names = [n for n in changed if n in LOADER_FILES["mise"]
                 and not (since is not None and _mtime(workspace / n) < since)]
        names += [n for n in mise.configs_in(workspace, mise.redirected_names(workspace, environ))
                  if n != ".mise.toml"]
        if _committed_local(workspace):
            names.append(f"{LOCAL_SCRIPT} (committed)")
        if names:
            lines.append(f"mise trusts {workspace}, but {', '.join(names)} changed since devkit "
                         "approved it")
    if direnv_approved:
        names = [n for n in changed if n in LOADER_FILES["direnv"]]
        if _committed_local(workspace):
            names.append(f"{LOCAL_SCRIPT} (committed)")
        if names:
            lines.append(f"direnv allows {workspace / '.envrc'}, but {', '.join(names)} changed "
                         "since devkit approved it")
    return lines


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return float("inf")


__all__ = ["approval_drift", "changed_since_recorded", "direnv_allowed", "direnv_problems",
           "is_rendered", "mise_problems", "mise_trusted", "record_rendered", "render_of",
           "store_problem", "trust_if_rendered", "unproven", "unsafe"]
