"""devkit: many Python workspaces, one uv cache, one Python store, aligned lockfiles."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata on first use (PEP 562).

    Lazy so that importing the package costs nothing: the console script's guard against Ctrl-C
    (:func:`devkit.__main__.run`) starts only after the package itself is imported.
    """
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("devkit")
        except metadata.PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
