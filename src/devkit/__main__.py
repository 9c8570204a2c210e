"""``python -m devkit`` and the console script's entry: Ctrl-C during start-up is one line too.

Python's own SIGINT handler raises KeyboardInterrupt wherever the interpreter is, so a Ctrl-C
in the first tens of milliseconds (while ``devkit.main`` and its dependencies are imported)
would print a traceback. :func:`run` imports them inside its ``try``: it is the first Python code
of devkit that runs, and it imports nothing but ``sys`` itself.
"""

from __future__ import annotations

import sys


def run() -> int:
    """Import and run :func:`devkit.main.main`; Ctrl-C at any point exits 130 with one line.

    Once the command is over, Ctrl-C and SIGTERM are ignored: the exit code then reports what was
    done, instead of the interpreter dying by the signal while it shuts down.
    """
    try:
        try:
            from devkit.main import main

            return main()
        except KeyboardInterrupt:
            print("devkit: interrupted", file=sys.stderr)
            return 130
    finally:
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(run())
