"""The one user-facing error type and the handler that turns errors into exit codes."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator


class DevkitError(Exception):
    """A failure the user can act on; its message is printed as one line, exit code 1."""


@contextlib.contextmanager
def error_handler(log_file: object = None) -> Iterator[None]:
    """Map exceptions to exit codes: DevkitError -> 1, Ctrl-C -> 130, anything else -> 3.

    Prints one line to stderr and never a traceback; an unexpected error's traceback goes to
    ``log_file`` (a path, usually ``Store.log_file``) when one is given, so it can be reported.
    Raises SystemExit with the code.
    """
    try:
        yield
    except DevkitError as exc:
        print(f"devkit: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("devkit: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001  # last-resort handler: one line, never a traceback
        where = ""
        if log_file is not None:
            try:
                from pathlib import Path

                path = Path(str(log_file))
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as fh:
                    fh.write("".join(traceback.format_exception(exc)))
                where = f" (details in {path})"
            except OSError:
                pass
        text = " ".join(str(exc).split())  # one line, whatever the exception's text holds
        print(f"devkit: unexpected error: {type(exc).__name__}: {text}{where}", file=sys.stderr)
        raise SystemExit(3) from None
