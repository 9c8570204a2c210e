"""What in a workspace would make uv run that workspace's own code.

``--no-build`` does not stop uv from calling a project's own build backend when its metadata is
dynamic (verified with uv 0.13.9 and an in-tree backend, ``[build-system] backend-path``), and a
path in ``.python-version`` is an interpreter uv executes. Read-only commands (``devkit doctor``,
``devkit align --dry-run``/``--check``) ask :func:`uv_blocker` before running uv in a workspace
they did not create, and report "cannot check without building" instead.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

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


def needs_build(project: Path, *, root: bool) -> str | None:
    """Why uv would have to run ``project``'s build backend to learn its metadata, or None."""
    try:
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{project} has no pyproject.toml (setup.py metadata needs a build)"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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


def local_sources(workspace: Path) -> list[Path]:
    """Directories of the local (editable / directory) packages ``uv.lock`` names, besides the
    workspace itself; empty when there is no readable lock."""
    try:
        lock = tomllib.loads((workspace / "uv.lock").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    found = []
    for package in lock.get("package", []):
        source = package.get("source", {}) if isinstance(package, dict) else {}
        for kind in ("editable", "directory"):
            rel = source.get(kind) if isinstance(source, dict) else None
            if isinstance(rel, str) and rel != ".":
                found.append((workspace / rel).resolve())
    return found


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


def uv_blocker(workspace: Path, pinned: str | None,
               sources: Iterable[Path] | None = None) -> str | None:
    """Why uv must not run in ``workspace`` (it would execute the workspace's code), or None.

    ``pinned`` is the Python the workspace asks for (``.python-version``, see
    :func:`pinned_request`). Reasons: it is not a plain version request (a path there is an
    interpreter uv runs); ``.venv/bin/python`` resolves inside the workspace (uv queries it); the
    project or a local package in ``uv.lock`` has dynamic metadata uv can only get by building.
    ``sources``: those local packages' directories when the caller has parsed ``uv.lock``
    already (default: :func:`local_sources` reads it). Raises nothing.
    """
    if pinned is not None and not is_version_request(pinned):
        return f".python-version holds {pinned!r}, not a Python version"
    python = workspace / ".venv" / "bin" / "python"
    if python.is_symlink() or python.exists():
        try:
            if python.resolve().is_relative_to(workspace.resolve()):
                return f"{python} is not a link to an interpreter outside the workspace"
        except (OSError, RuntimeError):
            return f"cannot resolve {python}"
    local = local_sources(workspace) if sources is None else sources
    for project, root in ((workspace, True), *((p, False) for p in local)):
        reason = needs_build(project, root=root)
        if reason:
            return reason
    return None
