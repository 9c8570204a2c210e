"""devkit in a repository the user does not own (``devkit adopt --private``).

Everything devkit adds to such a repository (its environment files: ``.mise.toml``,
``.envrc.sh``, ``.envrc``, a ``compose.yaml``… whatever the template rendered among
:data:`ENV_PATTERNS`) stays out of git without touching a tracked file: each added file is
listed in the repository's own exclude file (``git rev-parse --git-path info/exclude``: the common
git directory, which linked worktrees share; gitignore(5)), and the line-ending rules that
devkit's template gives those files go, one anchored line per file, to ``info/attributes``
(gitattributes(5)), each inside a marked block::

    # >>> devkit (private) >>>
    # workspace: /abs/path/of/the/workspace
    /.mise.toml
    # <<< devkit <<<

``.gitignore`` and ``.gitattributes`` stay byte for byte what the repository has. What devkit
needs later (the answers and template commit it rendered with, each file it added with the
SHA-256 of what it wrote, how it changed the two info files) is a :class:`Record` in the store
(:meth:`devkit.store.Store.private_record`), never in the repository: ``devkit update`` renders
the recorded answers at the old and the new commit, ``devkit adopt --remove`` deletes only what
devkit added and left unchanged, ``devkit doctor`` checks the blocks.

Caveat (git's behaviour, not devkit's): an ignored file is "expendable" to git, so a checkout or
pull that brings a tracked file of the same name overwrites it silently; ``devkit doctor`` warns
when ``HEAD`` or the upstream branch tracks one of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit import git, template, trust
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import atomic_write_bytes, atomic_write_text, make_private_dirs

BLOCK_START = "# >>> devkit (private) >>>"
BLOCK_END = "# <<< devkit <<<"
RECORD_VERSION = 1
#: The environment files a render may hold (top-level names, fnmatch patterns): the files a
#: private adoption adds are those of a render that match, whatever the template's answers made
#: of them (``.envrc`` only with direnv, ``compose.yaml`` only with services…).
ENV_PATTERNS = (".mise.toml", ".envrc", ".envrc.*", "compose.yaml", "compose.yml")
#: The per-user script ``.envrc.sh`` sources: never rendered nor added, but excluded too.
LOCAL_SCRIPT = trust.LOCAL_SCRIPT
EXCLUDE = "info/exclude"
ATTRIBUTES = "info/attributes"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str | None:
    """Hex SHA-256 of the regular file ``path`` (a symlink is not followed: None), or None when
    it is absent or unreadable."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        return sha256(path.read_bytes())
    except OSError:
        return None


# -- the record ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Added:
    """One file devkit added: the SHA-256 of the bytes devkit last wrote (or found identical to
    its render), and whether devkit created it (False: the file was there before the adoption,
    untracked and byte for byte devkit's render, and stays when the adoption is removed)."""

    sha256: str
    created: bool = True


@dataclasses.dataclass
class BlockFile:
    """How devkit changed one info file (``info/exclude`` or ``info/attributes``): its absolute
    ``path``; ``created``: devkit created it (deleted again when the block goes and nothing else
    is left); ``dir_created``: devkit created its ``info/`` directory; ``newline``: devkit added
    the final newline the user's last line lacked (taken away with the block)."""

    path: str
    created: bool = False
    dir_created: bool = False
    newline: bool = False


@dataclasses.dataclass
class Record:
    """A private adoption (:meth:`devkit.store.Store.private_record`, JSON, mode 0600).

    ``source``/``commit``: the template (the store's repository) and tag devkit rendered;
    ``answers``: the answers it rendered with; ``files``: what it added, by name relative to the
    workspace; ``excludes``/``attributes``: the lines of its two blocks (anchored patterns);
    ``lock_created``: ``uv sync`` created ``uv.lock`` (the repository has none), so it is
    excluded too and removed with the adoption."""

    workspace: Path
    source: str
    commit: str
    answers: dict[str, Any]
    files: dict[str, Added]
    exclude: BlockFile
    attribute_file: BlockFile
    excludes: list[str] = dataclasses.field(default_factory=list)
    attributes: list[str] = dataclasses.field(default_factory=list)
    lock_created: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record's JSON document (``version`` 1)."""
        return {"version": RECORD_VERSION, "workspace": str(self.workspace),
                "source": self.source, "commit": self.commit, "answers": self.answers,
                "files": {k: dataclasses.asdict(v) for k, v in sorted(self.files.items())},
                "exclude": dataclasses.asdict(self.exclude),
                "attribute_file": dataclasses.asdict(self.attribute_file),
                "excludes": self.excludes, "attributes": self.attributes,
                "lock_created": self.lock_created}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Record:
        """Parse :meth:`to_json`'s document. Raises KeyError, TypeError or ValueError when it
        is malformed."""
        if doc.get("version") != RECORD_VERSION:
            raise ValueError(f"version {doc.get('version')!r}")
        files = {str(k): Added(str(v["sha256"]), bool(v.get("created", True)))
                 for k, v in dict(doc["files"]).items()}
        return cls(Path(str(doc["workspace"])), str(doc["source"]), str(doc["commit"]),
                   dict(doc["answers"]), files, BlockFile(**doc["exclude"]),
                   BlockFile(**doc["attribute_file"]), [str(x) for x in doc["excludes"]],
                   [str(x) for x in doc["attributes"]], bool(doc.get("lock_created", False)))


def load(store: Store, workspace: Path) -> Record | None:
    """The private adoption record of ``workspace``, or None when it was not adopted with
    ``--private``. Raises DevkitError (one line naming the file) when the record is malformed."""
    path = store.private_record(workspace)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DevkitError(f"cannot read {path}: {exc}") from exc
    try:
        return Record.from_json(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DevkitError(f"{path} is not a devkit private-adoption record ({exc}): move it "
                          "away and run `devkit adopt --private` again") from exc


def save(store: Store, record: Record) -> None:
    """Write ``record`` atomically, mode 0600 in a 0700 directory. Raises OSError."""
    path = store.private_record(record.workspace)
    make_private_dirs(path.parent)
    atomic_write_text(path, json.dumps(record.to_json(), indent=2) + "\n")
    os.chmod(path, 0o600)


def forget(store: Store, workspace: Path) -> None:
    """Delete the record of ``workspace`` (absent is fine). Raises OSError."""
    store.private_record(workspace).unlink(missing_ok=True)


# -- what a render adds ----------------------------------------------------------------------------
@dataclasses.dataclass
class Render:
    """The part of a template render a private adoption uses: the environment files (name →
    bytes, and their modes), the template's ``.gitattributes`` and ``.gitignore`` text, and the
    loader files for :func:`devkit.trust.record_rendered`."""

    files: dict[str, bytes]
    modes: dict[str, int]
    gitattributes: str
    gitignore: str
    loaders: dict[str, bytes]


def environment_files(rendered: Path) -> list[str]:
    """The top-level regular files of the render ``rendered`` matching :data:`ENV_PATTERNS`
    (never ``.envrc.local.sh``), sorted."""
    names = []
    for entry in sorted(rendered.iterdir()):
        if entry.name != LOCAL_SCRIPT and entry.is_file() and not entry.is_symlink() and any(
                fnmatch.fnmatchcase(entry.name, p) for p in ENV_PATTERNS):
            names.append(entry.name)
    return names


def render(source: str, commit: str, answers: Mapping[str, Any]) -> Render:
    """Render the template ``source`` at ``commit`` with ``answers`` (defaults for the rest,
    no template task runs) in a temporary directory. Raises DevkitError when copier fails."""
    with tempfile.TemporaryDirectory(prefix="devkit-private-") as tmp:
        dst = Path(tmp) / "workspace"
        template.render(source, dst, data=dict(answers), user_defaults={}, defaults=True,
                        vcs_ref=commit)
        names = environment_files(dst)
        return Render({n: (dst / n).read_bytes() for n in names},
                      {n: (dst / n).stat().st_mode & 0o777 for n in names},
                      _text(dst / ".gitattributes"), _text(dst / ".gitignore"),
                      trust.render_of(dst))


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _rules(text: str) -> list[tuple[str, list[str]]]:
    """(pattern, rest of the line) of each rule line of a gitignore/gitattributes text."""
    rules = []
    for line in text.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            rules.append((parts[0], parts[1:]))
    return rules


def attribute_lines(gitattributes: str, names: Sequence[str], prefix: str) -> list[str]:
    """One ``info/attributes`` line per name of ``names`` that the template's ``gitattributes``
    text gives attributes, anchored to that file alone (``/sub/.envrc.sh text eol=lf``), so no
    tracked file of the repository gets another attribute. The catch-all ``*`` is left out.
    ``prefix`` is the workspace relative to the top of the work tree (``""`` or ``sub/``)."""
    lines = []
    for name in names:
        attrs: list[str] = []
        for pattern, rest in _rules(gitattributes):
            if pattern != "*" and fnmatch.fnmatchcase(name, pattern.lstrip("/")):
                attrs += [a for a in rest if a not in attrs]
        if attrs:
            lines.append(f"/{prefix}{name} {' '.join(attrs)}")
    return lines


def exclude_lines(names: Sequence[str], gitignore: str, prefix: str, *,
                  lock: bool = False) -> list[str]:
    """The ``info/exclude`` lines: each of ``names`` anchored (``/sub/.mise.toml``), the plain
    names of the template's ``gitignore`` that name an environment file or the per-user
    ``.envrc.local.sh``, and ``uv.lock`` when ``lock``."""
    wanted = list(names)
    for pattern, _ in _rules(gitignore):
        plain = pattern.strip("/")
        if plain and "/" not in plain and not any(c in plain for c in "*?[!\\") and (
                plain == LOCAL_SCRIPT or any(fnmatch.fnmatchcase(plain, p) for p in ENV_PATTERNS)):
            wanted.append(plain)
    if lock:
        wanted.append("uv.lock")
    return [f"/{prefix}{name}" for name in dict.fromkeys(wanted)]


# -- the blocks ----------------------------------------------------------------------------------
def _header(workspace: Path) -> str:
    return f"# workspace: {workspace}"


def block_text(workspace: Path, lines: Sequence[str]) -> str:
    """The marked block of ``workspace`` holding ``lines``."""
    return "".join(f"{line}\n" for line in (BLOCK_START, _header(workspace), *lines, BLOCK_END))


def _find_block(text: str, workspace: Path) -> tuple[int, int] | None:
    """(start, end) character offsets of ``workspace``'s block in ``text`` (whole lines, the end
    line's newline included), or None."""
    lines = text.splitlines(keepends=True)
    offset = 0
    for i, line in enumerate(lines):
        if line.rstrip("\r\n") == BLOCK_START and i + 1 < len(lines) \
                and lines[i + 1].rstrip("\r\n") == _header(workspace):
            end = offset
            for later in lines[i:]:
                end += len(later)
                if later.rstrip("\r\n") == BLOCK_END:
                    return offset, end
            return offset, len(text)  # an unterminated block runs to the end
        offset += len(line)
    return None


def read_block(path: Path, workspace: Path) -> list[str] | None:
    """The lines of ``workspace``'s block in the info file ``path`` (markers left out), or None
    when the file or the block is absent. Raises nothing."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _find_block(text, workspace)
    if found is None:
        return None
    inner = text[found[0]:found[1]].splitlines()[2:]
    return [line for line in inner if line != BLOCK_END]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_block(state: BlockFile, workspace: Path, lines: Sequence[str]) -> BlockFile:
    """Put ``workspace``'s block holding ``lines`` into the info file ``state.path`` (replacing
    the block it has, else appended), atomically; creates the file and its ``info/`` directory
    when missing (modes a git repository's files get: the umask's). Returns the new state
    (what devkit created, whether it added a final newline). Raises OSError."""
    path = Path(state.path)
    dir_created = state.dir_created or not path.parent.is_dir()
    created = state.created or not (path.exists() or path.is_symlink())
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    found = _find_block(text, workspace)
    newline = state.newline
    block = block_text(workspace, lines)
    if found is not None:
        new = text[:found[0]] + block + text[found[1]:]
    else:
        if text and not text.endswith("\n"):
            text += "\n"
            newline = True
        new = text + block
    if new != text or found is None:
        if dir_created:
            path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, new)
        if created:
            path.chmod(0o666 & ~_umask())
    return BlockFile(str(path), created, dir_created, newline)


def remove_block(state: BlockFile, workspace: Path) -> None:
    """Take ``workspace``'s block out of ``state.path`` and leave the file as it was before
    devkit wrote the block: the newline devkit added goes too, and a file (and ``info/``
    directory) devkit created is deleted when nothing else is left in it. Raises OSError."""
    path = Path(state.path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    found = _find_block(text, workspace)
    if found is None:
        return
    start, end = found
    if state.newline and start > 0 and text[start - 1] == "\n" and end == len(text):
        start -= 1
    new = text[:start] + text[end:]
    if state.created and not new:
        path.unlink()
        if state.dir_created:
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        return
    atomic_write_text(path, new)


# -- restoring on failure ------------------------------------------------------------------------
class Undo:
    """The bytes and mode of each file a command is about to change, so :meth:`restore` can put
    every one back (deleting those that did not exist) when the command fails half-way."""

    def __init__(self) -> None:
        """Nothing saved yet."""
        self.saved: dict[Path, tuple[bytes, int] | None] = {}
        self.dirs: list[Path] = []

    def keep(self, path: Path) -> None:
        """Save ``path``'s state before its first change (a missing ``info/`` directory too).
        Raises OSError when it cannot be read."""
        if path in self.saved:
            return
        if not path.parent.exists():
            self.dirs.append(path.parent)
        try:
            self.saved[path] = (path.read_bytes(), path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            self.saved[path] = None

    def restore(self) -> None:
        """Put every saved file back; never raises (a failed step leaves the rest as is)."""
        for path, state in self.saved.items():
            with contextlib.suppress(OSError):
                if state is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(path, state[0])
                    path.chmod(state[1])
        for directory in reversed(self.dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()


@contextlib.contextmanager
def restoring(undo: Undo) -> Iterator[Undo]:
    """Run the block; on any exception (Ctrl-C included) restore what ``undo`` saved, shielded
    from a second interrupt, and re-raise."""
    from devkit.util import shielded

    try:
        yield undo
    except BaseException:
        with shielded():
            undo.restore()
        raise


def write_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write one environment file atomically; a new one gets ``mode`` (the render's), an
    existing one keeps its own. Raises OSError."""
    existed = path.exists()
    atomic_write_bytes(path, data)
    if not existed and mode is not None:
        path.chmod(mode & 0o777)


def git_paths(root: Path) -> tuple[Path, Path]:
    """(``info/exclude``, ``info/attributes``) of the repository holding ``root`` (the common
    git directory's, shared by linked worktrees). Raises DevkitError."""
    return git.git_path(root, EXCLUDE), git.git_path(root, ATTRIBUTES)


def write_blocks(record: Record) -> Record:
    """Bring both blocks of ``record`` in step with its ``excludes``/``attributes`` lines (an
    empty attributes list removes that block); returns the record with the new file states.
    Raises OSError."""
    record.exclude = write_block(record.exclude, record.workspace, record.excludes)
    if record.attributes:
        record.attribute_file = write_block(record.attribute_file, record.workspace,
                                            record.attributes)
    else:
        remove_block(record.attribute_file, record.workspace)
    return record


def missing_lines(record: Record) -> list[str]:
    """The lines of ``record``'s blocks that the info files lack (each block read again from
    disk); empty when both blocks are complete. Raises nothing."""
    missing = []
    for state, lines in ((record.exclude, record.excludes),
                         (record.attribute_file, record.attributes)):
        have = read_block(Path(state.path), record.workspace) or []
        missing += [line for line in lines if line not in have]
    return missing
