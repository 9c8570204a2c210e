"""``devkit align --test``: a changed lock is kept only as far as the project's tests allow.

Real uv and a real pytest (the test venv's own, repacked as wheels of the offline index).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import (
    TEMPLATE_DEV_TOOLS,
    build_wheel,
    locked_project,
    locked_versions,
    run_uv,
    wheel_from_installed,
    write_simple_index,
)

from devkit.align import manifest, testgate
from devkit.store import Store
from devkit.workspace_code import record_venv

PYTEST_DISTS = ("pytest", "iniconfig", "pluggy", "packaging", "pygments")
OLD_API = "def old_api():\n    return 1\n"


@pytest.fixture(scope="session")
def gate_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A real pytest and its dependencies, ``tinybreak`` 1.0 (with ``old_api``) and 2.0 (without),
    tinyshared 1.0/2.0, and stubs of the template's other dev tools."""
    out = tmp_path_factory.mktemp("gate") / "wheels"
    wheels = [wheel_from_installed(out, name) for name in PYTEST_DISTS]
    wheels.append(build_wheel(out, "colorama", "0.4.6"))  # pytest's Windows-only dependency
    wheels += [build_wheel(out, "tinybreak", "1.0", code=OLD_API),
               build_wheel(out, "tinybreak", "2.0")]
    wheels += [build_wheel(out, "tinyshared", v, payload=2_000) for v in ("1.0", "2.0")]
    wheels += [build_wheel(out, n, v) for n, v in TEMPLATE_DEV_TOOLS if n != "pytest"]
    return wheels


@pytest.fixture
def gate_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate_wheels: list[Path]) -> str:
    url = write_simple_index(tmp_path / "gate-simple", gate_wheels)
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


def _tests(path: Path, files: dict[str, str]) -> None:
    (path / "tests").mkdir()
    for name, text in files.items():
        (path / "tests" / name).write_text(text)


def _projects(root: Path) -> tuple[Path, Path]:
    """``new`` on tinybreak 2.0 and tinyshared 2.0; ``old`` on 1.0 of both, whose tests import
    what tinybreak 2.0 removed, with one test that already fails before aligning."""
    deps = ["tinybreak", "tinyshared", "pytest"]
    new = locked_project(root, "new", deps)
    old = locked_project(root, "old", deps, "tinybreak==1.0", "tinyshared==1.0")
    _tests(new, {"test_new.py": "import tinybreak\n\ndef test_new():\n    assert tinybreak\n"})
    _tests(old, {
        "test_old.py": "from tinybreak import old_api\n\n"
                       "def test_old_api():\n    assert old_api() == 1\n",
        "test_fine.py": "import tinyshared\n\ndef test_fine():\n    assert tinyshared\n",
        "test_broken.py": "def test_known_broken():\n    assert False\n",
    })
    for path in (new, old):
        assert run_uv(path, "sync", "--locked").returncode == 0
        record_venv(path, Store())  # as `devkit sync` would: align checks only devkit's venvs
    return new, old


def _installed(path: Path, name: str) -> set[str]:
    site = next((path / ".venv" / "lib").glob("python*/site-packages"))
    return {d.name.removesuffix(".dist-info").split("-")[1] for d in site.glob(f"{name}-*.dist-info")}


@pytest.mark.parametrize("command", [None, "uv run --locked python -m pytest -q"],
                         ids=["default", "test-command"])
def test_a_breaking_move_is_held_and_the_other_moves_kept(tmp_path, devkit, gate_index,
                                                          command) -> None:
    new, old = _projects(tmp_path / "p")
    assert devkit("projects", "add", new, old)[0] == 0
    extra = ["--test-command", command] if command else ["--test"]

    code, out, err = devkit("align", *extra, "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # tinyshared moved; tinybreak 2.0 broke test_old.py (a collection error): held at 1.0
    assert locked_versions(old, "tinyshared") == {"2.0"}
    assert locked_versions(old, "tinybreak") == {"1.0"}
    assert _installed(old, "tinybreak") == {"1.0"} and _installed(old, "tinyshared") == {"2.0"}
    assert run_uv(old, "lock", "--check").returncode == 0
    assert run_uv(old, "sync", "--locked", "--check").returncode == 0
    [held] = [b for b in doc["blocked"] if b["kind"] == "tests"]
    assert (held["project"], held["name"], held["current"], held["wanted"]) == (
        "old", "tinybreak", "1.0", "2.0")
    assert "tests.test_old::test_old_api" in held["tests"]
    assert not [t for t in held["tests"] if "known_broken" in t]  # failed before: not counted
    assert held["tests"][0] == "tests.test_old"  # the collection error comes first
    assert "test_old_api" in held["reason"]
    assert doc["held"] == [{"project": "old", "path": str(old), "name": "tinybreak",
                            "current": "1.0", "wanted": "2.0", "tests": held["tests"]}]
    assert doc["clear_holds_command"] == f"devkit align --clear-holds {old} --test"
    [report] = [p for p in doc["projects"] if p["name"] == "old"]
    assert report["tests"]["held"] == ["tinybreak"]
    assert report["tests"]["baseline"]["failed"] == 1  # test_known_broken
    assert report["tests"]["source"] == ("--test-command" if command else "default")
    assert report["changes"] == [{"name": "tinyshared", "before": ["1.0"], "after": ["2.0"]}]
    assert report["test_seconds"] > 0 and doc["test_seconds"] >= report["test_seconds"]

    # the hold is remembered: --check sees nothing to change, a second run does not retry
    code, out, _ = devkit("align", "--check", "--json")
    again = json.loads(out)
    assert code == 0 and not again["changed"], out
    assert [b["kind"] for b in again["blocked"]] == ["tests"]
    lock = (old / "uv.lock").read_bytes()
    code, out, _ = devkit("align", "--test", "--json")
    second = json.loads(out)
    assert code == 0 and not second["changed"]
    assert all(p["tests"] is None for p in second["projects"])  # nothing changed: no test ran
    assert (old / "uv.lock").read_bytes() == lock
    code, out, _ = devkit("align", "--test")
    assert code == 0 and "Tests: 0 project(s) tested, 0 run(s)" in out, out
    assert "old: tinybreak 1.0 (target 2.0): tests that pass with tinybreak 1.0 fail" in out


def test_pre_existing_failures_do_not_hold_a_move(tmp_path, devkit, gate_index) -> None:
    new = locked_project(tmp_path / "p", "new", ["tinyshared", "pytest"])
    old = locked_project(tmp_path / "p", "old", ["tinyshared", "pytest"], "tinyshared==1.0")
    _tests(old, {"test_broken.py": "def test_known_broken():\n    assert False\n",
                 "test_fine.py": "def test_fine():\n    pass\n"})
    assert run_uv(old, "sync", "--locked").returncode == 0
    assert devkit("projects", "add", new, old)[0] == 0

    code, out, err = devkit("align", "--test", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(old, "tinyshared") == {"2.0"}
    assert _installed(old, "tinyshared") == {"2.0"}
    [report] = [p for p in doc["projects"] if p["name"] == "old"]
    assert report["tests"]["regressions"] == [] and report["tests"]["runs"] == 2
    assert report["tests"]["after"]["failed"] == 1 and doc["held"] == []


def test_test_cannot_be_combined_with_dry_run_or_check(tmp_path, devkit) -> None:
    project = locked_project(tmp_path, "p", [])
    for flag in ("--dry-run", "--check"):
        code, _, err = devkit("align", project, "--test", flag)
        assert code == 1 and "cannot be combined" in err
    code, _, err = devkit("align", project, "--test-command", "pytest 'unclosed")
    assert code == 1 and "--test-command" in err and "Traceback" not in err


def test_the_workspace_test_task_is_read_only_from_a_config_devkit_rendered(
        make_workspace, gate_index) -> None:
    store = Store()
    ws = make_workspace("ws", sync=False)
    command = testgate.resolve_command(ws, store, None)
    assert (command.argv, command.source) == (("uv", "run", "pytest"), "mise task test")
    assert testgate.resolve_command(ws, store, ("make", "test")).source == "--test-command"
    config = ws / ".mise.toml"
    config.write_text(config.read_text().replace('run = "uv run pytest"',
                                                 'run = "uv run pytest && touch pwned"'))
    assert testgate.resolve_command(ws, store, None).argv == testgate.DEFAULT_COMMAND
    (ws / ".mise.toml").write_text('[tasks.test]\nrun = "touch pwned"\n')  # not devkit's
    assert testgate.resolve_command(ws, store, None).source == "default"


def _run(results: dict[str, str], code: int | None = 1, reported: bool = True) -> testgate.TestRun:
    return testgate.TestRun(code, results, reported, 0.1)  # type: ignore[arg-type]


def test_regressions_compare_test_ids() -> None:
    before = _run({"a::ok": "passed", "a::gone": "passed", "a::bad": "failed", "a::s": "skipped"})
    after = _run({"a::ok": "passed", "a::bad": "failed", "a::s": "skipped", "b": "failed"})
    assert testgate.regressions(before, after) == ["b", "a::gone"]  # new failures first
    assert testgate.regressions(before, before) == []
    # no report on either side: the exit codes decide
    assert testgate.regressions(_run({}, 0, False), _run({}, 2, False)) == ["(exit 2)"]
    assert testgate.regressions(_run({}, 1, False), _run({}, 2, False)) == []


def test_junit_report_is_read(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="" name="tests.test_b"><error message="collection failure"/>'
        '</testcase><testcase classname="tests.test_a" name="test_s"><skipped/></testcase>'
        '</testsuite></testsuites>')
    assert testgate.read_junit(report) == {"tests.test_a::test_ok": "passed",
                                           "tests.test_a::test_bad": "failed",
                                           "tests.test_b": "failed",
                                           "tests.test_a::test_s": "skipped"}
    report.write_text("<not xml")
    assert testgate.read_junit(report) is None


def test_test_holds_last_until_the_requirements_change(tmp_path, store) -> None:
    project = locked_project(tmp_path, "p", ["tinyshared"])
    blocked = testgate.planner.Blocked("p", "idx", "tinyshared", "1.0", "2.0", "r", "tests",
                                       ("t::a",))
    held = manifest.TestHolds(project, manifest.requirements_state(project), (blocked,))
    manifest.write(store, strategy="newest", projects=[project], targets=[], blocked=[],
                   known=[], test_holds={project: held})
    assert manifest.recall_test_holds(store, [project]) == {project: held}
    (project / "README").write_text("code and docs may change")
    (project / "uv.lock").write_text((project / "uv.lock").read_text() + "\n")
    assert manifest.recall_test_holds(store, [project]) == {project: held}
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('["tinyshared"]', '["tinyshared<3"]'))
    assert manifest.recall_test_holds(store, [project]) == {}


def test_a_command_without_a_report_is_judged_by_its_exit_code(tmp_path, devkit,
                                                                gate_index) -> None:
    deps = ["tinybreak", "tinyshared"]
    new = locked_project(tmp_path / "p", "new", deps)
    old = locked_project(tmp_path / "p", "old", deps, "tinybreak==1.0", "tinyshared==1.0")
    _tests(old, {"test_old.py": "import unittest\nfrom tinybreak import old_api\n\n"
                                "class T(unittest.TestCase):\n"
                                "    def test_old_api(self):\n        self.assertEqual(old_api(), 1)\n"})
    assert devkit("projects", "add", new, old)[0] == 0

    command = "uv run --locked python -m unittest discover -s tests"
    code, out, err = devkit("align", "--test-command", command, "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert locked_versions(old, "tinyshared") == {"2.0"}
    assert locked_versions(old, "tinybreak") == {"1.0"}
    [held] = doc["held"]
    assert (held["name"], held["tests"]) == ("tinybreak", ["(exit 1)"])
    [report] = [p for p in doc["projects"] if p["name"] == "old"]
    assert report["tests"]["baseline"]["exit_code"] == 0
    assert report["tests"]["command"] == command


def test_a_stale_lock_is_gated_against_its_plain_relock(tmp_path, devkit, gate_index) -> None:
    new = locked_project(tmp_path / "p", "new", ["tinybreak", "tinyshared", "pytest"])
    old = locked_project(tmp_path / "p", "old", ["tinybreak", "pytest"], "tinybreak==1.0")
    _tests(old, {"test_old.py": "from tinybreak import old_api\n\n"
                                "def test_old_api():\n    assert old_api() == 1\n"})
    pyproject = old / "pyproject.toml"  # edited since the last `uv lock`: the lock is stale
    pyproject.write_text(pyproject.read_text().replace('"pytest"]', '"pytest", "tinyshared"]'))
    assert run_uv(old, "lock", "--check").returncode != 0
    assert devkit("projects", "add", new, old)[0] == 0

    code, out, err = devkit("align", "--test", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # the plain re-lock (tinyshared added) is kept, align's move of tinybreak is not
    assert run_uv(old, "lock", "--check").returncode == 0
    assert locked_versions(old, "tinyshared") == {"2.0"}
    assert locked_versions(old, "tinybreak") == {"1.0"}
    assert [h["name"] for h in doc["held"]] == ["tinybreak"]
    [report] = [p for p in doc["projects"] if p["name"] == "old"]
    assert report["stale"] and report["status"] == "aligned"


def test_clear_holds_lets_align_retry_the_held_move(tmp_path, devkit, gate_index) -> None:
    new, old = _projects(tmp_path / "p")
    assert devkit("projects", "add", new, old)[0] == 0
    code, out, err = devkit("align", "--test")
    assert code == 0, (out, err)
    assert locked_versions(old, "tinybreak") == {"1.0"}
    assert f"once the tests are fixed, retry with: devkit align --clear-holds {old} --test" in out

    # --clear-holds --test: the hold is forgotten, the move tried again under the tests, and
    # held again since they still fail
    code, out, err = devkit("align", "--clear-holds", "--test", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert [(p["path"], [h["wanted"] for h in p["holds"]]) for p in doc["cleared_holds"]] == [
        (str(old), ["2.0"])]
    [report] = [p for p in doc["projects"] if p["name"] == "old"]
    assert report["tests"]["runs"] >= 2 and report["tests"]["held"] == ["tinybreak"]
    assert locked_versions(old, "tinybreak") == {"1.0"}

    # the user fixed the tests: clear the hold of that project, and a plain align moves it
    (old / "tests" / "test_old.py").write_text("def test_old_api():\n    pass\n")
    code, out, err = devkit("align", "--clear-holds", old)
    assert (code, err) == (0, ""), out
    assert out == f"cleared 1 test hold of {old}: tinybreak 2.0\n"
    assert manifest.recall_test_holds(Store(), [old]) == {}
    code, out, _ = devkit("align", "--clear-holds", "--json")
    assert code == 0 and json.loads(out) == {"version": 1, "projects": []}
    code, out, _ = devkit("align", "--clear-holds", new)
    assert (code, out) == (0, f"no test holds recorded for {new}\n")
    code, out, err = devkit("align", "--json")
    assert code == 0, (out, err)
    assert locked_versions(old, "tinybreak") == {"2.0"}
    assert json.loads(out)["held"] == []


def test_clear_holds_refuses_bad_paths_and_a_running_align(tmp_path, devkit, store) -> None:
    project = locked_project(tmp_path, "p", [])
    stranger = locked_project(tmp_path, "q", [])
    assert devkit("projects", "add", project)[0] == 0
    code, out, err = devkit("align", "--clear-holds", stranger)
    assert code == 1 and f"{stranger} is not a registered project" in err, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = devkit("align", "--clear-holds", tmp_path / "nowhere")
    assert code == 1 and "is not a directory" in err
    for flags in (["--dry-run"], ["--check"], ["--sync"], ["--only", str(project)]):
        code, _, err = devkit("align", "--clear-holds", *flags)
        assert code == 2 and "--clear-holds" in err, (flags, err)
    code, out, _ = devkit("align", "--clear-holds")
    assert (code, out) == (0, "no test holds recorded\n")
    with store.mutex("align", timeout=0):  # a writing `devkit align` holds it for its whole run
        code, _, err = devkit("align", "--clear-holds", project)
    assert code == 1 and "another `devkit align` is running" in err


def test_bisection_holds_only_the_culprit_when_holding_a_half_cannot_lock(
        tmp_path, devkit, monkeypatch, gate_wheels) -> None:
    """Four packages move; holding the half {aachild, abreak} at 1.0 with every other package
    pinned to its new version cannot lock (zparent 2.0 needs aachild 2): that must not send the
    search to the other half and hold an innocent package (zparent) next to the culprit."""
    out = tmp_path / "wheels"
    wheels = [*gate_wheels,
              build_wheel(out, "aachild", "1.0"), build_wheel(out, "aachild", "2.0"),
              build_wheel(out, "abreak", "1.0", code=OLD_API), build_wheel(out, "abreak", "2.0"),
              build_wheel(out, "zother", "1.0"), build_wheel(out, "zother", "2.0"),
              build_wheel(out, "zparent", "1.0", requires=("aachild",)),
              build_wheel(out, "zparent", "2.0", requires=("aachild>=2",))]
    monkeypatch.setenv("UV_DEFAULT_INDEX", write_simple_index(tmp_path / "simple", wheels))
    deps = ["aachild", "abreak", "zother", "zparent", "pytest"]
    new = locked_project(tmp_path / "p", "new", deps)
    old = locked_project(tmp_path / "p", "old", deps, "aachild==1.0", "abreak==1.0",
                         "zother==1.0", "zparent==1.0")
    _tests(old, {"test_old.py": "from abreak import old_api\n\n"
                                "def test_old_api():\n    assert old_api() == 1\n",
                 "test_many.py": "import pytest\n\n@pytest.mark.parametrize('i', range(25))\n"
                                 "def test_many(i):\n    pass\n"})
    assert run_uv(old, "sync", "--locked").returncode == 0
    assert devkit("projects", "add", new, old)[0] == 0

    code, out_text, err = devkit("align", "--test", "--json")
    assert code == 0, (out_text, err)
    doc = json.loads(out_text)
    assert [h["name"] for h in doc["held"]] == ["abreak"]
    # the collection error stops pytest: every test that passed before is gone too; a hold
    # keeps the first ids (the module first), the project's report all of them
    [report] = [p for p in doc["projects"] if p["name"] == "old"]
    assert len(report["tests"]["regressions"]) == 27
    assert doc["held"][0]["tests"] == report["tests"]["regressions"][:20]
    assert doc["held"][0]["tests"][0] == "tests.test_old"
    assert {n: locked_versions(old, n) for n in ("aachild", "abreak", "zother", "zparent")} == {
        "aachild": {"2.0"}, "abreak": {"1.0"}, "zother": {"2.0"}, "zparent": {"2.0"}}
    assert run_uv(old, "sync", "--locked", "--check").returncode == 0
