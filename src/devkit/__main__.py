"""``python -m devkit`` and the console script's entry: Ctrl-C during start-up is one line too.

Python's own SIGINT handler raises KeyboardInterrupt wherever the interpreter is, so a Ctrl-C
in the first tens of milliseconds (while ``devkit.main`` and its dependencies are imported)
would print a traceback. :func:`run` imports them inside its ``try``: it is the first Python code
of devkit that runs, and it imports nothing but ``sys`` itself (nor does the package's
``__init__``: not even ``__future__``, whose import would be a window before the guard).

What runs before this module is CPython's start-up and the installer's script header (``site``,
``import re`` in pip's launcher): a Ctrl-C there ends the interpreter before devkit exists, by
the signal (a shell shows status 130) or with CPython's own traceback.
"""

import sys

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command ended by Ctrl-C


def run() -> int:
    """Import and run :func:`devkit.main.main`; Ctrl-C at any point exits 130 with one line.

    Once the command is over, Ctrl-C and SIGTERM are ignored: the exit code then reports what was
    done, instead of the interpreter dying by the signal while it shuts down. A second Ctrl-C
    that lands while the first is being handled is absorbed by the same loop.
    """
    code: int | None = None  # None: interrupted before main() returned
    started = False
    while True:  # repeats only when a Ctrl-C lands after main(), before signals are ignored
        try:
            if not started:
                started = True
                from devkit.main import main

                code = main()
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            break
        except KeyboardInterrupt:
            continue
    if code is None:
        print("devkit: interrupted", file=sys.stderr)
        return INTERRUPTED
    return code


if __name__ == "__main__":
    raise SystemExit(run())
