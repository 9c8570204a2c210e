"""What a ``uv.lock`` says beyond its packages, as input for the alignment planner.

The project's own requirements (``[package.metadata]`` of the workspace members, ``[manifest]``
constraints and overrides), the ``exclude-newer`` cutoffs it was resolved with (``[options]``) and
the upload time of each registry file (../shared/notes/uv.md §6, §7). Read only: uv alone writes
``uv.lock``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from devkit import lockfile
from devkit import plan as planner


def requirements(data: dict[str, Any]) -> tuple[planner.Requirement, ...]:
    """The project's own requirements from a parsed ``uv.lock`` (``data`` from tomllib).

    Read from ``[package.metadata]`` (``requires-dist``, ``requires-dev``) of every non-registry
    package (the workspace members) and from ``[manifest]`` ``constraints``/``overrides``
    (../shared/notes/uv.md §7). Malformed entries are ignored.
    """
    found: list[planner.Requirement] = []

    def add(items: object, kind: str) -> None:
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                found.append(planner.Requirement(lockfile.normalize(item["name"]),
                                                 str(item.get("specifier", "")),
                                                 str(item.get("marker", "")), kind))

    for package in data.get("package", data.get("distribution", [])) or []:
        source = package.get("source") if isinstance(package, dict) else None
        if not isinstance(source, dict) or "registry" in source:
            continue
        metadata = package.get("metadata", {})
        if isinstance(metadata, dict):
            add(metadata.get("requires-dist"), "requires")
            for group in (metadata.get("requires-dev") or {}).values():
                add(group, "dev")
    manifest = data.get("manifest", {})
    if isinstance(manifest, dict):
        add(manifest.get("constraints"), "constraint")
        add(manifest.get("overrides"), "override")
    return tuple(found)


Uploaded = dict[tuple[str, str, str], dt.datetime]
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                       r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _when(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _span(value: object) -> dt.timedelta | None:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        return None
    y, mo, w, d, h, mi, sec = (float(g or 0) for g in match.groups())
    # years and months as 365/30 days: only a pre-filter, uv's resolver has the last word
    return dt.timedelta(days=365 * y + 30 * mo + 7 * w + d, hours=h, minutes=mi, seconds=sec)


def exclude_newer(options: dict[str, Any], now: dt.datetime) -> tuple[
        dt.datetime | None, tuple[tuple[str, dt.datetime], ...]]:
    """The cutoffs a lock was resolved with, from its ``[options]``.

    ``exclude-newer-span`` (an ISO 8601 duration such as ``P3W``, recorded with a placeholder
    ``exclude-newer = 0001-01-01T00:00:00Z``) is relative to ``now``; otherwise ``exclude-newer``
    is an RFC 3339 time. ``[options.exclude-newer-package]`` gives per-package cutoffs
    (../shared/notes/uv.md §6, §7). Unparsable values are ignored.
    """
    span = _span(options.get("exclude-newer-span"))
    cutoff = now - span if span else _when(options.get("exclude-newer"))
    per_package = []
    for name, value in (options.get("exclude-newer-package") or {}).items():
        when = _when(value) or (now - span_ if (span_ := _span(value)) else None)
        if when is not None:
            per_package.append((lockfile.normalize(name), when))
    return cutoff, tuple(per_package)


def upload_times(data: dict[str, Any]) -> Uploaded:
    """Earliest ``upload-time`` of each registry ``(index, name, version)``'s files in a lock."""
    found: Uploaded = {}
    for package in data.get("package", data.get("distribution", [])) or []:
        source = package.get("source") if isinstance(package, dict) else None
        if not isinstance(source, dict) or not isinstance(source.get("registry"), str):
            continue
        files = [package.get("sdist") or {}, *(package.get("wheels") or [])]
        times = [t for f in files if isinstance(f, dict) and (t := _when(f.get("upload-time")))]
        if times and "name" in package and "version" in package:
            key = (source["registry"], lockfile.normalize(package["name"]), str(package["version"]))
            found[key] = min(times + ([found[key]] if key in found else []))
    return found


def read_project(path: Path, label: str = "", now: dt.datetime | None = None
                 ) -> tuple[lockfile.Lock, planner.ProjectLock, Uploaded]:
    """Read ``path/uv.lock`` for planning; ``label`` names the project in reasons.

    Returns the lock, its planner input and its files' upload times. Raises lockfile.LockError
    (missing, not TOML, unsupported schema).
    """
    data = lockfile.load(path / "uv.lock")
    lock = lockfile.from_data(data, path / "uv.lock")
    options = data.get("options")
    if not isinstance(options, dict):
        options = {}
    cutoff, per_package = exclude_newer(options, now or dt.datetime.now(dt.UTC))
    project = planner.ProjectLock(str(path), lock.packages, requirements(data),
                                  label or path.name, cutoff, per_package)
    return lock, project, upload_times(data)
