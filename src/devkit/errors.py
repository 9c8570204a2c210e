"""The one user-facing error type and the handler that turns errors into exit codes."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator


class DevkitError(Exception):
    """A failure the user can act on; its message is printed as one line, exit code 1."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) folded into one space."""
    return " ".join(text.split())


def describe(exc: BaseException) -> str:
    """``exc``'s message on one line (:func:`one_line`), or its type name when it has none."""
    return one_line(str(exc)) or type(exc).__name__


def _log(log_file: object, exc: BaseException) -> str:
    """Append ``exc``'s traceback to ``log_file`` (created mode 0600); returns `` (details in P)``."""
    if log_file is None:
        return ""
    try:
        from pathlib import Path

        path = Path(str(log_file))
        if not path.parent.is_dir():
            return ""  # never create the store just to log: the error may be that it cannot be
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)))
    except OSError:
        return ""
    return f" (details in {path})"


@contextlib.contextmanager
def error_handler(log_file: object = None) -> Iterator[None]:
    """Map exceptions to exit codes: DevkitError and OSError -> 1, Ctrl-C -> 130, anything else -> 3.

    Prints one line to stderr and never a traceback. An OSError (a path that is not a directory, a
    store that is not writable, a full disk) is a fact about the machine the user can act on, so it
    is reported like a DevkitError; its traceback and an unexpected error's go to ``log_file`` (a
    path, usually ``Store.log_file``; appended, created mode 0600) when one is given and its
    directory exists. Raises SystemExit with the code.
    """
    try:
        yield
    except DevkitError as exc:
        print(f"devkit: error: {one_line(str(exc))}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("devkit: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as exc:
        where = _log(log_file, exc)
        what = exc.strerror or type(exc).__name__
        name = f": {exc.filename}" if exc.filename else ""
        print(f"devkit: error: {one_line(what + name)}{where}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:  # noqa: BLE001  # last-resort handler: one line, never a traceback
        where = _log(log_file, exc)
        print(f"devkit: unexpected error: {type(exc).__name__}: {one_line(str(exc))}{where}",
              file=sys.stderr)
        raise SystemExit(3) from None
