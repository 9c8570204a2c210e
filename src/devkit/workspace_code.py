"""What in a workspace would make uv run that workspace's own code.

``--no-build`` does not stop uv from calling a project's own build backend when its metadata is
dynamic (verified with uv 0.13.9 and an in-tree backend, ``[build-system] backend-path``), and a
path in ``.python-version`` is an interpreter uv executes. Read-only commands (``devkit doctor``,
``devkit align --dry-run``/``--check``) ask :func:`uv_blocker` before running uv in a workspace
they did not create, and report "cannot check without building" instead.

uv also runs the interpreter of a workspace's ``.venv`` (``uv lock``, ``uv sync --check`` query
it; verified with uv 0.13.9), and Python then runs every ``import`` line of the ``.pth`` files
in that venv's ``site-packages``. So devkit runs uv where a ``.venv`` exists only when devkit
created that venv itself: :func:`record_venv` notes the identity of its ``pyvenv.cfg`` (device,
inode, ``st_ctime``: the kernel sets the last one, an archive or a checkout cannot) in
``Store.venvs_file`` right after devkit's ``uv sync`` made it, and :func:`foreign_venv` compares;
a ``.venv`` with files tracked by git is foreign whatever the record says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rtoml

from devkit import git
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_text, file_identity, pid_alive
from devkit.verified import Verified, opened, recorded_untracked

#: ``.python-version`` requests devkit passes to uv: a version with an optional implementation
#: (``3.11``, ``3.11.7``, ``cpython-3.11``, ``cpython@3.12``, ``pypy3.10``, ``3.13t``). Anything
#: else (a path, a name) could make uv execute a file from the workspace.
_REQUEST = re.compile(r"(?:(?:cpython|pypy|graalpy)[-@]?|python)?\d+(?:\.\d+){0,2}(?:[abrc]+\d+)?t?",
                      re.IGNORECASE)
#: ``[project] dynamic`` fields uv does not need a build for (it resolves with name, version,
#: dependencies, optional-dependencies and requires-python).
_STATIC_ENOUGH = {"version", "readme", "description", "license", "license-files", "authors",
                  "maintainers", "keywords", "classifiers", "urls", "scripts", "gui-scripts",
                  "entry-points", "import-names", "import-namespaces"}


def is_version_request(pinned: str) -> bool:
    """True when ``pinned`` is a plain version request uv can take without running a file."""
    return _REQUEST.fullmatch(pinned) is not None


_PYPROJECTS: dict[tuple[str, int, int, int, int, int], dict[str, Any]] = {}
_PYPROJECTS_LOCK = threading.Lock()


def _pyproject(directory: Path) -> dict[str, Any]:
    """``directory/pyproject.toml`` as a dict, parsed once per process while the file is
    the same (path, device, inode, size, mtime, ctime): :func:`uv_blocker` reads it for the
    build check and for the sources. The caller must not change the dict. Raises OSError,
    UnicodeDecodeError (a ValueError), ValueError (what rtoml refuses)."""
    file = directory / "pyproject.toml"
    with file.open("rb") as fh:
        st = os.fstat(fh.fileno())
        key = file_identity(file, st)
        with _PYPROJECTS_LOCK:
            known = _PYPROJECTS.get(key)
        if known is not None:
            return known
        text = fh.read().decode("utf-8")
    # rtoml (the lock reader's TOML parser, in Rust): ~15x tomllib on a pyproject.toml; its
    # TomlParsingError is a ValueError
    data = rtoml.loads(text)
    with _PYPROJECTS_LOCK:
        _PYPROJECTS[key] = data
    return data


def needs_build(project: Path, *, root: bool) -> str | None:
    """Why uv would have to run ``project``'s build backend to learn its metadata, or None."""
    try:
        data = _pyproject(project)
    except FileNotFoundError:
        return f"{project} has no pyproject.toml (setup.py metadata needs a build)"
    except (OSError, ValueError) as exc:
        return f"cannot read {project / 'pyproject.toml'}: {exc}"
    table = data.get("project")
    if not isinstance(table, dict):
        return f"{project / 'pyproject.toml'} has no [project] table"
    dynamic = table.get("dynamic") or []
    allowed = _STATIC_ENOUGH if root else _STATIC_ENOUGH - {"version"}
    fields = sorted(str(f) for f in dynamic if str(f) not in allowed) if isinstance(dynamic, list) \
        else ["?"]
    if fields:
        backend = data.get("build-system", {}).get("backend-path")
        where = " by an in-tree build backend" if backend else ""
        return f"{project.name} declares {', '.join(fields)} dynamic (computed{where})"
    return None


def _lock_sources(workspace: Path) -> tuple[list[Path], list[str]]:
    """Local directories ``uv.lock`` names (editable, directory) and why other sources would need
    a build (git, an sdist archive or URL); empty when there is no readable lock."""
    try:  # rtoml, as for pyproject.toml: doctor reads the whole lock on every run
        lock = rtoml.loads((workspace / "uv.lock").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, rtoml.TomlParsingError):
        return [], []
    found: list[Path] = []
    reasons: list[str] = []
    for package in lock.get("package", []):
        if not isinstance(package, dict) or not isinstance(package.get("source"), dict):
            continue
        source, name = package["source"], str(package.get("name", "?"))
        for kind in ("editable", "directory"):
            rel = source.get(kind)
            if isinstance(rel, str) and rel != ".":
                found.append((workspace / rel).resolve())
        if "git" in source:
            reasons.append(f"{name} comes from git in uv.lock (its metadata may need a build)")
        elif ("path" in source or "url" in source) and not package.get("wheels"):
            reasons.append(f"{name} is an sdist in uv.lock (its metadata needs a build)")
    return found, reasons


def _reference(base: Path, name: str, target: str, kind: str) -> tuple[Path | None, str | None]:
    """A declared source: (a local directory to inspect, None) or (None, why it needs a build);
    (None, None) for a wheel."""
    if kind == "git":
        return None, f"{name} comes from git ({target}): its metadata may need a build"
    if kind == "url":
        if target.split("?")[0].endswith(".whl"):
            return None, None
        return None, f"{name} comes from {target}: an archive uv would build"
    try:
        path = (base / target).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None, f"{name} comes from {target}, which cannot be resolved"
    if path.is_dir():
        return path, None
    if path.name.endswith(".whl"):
        return None, None
    return None, f"{name} comes from {path}: an archive uv would build"


def _strings(value: object) -> list[str]:
    """The strings of a TOML array (anything else: none)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _glob(base: Path, pattern: str) -> list[Path]:
    """``base.glob(pattern)`` resolved and sorted; empty for a pattern ``glob`` refuses (absolute,
    empty)."""
    try:
        return sorted(p.resolve() for p in base.glob(pattern))
    except (OSError, RuntimeError, ValueError, NotImplementedError):
        return []


def _declared(base: Path, data: dict[str, Any]) -> tuple[list[Path], list[str]]:
    """Local directories and unbuildable sources a ``pyproject.toml`` (read into ``data``) in
    ``base`` declares: ``[tool.uv.sources]`` (path, editable, git, url), workspace members
    (``[tool.uv.workspace] members``, less ``exclude``) and direct references (``name @ URL``)
    in dependencies, optional dependencies and dependency groups."""
    found: list[Path] = []
    reasons: list[str] = []

    def add(pair: tuple[Path | None, str | None]) -> None:
        if pair[0] is not None:
            found.append(pair[0])
        if pair[1] is not None:
            reasons.append(pair[1])

    tool_uv = data.get("tool", {}).get("uv", {}) if isinstance(data.get("tool"), dict) else {}
    tool_uv = tool_uv if isinstance(tool_uv, dict) else {}
    sources = tool_uv.get("sources", {})
    for name, entries in (sources.items() if isinstance(sources, dict) else ()):
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, dict):
                continue
            for kind in ("path", "git", "url"):
                if isinstance(entry.get(kind), str):
                    add(_reference(base, str(name), entry[kind], kind))
    workspace = tool_uv.get("workspace", {})
    if isinstance(workspace, dict):
        excluded = {p for pattern in _strings(workspace.get("exclude"))
                    for p in _glob(base, pattern)}
        for pattern in _strings(workspace.get("members")):
            found += [p for p in _glob(base, pattern) if p.is_dir() and p not in excluded]
    project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    specs = _strings(project.get("dependencies")) + _strings(tool_uv.get("dev-dependencies"))
    for group in (project.get("optional-dependencies"), data.get("dependency-groups")):
        if isinstance(group, dict):
            for values in group.values():
                specs += _strings(values)
    for spec in specs:
        if "@" not in spec:
            continue
        from packaging.requirements import InvalidRequirement, Requirement  # only for these

        try:
            url = Requirement(spec).url
        except InvalidRequirement:
            continue
        if not url:
            continue
        name = spec.split("@")[0].strip()
        url = url.replace("${PROJECT_ROOT}", str(base))
        if url.startswith("git+"):
            add(_reference(base, name, url, "git"))
        elif url.startswith("file://"):
            add(_reference(base, name, url.removeprefix("file://"), "path"))
        elif "://" in url:
            add(_reference(base, name, url, "url"))
        else:
            add(_reference(base, name, url, "path"))
    return found, reasons


def local_sources(workspace: Path) -> list[Path]:
    """Directories of the local packages (editable, directory, path sources, workspace members)
    that ``uv.lock`` or a ``pyproject.toml`` names, besides the workspace itself: those of
    ``uv.lock``, of ``workspace/pyproject.toml`` and, recursively, of each local package's own
    ``pyproject.toml`` (a path dependency not locked yet is found too). Raises nothing."""
    return _sources(workspace)[0]


def _sources(workspace: Path, locked: list[Path] | None = None) -> tuple[list[Path], list[str]]:
    """(:func:`local_sources`, why some declared source needs a build: git, an archive).
    ``locked``: the lock's local directories, already parsed by the caller."""
    found, reasons = _lock_sources(workspace) if locked is None else (locked, [])
    root = workspace.resolve()
    seen = {root}
    todo = [root]
    ordered: list[Path] = []
    while todo:
        base = todo.pop(0)
        try:
            data = _pyproject(base)
        except (OSError, ValueError):
            continue
        more, why = _declared(base, data)
        reasons += why
        for path in more:
            if path not in seen:
                seen.add(path)
                todo.append(path)
                ordered.append(path)
    for path in found:
        if path not in seen:
            seen.add(path)
            ordered.append(path)
    return ordered, reasons


def pinned_request(workspace: Path) -> str | None:
    """First non-comment line of ``workspace/.python-version`` (undecodable bytes replaced), or
    None when there is none."""
    try:
        raw = (workspace / ".python-version").read_bytes()
    except OSError:
        return None
    for line in raw.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return None


# -- the workspace's .venv -----------------------------------------------------------------------
ASIDE_PREFIX = ".venv.devkit-old-"  # + the pid of the sync that moved the old .venv aside
MUTEX_TIMEOUT = 30.0  # seconds to wait for another devkit writing the record


def _identity(workspace: Path) -> dict[str, int] | None:
    """Device, inode and ``st_ctime`` (ns) of ``workspace/.venv/pyvenv.cfg``, or None."""
    try:
        st = (workspace / ".venv" / "pyvenv.cfg").lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return {"dev": st.st_dev, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}


def _venv_key(workspace: Path) -> str:
    return str(workspace.resolve() / ".venv")


_RECORDS_READ: dict[str, tuple[tuple[int, int, int, int], dict[str, Any]]] = {}
_RECORDS_LOCK = threading.Lock()


def _venv_records(store: Store) -> dict[str, Any]:
    """The records of ``store.venvs_file`` (a copy), parsed once per process while the file is
    the same (inode, size, modification and change times): ``sync --all`` asks once per
    workspace, and the file holds one record per workspace."""
    path = store.venvs_file
    try:
        st = path.stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with _RECORDS_LOCK:
            known = _RECORDS_READ.get(str(path))
        if known is not None and known[0] == stamp:
            return dict(known[1])
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    venvs = data.get("venvs") if isinstance(data, dict) else None
    venvs = venvs if isinstance(venvs, dict) else {}
    with _RECORDS_LOCK:
        _RECORDS_READ[str(path)] = (stamp, venvs)
    return dict(venvs)


def record_venv(workspace: Path, store: Store) -> None:
    """Note that devkit's own ``uv sync`` made (or just synced) ``workspace/.venv``.

    Call it only right after devkit ran ``uv sync`` in a workspace whose ``.venv`` was absent or
    already recorded. The record (``store.venvs_file``, mode 0600) is replaced atomically under
    ``store.mutex("venvs")``. Raises OSError when the store is not writable and
    ``filelock.Timeout`` after 30 s of waiting for another writer.
    """
    identity = _identity(workspace)
    with store.mutex("venvs", timeout=MUTEX_TIMEOUT):
        venvs = _venv_records(store)
        if identity is None:
            venvs.pop(_venv_key(workspace), None)
        else:
            venvs[_venv_key(workspace)] = identity
        text = json.dumps({"version": 1, "venvs": dict(sorted(venvs.items()))}, indent=2)
        atomic_write_text(store.venvs_file, text + "\n")
        os.chmod(store.venvs_file, 0o600)


def aside_record(store: Store, aside: Path) -> Path:
    """The store's record of ``aside``, an old ``.venv`` that ``devkit sync`` moved aside to
    rebuild it (see :attr:`devkit.store.Store.rebuilds_dir`)."""
    key = hashlib.sha256(str(aside.absolute()).encode()).hexdigest()[:16]
    return store.rebuilds_dir / f"{key}.json"


def leftovers(path: Path, store: Store) -> list[Path]:
    """The old venvs an interrupted rebuild left in workspace ``path``: directories
    ``.venv.devkit-old-<pid>`` that the store records as moved aside by that pid, whose process
    is gone (a SIGKILL between moving ``.venv`` aside and deleting or putting it back). A
    directory of that name without the store's record (e.g. committed to the repository) is
    never one. Raises nothing."""
    found = []
    with contextlib.suppress(OSError):
        for aside in sorted(path.glob(ASIDE_PREFIX + "*")):
            pid = aside.name.removeprefix(ASIDE_PREFIX)
            if aside.is_symlink() or not aside.is_dir() or not pid.isdigit():
                continue
            try:
                record = json.loads(aside_record(store, aside).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("pid") == int(pid) \
                    and record.get("aside") == str(aside.absolute()) \
                    and not pid_alive(int(pid)):
                found.append(aside)
    return found


@dataclasses.dataclass(frozen=True)
class ForeignVenv:
    """A ``.venv`` devkit must not run: ``reason`` (one line), ``tracked`` (git tracks files in
    it, or git refused the repository), ``fix`` (the shell command that replaces it, to run after
    reviewing it; empty when ``reason`` carries its own)."""

    reason: str
    tracked: bool
    fix: str


def foreign_venv(workspace: Path, store: Store, *,
                 memo: Verified | None = None) -> ForeignVenv | None:
    """Why uv must not run in ``workspace`` because of its ``.venv``, or None (no ``.venv``, or
    the one devkit recorded with :func:`record_venv`, with no file tracked by git).

    A ``.venv`` devkit did not create (committed, unpacked from an archive, made by another tool
    or copied) has an interpreter whose ``.pth`` files would run when uv queries it. With
    ``memo`` (default: the one the running command opened, :func:`devkit.verified.opened`), git
    is not asked again while the repository is in the very state in which git last listed no
    tracked file under ``.venv`` and accepted its config
    (:meth:`devkit.verified.Verified.venv_untracked`; ``git add .venv``, a checkout or a config
    edit changes that state). Raises nothing.
    """
    venv = workspace / ".venv"
    if not (venv.exists() or venv.is_symlink()):
        return None
    if memo is None:
        memo = opened(store)
    q = shlex.quote(str(workspace))
    replace = f"rm -rf {q}/.venv && devkit sync {q}"
    known, stamp = memo.venv_untracked(workspace) if memo is not None \
        else recorded_untracked(store, workspace)
    try:
        files = [] if known else git.tracked(workspace, ".venv")
    except DevkitError as exc:  # the repository's git config runs commands: its own fix
        return ForeignVenv(str(exc), True, "")
    if not files and not known and memo is not None:
        memo.remember_untracked(workspace, stamp)
    if files:
        return ForeignVenv(f"{venv} holds files tracked by git ({files[0]}…): devkit does not "
                           "run an interpreter a repository ships", True,
                           f"git -C {q} rm -r -q --cached .venv && {replace}")
    identity = _identity(workspace)
    if identity is None or _venv_records(store).get(_venv_key(workspace)) != identity:
        return ForeignVenv(f"{venv} was not created by devkit (committed, unpacked from an "
                           "archive, copied or made by another tool): devkit does not run its "
                           "interpreter", False, replace)
    return None


def uv_blocker(workspace: Path, pinned: str | None, sources: Iterable[Path] | None = None, *,
               store: Store, venv_checked: bool = False) -> str | None:
    """Why uv must not run in ``workspace`` (it would execute the workspace's code), or None.

    ``pinned`` is the Python the workspace asks for (``.python-version``, see
    :func:`pinned_request`). Reasons: it is not a plain version request (a path there is an
    interpreter uv runs); ``.venv`` is not the one devkit created (:func:`foreign_venv`, ``store``
    holds the record) or ``.venv/bin/python`` resolves inside the workspace (uv queries it); the
    project or a local package (``uv.lock``, ``[tool.uv.sources]``, workspace members, direct
    references) has dynamic metadata uv can only get by building; a git or archive source.
    ``venv_checked``: the caller already asked :func:`foreign_venv`. Raises nothing.
    ``sources``: the directories of ``uv.lock``'s local packages when the caller has parsed it
    already (its git and sdist packages are then left to ``--no-build``; default: read here).
    """
    if pinned is not None and not is_version_request(pinned):
        return f".python-version holds {pinned!r}, not a Python version"
    foreign = None if venv_checked else foreign_venv(workspace, store)
    if foreign:
        return foreign.reason
    python = workspace / ".venv" / "bin" / "python"
    if python.is_symlink() or python.exists():
        try:
            if python.resolve().is_relative_to(workspace.resolve()):
                return f"{python} is not a link to an interpreter outside the workspace"
        except (OSError, RuntimeError):
            return f"cannot resolve {python}"
    found, reasons = _sources(workspace, None if sources is None else list(sources))
    for project, root in ((workspace, True), *((p, False) for p in found)):
        reason = needs_build(project, root=root)
        if reason:
            return reason
    return reasons[0] if reasons else None
