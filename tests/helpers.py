"""Test builders: tiny wheels in a local PEP 503 index, so the suite runs offline."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def build_wheel(
    out: Path, name: str, version: str, *, requires: tuple[str, ...] = (), payload: int = 0,
    scripts: tuple[str, ...] = (), code: str = "", modules: Mapping[str, str] | None = None,
) -> Path:
    """Write a pure-Python wheel ``name-version-py3-none-any.whl`` into ``out``.

    ``requires`` become ``Requires-Dist`` lines; ``payload`` adds a data module of that many bytes
    (so link/size accounting has something to count); each of ``scripts`` is a console script
    that exits 0 whatever its arguments (a stand-in for a tool a task runs); ``code`` is appended
    to ``__init__.py``; ``modules`` maps more files, relative to the package, to their text.
    """
    dist = name.replace("-", "_")
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n'
        + ("\n\ndef main() -> int:\n    return 0\n" if scripts else "") + code,
        f"{dist}/data.py": "DATA = " + repr("x" * payload) + "\n",
    }
    files.update({f"{dist}/{rel}": text for rel, text in (modules or {}).items()})
    info = f"{dist}-{version}.dist-info"
    if scripts:
        files[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(
            f"{script} = {dist}:main\n" for script in scripts)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    files[f"{info}/METADATA"] = "\n".join(meta) + "\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: devkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            info_ = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info_, text)
    return wheel


#: The dev tools the template's options add, as stubs: they lock and install, they do not run.
TEMPLATE_DEV_TOOLS = (("pytest", "8.99"), ("pytest-cov", "6.99"), ("ruff", "0.99"), ("mypy", "1.99"),
                      ("pyright", "1.1.999"), ("pre-commit", "4.99"), ("prek", "0.99"),
                      ("pre-commit-hooks", "5.99"))


def template_dev_stubs(out: Path) -> list[Path]:
    """Stub wheels of :data:`TEMPLATE_DEV_TOOLS` in ``out``, so a generated workspace locks offline."""
    return [build_wheel(out, name, version) for name, version in TEMPLATE_DEV_TOOLS]


def write_simple_index(root: Path, wheels: list[Path]) -> str:
    """Lay ``wheels`` out as a PEP 503 simple index under ``root``; return its ``file://`` URL."""
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        project = wheel.name.split("-")[0].replace("_", "-").lower()
        by_project.setdefault(project, []).append(wheel)
    for project, files in by_project.items():
        d = root / project
        d.mkdir(parents=True, exist_ok=True)
        links = []
        for wheel in files:
            target = d / wheel.name
            if not target.exists():
                target.write_bytes(wheel.read_bytes())
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
            links.append(f'<a href="{html.escape(wheel.name)}#sha256={sha}">{html.escape(wheel.name)}</a><br>')
        (d / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    (root / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        + "\n".join(f'<a href="{p}/">{p}</a><br>' for p in sorted(by_project))
        + "\n</body></html>\n"
    )
    return root.as_uri()


def run_uv(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``uv ARGS`` in ``path`` with the store's environment (the test's isolated one)."""
    from devkit import uv
    from devkit.store import Store

    return subprocess.run([uv.find_uv(), *args], cwd=path, env=Store().subprocess_env(),
                          capture_output=True, text=True, check=False)


def locked_project(root: Path, name: str, deps: list[str], *pins: str, extra: str = "") -> Path:
    """A project ``root/name`` depending on ``deps``, locked by uv with ``-P PIN`` for each pin;
    ``extra`` is appended to its ``pyproject.toml`` (e.g. a ``[tool.uv]`` table)."""
    path = root / name
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {json.dumps(deps)}\n{extra}")
    proc = run_uv(path, "lock", *[a for pin in pins for a in ("-P", pin)])
    assert proc.returncode == 0, proc.stderr
    return path


def locked_versions(path: Path, name: str) -> set[str]:
    """The versions of ``name`` in ``path/uv.lock``."""
    from devkit.align import lockfile

    return lockfile.read(path / "uv.lock").versions(name)


def wheel_from_installed(out: Path, dist_name: str) -> Path:
    """Repack the installed distribution ``dist_name`` (pure Python) as a ``py3-none-any`` wheel.

    The test venv's real pytest and its dependencies become wheels of the offline index, so a tiny
    project can run a real pytest. Files outside site-packages (console scripts: uv writes them
    from ``entry_points.txt``), byte-code and install-time records are left out.
    """
    import importlib.metadata

    dist = importlib.metadata.distribution(dist_name)
    name, version = dist.metadata["Name"], dist.version
    files: dict[str, bytes] = {}
    info = ""
    for entry in dist.files or []:
        posix = entry.as_posix()
        if posix.startswith("..") or "__pycache__" in posix or posix.endswith(".pyc"):
            continue
        if posix.endswith(".dist-info/RECORD") or posix.rsplit("/", 1)[-1] in (
                "INSTALLER", "REQUESTED", "direct_url.json"):
            continue
        if ".dist-info/" in posix:
            info = posix.split("/", 1)[0]
        files[posix] = Path(str(entry.locate())).read_bytes()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: devkit-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name.replace('-', '_').lower()}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return wheel


_BACKEND = """
import base64, hashlib, os, zipfile
NAME, VERSION = "tinysdist", "1.0"
META = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
WHEEL = "Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
INFO = f"{NAME}-{VERSION}.dist-info"
def prepare_metadata_for_build_wheel(directory, config_settings=None):
    os.makedirs(os.path.join(directory, INFO), exist_ok=True)
    with open(os.path.join(directory, INFO, "METADATA"), "w") as fh:
        fh.write(META)
    return INFO
def get_requires_for_build_wheel(config_settings=None):
    return []
def build_wheel(directory, config_settings=None, metadata_directory=None):
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    files = {f"{NAME}/__init__.py": "", f"{INFO}/METADATA": META, f"{INFO}/WHEEL": WHEEL}
    def digest(text):
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
    record = [f"{p},sha256={digest(t).decode()},{len(t)}" for p, t in files.items()]
    files[f"{INFO}/RECORD"] = "\\n".join([*record, f"{INFO}/RECORD,,"]) + "\\n"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return name
"""


def sdist_only(out: Path) -> Path:
    """``tinysdist-1.0.tar.gz``: no wheel, an in-tree build backend that needs nothing else."""
    import io
    import tarfile

    out.mkdir(parents=True, exist_ok=True)
    files = {"pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "tinybackend"\n'
                               'backend-path = ["."]\n\n[project]\nname = "tinysdist"\n'
                               'version = "1.0"\n',
             "tinybackend.py": _BACKEND,
             "PKG-INFO": "Metadata-Version: 2.1\nName: tinysdist\nVersion: 1.0\n"}
    sdist = out / "tinysdist-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"tinysdist-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return sdist


def index_of(tmp_path: Path, monkeypatch: Any, name: str,
             wheels: list[tuple[str, str, tuple[str, ...]]]) -> str:
    """A local index ``tmp_path/NAME-simple`` of tiny wheels ``(name, version, requires)``, made
    uv's default index for the test (``monkeypatch``: pytest's); returns its URL."""
    out = tmp_path / f"{name}-wheels"
    built = [build_wheel(out, n, v, requires=r) for n, v, r in wheels]
    url = write_simple_index(tmp_path / f"{name}-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url
