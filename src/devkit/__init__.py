"""devkit: many Python workspaces, one uv cache, one Python store, aligned lockfiles."""

# No `from __future__ import annotations` here: this module is imported before the console
# script's Ctrl-C guard (devkit.__main__.run), so it imports nothing at all.

DISTRIBUTION = "devkit-workspace"  # the name on PyPI; the command and the package are `devkit`


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata on first use (PEP 562).

    Lazy so that importing the package costs nothing: the console script's guard against Ctrl-C
    (:func:`devkit.__main__.run`) starts only after the package itself is imported.
    """
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def project_url(label: str = "Source") -> str | None:
    """The ``[project.urls]`` entry ``label`` (``Homepage``, ``Source``, ``Issues``) of the
    installed distribution, read from its metadata (``Project-URL: Source, https://…``, core
    metadata spec); None when devkit is not installed or the entry is missing.
    """
    from importlib import metadata

    try:
        entries = metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in entries:
        name, _, url = str(entry).partition(",")
        if name.strip().lower() == label.lower() and url.strip():
            return str(url.strip())
    return None
