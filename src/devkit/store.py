"""The shared store: the one place that decides where devkit's and uv's shared files live.

The rule (mirrored line for line in the template's ``.envrc.sh``):

* ``DEVKIT_HOME`` if set, else ``$XDG_DATA_HOME/devkit``, else ``~/.local/share/devkit``, on Linux,
  macOS and WSL2 alike. uv also uses XDG paths on macOS (uv docs, reference/storage), and a path
  without spaces stays safe in shell scripts (platformdirs would give ``~/Library/Application
  Support`` there).
* ``UV_CACHE_DIR`` if set, else ``$DEVKIT_HOME/uv/cache``: a devkit-owned uv cache, so that the
  cache sits next to the store on one filesystem (hardlinks need that: uv docs, concepts/cache) and
  ``devkit store`` can account for it without counting unrelated tools' entries.
* ``UV_PYTHON_INSTALL_DIR`` if set, else ``$DEVKIT_HOME/uv/python``: uv-managed Python installs.
* ``$DEVKIT_HOME/projects.json``: the registry; ``$DEVKIT_HOME/align.json``: the alignment manifest;
  ``$DEVKIT_HOME/verified.json``: what uv last said "locked"/"current" for (a cache).
* ``$DEVKIT_HOME/bin``: links to the uv (and uvx) devkit uses; every workspace's ``.envrc.sh``
  puts it first on PATH, so tasks find uv however devkit was installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import filelock

from devkit import project_url
from devkit.errors import DevkitError
from devkit.util import PRIVATE_FILE_MODE, atomic_write_text, make_private_dirs

README = """\
This directory is devkit's shared store ({url}).

  uv/cache/       uv's cache, shared by every devkit workspace (UV_CACHE_DIR)
  uv/python/      uv-managed Python installs (UV_PYTHON_INSTALL_DIR)
  projects.json   the registry of workspaces that share this store
  align.json      the versions `devkit align` last settled on
  venvs.json      the .venv devkit made in each workspace (it runs the interpreter of no other)
  verified.json   what uv last verified per project (a cache: safe to delete)
  private/        what `devkit adopt --private` added to each repository you don't own
  template/       a git copy of devkit's bundled template, so `copier update` works
  bin/            links to the uv and uvx devkit uses (first on PATH inside workspaces)

Keep it on the same filesystem as your projects: uv links venv files to the cache only there.
"""

WORKSPACE_WAIT = 300.0  # seconds a command waits for another one working on the same workspace


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return the store's root from ``environ`` (default ``os.environ``) by the rule above.

    Raises nothing; ``~`` is expanded with ``HOME`` from ``environ``.
    """
    env = os.environ if environ is None else environ
    if env.get("DEVKIT_HOME"):
        return Path(env["DEVKIT_HOME"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    data = env.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(data) / "devkit"


class Store:
    """All on-disk paths of the shared store; no other module builds them."""

    def __init__(self, home: Path | None = None, environ: Mapping[str, str] | None = None) -> None:
        """``home`` overrides the rule; ``environ`` (default ``os.environ``) is read once, here."""
        self._environ = dict(os.environ if environ is None else environ)
        self.home = (home or default_home(self._environ)).absolute()

    # -- paths -------------------------------------------------------------------------------
    @property
    def uv_cache_dir(self) -> Path:
        """uv's shared cache: ``UV_CACHE_DIR`` if set, else ``$DEVKIT_HOME/uv/cache``."""
        value = self._environ.get("UV_CACHE_DIR")
        return Path(value).expanduser().absolute() if value else self.home / "uv" / "cache"

    @property
    def python_install_dir(self) -> Path:
        """uv-managed Pythons: ``UV_PYTHON_INSTALL_DIR`` if set, else ``$DEVKIT_HOME/uv/python``."""
        value = self._environ.get("UV_PYTHON_INSTALL_DIR")
        return Path(value).expanduser().absolute() if value else self.home / "uv" / "python"

    @property
    def bin_dir(self) -> Path:
        """``$DEVKIT_HOME/bin``: links to devkit's uv and uvx, put on PATH by every ``.envrc.sh``."""
        return self.home / "bin"

    @property
    def registry_file(self) -> Path:
        """The JSON registry of workspaces (see :mod:`devkit.registry`)."""
        return self.home / "projects.json"

    @property
    def lock_file(self) -> Path:
        """The file lock that serialises writes to the store's JSON files."""
        return self.home / ".lock"

    @property
    def manifest_file(self) -> Path:
        """The alignment manifest written by ``devkit align``."""
        return self.home / "align.json"

    @property
    def align_backup_dir(self) -> Path:
        """Byte-for-byte copies of the ``uv.lock`` files an in-flight ``devkit align`` touches."""
        return self.home / "align-backups"

    @property
    def verified_file(self) -> Path:
        """What uv last verified per project, keyed on content (see :mod:`devkit.verified`)."""
        return self.home / "verified.json"

    @property
    def lock_keys_file(self) -> Path:
        """The registry packages of each registered ``uv.lock``, keyed on the file's identity
        (see :func:`devkit.align.lockfile.registry_keys`): ``devkit new`` learns what the other
        projects lock without parsing every lock again."""
        return self.home / "lock-keys.json"

    @property
    def yaml_memo_file(self) -> Path:
        """YAML documents ``devkit doctor`` read (answers and compose files), by the SHA-256 of
        their text (see :func:`devkit.checks.base.load_yaml`): an unchanged file is not parsed
        again, and PyYAML not imported."""
        return self.home / "yaml-memo.json"

    @property
    def tool_versions_file(self) -> Path:
        """What ``uv``/``mise``/``git``/``direnv --version`` printed, per binary, keyed on the
        binary's identity (see :mod:`devkit.checks.tools`): ``devkit doctor`` runs none of them
        again while the binary is the same file."""
        return self.home / "tool-versions.json"

    @property
    def template_repo(self) -> Path:
        """A git repository holding the bundled template, one tag per devkit version."""
        return self.home / "template"

    @property
    def rebuilds_dir(self) -> Path:
        """One JSON record per ``.venv`` a ``devkit sync`` moved aside to rebuild it
        (:mod:`devkit.venvsync`): the proof that a leftover ``.venv.devkit-old-<pid>`` is devkit's,
        kept where a cloned repository cannot forge it."""
        return self.home / "rebuilds"

    def update_record(self, workspace: Path) -> Path:
        """The record of a ``devkit update`` in progress in ``workspace`` (its pid and the
        snapshot taken before copier ran, :class:`devkit.commands.update.Snapshot`), named by a
        hash of the resolved path under ``updates/``; left behind only by a SIGKILL, so the next
        update can say which changes are the interrupted update's and how to undo them."""
        key = hashlib.sha256(str(workspace.absolute().resolve()).encode()).hexdigest()[:16]
        return self.home / "updates" / f"{key}.json"

    def private_record(self, workspace: Path) -> Path:
        """The record of a private adoption of ``workspace`` (``devkit adopt --private``,
        :class:`devkit.private.Record`): the answers and template commit devkit rendered with, the
        files it added and how it changed the repository's ``info/exclude`` and
        ``info/attributes``, named by a hash of the resolved path under ``private/``. Kept in the
        store, never in the repository, which devkit does not own."""
        key = hashlib.sha256(str(workspace.absolute().resolve()).encode()).hexdigest()[:16]
        return self.home / "private" / f"{key}.json"

    @property
    def rendered_file(self) -> Path:
        """SHA-256 of every loader config (``.mise.toml``, ``.envrc``) devkit rendered itself.

        ``{"version": 1, "configs": {"/abs/ws/.mise.toml": "<hex sha256>"}}``: the proof that lets
        devkit trust a config, never a comment inside it (see :mod:`devkit.trust`).
        """
        return self.home / "rendered.json"

    @property
    def venvs_file(self) -> Path:
        """The ``.venv`` devkit itself created in each workspace (:mod:`devkit.workspace_code`).

        ``{"version": 1, "venvs": {"/abs/ws/.venv": {"dev": int, "ino": int, "ctime_ns": int}}}``:
        the identity of that venv's ``pyvenv.cfg``, which a committed or unpacked ``.venv`` cannot
        have (the kernel sets ``st_ctime``).
        """
        return self.home / "venvs.json"

    def mutex(self, name: str, *, timeout: float) -> filelock.FileLock:
        """An inter-process file mutex ``$DEVKIT_HOME/.<name>.lock`` (mode 0600); ``timeout`` in seconds.

        The one way devkit serialises writers of the store's files ("lock" alone means ``uv.lock``).
        Acquiring raises ``filelock.Timeout`` after ``timeout`` seconds. Raises DevkitError when the
        store cannot be created (its directories are made mode 0700: :meth:`ensure`).
        """
        self.ensure_home()
        return filelock.FileLock(
            str(self.home / f".{name}.lock"), timeout=timeout, mode=PRIVATE_FILE_MODE
        )

    def registry_mutex(self, *, timeout: float) -> filelock.FileLock:
        """The file mutex ``$DEVKIT_HOME/.lock`` (mode 0600) serialising writers of the JSON files.

        ``timeout`` in seconds. Raises DevkitError when the store cannot be created.
        """
        self.ensure_home()
        return filelock.FileLock(str(self.lock_file), timeout=timeout, mode=PRIVATE_FILE_MODE)

    @contextlib.contextmanager
    def workspace_mutex(self, path: Path, *, command: str,
                        timeout: float | None = None) -> Iterator[None]:
        """Hold the per-workspace mutex of ``path`` while the block runs.

        Every command that writes inside a workspace takes it (``update`` around copier, ``align``
        while it relocks and syncs, ``sync``, ``adopt``, ``doctor --fix``), so two of them never
        interleave on one workspace. The mutex is ``$DEVKIT_HOME/.ws-<sha256 of the resolved
        path>.lock`` (mode 0600); ``command`` (e.g. ``"devkit update"``) is recorded next to it
        while held, so a command that has to wait can say who it waits for (one line on stderr when
        that is a terminal, and in the error after the wait).
        ``timeout`` in seconds (default :data:`WORKSPACE_WAIT`). Not re-entrant: a holder must not
        ask again. Raises DevkitError (one line naming the holder) after the wait, and when the
        store cannot be created.
        """
        where, key = self._workspace_key(path)
        wait = WORKSPACE_WAIT if timeout is None else timeout
        lock = self.mutex(key, timeout=wait)
        holder = self.home / f".{key}.holder"
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            who = _holder(holder)
            if sys.stderr.isatty():  # a person waiting; a script gets the error line on timeout
                print(f"devkit: waiting for {who} to finish with {where}", file=sys.stderr)
            try:
                lock.acquire(timeout=wait)
            except filelock.Timeout:
                raise DevkitError(f"{where} is busy: {who} has been working on it for over "
                                  f"{wait:.0f} s; try again when it is done") from None
        try:
            with contextlib.suppress(OSError):
                atomic_write_text(holder, json.dumps(
                    {"command": command, "pid": os.getpid(), "path": str(where)}) + "\n")
            yield
        finally:
            with contextlib.suppress(OSError):
                holder.unlink()
            lock.release()

    def workspace_mutex_file(self, path: Path) -> Path:
        """The file of :meth:`workspace_mutex` for ``path`` (it may not exist yet)."""
        return self.home / f".{self._workspace_key(path)[1]}.lock"

    @staticmethod
    def _workspace_key(path: Path) -> tuple[Path, str]:
        where = path.expanduser().absolute().resolve()
        return where, "ws-" + hashlib.sha256(str(where).encode()).hexdigest()[:16]

    def workspace_busy(self, path: Path) -> bool:
        """True while another command holds :meth:`workspace_mutex` of ``path`` (taken and
        released at once when free; no holder is recorded). Raises DevkitError when the store
        cannot be created."""
        lock = self.mutex(self._workspace_key(path)[1], timeout=0)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return True
        lock.release()
        return False

    def check_outside(self, path: Path, *, action: str) -> None:
        """Refuse a workspace ``path`` inside the store: ``DEVKIT_HOME``, the uv cache or the
        Python install directory (symlinks resolved, on both sides).

        Their contents belong to devkit and uv (a template refresh rebuilds ``template/``, a
        ``uv cache clean`` empties the cache), so work kept there would be deleted. ``action``
        words the error (``"create a workspace"``). Raises DevkitError (one line).
        """
        target = path.expanduser().absolute().resolve()
        for label, place in (("the uv cache", self.uv_cache_dir),
                             ("the uv Python install directory", self.python_install_dir),
                             ("the devkit store", self.home)):
            root = place.resolve()
            if target == root or root in target.parents:
                raise DevkitError(f"cannot {action} in {target}: it is inside {label} {root}, "
                                  "whose contents devkit and uv replace or delete; choose a "
                                  "directory outside it")

    @property
    def log_file(self) -> Path:
        """Where unexpected errors' tracebacks are appended."""
        return self.home / "devkit.log"

    # -- behaviour ---------------------------------------------------------------------------
    def check_home(self) -> None:
        """Refuse a store location that cannot be a directory, before any work is done.

        Raises DevkitError (one line) when ``home`` or one of its parents exists and is not a
        directory. Reads only: a missing store is fine (nothing registered yet).
        """
        for path in (self.home, *self.home.parents):
            if path.exists() or path.is_symlink():
                if not path.is_dir():
                    where = "DEVKIT_HOME" if path == self.home else f"a parent of {self.home}"
                    raise DevkitError(f"the devkit store {self.home} cannot be used: {where} "
                                      f"({path}) is not a directory; set DEVKIT_HOME to a directory")
                return

    def ensure_home(self) -> None:
        """Create ``home`` (and missing parents) mode 0700 whatever the umask.

        Raises DevkitError (one line) when it cannot be created or written.
        """
        self.check_home()
        try:
            make_private_dirs(self.home)
        except OSError as exc:
            raise self._unusable(exc) from exc
        if not os.access(self.home, os.W_OK | os.X_OK):
            raise DevkitError(f"the devkit store {self.home} is not writable: fix its permissions "
                              "or set DEVKIT_HOME to a writable directory")

    def ensure(self) -> None:
        """Create the store, cache, Python and template directories and the README, privately.

        Directories devkit creates are mode 0700 and files 0600 whatever the umask (``chmod`` after
        ``mkdir``: the mode argument of ``mkdir`` is masked by the umask); directories that already
        exist keep their mode. Raises DevkitError (one line) when the location is not a directory,
        cannot be created or is not writable.
        """
        self.ensure_home()
        try:
            for path in (self.uv_cache_dir, self.python_install_dir, self.template_repo):
                make_private_dirs(path)
            readme = self.home / "README.txt"
            if not readme.exists():
                atomic_write_text(readme, README.format(url=project_url() or "devkit"))
        except OSError as exc:
            raise self._unusable(exc) from exc

    def _unusable(self, exc: OSError) -> DevkitError:
        what = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename else ""
        return DevkitError(f"cannot create the devkit store {self.home}: {what}{where}; "
                           "set DEVKIT_HOME to a writable directory")

    def env(self) -> dict[str, str]:
        """The variables every workspace's ``.envrc.sh`` exports, as the Python side computes them."""
        return {
            "DEVKIT_HOME": str(self.home),
            "UV_CACHE_DIR": str(self.uv_cache_dir),
            "UV_PYTHON_INSTALL_DIR": str(self.python_install_dir),
        }

    def subprocess_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """``os.environ`` (as read at construction) plus :meth:`env` plus ``extra``, for uv calls.

        ``VIRTUAL_ENV`` is dropped so uv targets each project's own ``.venv`` without a warning.
        """
        env = {**self._environ, **self.env(), **(extra or {})}
        env.pop("VIRTUAL_ENV", None)
        return env


def _holder(file: Path) -> str:
    """Who holds a workspace mutex, from its holder file: ``devkit update (pid 123)``."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        return f"`{doc['command']}` (pid {int(doc['pid'])})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another devkit command"
