"""What each tool binary printed for ``--version``, remembered in the store while the binary is
the same file (``tool-versions.json``, mode 0600).

Each ``--version`` costs a process start (``uv --version`` ~10 ms, ``mise --version``
100-250 ms), and the version of an unchanged file cannot change: an upgrade (``uv self update``,
a package manager, a new symlink target) changes the file's identity (:func:`binary_key`) and the
tool is asked again. doctor's tool checks and every command that needs uv's version share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any

from devkit.errors import DevkitError
from devkit.util import atomic_write_text

if TYPE_CHECKING:
    from devkit.store import Store

FORMAT = 1
_SAVE_LOCK = threading.Lock()


def binary_key(path: str) -> str | None:
    """The identity of the file ``path`` resolves to: its real path, device, inode, size,
    modification and change times (ns). None when ``path`` cannot be stat'ed."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return f"{real}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def read(store: Store) -> dict[str, Any]:
    """The entries of ``store.tool_versions_file`` by binary path; {} when it is missing,
    unreadable or of another format. Raises nothing."""
    try:
        doc = json.loads(store.tool_versions_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != FORMAT \
            or not isinstance(doc.get("tools"), dict):
        return {}
    return dict(doc["tools"])


def known(entries: dict[str, Any], path: str, key: str) -> tuple[str, str] | None:
    """(stdout, stderr) remembered in ``entries`` (:func:`read`) for ``path`` while its
    identity is ``key`` (:func:`binary_key`), or None."""
    entry = entries.get(path)
    if isinstance(entry, dict) and entry.get("key") == key \
            and isinstance(entry.get("stdout"), str) and isinstance(entry.get("stderr"), str):
        return entry["stdout"], entry["stderr"]
    return None


def remember(store: Store, path: str, key: str, stdout: str, stderr: str) -> None:
    """Add ``path``'s ``--version`` output, for identity ``key``, to the store's file (atomic,
    under ``Store.mutex("tool-versions")``; entries of binaries that are gone are dropped). Only
    in an existing store: reading a version creates no store. Never raises: a store that cannot
    be written only means the next run asks the tool again."""
    if not store.home.is_dir():
        return
    import filelock  # only where a version is written: most runs only read it

    with _SAVE_LOCK, contextlib.suppress(OSError, ValueError, DevkitError, filelock.Timeout), \
            store.mutex("tool-versions", timeout=2.0):
        tools = {p: e for p, e in read(store).items() if os.path.lexists(p)}
        tools[path] = {"key": key, "stdout": stdout, "stderr": stderr}
        atomic_write_text(store.tool_versions_file,
                          json.dumps({"version": FORMAT, "tools": tools}) + "\n")
