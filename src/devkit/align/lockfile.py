"""The one reader of ``uv.lock`` (read only: uv alone writes it), validating at the boundary.

Format (https://docs.astral.sh/uv/concepts/projects/layout/#the-lockfile and uv.lock as written by
uv 0.13): ``version = 1``; ``[[package]]`` (legacy ``[[distribution]]``) with ``name``,
``version``, ``source``; only ``source = { registry = URL }`` entries are wheels shared through the
cache; one name may appear several times (a fork), each entry with its own ``resolution-markers``.
Each file of a registry package (``sdist``, ``wheels = [{url, hash, size, upload-time}]``) records
its ``size`` in bytes and its ``upload-time``. The workspace members (non-registry entries) carry
the project's own requirements in ``[package.metadata]``; ``[manifest]`` holds constraints and
overrides; ``[options]`` the ``exclude-newer`` cutoffs the lock was resolved with
(https://docs.astral.sh/uv/reference/settings/#exclude-newer).

A lock with the right TOML syntax but wrong types (``name = 5``, ``resolution-markers = 5``,
``requires-dev = ["x"]``, ``exclude-newer-package = ["x"]``, a span that overflows) raises
:class:`LockError`: every caller turns that into a per-project error, never a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import itertools
import json
import os
import re
import shlex
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import rtoml
from packaging.tags import parse_tag, sys_tags
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from devkit.errors import DevkitError
from devkit.util import atomic_write_text, file_identity

SUPPORTED_VERSION = 1
RequirementKind = Literal["requires", "dev", "constraint", "override"]
Key = tuple[str, str, str]  # (index URL, name, version): one cache entry


class LockError(DevkitError):
    """A ``uv.lock`` that cannot be used: missing, not TOML, unsupported schema or wrong types."""


@dataclasses.dataclass(frozen=True, order=True)
class LockedPackage:
    """One registry package of a lock: ``(index, name, version)`` identifies a cache entry.

    ``size`` is the bytes of the file this machine would install (see :func:`wheel_size`), 0 when
    the lock records none; ``uploaded`` the earliest ``upload-time`` of its files.
    """

    index: str
    name: str
    version: str
    markers: tuple[str, ...] = ()
    size: int = dataclasses.field(default=0, compare=False)
    uploaded: dt.datetime | None = dataclasses.field(default=None, compare=False)

    @property
    def key(self) -> Key:
        """The identity used for sharing: a wheel from a mirror is another cache entry."""
        return (self.index, self.name, self.version)


@dataclasses.dataclass(frozen=True)
class Requirement:
    """A requirement a project states itself (``[package.metadata]`` of its local packages).

    ``specifier`` is PEP 440 text (``""`` = any version); ``kind`` is used in reasons
    ("project a requires tinyshared<1.1").
    """

    name: str
    specifier: str = ""
    marker: str = ""
    kind: RequirementKind = "requires"


@dataclasses.dataclass(frozen=True)
class Lock:
    """The parts of a ``uv.lock`` devkit needs; ``skipped`` counts non-registry packages.

    ``exclude_newer``: uploads after this (aware datetime) were invisible to the resolver;
    ``others``: the non-registry packages as ``(name, kind, value)`` from their ``source``
    (``("app", "editable", ".")``, ``("lib", "git", "https://…")``);
    ``exclude_newer_package``: per-package cutoffs (normalised name, datetime), None for a
    package exempt from the global cutoff (``exclude-newer-package = { name = false }``).
    """

    path: Path
    requires_python: str
    packages: tuple[LockedPackage, ...]
    skipped: int = 0
    requirements: tuple[Requirement, ...] = ()
    exclude_newer: dt.datetime | None = None
    exclude_newer_package: tuple[tuple[str, dt.datetime | None], ...] = ()
    others: tuple[tuple[str, str, str], ...] = ()  # (name, source kind, value): non-registry
    #: ``source = { editable | directory = REL }`` of its local packages, besides ``"."``
    local_sources: tuple[str, ...] = ()

    def versions(self, name: str) -> set[str]:
        """All versions of ``name`` in this lock (several when it forks); a new set each call."""
        return set(self._versions_by_name.get(name, ()))

    @functools.cached_property
    def _versions_by_name(self) -> dict[str, tuple[str, ...]]:
        """name -> its versions, built once: :meth:`versions` over every name of a 10,000-package
        lock would otherwise scan the packages once per name."""
        found: dict[str, list[str]] = {}
        for package in self.packages:
            found.setdefault(package.name, []).append(package.version)
        return {name: tuple(versions) for name, versions in found.items()}

    def names(self) -> set[str]:
        """Names of all registry packages."""
        return {p.name for p in self.packages}

    def keys(self) -> set[Key]:
        """The distinct ``(index, name, version)`` of its registry packages."""
        return {p.key for p in self.packages}

    def sizes(self) -> dict[Key, int]:
        """Bytes per key (the largest when a fork lists one key twice)."""
        out: dict[Key, int] = {}
        for p in self.packages:
            out[p.key] = max(out.get(p.key, 0), p.size)
        return out


def version_key(version: str) -> tuple[int, Version | str]:
    """Sort key for version strings: PEP 440 order, unparsable versions first (lowest)."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def normalize(name: str) -> str:
    """PEP 503 normalised name (uv writes names normalised already; this guards hand-made input)."""
    return str(canonicalize_name(name))


# -- reading ------------------------------------------------------------------------------------
def read(path: Path, *, now: dt.datetime | None = None) -> Lock:
    """Parse and validate ``path`` (a ``uv.lock``); ``now`` anchors ``exclude-newer-span``.

    Raises LockError with the file and the reason (missing, unreadable, not TOML, wrong types).
    """
    return read_digest(path, now=now)[1]


def read_digest(path: Path, *, now: dt.datetime | None = None) -> tuple[str, Lock]:
    """:func:`read`, plus the SHA-256 (hex) of the file's bytes, in one pass over the file.

    The file is read line by line and parsed one ``[[package]]`` table at a time
    (:func:`_parse_parts`), so a 30 MB lock is never held whole, neither as bytes nor as text;
    a lock with a multi-line string (which could hide a ``[[package]]`` line) is read whole.
    Raises LockError as :func:`read` does.
    """
    when = now or dt.datetime.now(dt.UTC)
    try:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            identity = file_identity(path, st)
            with _READ_LOCK:
                known = _READ.get(identity)
            if known is not None and now is None:
                return known
            digest = hashlib.sha256()
            try:
                lock = _parse_parts(_file_parts(fh, digest, path), path, when)
                result = digest.hexdigest(), lock
            except _WholeText:
                fh.seek(0)
                data = fh.read()
                result = hashlib.sha256(data).hexdigest(), parse(data, path, now=when)
            if now is None and result[1].exclude_newer is None \
                    and not result[1].exclude_newer_package:
                with _READ_LOCK:
                    _READ[identity] = result
            return result
    except FileNotFoundError as exc:
        raise LockError(f"{path}: no uv.lock (run `uv lock --project "
                        f"{shlex.quote(str(path.parent.absolute()))}`)") from exc
    except OSError as exc:
        raise LockError(f"{path}: not a readable uv.lock ({exc})") from exc
    except rtoml.TomlParsingError as exc:
        raise LockError(f"{path}: not a readable uv.lock ({exc})") from exc
    except _Malformed as exc:
        raise LockError(f"{path}: malformed uv.lock: {exc}") from None


#: Locks read in this process, by file identity (path, device, inode, size, mtime, ctime: uv
#: replaces ``uv.lock`` by renaming a new file into place), so a command that reads every
#: registered lock twice (``align`` and its cache figure) parses each once. A lock with an
#: ``exclude-newer`` cutoff is not kept (a span is relative to the time it is read).
_READ: dict[tuple[str, int, int, int, int, int], tuple[str, Lock]] = {}
_READ_LOCK = threading.Lock()


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def registry_keys(locks: Iterable[Path], cache: Path) -> dict[Path, frozenset[Key]]:
    """The ``(index, name, version)`` keys of each readable lock of ``locks`` (``uv.lock`` paths;
    unreadable ones are left out), remembered in the JSON file ``cache`` by each lock's identity
    (device, inode, size, mtime, ctime: uv renames a new file into place), so a lock unchanged
    since it was last asked is not parsed again. ``cache`` (``Store.lock_keys_file``) is then
    rewritten atomically with exactly the locks asked; a cache that cannot be read or written
    only costs parsing. Raises nothing."""
    try:
        doc = json.loads(cache.read_text(encoding="utf-8"))
        known = doc["locks"] if isinstance(doc, dict) and doc.get("version") == 1 else {}
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError, KeyError):
        known = {}
    found: dict[Path, frozenset[Key]] = {}
    kept: dict[str, dict[str, Any]] = {}
    changed = False
    for path in locks:
        try:
            ident = _identity(path.stat())
        except OSError:
            continue
        entry = known.get(str(path))
        keys = None
        if isinstance(entry, dict) and entry.get("id") == ident \
                and isinstance(entry.get("keys"), list):
            try:
                keys = frozenset((str(i), str(n), str(v)) for i, n, v in entry["keys"])
            except (TypeError, ValueError):
                keys = None
        if keys is None:
            changed = True
            try:
                lock = read(path)
                ident = _identity(path.stat())
            except (LockError, OSError):
                continue
            keys = frozenset(lock.keys())
        found[path] = keys
        kept[str(path)] = {"id": ident, "keys": sorted(keys)}
    if changed or len(kept) != len(known):
        with contextlib.suppress(OSError, DevkitError):
            atomic_write_text(cache, json.dumps({"version": 1, "locks": kept}) + "\n")
    return found


class _WholeText(Exception):
    """A part holds a multi-line string: the lock must be parsed whole."""


_HEADER_LINE = b"[[package]]\n"


def _file_parts(lines: Iterable[bytes], digest: Any, path: Path) -> Iterator[str]:
    """The text before the first ``[[package]]`` line, then each package's text (its header
    line to the next one), decoded; every line also goes into ``digest``. Raises _WholeText
    when a part holds a multi-line string, LockError when a part is not UTF-8."""
    part: list[bytes] = []
    for line in lines:
        digest.update(line)
        if line == _HEADER_LINE:
            yield _part_text(part, path)
            part = []
        part.append(line)
    yield _part_text(part, path)


def _part_text(lines: list[bytes], path: Path) -> str:
    text = decode(b"".join(lines), path)
    if '"""' in text or "'''" in text:
        raise _WholeText
    return text


def decode(data: bytes, path: Path) -> str:
    """The UTF-8 text of a ``uv.lock``'s bytes; raises LockError naming ``path``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockError(f"{path}: not a readable uv.lock ({exc})") from exc


def parse(data: bytes, path: Path, *, now: dt.datetime | None = None) -> Lock:
    """Parse the bytes of a ``uv.lock`` (``path`` names it in errors). Raises LockError.

    TOML is read by ``rtoml`` (https://github.com/samuelcolvin/rtoml, the Rust ``toml`` crate;
    it gives what ``tomllib`` gives, ~20x faster: ``tomllib`` is pure Python in 3.11 and takes
    ~0.5 s and ~7 bytes of memory per byte of a MB-sized lock), one ``[[package]]`` table at a
    time (:func:`_parse_parts`), so a 30 MB lock of 10,000 packages is read in about a
    second while holding one package's objects at a time.
    """
    return parse_text(decode(data, path), path, now=now)


def parse_text(text: str, path: Path, *, now: dt.datetime | None = None) -> Lock:
    """:func:`parse` of the text of a ``uv.lock`` (already decoded). Raises LockError."""
    when = now or dt.datetime.now(dt.UTC)
    try:
        if '"""' not in text and "'''" not in text:  # no multi-line string: see below
            return _parse_parts(_text_parts(text), path, when)
        return _from_doc(_toml(text), path, when)
    except rtoml.TomlParsingError as exc:
        raise LockError(f"{path}: not a readable uv.lock ({exc})") from exc
    except _Malformed as exc:
        raise LockError(f"{path}: malformed uv.lock: {exc}") from None


def _toml(text: str) -> dict[str, Any]:
    doc = rtoml.loads(text)
    if not isinstance(doc, dict):  # rtoml's type is Any; a TOML document is always a table
        raise _Malformed("not a TOML table")
    return doc


_PACKAGE_HEADER = "\n[[package]]\n"


def _text_parts(text: str) -> Iterator[str]:
    """:func:`_file_parts` of a whole text: the head, then each package's text."""
    if text.startswith(_PACKAGE_HEADER[1:]):
        start = 0
    elif (found := text.find(_PACKAGE_HEADER)) >= 0:
        start = found + 1
    else:
        start = len(text)
    yield text[:start]
    while start < len(text):
        end = text.find(_PACKAGE_HEADER, start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _parse_parts(parts: Iterator[str], path: Path, now: dt.datetime) -> Lock:
    """The same :class:`Lock` as a TOML parser gives on the whole text, one package at a time.

    ``parts`` is the text before the first ``[[package]]`` line, then each package's text from
    its header line to the next one. The text has no multi-line string, so such a line can only
    be a table header: each part is one package (with its ``[package.*]`` sub-tables), and a
    top-level table after the last package joins the document. Raises rtoml.TomlParsingError
    or _Malformed (a key or table defined in two parts, as a parser of the whole text would).
    """
    doc = _toml(next(parts))
    first = next(parts, None)
    if first is None:  # no package at all
        return _from_doc(doc, path, now)
    if "package" in doc or "distribution" in doc:
        raise _Malformed("the [[package]] tables must not be split")

    def entries() -> Iterator[dict[str, Any]]:
        for text in itertools.chain([first], parts):
            part = _toml(text)
            tables = part.pop("package")
            for key, value in part.items():  # a top-level table after the packages
                if key in doc:
                    raise _Malformed(f"{key} is defined twice")
                doc[key] = value
            yield from _tables(tables, "package")

    return _from_doc(doc, path, now, entries())


class _Malformed(Exception):
    pass


def _typed(value: object, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _Malformed(f"{where} must be {_ARTICLE.get(names, names)}, not {value!r}"[:200])
    return value


_ARTICLE = {"str": "a string", "int": "an integer", "list": "an array", "dict": "a table"}


def _opt(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    return None if value is None else _typed(value, kind, f"{where}{key}")


def _tables(value: object, where: str) -> list[dict[str, Any]]:
    items = _typed(value, list, where) if value is not None else []
    if all(type(item) is dict for item in items):
        return items
    return [_typed(item, dict, f"{where}[{i}]") for i, item in enumerate(items)]


def _from_doc(doc: dict[str, Any], path: Path, now: dt.datetime,
              tables: Iterable[dict[str, Any]] | None = None) -> Lock:
    """``tables``: the packages, when read apart from ``doc`` (they may add to ``doc`` the
    top-level tables that follow them: ``doc``'s other tables are read after them)."""
    if doc.get("version") != SUPPORTED_VERSION:
        raise LockError(f"{path}: unsupported uv.lock version {doc.get('version')!r}")
    entries = tables if tables is not None else \
        _tables(doc.get("package", doc.get("distribution")), "package")
    packages: list[LockedPackage] = []
    requirements: list[Requirement] = []
    others: list[tuple[str, str, str]] = []
    local: list[str] = []
    skipped = 0
    for i, entry in enumerate(entries):
        where = f"package[{i}]."
        name = normalize(_typed(entry.get("name"), str, f"{where}name"))
        version = _opt(entry, "version", str, where)
        markers = _opt(entry, "resolution-markers", list, where) or []
        for marker in markers:
            _typed(marker, str, f"{where}resolution-markers[]")
        source = _opt(entry, "source", dict, where) or {}
        index = source.get("registry")
        wheels = _tables(entry.get("wheels"), f"{where}wheels")
        sdist = _opt(entry, "sdist", dict, where)
        files = [*wheels, *([sdist] if sdist else [])]
        times = []
        at_file, at_time = f"{where}file.", f"{where}upload-time"
        for file in files:
            size, url, uploaded = file.get("size"), file.get("url"), file.get("upload-time")
            if not ((size is None or type(size) is int) and (url is None or type(url) is str)
                    and (uploaded is None or type(uploaded) is str)):  # the error, with its words
                _opt(file, "size", int, at_file)
                _opt(file, "url", str, at_file)
                _opt(file, "upload-time", str, at_file)
            if uploaded is not None and (when := _when(uploaded, at_time)) is not None:
                times.append(when)
        if isinstance(index, str) and version is not None:
            packages.append(LockedPackage(index, name, version, tuple(markers),
                                          wheel_size(wheels, sdist), min(times, default=None)))
            continue
        skipped += 1
        kind, value = next(((k, v) for k, v in source.items() if isinstance(v, str)), ("", ""))
        others.append((name, str(kind), value))
        for kind in ("editable", "directory"):
            rel = source.get(kind)
            if isinstance(rel, str) and rel != "." and rel not in local:
                local.append(rel)
        metadata = _opt(entry, "metadata", dict, where) or {}
        requirements += _requirements(metadata.get("requires-dist"), "requires",
                                      f"{where}metadata.requires-dist")
        dev = _opt(metadata, "requires-dev", dict, f"{where}metadata.") or {}
        for group, items in dev.items():
            requirements += _requirements(items, "dev", f"{where}metadata.requires-dev.{group}")
    manifest = _opt(doc, "manifest", dict, "") or {}
    requirements += _requirements(manifest.get("constraints"), "constraint", "manifest.constraints")
    requirements += _requirements(manifest.get("overrides"), "override", "manifest.overrides")
    options = _opt(doc, "options", dict, "") or {}
    cutoff, per_package = _exclude_newer(options, now)
    return Lock(
        path=path,
        requires_python=_opt(doc, "requires-python", str, "") or "",
        packages=tuple(sorted(packages)),
        skipped=skipped,
        requirements=tuple(requirements),
        exclude_newer=cutoff,
        exclude_newer_package=per_package,
        others=tuple(others),
        local_sources=tuple(local),
    )


def _requirements(items: object, kind: RequirementKind, where: str) -> list[Requirement]:
    found = []
    for i, item in enumerate(_tables(items, where)):
        name = _typed(item.get("name"), str, f"{where}[{i}].name")
        found.append(Requirement(normalize(name), _opt(item, "specifier", str, f"{where}[{i}].") or "",
                                 _opt(item, "marker", str, f"{where}[{i}].") or "", kind))
    return found


# -- exclude-newer ------------------------------------------------------------------------------
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                       r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _when(value: object, where: str) -> dt.datetime | None:
    """An RFC 3339 time as an aware datetime; None for None. Raises _Malformed (``where`` set)."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        if where:
            raise _Malformed(f"{where} is not an RFC 3339 time: {value!r}"[:200]) from None
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _span(value: str, where: str) -> dt.timedelta:
    match = _DURATION.match(value)
    if not match or not any(match.groups()):
        raise _Malformed(f"{where} is not an ISO 8601 duration: {value!r}"[:200])
    y, mo, w, d, h, mi, sec = (float(g or 0) for g in match.groups())
    try:
        # years and months as 365/30 days: only a pre-filter, uv's resolver has the last word
        return dt.timedelta(days=365 * y + 30 * mo + 7 * w + d, hours=h, minutes=mi, seconds=sec)
    except OverflowError:
        raise _Malformed(f"{where} is out of range: {value!r}"[:200]) from None


def _relative(now: dt.datetime, span: dt.timedelta, where: str) -> dt.datetime:
    try:
        return now - span
    except OverflowError:
        raise _Malformed(f"{where} reaches before year 1") from None


def _exclude_newer(options: dict[str, Any], now: dt.datetime) -> tuple[
        dt.datetime | None, tuple[tuple[str, dt.datetime | None], ...]]:
    """The cutoffs a lock was resolved with, from its ``[options]``.

    ``exclude-newer-span`` (an ISO 8601 duration such as ``P3W``, recorded with a placeholder
    ``exclude-newer = 0001-01-01T00:00:00Z``) is relative to ``now``; otherwise ``exclude-newer``
    is an RFC 3339 time; absent (``exclude-newer = false`` in ``[tool.uv]``) means no cutoff.
    ``[options.exclude-newer-package]`` gives per-package cutoffs in every form uv 0.13 writes
    (https://docs.astral.sh/uv/reference/settings/#exclude-newer-package; dates, friendly and
    ISO 8601 durations and ``false`` in ``[tool.uv]`` become): an RFC 3339 time string; ``false``
    (no cutoff for that package, even under a global one: the name maps to None); a table
    ``{ timestamp = "…", span = "P7D" }`` for a duration (relative to ``now``; the timestamp is a
    placeholder then). An ISO 8601 duration string is read as a span too.
    """
    span_text = _opt(options, "exclude-newer-span", str, "options.")
    if span_text is not None:
        where = "options.exclude-newer-span"
        cutoff: dt.datetime | None = _relative(now, _span(span_text, where), where)
    else:
        cutoff = _when(_opt(options, "exclude-newer", str, "options."), "options.exclude-newer")
    per_package: list[tuple[str, dt.datetime | None]] = []
    table = _opt(options, "exclude-newer-package", dict, "options.") or {}
    for name, value in table.items():
        where = f"options.exclude-newer-package.{name}"
        if value is False:  # `{ name = false }`: this package has no cutoff
            per_package.append((normalize(name), None))
            continue
        if isinstance(value, dict):
            span = _opt(value, "span", str, f"{where}.")
            if span is not None:
                per_package.append((normalize(name), _relative(now, _span(span, where), where)))
                continue
            value = _typed(value.get("timestamp"), str, f"{where}.timestamp")
        text = _typed(value, str, where)  # `true` is no form uv writes
        when = (_relative(now, _span(text, where), where) if text.startswith("P")
                else _when(text, where))
        if when is not None:
            per_package.append((normalize(name), when))
    return cutoff, tuple(per_package)


# -- sizes --------------------------------------------------------------------------------------
@functools.cache
def _tag_rank() -> dict[str, int]:
    """Tag text -> priority (0 = best) for this interpreter (``packaging.tags.sys_tags``)."""
    return {str(tag): i for i, tag in enumerate(sys_tags())}


def _wheel_rank(filename: str, rank: dict[str, int]) -> int | None:
    """The best rank of wheel ``filename``'s tags on this machine, None when it fits none or is
    not a valid wheel name (``packaging.utils.parse_wheel_filename``'s rules).

    A lock lists a dozen wheels per package whose tags repeat from package to package, and
    ``parse_wheel_filename`` costs ~80 µs: names are validated, versions and tag triples parsed
    once each (:func:`_tags_rank`).
    """
    parts = filename.removesuffix(".whl").split("-") if filename.endswith(".whl") else []
    if len(parts) not in (5, 6) or not _valid_version(parts[1]):
        return None
    if len(parts) == 6 and not parts[2][:1].isdigit():
        return None
    if not _WHEEL_NAME.match(parts[0]):
        return None
    return _tags_rank("-".join(parts[-3:])) if rank is _tag_rank() else _rank_in(
        "-".join(parts[-3:]), rank)


_WHEEL_NAME = re.compile(r"^[\w\d._]*$", re.UNICODE)  # parse_wheel_filename's own check


@functools.cache
def _valid_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@functools.cache
def _tags_rank(triple: str) -> int | None:
    """Best rank in :func:`_tag_rank` of the tags of ``triple`` (``py3-none-any``), or None."""
    return _rank_in(triple, _tag_rank())


def _rank_in(triple: str, rank: dict[str, int]) -> int | None:
    ranks = [rank[str(t)] for t in parse_tag(triple) if str(t) in rank]
    return min(ranks) if ranks else None


def wheel_size(wheels: Iterable[dict[str, Any]], sdist: dict[str, Any] | None = None) -> int:
    """Bytes of the file this machine would install from a package's ``wheels``/``sdist``.

    The wheel whose tags rank best in ``packaging.tags.sys_tags()`` (the order pip and uv prefer
    for the running interpreter); when none fits this machine (another platform's project), the
    largest wheel, so a heavy package is never weighed as light; with no wheels, the sdist's
    size; 0 when the lock records no size (uv omits it for some indexes).
    """
    rank = _tag_rank()
    best: tuple[int, int] | None = None
    largest = 0
    for wheel in wheels:
        size = wheel.get("size")
        if not isinstance(size, int):
            continue
        largest = max(largest, size)
        url = str(wheel.get("url") or wheel.get("filename") or wheel.get("path") or "")
        found = _wheel_rank(url.rsplit("/", 1)[-1].split("#")[0], rank)
        if found is not None and (best is None or found < best[0]):
            best = (found, size)
    if best is not None:
        return best[1]
    if largest:
        return largest
    size = (sdist or {}).get("size")
    return size if isinstance(size, int) else 0


# -- figures over several locks -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Summary:
    """Sharing figures over several locks: ``pairs`` counts (lock, package) occurrences;
    ``distinct_bytes`` sums the size of each distinct ``(index, name, version)`` once."""

    pairs: int
    distinct_pairs: int
    names: int
    spread: dict[str, list[str]]  # name -> sorted versions, only names at 2+ versions
    distinct_bytes: int = 0

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
            "distinct_bytes": self.distinct_bytes,
            "spread": self.spread,
        }


def summarize(locks: Iterable[Lock]) -> Summary:
    """Count pairs (index, name, version) across ``locks``; a fork counts each of its versions."""
    all_locks = list(locks)
    keys = [lock.keys() for lock in all_locks]
    distinct: set[Key] = set().union(*keys) if keys else set()
    sizes: dict[Key, int] = {}
    for lock in all_locks:
        for key, size in lock.sizes().items():
            sizes[key] = max(sizes.get(key, 0), size)
    by_name: dict[str, set[str]] = {}
    for _index, name, ver in distinct:
        by_name.setdefault(name, set()).add(ver)
    spread = {
        name: sorted(vers, key=version_key) for name, vers in sorted(by_name.items()) if len(vers) > 1
    }
    return Summary(sum(len(k) for k in keys), len(distinct), len(by_name), spread,
                   sum(sizes.get(k, 0) for k in distinct))
