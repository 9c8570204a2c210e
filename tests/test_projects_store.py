"""`devkit projects` and `devkit store`: the registry and the disk accounting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devkit.main import build_parser
from devkit.store import Store, default_home


def test_default_home_rule(tmp_path: Path) -> None:
    assert default_home({"DEVKIT_HOME": "/d", "HOME": "/h"}) == Path("/d")
    assert default_home({"XDG_DATA_HOME": "/x", "HOME": "/h"}) == Path("/x/devkit")
    assert default_home({"HOME": "/h"}) == Path("/h/.local/share/devkit")
    assert default_home({"HOME": "/h", "DEVKIT_HOME": "", "XDG_DATA_HOME": ""}) == Path(
        "/h/.local/share/devkit")
    s = Store(environ={"HOME": "/h", "UV_CACHE_DIR": "/c"})
    assert s.env() == {"DEVKIT_HOME": "/h/.local/share/devkit", "UV_CACHE_DIR": "/c",
                       "UV_PYTHON_INSTALL_DIR": "/h/.local/share/devkit/uv/python"}


def test_projects_add_list_remove(devkit, tmp_path: Path, store: Store) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "pyproject.toml").write_text(f'[project]\nname = "{d.name}"\nversion = "0"\n')
    assert devkit("projects", "add", a, b)[0] == 0
    code, out, _ = devkit("projects", "add", a)
    assert "Already registered" in out
    code, out, _ = devkit("projects", "list", "--json")
    doc = json.loads(out)
    assert doc["version"] == 1
    assert [p["path"] for p in doc["projects"]] == [str(a), str(b)]
    raw = json.loads(store.registry_file.read_text())
    assert raw["version"] == 1 and len(raw["projects"]) == 2
    shutil.rmtree(b)  # a vanished project is reported, never a crash
    code, out, _ = devkit("projects", "list")
    assert code == 0 and "missing" in out and "no longer exist" in out
    assert devkit("projects", "remove", b)[0] == 0
    code, out, _ = devkit("projects", "list", "--json")
    assert [p["path"] for p in json.loads(out)["projects"]] == [str(a)]


def test_projects_errors_are_one_line(devkit, tmp_path: Path, store: Store) -> None:
    code, _, err = devkit("projects", "add", tmp_path / "nope")
    assert code == 1 and err.strip().count("\n") == 0 and "not a directory" in err
    code, _, err = devkit("projects", "remove", tmp_path)
    assert code == 1 and "not a registered project" in err
    store.home.mkdir(parents=True, exist_ok=True)
    store.registry_file.write_text("{broken")
    code, _, err = devkit("projects", "list")
    assert code == 1 and "cannot read the registry" in err and "Traceback" not in err
    store.registry_file.write_text('{"version": 9, "projects": []}')
    code, _, err = devkit("projects", "list")
    assert code == 1 and "upgrade devkit" in err


def test_store_reports_links_into_the_cache(make_workspace, devkit, store: Store) -> None:
    make_workspace("s1", deps=("tinyshared",))
    make_workspace("s2", deps=("tinyshared", "tinyother"))
    code, out, _ = devkit("store", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["paths"]["uv_cache_dir"] == str(store.uv_cache_dir)
    assert doc["projects"]["registered"] == 2 and doc["projects"]["with_venv"] == 2
    assert doc["cache_bytes"] > 20_000
    assert doc["python_install_bytes"] == 0  # the system Python is used here
    for venv in doc["venvs"]:
        assert venv["linked_files"] > 0 and venv["linked_bytes"] > 20_000
    assert doc["venv_linked_bytes"] >= 2 * 20_000  # tinyshared data in both venvs
    # each file once: less than the cache plus two private copies
    assert doc["on_disk_bytes"] < doc["cache_bytes"] + doc["private_copies_bytes"]
    assert doc["saving_bytes"] == doc["private_copies_bytes"] - doc["on_disk_bytes"]
    locks = doc["locks"]
    # the template's dev tools (pytest, pytest-cov, ruff, mypy), tinyshared, tinyother
    assert locks["distinct_pairs"] == 6
    assert locks["pairs"] == 11 and locks["spread"] == {}
    code, out, _ = devkit("store")
    assert code == 0 and "uv cache" in out and "saving" in out


@pytest.mark.parametrize("argv", [[], ["new"], ["projects"], ["projects", "list"], ["store"],
                                  ["doctor"], ["align"]])
def test_help_everywhere(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: devkit" in capsys.readouterr().out


def test_unknown_command_is_an_error(devkit) -> None:
    code, _, err = devkit("frobnicate")
    assert code == 2 and "invalid choice" in err


def test_concurrent_registrations_all_land(tmp_path: Path, store: Store) -> None:
    """Separate processes registering at once: the file lock keeps every entry."""
    import subprocess
    import sys

    dirs = [tmp_path / f"p{i}" for i in range(6)]
    for d in dirs:
        d.mkdir()
        (d / "pyproject.toml").write_text(f'[project]\nname = "{d.name}"\nversion = "0"\n')
    procs = [subprocess.Popen([sys.executable, "-m", "devkit", "projects", "add", str(d)],
                              stdout=subprocess.DEVNULL) for d in dirs]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    registered = json.loads(store.registry_file.read_text())["projects"]
    assert sorted(p["path"] for p in registered) == sorted(str(d) for d in dirs)
    assert not list(store.home.glob(".projects.json.*.tmp"))  # atomic writes left no temp file


def test_registry_find_matches_a_path_however_the_entry_spells_it(tmp_path: Path,
                                                                  store: Store) -> None:
    """find() builds only the entries ending in the path's name; a malformed entry that may be
    the path's is an error, another one is left to `projects list`."""
    from devkit.errors import DevkitError
    from devkit.registry import Registry

    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    registry = Registry(store)
    registry.add(ws)
    assert registry.find(ws / "sub" / "..").path == ws.resolve()  # type: ignore[union-attr]
    assert registry.find(ws / "sub") is None
    doc = json.loads(store.registry_file.read_text())
    for spelling in (f"{ws}/", f"{ws.parent}//ws", f"{ws}/."):
        doc["projects"] = [{"path": spelling, "name": "spelled", "added": "now"}]
        store.registry_file.write_text(json.dumps(doc))
        found = registry.find(ws)
        assert found is not None and found.name == "spelled", spelling
    doc["projects"] = [{"path": f"{ws}/sub/..", "name": "dotdot", "added": "now"}]
    store.registry_file.write_text(json.dumps(doc))
    assert registry.find(ws) is None  # Path keeps '..': never equal to a resolved path
    doc["projects"] = [{"path": str(ws), "name": "ws", "added": "now"}, {"path": "relative"}]
    store.registry_file.write_text(json.dumps(doc))
    assert registry.find(ws) is not None
    with pytest.raises(DevkitError, match="entry 1 .* is malformed"):
        registry.projects()
    for bad in ({"path": f"relative/{ws.name}"}, {"path": 3}, ["not", "an", "object"]):
        doc["projects"] = [{"path": str(ws), "name": "ws", "added": "now"}, bad]
        store.registry_file.write_text(json.dumps(doc))
        with pytest.raises(DevkitError, match="entry 1 .* is malformed"):
            registry.find(ws)
