"""align's precision, second round: uv's full explanation with align's holds named as holds,
link counts right after a sync, and a ``>=`` parent released upward with the holds its newer
release needs. Real uv against a local index of tiny wheels, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import build_wheel, locked_project, locked_versions, run_uv, write_simple_index

from devkit import uv


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


# -- 1. conflict reasons: uv's whole explanation, align's holds named as holds ----------------
def test_a_conflict_reason_is_uvs_whole_explanation_with_aligns_holds_named(
        tmp_path, devkit, ge_index) -> None:
    root = tmp_path / "p"
    # the project itself pins tinyhelper==1.0, so tinyparent 1.1 (tinyhelper>=2) cannot help
    held = locked_project(root, "held", ["tinyparent>=1.0", "tinyhelper==1.0"], "tinyparent==1.0")
    other = locked_project(root, "other", ["tinychild"])
    assert devkit("projects", "add", held, other)[0] == 0
    before = (held / "uv.lock").read_bytes()

    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    assert (held / "uv.lock").read_bytes() == before
    [blocked] = json.loads(out)["blocked"]
    reason = blocked["reason"]
    assert blocked["kind"] == "conflict" and "\n" not in reason
    assert "And because project held depends on tinyhelper==1.0" in reason  # uv's last line
    assert "tinyhelper==1.0" in reason
    # tinyparent>=1.0 is align's -P, not the project's requirement: named as align's hold;
    # tinyhelper==1.0 is the project's own pin: a fact, not a hold
    assert reason.startswith("while align held tinyparent at 1.0 or newer: Because"), reason
    assert reason.endswith("[moving tinyparent up did not help]"), reason


def test_conflict_reason_keeps_every_paragraph_of_uvs_proof(tmp_path, monkeypatch) -> None:
    # each tfoo release fails for its own reason: uv proves it in two paragraphs, the second
    # citing the first as (1), with a list of the versions available
    _index(tmp_path, monkeypatch, "proof", [
        ("tfoo", "1.0", ("ta>=1,<2", "tb>=1,<2")), ("tfoo", "1.1", ("tx>=1,<2", "ty>=1,<2")),
        ("ta", "1.0", ("tb>=2,<3",)), ("tb", "1.0"), ("tb", "2.0"),
        ("tx", "1.0", ("ty>=2,<3",)), ("ty", "1.0"), ("ty", "2.0")])
    path = tmp_path / "proof"
    path.mkdir()
    (path / "pyproject.toml").write_text('[project]\nname = "proof"\nversion = "0"\n'
                                         'requires-python = ">=3.11"\ndependencies = ["tfoo"]\n')
    proc = run_uv(path, "lock")
    assert proc.returncode == 1 and "\n\n" in proc.stderr.strip(), proc.stderr
    reason = uv.conflict_reason(proc.stderr, "proof")
    assert "\n" not in reason
    assert reason.startswith("Because all versions of ta depend on tb>=2,<3"), reason
    assert "are available: tfoo<=1.0, tfoo>=1.1, we can conclude that tfoo<1.1 cannot be used. (1) " \
        "Because all versions of tx" in reason, reason
    assert reason.endswith("And because project proof depends on tfoo, we can conclude that "
                           "project proof's requirements are unsatisfiable."), reason


# -- 2. link counts right after a sync ---------------------------------------------------------
def test_links_to_wheels_unpacked_during_the_sync_are_counted_right_away(
        tmp_path, devkit, local_index) -> None:
    # the same version from a second index is a second cache entry with the same *.dist-info
    # name as the first: the census must see the archive this very run unpacked
    second = write_simple_index(tmp_path / "second-simple", [
        build_wheel(tmp_path / "second-wheels", "tinyshared", "1.0", payload=30_000)])
    root = tmp_path / "p"
    first_ws = locked_project(root, "a", ["tinyshared==1.0"])
    other_ws = root / "b"
    other_ws.mkdir()
    (other_ws / "pyproject.toml").write_text(
        '[project]\nname = "b"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinyshared==1.0"]\n'
        f'[[tool.uv.index]]\nname = "second"\nurl = "{second}"\nexplicit = true\n'
        '[tool.uv.sources]\ntinyshared = { index = "second" }\n')
    assert run_uv(other_ws, "lock").returncode == 0
    assert devkit("projects", "add", first_ws, other_ws)[0] == 0

    def census() -> dict[str, tuple[str, int, int]]:
        code, out, err = devkit("sync", "--all", "--json", "--jobs", "1")
        assert code == 0, (out, err)
        return {Path(w["path"]).name: (w["status"], w["linked_files"], w["files"])
                for w in json.loads(out)["workspaces"]}

    first = census()
    again = census()
    assert {n: s for n, (s, _, _) in first.items()} == {"a": "synced", "b": "synced"}
    assert {n: s for n, (s, _, _) in again.items()} == {"a": "current", "b": "current"}
    assert first["b"][1] > 0 and first["b"][1:] == again["b"][1:], (first, again)
    assert first["a"][1:] == again["a"][1:]
