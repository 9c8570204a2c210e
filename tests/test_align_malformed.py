"""A lock with valid TOML but wrong types is one project's error, never everyone's crash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from devkit import uv
from devkit.align import lockfile
from devkit.store import Store


def _project(root: Path, name: str, pin: str | None = None) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinyshared"]\n')
    proc = subprocess.run([uv.find_uv(), "lock", *(["-P", pin] if pin else [])], cwd=path,
                          env=Store().subprocess_env(), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return path


def _first_after(text: str, header: str, line: str) -> str:
    return text.replace(header + "\n", f"{header}\n{line}\n", 1)


MALFORMED = {
    "name = 5": lambda t: t.replace('\nname = "tinyshared"\n', '\nname = 5\n', 1),
    "resolution-markers = 5": lambda t: _first_after(t, "[[package]]", "resolution-markers = 5"),
    'requires-dev = ["x"]': lambda t: _first_after(t, "[package.metadata]", 'requires-dev = ["x"]'),
    'exclude-newer-span = "P99999999Y"':
        lambda t: t + '\n[options]\nexclude-newer-span = "P99999999Y"\n',
    'exclude-newer-package = ["x"]': lambda t: t + '\n[options]\nexclude-newer-package = ["x"]\n',
}


def _break(path: Path, how: str) -> bytes:
    text = (path / "uv.lock").read_text()
    broken = MALFORMED[how](text)
    assert broken != text
    (path / "uv.lock").write_text(broken)
    return broken.encode()


@pytest.mark.parametrize("how", list(MALFORMED))
def test_reader_rejects_wrong_types(tmp_path, how) -> None:
    path = _project(tmp_path, "p")
    _break(path, how)
    with pytest.raises(lockfile.LockError, match="malformed uv.lock"):
        lockfile.read(path / "uv.lock")


@pytest.mark.parametrize("how", list(MALFORMED))
def test_align_reports_the_malformed_lock_and_aligns_the_rest(tmp_path, devkit, how) -> None:
    root = tmp_path / "p"
    a = _project(root, "a", "tinyshared==1.0")
    b = _project(root, "b")
    bad = _project(root, "bad", "tinyshared==1.1")
    broken = _break(bad, how)
    assert devkit("projects", "add", a, b, bad)[0] == 0
    code, out, err = devkit("align", "--json")
    assert code == 1, err
    doc = json.loads(out)
    assert [f["path"] for f in doc["failed"]] == [str(bad)]
    assert "malformed uv.lock" in doc["failed"][0]["error"]
    assert lockfile.read(a / "uv.lock").versions("tinyshared") == {"2.0"}
    assert (bad / "uv.lock").read_bytes() == broken


def test_store_lists_unreadable_locks_instead_of_crashing(tmp_path, devkit) -> None:
    root = tmp_path / "p"
    good = _project(root, "good")
    bad = []
    for i, how in enumerate(MALFORMED):
        path = _project(root, f"bad{i}")
        _break(path, how)
        bad.append(path)
    assert devkit("projects", "add", good, *bad)[0] == 0
    code, out, err = devkit("store", "--json")
    assert code == 0, err
    locks = json.loads(out)["locks"]
    assert len(locks["unreadable"]) == len(MALFORMED)
    assert all("malformed uv.lock" in problem for problem in locks["unreadable"])
    assert locks["names"] == 1  # the good lock still counts
    code, out, err = devkit("store")
    assert code == 0 and "warning:" in out, err


REPO_LOCK = Path(__file__).resolve().parents[1] / "uv.lock"
#: Forms a lock may hold besides uv's usual lines (an escape, a one-line array, a local package).
ODD_PACKAGES = (
    ('\n[[package]]\nname = "odd-escape"\nversion = "1.0"\nsource = { registry = "https://x/simple" }\n'
    'wheels = [\n    { url = "https://x/odd_escape-1.0-py3-none-any.whl", hash = "sha256:\\u0061", '
    'size = 12 },\n]\n'),
    ('\n[[package]]\nname = "odd-multi"\nversion = "2.0"\nsource = { registry = "https://x/simple" }\n'
    'wheels = [{ url = "https://x/odd_multi-2.0-py3-none-any.whl", size = 7 }]\n'),
    ('\n[[package]]\nname = "odd-local"\nversion = "0.1"\nsource = { editable = "packages/odd" }\n\n'
    '[package.metadata]\nrequires-dist = [{ name = "tinyshared", specifier = ">=1" }]\n\n'
    '[package.metadata.requires-dev]\ndev = [\n    { name = "odd-dev" },\n]\n'),
)


@pytest.fixture
def toml_reads(monkeypatch) -> list[int]:
    """How many ``[[package]]`` headers each text the lock reader parses holds."""
    seen: list[int] = []
    loads = lockfile.rtoml.loads

    def spy(text: str, **kwargs):
        seen.append(text.count("[[package]]"))
        return loads(text, **kwargs)

    monkeypatch.setattr(lockfile.rtoml, "loads", spy)
    return seen


@pytest.mark.parametrize("extra", ["", *ODD_PACKAGES], ids=["plain", "escape", "inline", "local"])
def test_lock_read_by_package_as_tomllib_reads_it(extra: str, toml_reads: list[int]) -> None:
    text = REPO_LOCK.read_text(encoding="utf-8") + extra + '\n[options]\nexclude-newer = "2026-01-01T00:00:00Z"\n'
    now = lockfile.dt.datetime(2026, 6, 1, tzinfo=lockfile.dt.UTC)
    whole = lockfile._from_doc(tomllib.loads(text), REPO_LOCK, now)
    toml_reads.clear()
    by_package = lockfile.parse(text.encode(), REPO_LOCK, now=now)
    # one package at a time: no parse holds more than a small part of the lock
    assert len(toml_reads) > 40 and max(toml_reads) == 1, toml_reads
    assert by_package == whole
    assert [(p.size, p.uploaded) for p in by_package.packages] == \
        [(p.size, p.uploaded) for p in whole.packages]
    assert whole.exclude_newer is not None and len(whole.packages) > 40


@pytest.mark.parametrize("text", [
    'version = "9"\n',  # a key defined twice
    "size = 0123\n",  # not a TOML integer
    "[options]\nx = 1\n",  # a table defined twice (after the packages)
], ids=["twice", "integer", "table"])
def test_lock_read_by_package_refuses_what_tomllib_refuses(text: str,
                                                          toml_reads: list[int]) -> None:
    lock = REPO_LOCK.read_text(encoding="utf-8") + '\n[options]\nexclude-newer = "2026-01-01T00:00:00Z"\n'
    if text.startswith("["):
        broken = lock + "\n" + text
    else:
        broken = lock.replace('source = { registry = "https://pypi.org/simple" }\n',
                              'source = { registry = "https://pypi.org/simple" }\n' + text, 1)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(broken)
    toml_reads.clear()
    with pytest.raises(lockfile.LockError, match="not a readable uv.lock|malformed uv.lock"):
        lockfile.parse(broken.encode(), REPO_LOCK)
    assert max(toml_reads) == 1  # the faulty package alone, not the whole lock


@pytest.mark.parametrize("extra", ["", *ODD_PACKAGES], ids=["plain", "escape", "inline", "local"])
def test_lock_file_read_line_by_line_as_tomllib_reads_it(extra: str, toml_reads: list[int],
                                                         tmp_path) -> None:
    """``read_digest`` parses the file as it reads it, one package at a time, and hashes the
    very bytes it read."""
    text = REPO_LOCK.read_text(encoding="utf-8") + extra + '\n[options]\nexclude-newer = "2026-01-01T00:00:00Z"\n'
    path = tmp_path / "uv.lock"
    path.write_bytes(text.encode())
    now = lockfile.dt.datetime(2026, 6, 1, tzinfo=lockfile.dt.UTC)
    whole = lockfile._from_doc(tomllib.loads(text), path, now)
    toml_reads.clear()
    digest, streamed = lockfile.read_digest(path, now=now)
    assert len(toml_reads) > 40 and max(toml_reads) == 1, toml_reads
    assert streamed == whole
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    assert lockfile.read(path, now=now) == whole


def test_lock_file_with_a_multiline_string_is_read_whole(tmp_path, toml_reads: list[int]) -> None:
    """A multi-line string could hold a line ``[[package]]``: such a lock is parsed whole."""
    text = (REPO_LOCK.read_text(encoding="utf-8")
            + '\n[options]\nnote = """\n[[package]]\nname = "not-a-package"\n"""\n')
    path = tmp_path / "uv.lock"
    path.write_bytes(text.encode())
    now = lockfile.dt.datetime(2026, 6, 1, tzinfo=lockfile.dt.UTC)
    toml_reads.clear()
    digest, lock = lockfile.read_digest(path, now=now)
    assert max(toml_reads) > 40  # the whole text in one parse
    assert "not-a-package" not in {p.name for p in lock.packages}
    assert lock == lockfile._from_doc(tomllib.loads(text), path, now)
    assert digest == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("bad", [b"\xff\xfe", b'version = "9"\n'], ids=["utf8", "twice"])
def test_lock_file_read_line_by_line_refuses_in_one_line(tmp_path, bad: bytes) -> None:
    text = REPO_LOCK.read_bytes().replace(
        b'source = { registry = "https://pypi.org/simple" }\n',
        b'source = { registry = "https://pypi.org/simple" }\n' + bad, 1)
    path = tmp_path / "uv.lock"
    path.write_bytes(text)
    with pytest.raises(lockfile.LockError, match="not a readable uv.lock|malformed uv.lock"):
        lockfile.read_digest(path)
