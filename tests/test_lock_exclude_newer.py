"""Every ``exclude-newer`` / ``exclude-newer-package`` form uv accepts gives a lock devkit reads.

uv documents dates, RFC 3339 times, friendly and ISO 8601 durations and ``false``
(https://docs.astral.sh/uv/reference/settings/#exclude-newer-package); uv 0.13 records them in
``[options.exclude-newer-package]`` as a time string, ``false`` or ``{ timestamp, span }``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from helpers import locked_project

from devkit.align import lockfile

# Forms as a user writes them in [tool.uv]; only tinyshared is a dependency: the local index's
# wheels carry no upload time, so a package under any cutoff would be invisible to uv.
PYPROJECT_FORMS = """\
[tool.uv]
exclude-newer = "2025-06-01"
exclude-newer-package = { tinyshared = false, tinyother = "30 days", ruff = "P7D", mypy = "24 hours", pytest = "2024-01-01", pre-commit = "2024-01-01T10:00:00+02:00" }
"""


def _project(root: Path, name: str, extra: str = "", *pins: str) -> Path:
    return locked_project(root, name, ["tinyshared"], *pins, extra=extra)


def test_reader_accepts_every_form_uv_records(tmp_path: Path) -> None:
    path = _project(tmp_path, "p", PYPROJECT_FORMS)
    text = (path / "uv.lock").read_text()
    assert "tinyshared = false" in text  # what uv wrote, not what this test assumes
    assert 'span = "P30D"' in text and 'span = "PT24H"' in text
    now = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    lock = lockfile.read(path / "uv.lock", now=now)
    cutoffs = dict(lock.exclude_newer_package)
    assert cutoffs["tinyshared"] is None
    assert cutoffs["tinyother"] == now - dt.timedelta(days=30)
    assert cutoffs["ruff"] == now - dt.timedelta(days=7)
    assert cutoffs["mypy"] == now - dt.timedelta(hours=24)
    assert cutoffs["pre-commit"] == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    # a bare date is the end of that (local) day
    assert dt.datetime(2024, 1, 1, tzinfo=dt.UTC) <= cutoffs["pytest"] <= dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
    assert lock.exclude_newer is not None and lock.exclude_newer.year == 2025
    assert lock.versions("tinyshared") == {"2.0"}


@pytest.mark.parametrize("options", [
    '[options]\nexclude-newer-span = "P1W"\n',
    '[options.exclude-newer-package]\nx = { timestamp = "2024-01-01T00:00:00Z" }\n',
    '[options.exclude-newer-package]\nx = "P3W"\n',
    '[options.exclude-newer-package]\nx = false\n',
])
def test_reader_accepts_the_other_recorded_shapes(tmp_path: Path, options: str) -> None:
    path = tmp_path / "uv.lock"
    path.write_text('version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n' + options)
    lockfile.read(path)


def test_exclude_newer_package_false_lock_aligns(tmp_path: Path, devkit) -> None:
    root = tmp_path / "p"
    a = _project(root, "a")
    exempt = _project(root, "exempt",
                      "[tool.uv]\nexclude-newer = \"2025-06-01\"\n"
                      "exclude-newer-package = { tinyshared = false }\n", "tinyshared==1.1")
    assert "tinyshared = false" in (exempt / "uv.lock").read_text()
    assert devkit("projects", "add", a, exempt)[0] == 0
    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    assert json.loads(out)["failed"] == []
    assert lockfile.read(exempt / "uv.lock").versions("tinyshared") == {"2.0"}
    code, out, err = devkit("store", "--json")
    assert json.loads(out)["locks"]["unreadable"] == []


def _corpus() -> Path:
    """``DEVKIT_CORPUS``, else the real corpus beside the repository (or beside its worktrees)."""
    if os.environ.get("DEVKIT_CORPUS"):
        return Path(os.environ["DEVKIT_CORPUS"])
    repo = Path(__file__).resolve().parents[1]
    beside = [up / "shared" / "corpus" / "real" for up in (repo.parent, repo.parent.parent)]
    return next((p for p in beside if p.is_dir()), beside[0])


@pytest.mark.skipif(not _corpus().is_dir(), reason="no real corpus (set DEVKIT_CORPUS)")
def test_every_lock_of_the_real_corpus_reads() -> None:
    locks = sorted(_corpus().glob("*/uv.lock"))
    assert locks
    for path in locks:
        lockfile.read(path)  # raises LockError on the first lock refused
