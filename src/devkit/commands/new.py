"""``devkit new``: render the template, git init, lock, sync, trust and register a workspace.

Creation is transactional: the workspace is complete or absent, whatever interrupts it.

1. Everything is checked before any work: the destination (not a file, empty or missing), the store
   (a writable directory, a readable registry) and the ``--data`` keys (the template's questions).
2. The workspace is rendered into a temporary sibling of the destination,
   ``.<name>.devkit-new-<random>/<name>`` (same filesystem, so the final move is one ``rename``).
   The temporary directory carries a marker, ``devkit-new.json`` (the destination, the pid), and a
   file lock, ``devkit-new.lock``, held for the whole run: the kernel drops it when the process
   dies, even on SIGKILL, so a later run can tell a leftover from a run still in progress.
3. There it gets its git repository, ``uv lock``, born-aligned pins and the first commit.
4. It is renamed into place, then ``uv sync`` builds ``.venv`` in place: a venv embeds its own
   absolute path (the shebangs of ``.venv/bin/*``, ``activate``; an editable install's ``.pth``
   file), so syncing in the temporary directory would leave a venv pointing at a path that no
   longer exists.
5. The loader configs are approved (``mise trust`` / ``direnv allow``), and the workspace is
   registered last: registration is the commit point. The temporary directory is then removed.

Ctrl-C or SIGTERM (turned into KeyboardInterrupt) before the commit point removes everything made:
a renamed workspace is renamed back into the temporary directory, which is deleted. After a
SIGKILL, the next ``devkit new`` of the same path finds the leftover by its marker: a temporary
directory is removed; a workspace that was already renamed into place but not registered is
replaced only with ``--force`` (the user may have started using it). ``--force`` never touches a
directory that no marker proves devkit left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import glob
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

import filelock

from devkit import git, template, trust, usage, uv, workspace_code
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store
from devkit.util import PRIVATE_FILE_MODE, atomic_write_text, shielded, terminate_as_interrupt

TEMP_INFIX = ".devkit-new-"
MARKER = "devkit-new.json"
MARKER_LOCK = "devkit-new.lock"

# How to install each environment loader (mise.jdx.dev/getting-started.html, direnv.net).
INSTALL_HINTS = {"mise": "curl https://mise.run | sh, or brew install mise",
                 "direnv": "sudo apt-get install direnv, or brew install direnv"}


def data_help() -> str:
    """Epilog of ``devkit new --help``: the bundled template's ``--data`` keys."""
    try:
        names = template.question_names(template.bundled_template_dir())
    except DevkitError:
        names = None
    if not names:
        return ""
    return ("--data keys of the bundled template: " + ", ".join(names)
            + ". A custom --template has its own (the top-level keys of its copier.yml).")


def new(
    path: Path,
    *,
    store: Store,
    data: Mapping[str, str],
    defaults: bool = False,
    template_src: str | None = None,
    sync: bool = True,
    force: bool = False,
) -> int:
    """Create the workspace at ``path``; returns 0, or 1 when aligning the new lock or approving
    its loader configs failed (the workspace is complete, the problem printed).

    ``force`` replaces a workspace an interrupted ``devkit new`` left at ``path`` (proved by its
    marker), never anything else. Raises DevkitError, before any work, when ``path`` is a file,
    a non-empty directory or inside the store (``Store.check_outside``), the store is not usable,
    the registry is corrupt or a ``--data`` key is unknown; and when rendering, ``uv lock`` or
    ``uv sync`` fails (a Python uv cannot get is named, with its fixes). Nothing is left behind
    then, nor on Ctrl-C or SIGTERM
    (KeyboardInterrupt propagates after the clean-up).
    """
    dst = path.expanduser().absolute()
    store.check_outside(dst, action="create a workspace")
    check_destination(dst)
    if not template_src:  # the bundled template: checked before the store is even created
        template.check_data_keys(data, str(template.bundled_template_dir()))
    with terminate_as_interrupt():
        store.ensure()
        registry = Registry(store)
        registry.projects()  # a corrupt registry stops the run before anything is made
        with contextlib.suppress(DevkitError):  # no uv at all: `uv lock` below says so
            uv.expose(store.bin_dir)
        clear_leftovers(dst, registry, force=force)
        check_destination(dst, empty=True)
        src, ref = template.resolve_source(template_src, store)
        # The store's copy renders from a tag (its working tree is empty): its questions are the
        # bundled template's.
        questions = (str(template.bundled_template_dir())
                     if template.is_store_source(src, store) else src)
        template.check_data_keys(data, questions)
        data = template.list_answers(data, questions)
        user_defaults = {
            "project_name": dst.name,
            "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        }
        try:
            # The template's uv_version is a floor (`required-version`): the running uv's minor.
            user_defaults["uv_version"] = ".".join(uv.version_once(store).split(".")[:2])
        except DevkitError:
            pass
        with Creation(dst, registry) as creation:
            return _create(creation, src, ref, data, user_defaults, store=store,
                           defaults=defaults, sync=sync)


DEMO_NAME = "devkit-demo"


def demo_path(store: Store) -> Path:
    """Where ``devkit new --demo`` puts the demo workspace: ``devkit-demo`` beside the store
    (``~/.local/share/devkit-demo`` by default)."""
    return store.home.parent / DEMO_NAME


def new_demo(*, store: Store, sync: bool = True) -> int:
    """Create the demo workspace with the default answers, replacing the previous demo.

    One place, one registration, however often it runs (the README's set-up command ends with
    it): the previous demo is moved aside, the new one created, then the old one deleted; if
    creating fails or is interrupted, the old one is put back. Returns :func:`new`'s code.
    Raises DevkitError when the demo place holds something that is not devkit's demo.
    """
    dst = demo_path(store).absolute()
    check_destination(dst)
    if not dst.is_dir() or not any(dst.iterdir()):
        return new(dst, store=store, data={}, defaults=True, sync=sync)
    registered = Registry(store).find(dst)
    if registered is None or not (dst / template.ANSWERS_FILE).is_file():
        raise DevkitError(f"{dst} exists and is not devkit's registered demo workspace: move it "
                          "away, or create a workspace elsewhere with `devkit new PATH`")
    aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
    old = aside / dst.name
    with shielded():
        os.rename(dst, old)
    try:
        code = new(dst, store=store, data={}, defaults=True, sync=sync)
    except BaseException:
        with shielded():
            if not dst.exists():
                os.rename(old, dst)
            shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    print(f"Replaced the previous demo workspace in {dst}")
    return code


def _create(creation: Creation, src: str, ref: str | None, data: Mapping[str, str],
            user_defaults: Mapping[str, str], *, store: Store, defaults: bool, sync: bool) -> int:
    work, dst = creation.work, creation.dst
    # Without a terminal copier cannot ask: use the defaults instead of failing.
    try:
        answers = template.render(
            src, work, data=data, user_defaults=user_defaults,
            defaults=defaults or not sys.stdin.isatty(), vcs_ref=ref,
        )
    except DevkitError as exc:
        raise _with_value(exc, data, user_defaults) from exc
    problems: list[str] = []
    env = store.subprocess_env()
    python = None
    if sync:
        try:
            python = uv.interpreter_used(uv.lock(work, env=env))
        except DevkitError as exc:  # complete or absent: nothing is left (Creation undoes it)
            raise lock_failure(exc, work, dst, answers, env) from exc
        try:
            _born_aligned(work, store)
        except DevkitError as exc:
            problems.append(str(exc).replace(str(work), str(dst)))
    git.init_and_commit(work, "Initial commit from devkit")
    creation.publish()
    # From here on a closed stdout (`devkit new X | head -1`) must not undo what was said done:
    # the workspace is finished and registered, then the closed pipe is reported (exit 141).
    with _stdout_may_close() as closed:
        synced = ""
        if sync:
            try:
                # the interpreter `uv lock` chose: discovering it again costs ~0.2 s behind pyenv
                uv.sync(dst, env=env, python=python)
                workspace_code.record_venv(dst, store)  # the one .venv devkit runs uv against
            except DevkitError as exc:
                raise DevkitError(f"{exc}; nothing was created (`devkit new --no-sync` creates "
                                  "the workspace without locking and syncing)") from exc
            linked, total = usage.count_linked(dst / ".venv")
            synced = f"Synced .venv: {linked} of {total} files are links into the shared cache"
        print(f"Created workspace {answers.get('project_name', dst.name)} in {dst}")
        if synced:
            print(synced)
        problems += _approve_loaders(dst, answers, store)
        creation.commit(str(answers.get("project_name", dst.name)))
        _print_next_steps(dst, answers, synced=sync and not problems)
    for problem in problems:
        print(f"devkit: warning: {problem}", file=sys.stderr)
    if closed:
        raise BrokenPipeError(errno.EPIPE, "stdout was closed")
    return 1 if problems else 0


class _ClosablePipe(io.TextIOBase):
    """``sys.stdout`` whose reader may go away: the first BrokenPipeError points file
    descriptor 1 at /dev/null (Python's docs, library/signal.html "Note on SIGPIPE") and is
    remembered instead of raised, so the output that follows is dropped quietly."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.broken = False

    def _closed_pipe(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        """Write ``text`` (dropped once the pipe is closed); returns its length."""
        if not self.broken:
            try:
                self.stream.write(text)
                if self.stream.line_buffering and "\n" in text:
                    self.stream.flush()
            except BrokenPipeError:
                self._closed_pipe()
        return len(text)

    def flush(self) -> None:
        """Flush the real stream, unless its pipe is closed."""
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._closed_pipe()


@contextlib.contextmanager
def _stdout_may_close() -> Iterator[list[bool]]:
    """While the block runs, a closed stdout raises nothing (:class:`_ClosablePipe`); yields a
    list that holds ``True`` afterwards when it was closed."""
    real = sys.stdout
    pipe = _ClosablePipe(real)
    found: list[bool] = []
    sys.stdout = pipe
    try:
        yield found
    finally:
        sys.stdout = real
        pipe.flush()
        if pipe.broken:
            found.append(True)


def _with_value(exc: DevkitError, data: Mapping[str, str],
                user_defaults: Mapping[str, str]) -> DevkitError:
    """A validator's error with the value it refused and the ``--data`` that fixes it."""
    text = str(exc)
    for key, label in (("project_name", "project name"), ("python_version", "Python version")):
        if f"Invalid {label}" in text:
            value = data.get(key, user_defaults.get(key, ""))
            origin = ""
            if key == "project_name" and key not in data:
                origin = " (from the directory's name)"
            return DevkitError(f"{text.rstrip('.')} (got {value!r}{origin}): pass a valid one "
                               f"with --data {key}=VALUE")
    return exc


def lock_failure(exc: DevkitError, work: Path, dst: Path, answers: Mapping[str, object],
                 env: Mapping[str, str]) -> DevkitError:
    """The one-line error for a ``uv lock`` that failed in a new workspace: when uv cannot get
    the workspace's Python (``uv python find`` does not find it), name it and the two fixes;
    else uv's own reason. Either way nothing was created."""
    request = str(answers.get("python_version") or "")
    try:
        first = (work / ".python-version").read_text(encoding="utf-8").splitlines()
        request = next((ln.strip() for ln in first if ln.strip()), request)
    except OSError:
        pass
    if request and uv.find_python(request, env=env) is None:
        found = [v for v in uv.installed_pythons(env=env) if v != request]
        choose = (f", or one uv finds: --data python_version={found[0]}" if found else "")
        return DevkitError(f"uv cannot get Python {request} (the workspace's python_version) "
                           f"and it is not on this machine: install it with `uv python install "
                           f"{request}`{choose}; nothing was created")
    reason = str(exc).replace(str(work), str(dst))
    return DevkitError(f"{reason}; nothing was created (`devkit new --no-sync` creates the "
                       "workspace without locking and syncing)")


def check_destination(dst: Path, *, empty: bool = False) -> None:
    """Refuse a destination that cannot become a workspace; with ``empty``, also a non-empty one.

    Raises DevkitError when ``dst`` or a parent is a file (or a symlink), or, with ``empty``, when
    ``dst`` is a directory that is not empty.
    """
    if dst.is_symlink():
        raise DevkitError(f"{dst} is a symbolic link: give the directory to create itself")
    if dst.exists() and not dst.is_dir():
        raise DevkitError(f"{dst} exists and is not a directory")
    for parent in dst.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DevkitError(f"cannot create {dst}: {parent} is not a directory")
            break
    if empty and dst.is_dir() and any(dst.iterdir()):
        hint = (f"; to bring the project there into devkit: devkit adopt {shlex.quote(str(dst))}"
                if (dst / "pyproject.toml").is_file() else
                "; choose a new directory (devkit adopt takes an existing project with a "
                "pyproject.toml)")
        raise DevkitError(f"{dst} already exists and is not empty{hint}")


class Creation:
    """The transaction of one ``devkit new``: a marked temporary sibling, renamed into place.

    Use as a context manager: on entry the temporary directory, its lock and marker are made;
    :meth:`publish` renames the workspace into place; :meth:`commit` registers it. Leaving the
    block before :meth:`commit` (an error, Ctrl-C, SIGTERM) removes everything made, shielded from
    a second Ctrl-C; after :meth:`commit` only the temporary directory is removed.
    """

    def __init__(self, dst: Path, registry: Registry) -> None:
        """Prepare to create ``dst`` (absolute); ``registry`` receives it on :meth:`commit`."""
        self.dst = dst
        self.registry = registry
        self.temp = dst  # set on entry
        self.work = dst
        self.published = False
        self.committed = False
        self._lock: filelock.BaseFileLock | None = None

    def __enter__(self) -> Self:
        """Make the temporary directory (mode 0700), take its lock and write its marker."""
        parent = self.dst.parent
        parent.mkdir(parents=True, exist_ok=True)
        self.temp = Path(tempfile.mkdtemp(prefix=f".{self.dst.name}{TEMP_INFIX}", dir=parent))
        try:
            self._lock = filelock.FileLock(str(self.temp / MARKER_LOCK), timeout=0,
                                           mode=PRIVATE_FILE_MODE)
            self._lock.acquire()
            started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
            atomic_write_text(self.temp / MARKER, json.dumps(
                {"destination": str(self.dst), "pid": os.getpid(), "started": started}) + "\n")
        except BaseException:
            self._remove_temp()
            raise
        self.work = self.temp / self.dst.name
        return self

    def publish(self) -> None:
        """Rename the finished workspace into place (atomic, same filesystem).

        Raises DevkitError when the destination was filled meanwhile (e.g. a concurrent run).
        """
        try:
            os.rename(self.work, self.dst)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise DevkitError(f"{self.dst} already exists and is not empty (it was created "
                                  "while devkit new was running)") from exc
            raise DevkitError(f"cannot move the workspace into {self.dst}: "
                              f"{exc.strerror or exc}") from exc
        self.published = True

    def commit(self, name: str) -> None:
        """Register the workspace: from here on it stays, whatever happens."""
        self.registry.add(self.dst, name)
        self.committed = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Undo everything unless committed; always remove the temporary directory."""
        with shielded():
            if self.published and not self.committed:
                with contextlib.suppress(OSError):
                    os.rename(self.dst, self.work)  # the destination is absent again at once
            self._remove_temp()

    def _remove_temp(self) -> None:
        if self._lock is not None:
            self._lock.release()
        shutil.rmtree(self.temp, ignore_errors=True)


def _read_marker(temp: Path) -> dict[str, object] | None:
    try:
        doc = json.loads((temp / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _in_progress(temp: Path) -> bool:
    """True while the ``devkit new`` that made ``temp`` still runs (it holds the marker's lock)."""
    lock = filelock.FileLock(str(temp / MARKER_LOCK), timeout=0, mode=PRIVATE_FILE_MODE)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def leftovers(dst: Path) -> list[Path]:
    """Temporary directories of interrupted ``devkit new`` runs for ``dst`` (marker, no live owner).

    Raises nothing.
    """
    found = []
    pattern = f".{glob.escape(dst.name)}{TEMP_INFIX}*"
    for temp in sorted(dst.parent.glob(pattern)):
        if temp.is_symlink() or not temp.is_dir():
            continue
        marker = _read_marker(temp)
        if marker is None or marker.get("destination") != str(dst):
            continue
        if not _in_progress(temp):
            found.append(temp)
    return found


def clear_leftovers(dst: Path, registry: Registry, *, force: bool) -> None:
    """Remove what interrupted runs left for ``dst``; with ``force``, their unregistered workspace.

    A temporary directory whose workspace was never renamed into place, or whose workspace was
    registered (complete), is removed. One whose workspace was renamed into place but not
    registered means ``dst`` is incomplete: it is replaced only with ``force``. Raises DevkitError
    naming ``--force`` otherwise.
    """
    for temp in leftovers(dst):
        work = temp / dst.name
        published = not work.exists() and dst.is_dir()
        if published and registry.find(dst) is None:
            if not force:
                raise DevkitError(f"{dst} was left incomplete by an interrupted `devkit new` "
                                  f"(marker: {temp / MARKER}); rerun with --force to replace it")
            with shielded():
                os.rename(dst, work)
                shutil.rmtree(temp, ignore_errors=True)
            print(f"Removed the incomplete workspace an interrupted devkit new left in {dst}")
            continue
        shutil.rmtree(temp, ignore_errors=True)
        print(f"Removed {temp}, left by an interrupted devkit new")


def _born_aligned(dst: Path, store: Store) -> None:
    """Move the fresh lock onto versions other workspaces already use (see ``devkit align``).

    The align engine (and its import) runs only when some registry package of the new lock is
    locked by another registered project, from the same index, at none of the new lock's
    versions: otherwise it would pin nothing. What the other projects lock comes from
    :func:`devkit.align.lockfile.registry_keys` (an unchanged lock is not parsed again)."""
    from devkit.align import lockfile

    try:
        mine = lockfile.read(dst / "uv.lock").keys()
    except lockfile.LockError:
        return
    target = dst.resolve()
    with contextlib.suppress(DevkitError):
        projects = [p.path for p in Registry(store).projects() if p.exists and p.path != target]
        others: dict[tuple[str, str], set[str]] = {}
        for keys in lockfile.registry_keys([p / "uv.lock" for p in projects],
                                           store.lock_keys_file).values():
            for index, name, version in keys:
                others.setdefault((index, name), set()).add(version)
        if not any(others.get((index, name)) and version not in others[(index, name)]
                   for index, name, version in mine):
            return
    from devkit.align import engine

    engine.align_new_project(dst, store=store)


def _approve_loaders(dst: Path, answers: Mapping[str, object], store: Store) -> list[str]:
    """Record the loader configs devkit just rendered, then approve them (``mise trust`` /
    ``direnv allow``) through :mod:`devkit.trust`, which approves only a proven render.

    Prints what was done, and how to install a missing loader; returns the problems.
    """
    loader = answers.get("env_loader", "mise")
    for name, verb in (("mise", "trust"), ("direnv", "allow")):
        if loader in (name, "both") and shutil.which(name) is None:
            print(f"{name} is not installed: install it ({INSTALL_HINTS[name]}), then run: "
                  f"{name} {verb} {shlex.quote(str(dst))}")
    try:
        trust.record_rendered(dst, store)
        lines = trust.trust_if_rendered(dst, store)
    except (DevkitError, OSError) as exc:
        return [f"cannot approve the loader configs of {dst}: {exc}"]
    for line in lines:
        if "is not installed" not in line:
            print(line[0].upper() + line[1:])
    return []


def _print_next_steps(dst: Path, answers: Mapping[str, object], *, synced: bool) -> None:
    print("\nNext steps:")
    print(f"  cd {shlex.quote(str(dst))}")
    if not synced:
        print("  uv sync            # build .venv from the shared cache")
    print("  uv run pytest      # run the tests")
    services = answers.get("services")
    if isinstance(services, list) and services:
        names = ", ".join(map(str, services))
        if answers.get("env_loader") == "direnv":  # no .mise.toml, so no services:* tasks
            print(f"  docker compose up -d && direnv reload   # start {names} (README.md, Services)")
        else:
            print(f"  mise run services:up   # start {names} (Docker; README.md, Services)")
    print("  devkit doctor      # check the set-up (shell hooks, cache, links)")
