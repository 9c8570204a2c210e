"""devkit: many Python workspaces, one uv cache, one Python store, aligned lockfiles."""

# No `from __future__ import annotations` here: this module is imported before the console
# script's Ctrl-C guard (devkit.__main__.run), so it imports nothing at all.

DISTRIBUTION = "devkit-workspace"  # the name on PyPI; the command and the package are `devkit`

# The one place the version is written: hatchling reads it from here at build time
# (`[tool.hatch.version]` in pyproject.toml), so reading it costs no metadata lookup.
__version__ = "0.1.0"


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
