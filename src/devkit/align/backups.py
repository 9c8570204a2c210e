"""Byte-for-byte backups of the ``uv.lock`` files an align run touches, in memory and on disk.

uv writes ``uv.lock`` atomically (a temp file renamed over it; seen with ``strace`` on uv 0.13.9),
so a lock is old or new, never torn; devkit never edits a lock, it only puts back its own copy.
The disk copy (``Store.align_backup_dir``) survives a SIGKILL; the next run finds it
(:meth:`Backups.recover`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path

from devkit.align import lockfile
from devkit.util import atomic_write_bytes, atomic_write_text


def restore(lock_path: Path, data: bytes) -> bool:
    """Put ``data`` back as ``lock_path`` (atomically) when it differs; True when written.

    Never creates a directory: when the project was deleted meanwhile, nothing is written.
    Raises OSError when the write fails.
    """
    if not lock_path.parent.is_dir():
        return False
    with contextlib.suppress(OSError):
        if lock_path.read_bytes() == data:
            return False
    atomic_write_bytes(lock_path, data)
    return True


class Backups:
    """Copies of every ``uv.lock`` touched in this run. Thread-safe."""

    def __init__(self, directory: Path) -> None:
        """Keep disk copies in ``directory`` (created on first save)."""
        self.directory = directory
        self._saved: dict[Path, bytes] = {}
        self._guard = threading.Lock()

    def _file(self, lock_path: Path) -> Path:
        digest = hashlib.sha256(str(lock_path).encode()).hexdigest()[:16]
        return self.directory / f"{digest}.json"

    def save(self, lock_path: Path, data: bytes) -> None:
        """Remember ``data`` as the original of ``lock_path`` (first save wins). Raises OSError."""
        with self._guard:
            if lock_path in self._saved:
                return
            doc = {"path": str(lock_path), "lock": data.decode("utf-8")}
            atomic_write_text(self._file(lock_path), json.dumps(doc))
            self._saved[lock_path] = data

    def original(self, lock_path: Path) -> bytes | None:
        """The bytes ``lock_path`` had before this run first touched it, or None."""
        with self._guard:
            return self._saved.get(lock_path)

    def restore_all(self) -> list[Path]:
        """Write every original back (atomically) and forget it; returns the paths restored."""
        with self._guard:
            restored = []
            for lock_path, data in self._saved.items():
                with contextlib.suppress(OSError):
                    if restore(lock_path, data):
                        restored.append(lock_path)
            self._drop()
            return restored

    def discard_all(self) -> None:
        """The run finished: forget every original and delete the disk copies."""
        with self._guard:
            self._drop()

    def _drop(self) -> None:
        for lock_path in self._saved:
            with contextlib.suppress(OSError):
                self._file(lock_path).unlink()
        self._saved.clear()

    def recover(self) -> list[str]:
        """Handle copies left by a killed run; returns one message per copy.

        A readable lock is kept (uv wrote it whole); an unreadable one is replaced by the copy;
        a project deleted meanwhile is left deleted (its copy is dropped, no directory is
        created). Half-written copies (``*.tmp`` of an interrupted atomic write) are removed.
        """
        notes: list[str] = []
        if not self.directory.is_dir():
            return notes
        for stale in self.directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        for file in sorted(self.directory.glob("*.json")):
            try:
                doc = json.loads(file.read_text(encoding="utf-8"))
                lock_path = Path(doc["path"])
                original = str(doc["lock"]).encode("utf-8")
                if not lock_path.parent.is_dir():
                    notes.append(f"{lock_path.parent}: an earlier align was interrupted and the "
                                 "project is gone; its backup was dropped")
                else:
                    try:
                        lockfile.read(lock_path)
                        notes.append(f"{lock_path}: an earlier align was interrupted; the lock "
                                     "is valid, kept")
                    except lockfile.LockError:
                        restore(lock_path, original)
                        notes.append(f"{lock_path}: restored from an interrupted align's backup")
                file.unlink()
            except (OSError, ValueError, KeyError, TypeError) as exc:
                notes.append(f"{file}: unreadable align backup ({exc}); left in place")
        return notes
