"""What ``devkit gc`` may remove from the shared store, and why the rest stays.

Kept: every ``(name, version)`` a registered project's ``uv.lock`` lists (forks included, any
index: one name/version from two indexes is kept on both), every package a lock names from
another source (git, URL, path, the projects themselves and their cached builds), every cached
version of each project's build requirements and what they depend on (read from the cached
wheels' ``Requires-Dist``; a build from source needs them and no lock lists them), the versions
a registered venv links to by symlink (``UV_LINK_MODE=symlink``: removing them would break the
venv), and every uv-managed Python that a project pins (``.python-version``) or a venv or ``uv
tool`` environment uses (``home`` in its ``pyvenv.cfg``). Everything else in the known wheel
buckets goes: a name no lock uses through ``uv cache clean NAME``, a version through its index
entry and ``uv cache prune`` (see :mod:`devkit.uvcache`).

This module reads only; :mod:`devkit.commands.gc` acts on the plan.
"""

from __future__ import annotations

import collections
import configparser
import dataclasses
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from devkit import uv, uvcache
from devkit.align import lockfile
from devkit.errors import DevkitError
from devkit.registry import Project, Registry
from devkit.store import Store

#: What a build backend asks for at build time beyond its own requirements
#: (``get_requires_for_build_*``, PEP 517/660), e.g. hatchling asks for ``editables`` when
#: building an editable. Kept with the backend.
BACKEND_EXTRAS = {
    "hatchling": ("editables",),
    "pdm-backend": ("editables",),
    "setuptools": ("wheel",),
    "scikit-build-core": ("cmake", "ninja"),
}
#: PEP 517's default when a package has no ``[build-system]`` (uv uses the same).
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0",)
LOCAL_KINDS = ("editable", "directory", "path")


class Unreadable(DevkitError):
    """A registered project's lock cannot be read: gc would not know what it needs."""


@dataclasses.dataclass
class Plan:
    """What would go. Byte figures are physical (:class:`devkit.uvcache.Bytes`)."""

    cache_dir: Path
    versions: list[uvcache.WheelEntry] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)
    pythons: list[uvcache.ManagedPython] = dataclasses.field(default_factory=list)
    kept_pythons: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> reason
    build_names: set[str] = dataclasses.field(default_factory=set)
    versions_bytes: uvcache.Bytes = dataclasses.field(default_factory=uvcache.Bytes)
    names_bytes: uvcache.Bytes = dataclasses.field(default_factory=uvcache.Bytes)
    unreferenced_bytes: uvcache.Bytes = dataclasses.field(default_factory=uvcache.Bytes)
    pythons_bytes: uvcache.Bytes = dataclasses.field(default_factory=uvcache.Bytes)
    total: uvcache.Bytes = dataclasses.field(default_factory=uvcache.Bytes)
    used_bytes: int = 0  # physical bytes of the archives of the versions the locks use
    other_refs: set[Path] = dataclasses.field(default_factory=set, repr=False)  # sdist builds…

    @property
    def empty(self) -> bool:
        """Nothing to remove (``uv cache prune`` may still find old buckets)."""
        return not (self.versions or self.names or self.pythons or self.unreferenced_bytes.total)

    def to_json(self) -> dict[str, object]:
        """The ``devkit gc --json`` plan: see the README's ``devkit gc --json`` section."""
        return {
            "cache_dir": str(self.cache_dir),
            "reclaimable_bytes": self.total.freed,
            "linked_bytes": self.total.linked,
            "versions": [{"name": e.name, "version": e.version,
                          "archive": str(e.archive) if e.archive else None}
                         for e in sorted(self.versions, key=lambda e: (e.name, e.version))],
            "versions_bytes": self.versions_bytes.to_json(),
            "names": sorted(self.names),
            "names_bytes": self.names_bytes.to_json(),
            "unreferenced_bytes": self.unreferenced_bytes.to_json(),
            "pythons": [{"key": p.key, "version": p.version} for p in self.pythons],
            "pythons_bytes": self.pythons_bytes.to_json(),
            "kept_pythons": self.kept_pythons,
            "build_requirements": sorted(self.build_names),
        }


def read_locks(projects: Iterable[Project]) -> list[tuple[Project, lockfile.Lock]]:
    """Every registered project's lock. Raises Unreadable (one line) for the first that cannot
    be read: a missing directory, no ``uv.lock``, a malformed one."""
    found = []
    for project in projects:
        if not project.exists:
            raise Unreadable(f"registered project {project.path} no longer exists: forget it with "
                             "`devkit projects prune`; nothing was changed")
        try:
            found.append((project, lockfile.read(project.path / "uv.lock")))
        except lockfile.LockError as exc:
            raise Unreadable(f"cannot tell what {project.path} needs: {exc}; nothing was "
                             "changed") from exc
    return found


def make(store: Store, *, uv_version: str = "", with_pythons: bool = True,
         measure_used: bool = False) -> Plan:
    """The plan for ``store``'s cache and Python installs, reading the registry and every lock.

    ``measure_used`` also sums the bytes of the archives the locks use (``Plan.used_bytes``:
    walks most of the cache, so only ``devkit store``, which walks it anyway, asks for it).

    Raises Unreadable when no project is registered or a registered lock cannot be read,
    LayoutError for an unknown cache layout.
    """
    cache_dir = store.uv_cache_dir
    uvcache.check_layout(cache_dir, uv_version)
    projects = Registry(store).projects()
    if not projects:
        raise Unreadable("no registered projects: nothing tells gc what to keep (register them "
                         "with `devkit projects add PATH`); nothing was changed")
    locks = read_locks(projects)
    used: set[tuple[str, str]] = set()
    used_names: set[str] = set()
    for _project, lock in locks:
        for pkg in lock.packages:
            used.add((pkg.name, uvcache.norm_version(pkg.version)))
            used_names.add(pkg.name)
        used_names |= {name for name, _kind, _value in lock.others}
    entries = uvcache.wheel_entries(cache_dir)
    build = build_closure(build_requirements(locks), entries)
    used |= symlinked_versions(p.path / ".venv" for p, _lock in locks)
    keep_names = used_names | build
    plan = Plan(cache_dir, build_names=build)
    plan.names = sorted(uvcache.cached_names(cache_dir) - keep_names)
    clean = set(plan.names)
    plan.versions = [e for e in entries if e.name not in clean and e.name not in build
                     and (e.name, e.version) not in used]
    _measure(plan, entries, used if measure_used else None)
    if with_pythons:
        plan.pythons, plan.kept_pythons = _pythons(store, projects)
        plan.pythons_bytes = uvcache.measure(_python_dirs(store, plan.pythons))
    plan.total = uvcache.measure([*_version_paths(plan, entries), *_name_paths(plan, entries),
                                  *_unreferenced(plan, entries),
                                  *_python_dirs(store, plan.pythons)])
    return plan


# -- build requirements -------------------------------------------------------------------------
def build_requirements(locks: Iterable[tuple[Project, lockfile.Lock]]) -> set[str]:
    """Names in ``[build-system] requires`` of every local package of every lock (PEP 517's
    setuptools default where a built package has none), plus :data:`BACKEND_EXTRAS`."""
    names: set[str] = set()
    for project, lock in locks:
        for _name, kind, value in lock.others:
            if kind not in LOCAL_KINDS:
                continue
            pyproject = (project.path / value / "pyproject.toml")
            try:
                doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a wheel or sdist file, or no pyproject: nothing to build here
            system = doc.get("build-system")
            requires = system.get("requires") if isinstance(system, dict) else None
            if not isinstance(requires, list):
                requires = list(LEGACY_BUILD_REQUIRES)
            names |= _names(str(r) for r in requires)
    return names


def _names(requirements: Iterable[str]) -> set[str]:
    found = set()
    for text in requirements:
        try:
            found.add(str(canonicalize_name(Requirement(text).name)))
        except InvalidRequirement:
            continue
    return found


def build_closure(roots: set[str], entries: Iterable[uvcache.WheelEntry]) -> set[str]:
    """``roots`` and everything their cached wheels require (every ``Requires-Dist`` of every
    cached version, markers and extras ignored: more is kept, never less)."""
    by_name: dict[str, list[Path]] = collections.defaultdict(list)
    for entry in entries:
        if entry.archive is not None:
            by_name[entry.name].append(entry.archive)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += BACKEND_EXTRAS.get(name, ())
        for archive in by_name.get(name, ()):
            for metadata in archive.glob("*.dist-info/METADATA"):
                todo += _names(_requires_dist(metadata))
    return seen


def _requires_dist(metadata: Path) -> list[str]:
    try:
        lines = metadata.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if not line.strip():
            break  # the body (description) starts after the first blank line
        if line.lower().startswith("requires-dist:"):
            out.append(line.split(":", 1)[1].strip())
    return out


def symlinked_versions(venvs: Iterable[Path]) -> set[tuple[str, str]]:
    """``(name, version)`` of distributions a venv holds as symlinks (``UV_LINK_MODE=symlink``):
    their files are the cache's, so the cache entry must stay."""
    found = set()
    for venv in venvs:
        for metadata in (*venv.glob("lib/python*/site-packages/*.dist-info/METADATA"),
                         *venv.glob("Lib/site-packages/*.dist-info/METADATA")):
            if metadata.is_symlink():
                stem = metadata.parent.name.removesuffix(".dist-info")
                name, _, version = stem.rpartition("-")
                found.add((str(canonicalize_name(name)), uvcache.norm_version(version)))
    return found


# -- bytes --------------------------------------------------------------------------------------
def _refs(entries: Iterable[uvcache.WheelEntry]) -> collections.Counter[Path]:
    return collections.Counter(e.archive for e in entries if e.archive is not None)


def _version_paths(plan: Plan, entries: list[uvcache.WheelEntry]) -> list[Path]:
    gone = _refs(plan.versions)
    refs = _refs(entries)
    paths = [p for e in plan.versions for p in e.files]
    return paths + [a for a, n in gone.items() if refs[a] == n and a not in _other_refs(plan)]


def _name_paths(plan: Plan, entries: list[uvcache.WheelEntry]) -> list[Path]:
    cache = plan.cache_dir
    clean = set(plan.names)
    paths: list[Path] = []
    for entry in entries:
        if entry.name in clean:
            paths += entry.files
            if entry.archive is not None:
                paths.append(entry.archive)
    for bucket in (*cache.glob("simple-v*"), *cache.glob("sdists-v*")):
        for child in (*bucket.glob("pypi/*"), *bucket.glob("index/*/*")):
            if str(canonicalize_name(child.name.removesuffix(".rkyv"))) in clean:
                paths.append(child)
    return paths


def _other_refs(plan: Plan) -> set[Path]:
    """Archives referenced from outside the known wheel buckets (builds of sdists…)."""
    return plan.other_refs


def _unreferenced(plan: Plan, entries: list[uvcache.WheelEntry]) -> list[Path]:
    refs = set(_refs(entries)) | _other_refs(plan)
    return [a for a in uvcache.archives(plan.cache_dir) if a not in refs]


def _measure(plan: Plan, entries: list[uvcache.WheelEntry],
             used: set[tuple[str, str]] | None) -> None:
    plan.other_refs = uvcache.referenced_archives(plan.cache_dir) - set(_refs(entries))
    plan.versions_bytes = uvcache.measure(_version_paths(plan, entries))
    plan.names_bytes = uvcache.measure(_name_paths(plan, entries))
    plan.unreferenced_bytes = uvcache.measure(_unreferenced(plan, entries))
    if used is not None:
        kept = {e.archive for e in entries
                if e.archive is not None and (e.name, e.version) in used}
        plan.used_bytes = uvcache.measure(sorted(kept)).total


# -- Pythons ------------------------------------------------------------------------------------
def _pythons(store: Store, projects: list[Project]) -> tuple[list[uvcache.ManagedPython],
                                                             dict[str, str]]:
    """Managed Pythons nothing uses, and the reason each other one stays."""
    root = store.python_install_dir.resolve()
    installed = uvcache.managed_pythons(root)
    if not installed:
        return [], {}
    pins = [(p.path, pin) for p in projects for pin in _pins(p.path)]
    homes = [(cfg, home) for cfg in _pyvenv_cfgs(store, projects) if (home := _home(cfg))]
    gone, kept = [], {}
    for python in installed:
        folder = root / python.key
        reason = next((f"{where} pins {pin}" for where, pin in pins if _matches(pin, python)), None)
        reason = reason or next((f"{cfg.parent} uses it" for cfg, home in homes
                                 if _inside(home, folder.resolve())), None)
        if reason:
            kept[python.key] = reason
        else:
            gone.append(python)
    return gone, kept


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _pins(project: Path) -> list[str]:
    pins = []
    for name in (".python-version", ".python-versions"):
        try:
            text = (project / name).read_text(encoding="utf-8")
        except OSError:
            continue
        pins += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return pins


def _matches(pin: str, python: uvcache.ManagedPython) -> bool:
    """Could ``pin`` (``3.12``, ``3.12.1``, ``cpython-3.12…``, ``cpython@3.12``) select it?
    A request devkit cannot read (``>=3.11``, ``pypy``) matches every install: keep them all."""
    text = pin.lower()
    if python.key.startswith(text):
        return True
    text = text.removeprefix("cpython@").removeprefix("cpython-").removeprefix("python")
    parts = text.split(".")
    if all(part.isdigit() for part in parts):
        return python.version.split(".")[: len(parts)] == parts
    return True


def _pyvenv_cfgs(store: Store, projects: list[Project]) -> list[Path]:
    cfgs = [p.path / ".venv" / "pyvenv.cfg" for p in projects]
    try:
        tools = uv.tool_dir(env=store.subprocess_env())
        cfgs += sorted(tools.glob("*/pyvenv.cfg"))
    except (uv.UvError, DevkitError):
        pass
    return [c for c in cfgs if c.is_file()]


def _home(cfg: Path) -> Path | None:
    parser = configparser.ConfigParser()
    try:
        parser.read_string("[venv]\n" + cfg.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return None
    home = parser.get("venv", "home", fallback="")
    return Path(home) if home else None


def _python_dirs(store: Store, pythons: Iterable[uvcache.ManagedPython]) -> list[Path]:
    return [store.python_install_dir / p.key for p in pythons
            if (store.python_install_dir / p.key).is_dir()]

