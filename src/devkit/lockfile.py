"""Reading ``uv.lock`` files (read only: uv alone writes them).

Format facts from ../shared/notes/uv.md §7 and https://docs.astral.sh/uv/concepts/projects/layout/:
``version = 1``; ``[[package]]`` (legacy ``[[distribution]]``) with ``name``, ``version``, ``source``;
only ``source = { registry = URL }`` entries are wheels shared through the cache; one name may
appear several times (a fork), each entry with its own ``resolution-markers``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from devkit.errors import DevkitError

SUPPORTED_VERSION = 1


class LockError(DevkitError):
    """A ``uv.lock`` that cannot be read: missing, not TOML, or an unsupported schema."""


@dataclasses.dataclass(frozen=True, order=True)
class LockedPackage:
    """One registry package of a lock: ``(index, name, version)`` identifies a cache entry."""

    index: str
    name: str
    version: str
    markers: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity used for sharing: a wheel from a mirror is another cache entry."""
        return (self.index, self.name, self.version)


@dataclasses.dataclass(frozen=True)
class Lock:
    """The parts of a ``uv.lock`` devkit needs; ``skipped`` counts non-registry packages."""

    path: Path
    requires_python: str
    packages: tuple[LockedPackage, ...]
    skipped: int
    options: dict[str, object]

    def versions(self, name: str) -> set[str]:
        """All versions of ``name`` in this lock (several when it forks)."""
        return {p.version for p in self.packages if p.name == name}

    def names(self) -> set[str]:
        """Names of all registry packages."""
        return {p.name for p in self.packages}


def version_key(version: str) -> tuple[int, Version | str]:
    """Sort key for version strings: PEP 440 order, unparsable versions first (lowest)."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def normalize(name: str) -> str:
    """PEP 503 normalised name (uv writes names normalised already; this guards hand-made input)."""
    return str(canonicalize_name(name))


def read(path: Path) -> Lock:
    """Parse ``path`` (a ``uv.lock``). Raises LockError with the file and the reason."""
    return from_data(load(path), path)


def load(path: Path) -> dict[str, Any]:
    """The TOML document of ``path`` (a ``uv.lock``). Raises LockError."""
    try:
        return parse_toml(path.read_bytes(), path)
    except FileNotFoundError as exc:
        raise LockError(f"{path}: no uv.lock (run `uv lock`)") from exc
    except OSError as exc:
        raise LockError(f"{path}: not a readable uv.lock ({exc})") from exc


def parse_toml(data: bytes, path: Path) -> dict[str, Any]:
    """Decode the bytes of a ``uv.lock`` (``path`` only names it in errors). Raises LockError."""
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockError(f"{path}: not a readable uv.lock ({exc})") from exc


def from_data(data: dict[str, Any], path: Path) -> Lock:
    """Build a :class:`Lock` from a parsed ``uv.lock``. Raises LockError on an unsupported schema."""
    if data.get("version") != SUPPORTED_VERSION:
        raise LockError(f"{path}: unsupported uv.lock version {data.get('version')!r}")
    entries = data.get("package", data.get("distribution", []))
    if not isinstance(entries, list):
        raise LockError(f"{path}: malformed [[package]] table")
    packages, skipped = [], 0
    for entry in entries:
        source = entry.get("source") if isinstance(entry, dict) else None
        index = source.get("registry") if isinstance(source, dict) else None
        if not isinstance(index, str) or "version" not in entry or "name" not in entry:
            skipped += 1
            continue
        markers = tuple(entry.get("resolution-markers", ()))
        packages.append(LockedPackage(index, normalize(entry["name"]), str(entry["version"]), markers))
    return Lock(
        path=path,
        requires_python=str(data.get("requires-python", "")),
        packages=tuple(sorted(packages)),
        skipped=skipped,
        options=dict(data.get("options", {})),
    )


@dataclasses.dataclass(frozen=True)
class Summary:
    """Sharing figures over several locks: ``pairs`` counts (lock, package) occurrences."""

    pairs: int
    distinct_pairs: int
    names: int
    spread: dict[str, list[str]]  # name -> sorted versions, only names at 2+ versions

    @property
    def excess_pairs(self) -> int:
        """Distinct pairs beyond one version per name: what perfect alignment would remove."""
        return self.distinct_pairs - self.names

    def to_json(self) -> dict[str, object]:
        """JSON shape shared by ``devkit store --json`` and ``devkit align --json``."""
        return {
            "pairs": self.pairs,
            "distinct_pairs": self.distinct_pairs,
            "names": self.names,
            "excess_pairs": self.excess_pairs,
            "spread": self.spread,
        }


def summarize(locks: list[Lock]) -> Summary:
    """Count pairs (index, name, version) across ``locks``; a fork counts each of its versions."""
    keys = [{p.key for p in lock.packages} for lock in locks]
    distinct = set().union(*keys) if keys else set()
    by_name: dict[str, set[str]] = {}
    for _index, name, ver in distinct:
        by_name.setdefault(name, set()).add(ver)
    spread = {
        name: sorted(vers, key=version_key) for name, vers in sorted(by_name.items()) if len(vers) > 1
    }
    return Summary(sum(len(k) for k in keys), len(distinct), len(by_name), spread)
