"""Running external commands and writing files atomically."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import rich.console


class CalledProcessError(RuntimeError):
    """A command exited non-zero; ``str()`` shows the command, return code and output."""

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(cmd, returncode, stdout, stderr)
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def last_line(self) -> str:
        """The most telling line of the output: the last ``error:`` line, else the last line."""
        lines = [ln.strip() for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        for line in reversed(lines):
            if line.startswith("error:") or "ERROR" in line:
                return line
        return lines[-1] if lines else f"exit code {self.returncode}"

    def __str__(self) -> str:
        return (
            f"command {' '.join(self.cmd)!r} returned {self.returncode}\n"
            f"stdout: {self.stdout.strip()}\nstderr: {self.stderr.strip()}"
        )


def cmd_output(
    *cmd: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` capturing text output; ``timeout`` is in seconds.

    Raises CalledProcessError when ``check`` and the exit code is not 0, FileNotFoundError when the
    executable is missing, and subprocess.TimeoutExpired on timeout.
    """
    proc = subprocess.run(  # commands are built by devkit, never by a shell
        list(cmd),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        errors="replace",  # a tool's odd bytes must not turn into a UnicodeDecodeError
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise CalledProcessError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents, each mode 0700 whatever the umask.

    ``mkdir``'s mode is masked by the umask, so each directory created here is ``chmod``-ed after
    creation; directories that already exist keep their mode (devkit changes only what it made).
    Returns the directories created, outermost first. Raises OSError (e.g. NotADirectoryError when
    a parent is a file, PermissionError when a parent is not writable).
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # a concurrent process made it: its mode is its own
        os.chmod(directory, PRIVATE_DIR_MODE)
        created.append(directory)
    return created


def file_identity(path: Path, st: os.stat_result) -> tuple[str, int, int, int, int, int]:
    """A key for "the same file with the same content" in a per-process cache: ``path``
    (absolute) with the device, inode, size (bytes), mtime and ctime (ns) of ``st`` (its
    ``stat``, e.g. ``os.fstat`` of the open file). A rewrite in place changes ctime, a
    replacement by rename the inode. Raises nothing."""
    return (str(path.absolute()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``.

    Readers see the old or the new content, never a partial file. A new file is created mode 0600
    (``tempfile.mkstemp``'s mode, whatever the umask); an existing file keeps its mode. Missing
    parent directories are created mode 0700 (:func:`make_private_dirs`). Raises OSError when the
    directory is not writable.
    """
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text (UTF-8, LF kept as written) version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (``kill(pid, 0)``; EPERM means another user's: it
    exists). A reused pid reads as alive: callers only ever keep something they would remove."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def format_bytes(n: int) -> str:
    """``n`` bytes as text with binary units: ``512 B``, ``1.5 KiB``, ``7.3 MiB``, ``10.6 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    """Temporarily change the working directory."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the main thread, so clean-up code runs (backups
    restored, half-made directories removed); a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM while clean-up runs (main thread only), so it cannot be cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


PIPE_WIDTH = 10_000  # columns a rich Console gets when stdout is not a terminal


def stdout_console() -> rich.console.Console:
    """A rich Console for stdout: the terminal's width on a terminal; elsewhere (a pipe, a file)
    ``PIPE_WIDTH`` columns with soft wrapping, so no path or line is cut or wrapped at 80.

    rich uses 80 columns when stdout is not a terminal (rich docs, console.html "Terminal
    detection"); tables still take only the width their cells need.
    """
    from rich.console import Console

    piped = not sys.stdout.isatty()
    return Console(highlight=False, width=PIPE_WIDTH if piped else None, soft_wrap=piped)
