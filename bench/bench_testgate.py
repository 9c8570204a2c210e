"""``devkit align --test`` on real projects with their own test suites.

Usage (from the repository root; needs the package index; ~10-20 minutes)::

    python bench/bench_testgate.py DIR [--projects NAME ...] [--out bench/results] [--keep]

``DIR`` holds git checkouts of small public uv projects (a committed ``uv.lock``, PyPI only, a
pytest suite that runs offline). Each is copied to a temporary directory (the checkouts are never
touched) with a fresh ``DEVKIT_HOME`` and uv cache, then:

1. ``devkit adopt`` (not ``--private``: the copies are the user's own, so align may change their
   locks), which registers it and syncs its ``.venv`` from the shared cache;
2. **baseline**: its tests, run apart from devkit: ``uv run --locked pytest -q -p no:cacheprovider
   --junitxml=...`` with the store's uv cache;
3. ``devkit align --test --json`` (timed; the report gives each project's gate time);
4. **after**: the same independent test run, then ``uv lock --check`` and
   ``uv sync --locked --check`` (the lock is uv's and the venv matches it);
5. ``devkit align --test --json`` again: the holds are remembered, nothing is retried;
6. when something is held, ``devkit align --clear-holds --test --json``: the holds are
   forgotten and the moves retried under the tests (which are unchanged, so held again).

Per project it records tests passed/failed before and after (and the ids that failed after but
not before: a regression align let through), the moves kept, the moves held with the failing
test ids, the gate's time and align's own time. Results: ``<out>/testgate.json`` and
``<out>/testgate.md``, with each project's ``owner/name`` and commit (from its git remote).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devkit import uv as uv_mod
from devkit.align import testgate
from devkit.store import Store

ROOT = Path(__file__).resolve().parent.parent
PYENV = Path("/root/.pyenv/versions")
TIMEOUT = 1800
PYTEST = ("run", "--locked", "pytest", "-q", "-p", "no:cacheprovider")


def _env(work: Path) -> dict[str, str]:
    """A clean environment: this checkout's devkit and uv first, every pyenv Python on PATH (a
    project may pin 3.10 in ``.python-version``), no download of Pythons, a fresh store."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "VIRTUAL_ENV", "DEVKIT_", "PIP_"))}
    bins = [str(p.parent) for p in sorted(PYENV.glob("3.1[0-3].*/bin/python3"))]
    env.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), *bins,
                                     env.get("PATH", "")]),
               UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", DEVKIT_HOME=str(work / "home"),
               NO_COLOR="1")
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    return proc.returncode, time.monotonic() - start, proc.stdout, proc.stderr


def _origin(src: Path) -> dict[str, str]:
    """``{"repo": "owner/name", "commit"}`` of a checkout (from its remote URL, else its name)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip()

    url = git("remote", "get-url", "origin")
    repo = url
    for marker in ("github.com/", "github.com:", "/.mirror/"):
        if marker in url:
            repo = url.split(marker, 1)[1]
    repo = repo.removesuffix("/repo").removesuffix(".git").replace("+", "/")
    return {"repo": repo or src.name, "commit": git("rev-parse", "HEAD")}


def _tests(path: Path, env: dict[str, str], uv: str) -> dict[str, Any]:
    """The project's suite run apart from devkit: exit code, counts, failing ids, seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-junit-") as tmp:
        report = Path(tmp) / "junit.xml"
        rc, seconds, out, err = _run([uv, *PYTEST, f"--junitxml={report}"], path, env)
        results = testgate.read_junit(report) or {}
    return {"exit_code": rc, "seconds": round(seconds, 1),
            "passed": sum(o == "passed" for o in results.values()),
            "failed": sorted(t for t, o in results.items() if o == "failed"),
            "skipped": sum(o == "skipped" for o in results.values()),
            "tail": "" if rc == 0 else "\n".join((out + err).strip().splitlines()[-3:])}


def bench(src_dir: Path, names: list[str], out: Path, keep: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-testgate-"))
    env = _env(work)
    store_env = Store(environ=env).subprocess_env()  # what devkit gives uv: the store's cache
    uv = uv_mod.find_uv()
    devkit = [sys.executable, "-m", "devkit"]
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    projects: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    try:
        for name in names:
            src = src_dir / name
            dst = work / "projects" / name
            shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
            paths[name] = dst
            rc, s, o, e = _run([*devkit, "adopt", str(dst)], work, env)
            projects[name] = {**_origin(src), "adopt": {"exit_code": rc, "seconds": round(s, 1),
                                                        "error": "" if rc == 0 else (o + e)[-500:]}}
            log(f"adopt {name}: exit {rc} in {s:.0f} s")
        for name, path in paths.items():
            projects[name]["before"] = _tests(path, store_env, uv)
            log(f"baseline {name}: {projects[name]['before']['passed']} passed, "
                f"{len(projects[name]['before']['failed'])} failed")
        locks = {n: (p / "uv.lock").read_bytes() for n, p in paths.items()}
        rc, align_seconds, o, e = _run([*devkit, "align", "--test", "--json"], work, env)
        log(f"align --test: exit {rc} in {align_seconds:.0f} s")
        try:
            doc = json.loads(o)
        except ValueError:
            doc = {"error": (o + e)[-2000:]}
        by_path = {p["path"]: p for p in doc.get("projects", [])}
        for name, path in paths.items():
            report = by_path.get(str(path.resolve()), {})
            entry = projects[name]
            entry["changed"] = (path / "uv.lock").read_bytes() != locks[name]
            entry["kept"] = [f"{c['name']} {', '.join(c['before']) or '(added)'} -> "
                             f"{', '.join(c['after']) or '(removed)'}"
                             for c in report.get("changes", [])]
            entry["held"] = [{"name": h["name"], "current": h["current"], "wanted": h["wanted"],
                              "tests": h["tests"]} for h in doc.get("held", [])
                             if h.get("path") == str(path.resolve()) or h["project"] == name]
            entry["gate"] = report.get("tests")
            entry["status"], entry["error"] = report.get("status"), report.get("error")
            entry["test_seconds"] = report.get("test_seconds", 0.0)
            # checked before the run below, which would sync a venv that does not match
            entry["lock_check"] = _run([uv, "lock", "--check"], path, store_env)[0] == 0
            entry["venv_matches_lock"] = _run([uv, "sync", "--locked", "--check"], path,
                                              store_env)[0] == 0
            entry["after"] = _tests(path, store_env, uv)
            before_failed = set(entry["before"]["failed"])
            entry["new_failures"] = [t for t in entry["after"]["failed"] if t not in before_failed]
            log(f"after {name}: {entry['after']['passed']} passed, "
                f"{len(entry['after']['failed'])} failed, {len(entry['kept'])} moves kept, "
                f"{len(entry['held'])} held")
        rc2, again_seconds, o2, e2 = _run([*devkit, "align", "--test", "--json"], work, env)
        try:
            again = json.loads(o2)
        except ValueError:
            again = {"changed": None, "error": (o2 + e2)[-500:]}
        log(f"second align --test: exit {rc2}, changed {again.get('changed')}")
        retry: dict[str, Any] = {}
        if again.get("held"):  # the user "fixed nothing" and retries: the moves are held again
            rc3, retry_seconds, o3, e3 = _run([*devkit, "align", "--clear-holds", "--test",
                                               "--json"], work, env)
            try:
                doc3 = json.loads(o3)
            except ValueError:
                doc3 = {"error": (o3 + e3)[-500:]}
            retry = {"exit_code": rc3, "seconds": round(retry_seconds, 1),
                     "cleared": sum(len(p["holds"]) for p in doc3.get("cleared_holds", [])),
                     "held_again": [f"{h['project']}: {h['name']} {h['current']} (not "
                                    f"{h['wanted']})" for h in doc3.get("held", [])],
                     "tested": sum(1 for p in doc3.get("projects", []) if p.get("tests")),
                     "error": doc3.get("error")}
            log(f"align --clear-holds --test: exit {rc3}, cleared {retry['cleared']}, held "
                f"again {retry['held_again']}")
        return {
            "machine": f"{platform.platform()}; Python {platform.python_version()}; "
                       f"uv {uv_mod.version()}",
            "command": f"python bench/bench_testgate.py {src_dir}"
                       + (f" --projects {' '.join(names)}" if names else ""),
            "align": {"exit_code": rc, "seconds": round(align_seconds, 1),
                      "test_seconds": doc.get("test_seconds"), "seconds_reported":
                      doc.get("seconds"), "error": doc.get("error")},
            "before": doc.get("before"), "after_summary": doc.get("after"),
            "second_run": {"exit_code": rc2, "seconds": round(again_seconds, 1),
                           "changed": again.get("changed"),
                           "tested": sum(1 for p in again.get("projects", []) if p.get("tests")),
                           "held": len(again.get("held", []))},
            "clear_and_retry": retry,
            "projects": projects,
        }
    finally:
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def markdown(result: dict[str, Any]) -> str:
    a = result["align"]
    lines = [
        "# `devkit align --test` on real projects", "",
        f"Machine: {result['machine']}. Command: `{result['command']}`.", "",
        ("Each project is a copy of the commit below, adopted with `devkit adopt` into a fresh "
        "store; its suite is run apart from devkit (`uv run --locked pytest -q -p "
        "no:cacheprovider`) before and after `devkit align --test --json`."), "",
        ("| project | commit | tests before (passed / failed) | after | failed after, not before "
        "| moves kept | moves held (failing tests) | gate s | lock check | venv = lock |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    total_gate = 0.0
    for p in result["projects"].values():
        b, af = p.get("before", {}), p.get("after", {})
        held = "; ".join(f"{h['name']} {h['current']} (not {h['wanted']}: "
                         f"{', '.join(h['tests'][:3])}{' …' if len(h['tests']) > 3 else ''})"
                         for h in p.get("held", [])) or "none"
        total_gate += p.get("test_seconds") or 0.0
        lines.append(
            f"| {p['repo']} | `{p['commit'][:12]}` | {b.get('passed')} / {len(b.get('failed', []))}"
            f" | {af.get('passed')} / {len(af.get('failed', []))} | "
            f"{len(p.get('new_failures', []))} | {len(p.get('kept', []))} | {held} | "
            f"{p.get('test_seconds', 0):.1f} | {'ok' if p.get('lock_check') else 'FAIL'} | "
            f"{'ok' if p.get('venv_matches_lock') else 'FAIL'} |")
    b, af = result.get("before") or {}, result.get("after_summary") or {}
    lines += [
        "",
        (f"`devkit align --test`: exit {a['exit_code']}, {a['seconds']} s wall, of which "
        f"{a['test_seconds']} s in the projects' gates (baseline and after syncs, test runs, "
        f"bisection) and {a['seconds'] - (a['test_seconds'] or 0):.1f} s aligning (planning, "
        "`uv lock` runs, checks)."),
        (f"Excess pairs (versions beyond one per package): {b.get('excess_pairs')} -> "
        f"{af.get('excess_pairs')}; distinct pairs {b.get('distinct_pairs')} -> "
        f"{af.get('distinct_pairs')}."),
        (f"Second `devkit align --test` right after: exit {result['second_run']['exit_code']}, "
        f"changed: {result['second_run']['changed']}, projects tested: "
        f"{result['second_run']['tested']}, holds shown: {result['second_run']['held']} "
        f"({result['second_run']['seconds']} s)."), "",
    ]
    retry = result.get("clear_and_retry") or {}
    if retry:
        lines += [
            (f"Then `devkit align --clear-holds --test --json` (the tests unchanged): exit "
            f"{retry['exit_code']}, {retry['cleared']} hold(s) cleared, {retry['tested']} "
            f"project(s) tested, held again: {'; '.join(retry['held_again']) or 'none'} "
            f"({retry['seconds']} s)."), ""]
    lines += [
        "## Moves kept", "",
    ]
    for p in result["projects"].values():
        lines.append(f"- {p['repo']}: {', '.join(p.get('kept', [])) or 'none'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (the findings are in the results, not the exit code)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("dir", type=Path, help="directory of project checkouts")
    parser.add_argument("--projects", nargs="*", default=[], metavar="NAME")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = parser.parse_args(argv)
    names = args.projects or sorted(p.name for p in args.dir.iterdir()
                                    if (p / "uv.lock").is_file())
    result = bench(args.dir.resolve(), names, args.out, args.keep)
    if not args.projects:
        result["command"] = f"python bench/bench_testgate.py {args.dir}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "testgate.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "testgate.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
