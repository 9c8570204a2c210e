"""align's precision, second round: uv's full explanation with align's holds named as holds,
link counts right after a sync, a ``>=`` parent released upward, and a dry run that plans what
the real run does. Real uv against a local index of tiny wheels, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import build_wheel, locked_project, locked_versions, run_uv, write_simple_index


def _index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, wheels: list[tuple]) -> str:
    out = tmp_path / f"{name}-wheels"
    built = [build_wheel(out, n, v, requires=tuple(r)) for n, v, *r in
             [(w[0], w[1], *(w[2] if len(w) > 2 else ())) for w in wheels]]
    url = write_simple_index(tmp_path / f"{name}-simple", built)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


# -- 3. a parent required with >= whose newer release frees the child ---------------------------
@pytest.fixture
def ge_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """tinyparent 1.0 requires tinychild<2; 1.1 allows any tinychild and needs tinyhelper>=2."""
    return _index(tmp_path, monkeypatch, "ge", [
        ("tinychild", "1.0"), ("tinychild", "2.0"),
        ("tinyhelper", "1.0"), ("tinyhelper", "2.0"),
        ("tinyparent", "1.0", ("tinychild<2", "tinyhelper")),
        ("tinyparent", "1.1", ("tinychild", "tinyhelper>=2"))])


def test_a_ge_parent_moves_up_to_free_its_child(tmp_path, devkit, ge_index) -> None:
    """The project requires tinyparent>=1.0, locked at 1.0 with tinyhelper 1.0; tinyparent 1.1
    frees tinychild but needs tinyhelper>=2, which align held: releasing only the parent failed
    ("moving tinyparent up did not help") although plain uv resolves it."""
    root = tmp_path / "p"
    held = locked_project(root, "held", ["tinyparent>=1.0"], "tinyparent==1.0", "tinyhelper==1.0")
    assert locked_versions(held, "tinychild") == {"1.0"}
    other = locked_project(root, "other", ["tinychild"])
    assert locked_versions(other, "tinychild") == {"2.0"}
    assert run_uv(held, "lock", "--dry-run", "-P", "tinychild==2.0",
                  "-P", "tinyparent>=1.0").returncode == 0
    assert devkit("projects", "add", held, other)[0] == 0

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(held, "tinychild") == {"2.0"}, doc["blocked"]
    assert locked_versions(held, "tinyparent") == {"1.1"}
    # tinyparent 1.1 needs tinyhelper>=2: uv names align's hold tinyhelper==1.0, freed upward too
    assert locked_versions(held, "tinyhelper") == {"2.0"}
    assert doc["released"] == [
        {"project": "held", "name": "tinyparent", "before": "1.0", "after": "1.1", "for": "tinychild"},
        {"project": "held", "name": "tinyhelper", "before": "1.0", "after": "2.0", "for": "tinychild"}]
    assert doc["blocked"] == [] and doc["downgrades"] == []
    assert run_uv(held, "lock", "--check").returncode == 0
