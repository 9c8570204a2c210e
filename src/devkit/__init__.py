"""devkit: many Python workspaces, one uv cache, one Python store, aligned lockfiles."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "devkit-workspace"  # the name on PyPI; the command and the package are `devkit`

try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"


def project_url(label: str = "Source") -> str | None:
    """The ``[project.urls]`` entry ``label`` (``Homepage``, ``Source``, ``Issues``) of the
    installed distribution, read from its metadata (``Project-URL: Source, https://…``, core
    metadata spec); None when devkit is not installed or the entry is missing.
    """
    try:
        entries = metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in entries:
        name, _, url = str(entry).partition(",")
        if name.strip().lower() == label.lower() and url.strip():
            return str(url.strip())
    return None
