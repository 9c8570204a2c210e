"""Benchmark ``devkit align`` on copies of a real corpus (not a test; needs the package index).

Usage (from the repository root; ~10-15 minutes on a cold cache)::

    python bench/bench_align.py [CORPUS] [--cache DIR] [--jobs 4] [--out bench/results]
                                [--policies none,minor] [--reuse-baselines]

``CORPUS`` holds one directory per project with ``pyproject.toml`` and ``uv.lock`` (the default,
see ``--help``, is the real corpus beside the repository). Steps, each on fresh copies in a temp
dir:

1. warm-up: ``uv lock --check`` in every project (which ones uv can re-lock here at all), then a
   full resolution per project, so the shared uv cache (``--cache``) holds the index pages;
2. baselines, sequential: ``uv lock`` as committed and a full relock (``uv.lock`` removed);
3. for each policy (default, then ``--allow-downgrade minor``): ``devkit align --json --jobs N``
   over all copies (wall time), ``uv lock --check`` in every project afterwards, and for the
   default policy a second ``devkit align --check`` (must change nothing).

Figures over the projects uv can re-lock, against the locks ``uv lock`` itself makes (a stale
lock is re-locked by uv first, whatever that adds: not align's doing): excess pairs (distinct ``(index, name, version)`` beyond
one version per name) removed, of all of them and of the removable ones: those above the floor
that the projects' own requirements and forks keep whatever align does
(``devkit.align.planner.excess_floor``; the ≥ 95% target is on this share), bytes of distinct wheels (the size uv.lock records for the wheel
this machine would install), downgrades, parents moved up, forks created (a package at more
versions in a lock than before) and versions introduced that no lock used before while an
in-use version between fits (uv's answer; see :func:`unused_introduced`). Results: ``<out>/align.json`` and
``<out>/align.md``. pyenv's 3.12/3.13 are put on PATH (some projects need them) with
``UV_PYTHON_DOWNLOADS=never``; UV_OFFLINE is never set. ``--policies none`` runs the default
policy only; ``--reuse-baselines`` skips steps 1-2 (warm cache assumed) and takes their figures
from the previous ``<out>/align.json`` (the result says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from packaging.version import InvalidVersion, Version

from devkit import uv as uv_mod
from devkit.align import lockfile, planner

ROOT = Path(__file__).resolve().parent.parent
PYENV_BINS = ("/root/.pyenv/versions/3.12.1/bin", "/root/.pyenv/versions/3.13.0/bin")
TIMEOUT = 600
POLICIES = ("none", "minor")
FIT_TRIES = 3  # in-use versions tried per introduced version (nearest the landing first)


def bench_env(cache: Path, home: Path) -> dict[str, str]:
    """The environment of every uv/devkit call: shared cache, store in ``home``, no downloads."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "VIRTUAL_ENV", "DEVKIT_"))}
    extra = [p for p in PYENV_BINS if Path(p).is_dir()]
    env.update(PATH=os.pathsep.join([*extra, env.get("PATH", "")]), UV_CACHE_DIR=str(cache),
               UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", DEVKIT_HOME=str(home))
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Run ``cmd``; returns (exit code, seconds, uv's one-line reason on failure)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return 124, time.monotonic() - start, f"timeout after {TIMEOUT}s"
    text = proc.stderr + proc.stdout
    return proc.returncode, time.monotonic() - start, uv_mod.explain(text) if proc.returncode else ""


def copy_corpus(corpus: Path, dest: Path) -> list[Path]:
    """Copy each project's pyproject.toml and uv.lock into ``dest``; returns the copies."""
    dest.mkdir(parents=True)
    out = []
    for src in sorted(p for p in corpus.iterdir() if (p / "uv.lock").is_file()):
        dst = dest / src.name
        dst.mkdir()
        for name in ("pyproject.toml", "uv.lock"):
            shutil.copy2(src / name, dst / name)
        out.append(dst)
    return out


def uv_each(projects: list[Path], args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """``uv ARGS`` in every project, sequentially; per project rc, seconds and error line."""
    uv = uv_mod.find_uv()
    return {p.name: dict(zip(("rc", "seconds", "error"), run([uv, *args], p, env), strict=True))
            for p in projects}


def figures(locks: list[lockfile.Lock]) -> dict[str, Any]:
    """Pairs and bytes over ``locks``."""
    return lockfile.summarize(locks).to_json()


def spread(locks: list[lockfile.Lock]) -> set[tuple[str, str]]:
    """The ``(index, name)`` groups that ``locks`` hold at two or more versions."""
    versions: dict[tuple[str, str], set[str]] = {}
    for lock in locks:
        for package in lock.packages:
            versions.setdefault((package.index, package.name), set()).add(package.version)
    return {group for group, found in versions.items() if len(found) > 1}


def dry_lock(project: Path, env: dict[str, str], specs: list[str],
             on_run: Any = lambda: None) -> None:
    """``uv lock --dry-run -P SPEC…`` from the cache, online again when uv says the offline run
    missed data (an offline miss is no proof of a conflict). Raises UvError as uv_mod.lock."""
    try:
        uv_mod.lock_cache_first(project, env=env, dry_run=True, upgrade_packages=specs,
                                on_run=on_run)
    except uv_mod.UvError as exc:
        if not uv_mod.needs_network(exc.output):
            raise
        on_run()
        uv_mod.lock(project, env=env, upgrade_packages=specs, dry_run=True)


class Reachable:
    """Can a project lock ``name==version`` under the downgrade policy? uv decides.

    ``uv lock --dry-run -P NAME==VERSION`` with every other package of the project free to move
    anywhere the policy allows (``-P 'X>=CURRENT'`` by default: any newer release, never down;
    ``X>=MAJOR.MINOR`` for ``patch``, ``X>=MAJOR`` for ``minor``, unbounded for ``major``). A
    conflict proves no lock the policy permits holds that version, so a floor built on these
    answers stays a lower bound for any alignment under the policy (align itself only moves
    packages to versions some project uses: a subset). Any other outcome (a lock, an error)
    counts as reachable. Only the ``groups`` still apart after the run are asked about; answers
    are cached per (project, name, version).
    """

    def __init__(self, env: dict[str, str], groups: set[tuple[str, str]],
                 locks: dict[str, lockfile.Lock], policy: str) -> None:
        """``locks``: each project's plain lock by project id (its path)."""
        self.env, self.names, self.locks, self.policy = env, {n for _, n in groups}, locks, policy
        self.runs = 0
        self._known: dict[tuple[str, str, str], bool] = {}

    def __call__(self, project: planner.ProjectLock, name: str, version: str) -> bool:
        """True unless uv proves ``project`` (a plain copy's path) cannot lock ``name==version``."""
        if name not in self.names:
            return True
        key = (project.project, name, version)
        if key not in self._known:
            self._known[key] = self._ask(project.project, name, version)
        return self._known[key]

    def _bound(self, version: str) -> str:
        try:
            release = Version(version).release
        except InvalidVersion:
            return f">={version}"
        depth = {"none": 0, "patch": 2, "minor": 1}.get(self.policy)
        if depth is None:
            return ""
        return f">={version}" if depth == 0 else ">=" + ".".join(map(str, release[:depth]))

    def _ask(self, project: str, name: str, version: str) -> bool:
        lock = self.locks[project]
        free = []
        for other in sorted(lock.names() - {name}):
            versions = lock.versions(other)
            if len(versions) == 1:
                free.append(f"{other}{self._bound(next(iter(versions)))}")
        try:
            dry_lock(Path(project), self.env, [*free, f"{name}=={version}"], self._count)
        except uv_mod.UvError as exc:
            return not uv_mod.is_conflict(exc.output)
        return True

    def _count(self) -> None:
        self.runs += 1


def forks_created(before: dict[str, lockfile.Lock], after: dict[str, lockfile.Lock]
                  ) -> list[dict[str, Any]]:
    """Packages a project locks at more versions after align than before (a new fork).

    ``before``/``after``: each project's lock by project name. A case is an ``(index, name)``
    the after-lock holds at two or more versions and at more versions than the before-lock.
    """
    out = []
    for project, lock in sorted(after.items()):
        old = before[project]
        for index, name in sorted({(p.index, p.name) for p in lock.packages}):
            now = {p.version for p in lock.packages if (p.index, p.name) == (index, name)}
            was = {p.version for p in old.packages if (p.index, p.name) == (index, name)}
            if len(now) > 1 and len(now) > len(was):
                out.append({"project": project, "name": name,
                            "before": sorted(was, key=lockfile.version_key),
                            "after": sorted(now, key=lockfile.version_key)})
    return out


def unused_introduced(before: dict[str, lockfile.Lock], after: dict[str, lockfile.Lock],
                      everyone: list[lockfile.Lock]) -> list[dict[str, Any]]:
    """Versions align moved a package to that no project's lock used before, with the in-use
    versions it passed on the way.

    ``everyone``: the locks before of every project align read (also those it could not
    re-lock: align aligns to their versions too). For each project and ``(index, name)`` its
    before-lock holds, each after-version ``v`` that none of ``everyone`` holds is a case; ``between`` lists the versions some other
    project's before-lock held strictly between ``v`` and the project's nearest before-version
    (in PEP 440 order): in-use versions align could have stopped at. Whether one of them fits
    the project is uv's answer (:func:`check_fits`). Packages new to a project are not cases
    (they had no version to move from).
    """
    used: dict[tuple[str, str], dict[str, set[str]]] = {}
    for lock in everyone:
        for p in lock.packages:
            used.setdefault((p.index, p.name), {}).setdefault(p.version, set()).add(
                lock.path.parent.name)
    out = []
    for project, lock in sorted(after.items()):
        old = before[project]
        for index, name in sorted({(p.index, p.name) for p in lock.packages}):
            was = {p.version for p in old.packages if (p.index, p.name) == (index, name)}
            in_use = used.get((index, name), {})
            if not was:
                continue
            for version in sorted({p.version for p in lock.packages
                                   if (p.index, p.name) == (index, name)} - set(in_use)):
                key = lockfile.version_key(version)
                below = [w for w in was if lockfile.version_key(w) < key]
                nearest = (max(below, key=lockfile.version_key) if below
                           else min(was, key=lockfile.version_key))
                lo, hi = sorted((lockfile.version_key(nearest), key))
                between = sorted((u for u, who in in_use.items()
                                  if lo < lockfile.version_key(u) < hi and who - {project}),
                                 key=lockfile.version_key)
                out.append({"project": project, "name": name,
                            "before": sorted(was, key=lockfile.version_key), "after": version,
                            "between": between})
    return out


def check_fits(cases: list[dict[str, Any]], projects: dict[str, Path], env: dict[str, str]
               ) -> int:
    """For each case of :func:`unused_introduced` with in-use versions between, ask uv whether
    the aligned project can lock one of them instead: ``uv lock --dry-run --offline -P
    NAME==U`` from the aligned lock, the ``U`` nearest where it landed first (at most
    ``FIT_TRIES`` of them). Sets ``fits`` to the first
    version uv locks, ``None`` when uv proves none resolves (a conflict), and records any other
    failure in ``error``. Returns the number of uv runs."""
    runs = 0

    def count() -> None:
        nonlocal runs
        runs += 1

    for case in cases:
        case["fits"], case["error"] = None, ""
        up = lockfile.version_key(case["after"]) > lockfile.version_key(case["before"][0])
        nearest_first = sorted(case["between"], key=lockfile.version_key, reverse=up)
        for version in nearest_first[:FIT_TRIES]:
            try:
                dry_lock(projects[case["project"]], env, [f"{case['name']}=={version}"], count)
            except uv_mod.UvError as exc:
                if not uv_mod.is_conflict(exc.output):
                    case["error"] = uv_mod.explain(exc.output)[:200]
                continue
            case["fits"] = version
            break
    return runs


def _holders(locks: list[lockfile.Lock]) -> dict[tuple[str, str, str], set[str]]:
    """(index, name, version) -> the projects whose lock holds it."""
    held: dict[tuple[str, str, str], set[str]] = {}
    for lock in locks:
        for p in lock.packages:
            held.setdefault((p.index, p.name, p.version), set()).add(lock.path.parent.name)
    return held


def check_fits_after(cases: list[dict[str, Any]], after: list[lockfile.Lock],
                     projects: dict[str, Path], env: dict[str, str]) -> int:
    """For each case of :func:`unused_introduced`, whether the project could lock, instead of
    where it landed, an in-use version between that *another project still holds after the
    run* (``fits_after``; ``between_after`` lists them): stopping at a version every other
    project left would keep one more version than align leaves. Reuses ``fits`` when that
    version is still held; else asks uv as :func:`check_fits` does. Returns the uv runs."""
    held = _holders(after)
    runs = 0

    def count() -> None:
        nonlocal runs
        runs += 1

    for case in cases:
        index = next(p.index for lock in after if lock.path.parent.name == case["project"]
                     for p in lock.packages if p.name == case["name"])
        kept = [u for u in case["between"]
                if held.get((index, case["name"], u), set()) - {case["project"]}]
        case["between_after"], case["fits_after"] = kept, None
        if case.get("fits") in kept:
            case["fits_after"] = case["fits"]
            continue
        up = lockfile.version_key(case["after"]) > lockfile.version_key(case["before"][0])
        for version in sorted(kept, key=lockfile.version_key, reverse=up)[:FIT_TRIES]:
            if version == case.get("fits"):
                continue
            try:
                dry_lock(projects[case["project"]], env, [f"{case['name']}=={version}"], count)
            except uv_mod.UvError:
                continue
            case["fits_after"] = version
            break
    return runs


def needless_versions(cases: list[dict[str, Any]], after: list[lockfile.Lock]
                      ) -> list[dict[str, Any]]:
    """Introduced versions that no project needs: every project holding one after the run is a
    case of :func:`unused_introduced` with ``fits_after`` (it could have stopped at a version
    another project still holds). One project that cannot (uv: none fits, or no in-use version
    between) needs it, and the others joining it add no version."""
    held = _holders(after)
    by_version: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for case in cases:
        by_version.setdefault((case["name"], case["after"]), []).append(case)
    out = []
    for (name, version), group in sorted(by_version.items()):
        holders = set().union(*(who for (i, n, v), who in held.items()
                                if n == name and v == version))
        fitting = {c["project"] for c in group if c.get("fits_after")}
        if holders and holders <= fitting:
            out.append({"name": name, "version": version, "holders": sorted(holders)})
    return out


def one_policy(policy: str, corpus: Path, work: Path, env: dict[str, str], jobs: int
               ) -> dict[str, Any]:
    """Align fresh copies under ``policy``; figures over the projects uv can re-lock (those
    align did not report as failed: unreachable indexes, missing Pythons, failing builds)."""
    devkit = [sys.executable, "-m", "devkit"]
    home = work / f"home-{policy}"
    penv = {**env, "DEVKIT_HOME": str(home)}
    projects = copy_corpus(corpus, work / f"aligned-{policy}")
    run([*devkit, "projects", "add", *map(str, projects)], work, penv)
    args = [*devkit, "align", "--json", "--jobs", str(jobs)]
    if policy != "none":
        args += ["--allow-downgrade", policy]
    start = time.monotonic()
    proc = subprocess.run(args, check=False, cwd=work, env=penv, capture_output=True, text=True,
                          timeout=4 * TIMEOUT)
    seconds = time.monotonic() - start
    doc = json.loads(proc.stdout)
    failed = {Path(f["path"]).name for f in doc["failed"]}
    ok = [p for p in projects if p.name not in failed]
    # the baseline is the lock uv itself makes (`uv lock`): a stale lock's re-lock is uv's doing
    plain = [work / "plain" / p.name for p in ok]
    originals = [lockfile.read(path / "uv.lock") for path in plain]
    before = figures(originals)
    aligned = [lockfile.read(p / "uv.lock") for p in ok]
    after = figures(aligned)
    # what no alignment can remove without editing a project, under this policy: the projects'
    # own requirements and forks, then uv's proof for each version still apart after the run
    plain_locks = [planner.ProjectLock.from_lock(lock, str(path))
                   for lock, path in zip(originals, plain, strict=True)]
    downgrades = cast(planner.DowngradePolicy, policy)
    before["floor_excess_pairs"] = planner.excess_floor(plain_locks, downgrades)
    oracle = Reachable(env, spread(aligned), {str(path): lock for path, lock in
                                              zip(plain, originals, strict=True)}, policy)
    before["proved_floor_excess_pairs"] = planner.excess_floor(plain_locks, downgrades, oracle)
    before["proof_uv_runs"] = oracle.runs
    # precision: forks align created, and versions nobody used where an in-use one fits
    by_name_before = {p.name: lock for p, lock in zip(ok, originals, strict=True)}
    by_name_after = {p.name: lock for p, lock in zip(ok, aligned, strict=True)}
    everyone = []
    for path in projects:  # every project's lock as uv left it (those align failed on too)
        try:
            everyone.append(lockfile.read(work / "plain" / path.name / "uv.lock"))
        except lockfile.LockError:
            continue
    introduced = unused_introduced(by_name_before, by_name_after, everyone)
    fit_runs = check_fits([c for c in introduced if c["between"]], {p.name: p for p in ok}, env)
    # every project's lock after the run (those align could not re-lock keep theirs)
    everyone_after = [by_name_after.get(lock.path.parent.name, lock) for lock in everyone]
    fit_runs += check_fits_after(introduced, everyone_after, {p.name: p for p in ok}, env)
    precision = {"forks_created": forks_created(by_name_before, by_name_after),
                 "introduced": introduced, "fit_uv_runs": fit_runs,
                 "needless": needless_versions(introduced, everyone_after)}
    out: dict[str, Any] = {
        "rc": proc.returncode, "seconds": seconds, "stderr": proc.stderr[-2000:],
        "relockable": {"projects": len(ok), "before": before, "after": after},
        "precision": precision,
        "all": {"before": doc["before"], "after": doc["after"]},
        "downgrades": doc["downgrades"], "released": doc["released"],
        "blocked": doc["blocked"], "failed": doc["failed"],
        "projects": [{k: p[k] for k in ("name", "status", "stale", "uv_runs", "seconds", "error")}
                     | {"changes": len(p["changes"]), "blocked": len(p["blocked"])}
                     for p in doc["projects"]],
        "check_after": uv_each(projects, ["lock", "--check"], env),
    }
    if policy == "none":
        start = time.monotonic()
        again = subprocess.run([*devkit, "align", "--check", "--json"], check=False, cwd=work,
                               env=penv, capture_output=True, text=True, timeout=4 * TIMEOUT)
        second = json.loads(again.stdout)
        out["second_run"] = {"rc": again.returncode, "seconds": time.monotonic() - start,
                             "changed": second["changed"]}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when the targets are met, 1 otherwise."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("corpus", type=Path, nargs="?",
                        default=ROOT.parent / "shared" / "corpus" / "real")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "devkit-bench-cache")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="comma-separated downgrade policies to run (none must be among them)")
    parser.add_argument("--reuse-baselines", action="store_true",
                        help="skip warm-up and baselines: reuse those of <out>/align.json")
    parser.add_argument("--render", action="store_true",
                        help="only re-render <out>/align.md from <out>/align.json")
    args = parser.parse_args(argv)
    if args.render:
        result = json.loads((args.out / "align.json").read_text())
        finish(result, args.out)
        return 0 if result["verdict"]["ok"] else 1
    policies = [p for p in args.policies.split(",") if p]
    if "none" not in policies or not set(policies) <= set(POLICIES):
        parser.error(f"--policies: a subset of {','.join(POLICIES)} that includes none")
    corpus = args.corpus.resolve()
    command = ["python", "bench/bench_align.py", "CORPUS", "--jobs", str(args.jobs)]
    command += [] if policies == list(POLICIES) else ["--policies", ",".join(policies)]
    command += ["--reuse-baselines"] if args.reuse_baselines else []
    work = Path(tempfile.mkdtemp(prefix="devkit-bench-"))
    env = bench_env(args.cache.absolute(), work / "home")
    result: dict[str, Any] = {"machine": platform.platform(), "python": sys.version.split()[0],
                              "uv": uv_mod.version(), "jobs": args.jobs, "corpus": corpus.name,
                              "command": shlex.join(command)}

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    try:
        if args.reuse_baselines:
            old = json.loads((args.out / "align.json").read_text())
            for key in ("check_before", "plain_lock", "full_relock"):
                result[key] = old[key]
            result["baselines_from"] = old.get(
                "baselines_from", f"{old['machine']}, the previous {args.out.name}/align.json")
            log("warm-up and baselines reused from the previous align.json")
            uv_each(copy_corpus(corpus, work / "plain"), ["lock"], env)  # the figures' baseline
        else:
            baselines(corpus, work, env, result, log)
        result["policies"] = {}
        for policy in policies:
            log(f"devkit align --jobs {args.jobs} (downgrades: {policy})")
            result["policies"][policy] = one_policy(policy, corpus, work, env, args.jobs)
        finish(result, args.out)
        log(f"results in {args.out}/align.md")
        return 0 if result["verdict"]["ok"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def baselines(corpus: Path, work: Path, env: dict[str, str], result: dict[str, Any],
              log: Any) -> None:
    """Steps 1-2: warm the cache, then time `uv lock` as committed and a full relock."""
    warm = copy_corpus(corpus, work / "warm")
    log(f"warm-up over {len(warm)} projects (cache {env['UV_CACHE_DIR']})")
    result["check_before"] = uv_each(warm, ["lock", "--check"], env)
    for p in warm:
        (p / "uv.lock").unlink()
    uv_each(warm, ["lock"], env)
    log("baseline: `uv lock` as committed")
    result["plain_lock"] = uv_each(copy_corpus(corpus, work / "plain"), ["lock"], env)
    log("baseline: full relock (uv.lock removed)")
    relock = copy_corpus(corpus, work / "relock")
    for p in relock:
        (p / "uv.lock").unlink()
    result["full_relock"] = uv_each(relock, ["lock"], env)


def finish(result: dict[str, Any], out: Path) -> None:
    """Compute the verdict and write ``align.json`` and ``align.md`` into ``out``."""
    relock = sum(v["seconds"] for v in result["full_relock"].values())
    plain = sum(v["seconds"] for v in result["plain_lock"].values())
    ok_before = {k for k, v in result["check_before"].items() if v["rc"] == 0}
    verdict: dict[str, Any] = {"full_relock_seconds": relock, "plain_lock_seconds": plain}
    for policy, r in result["policies"].items():
        b, a = r["relockable"]["before"], r["relockable"]["after"]
        ok_after = {k for k, v in r["check_after"].items() if v["rc"] == 0}
        floor = b.get("proved_floor_excess_pairs", b.get("floor_excess_pairs", 0))
        verdict[policy] = {
            "excess_removed_share": (b["excess_pairs"] - a["excess_pairs"])
            / max(b["excess_pairs"], 1),
            # of what an alignment can remove at all (above the floor); None when align ended
            # below the floor: it moved packages to versions no lock used, which the floor
            # (built on the versions in use) does not consider, so it is no lower bound then
            "removable_removed_share": (b["excess_pairs"] - a["excess_pairs"])
            / max(b["excess_pairs"] - floor, 1) if a["excess_pairs"] >= floor else None,
            "bytes_saved": b["distinct_bytes"] - a["distinct_bytes"],
            "broken": sorted(ok_before - ok_after),
            "downgrades": len(r["downgrades"]),
            "released": len(r["released"]),
            "ratio_vs_full_relock": r["seconds"] / max(relock, 1e-9),
        }
        if "precision" in r:
            cases = r["precision"]["introduced"]
            verdict[policy] |= {
                "forks_created": len(r["precision"]["forks_created"]),
                "introduced": len(cases),
                "introduced_in_use_between": sum(1 for c in cases if c["between"]),
                "introduced_in_use_fits": sum(1 for c in cases if c.get("fits")),
                "introduced_fits_kept": sum(1 for c in cases if c.get("fits_after")),
                "needless_versions": len(r["precision"].get("needless", [])),
            }
    d = verdict["none"]
    # below the floor (share None): more than all of what the floor calls removable is gone
    share_met = d["removable_removed_share"] is None or d["removable_removed_share"] >= 0.95
    verdict["ok"] = (share_met and not d["broken"]
                     and d["downgrades"] == 0 and d["ratio_vs_full_relock"] <= 3
                     and not result["policies"]["none"]["second_run"]["changed"]
                     and all(not verdict[p]["broken"] for p in result["policies"])
                     and not d.get("forks_created") and not d.get("needless_versions"))
    result["verdict"] = verdict
    out.mkdir(parents=True, exist_ok=True)
    (out / "align.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "align.md").write_text(markdown(result) + "\n")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def markdown(r: dict[str, Any]) -> str:
    """The human summary written to ``align.md``."""
    v = r["verdict"]
    pols = r["policies"]
    n_ok = pols["none"]["relockable"]["projects"]
    head = "| measure | default | `--allow-downgrade minor` | target |"
    lines = [
        "# devkit align on the real corpus", "",
        (f"Machine: {r['machine']}; Python {r['python']}; uv {r['uv']}; `--jobs {r['jobs']}`; "
         f"corpus: {len(r['check_before'])} projects, {n_ok} of which uv can re-lock here. "
         f"Command: `{r.get('command', 'python bench/bench_align.py CORPUS')}`."), "",
        *([(f"Warm-up and baselines (`uv lock --check`, plain lock, full relock) reused from a "
            f"previous run ({r['baselines_from']}), not re-measured."), ""]
          if r.get("baselines_from") else []),
        head, "|---|---|---|---|",
    ]

    def row(label: str, fn: Any, target: str = "") -> None:
        cells = [fn(p) if p in pols else "not run" for p in ("none", "minor")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {target} |")

    def rl(p: str) -> dict[str, Any]:
        return dict(pols[p]["relockable"])

    row(f"excess pairs, {n_ok} re-lockable projects",
        lambda p: f"{rl(p)['before']['excess_pairs']} → {rl(p)['after']['excess_pairs']} "
                  f"({100 * v[p]['excess_removed_share']:.0f}% removed)")
    row("floor: excess kept by the projects' own requirements and forks",
        lambda p: str(rl(p)["before"].get("floor_excess_pairs", "–")))
    row("floor, with uv's proof for each version still apart (policy's moves only)",
        lambda p: f"{rl(p)['before']['proved_floor_excess_pairs']} "
                  f"({rl(p)['before']['proof_uv_runs']} `uv lock --dry-run` runs)"
        if "proved_floor_excess_pairs" in rl(p)["before"] else "–")

    def removable(p: str) -> str:
        b = rl(p)["before"]
        floor = b.get("proved_floor_excess_pairs", b.get("floor_excess_pairs"))
        if floor is None:
            return "–"
        if v[p]["removable_removed_share"] is None:
            return (f"all: {rl(p)['after']['excess_pairs']} left, below the floor ({floor}; the "
                    "share is not computable): align also merged onto versions no lock used, "
                    "which the floor does not consider")
        return (f"{b['excess_pairs'] - floor} → {rl(p)['after']['excess_pairs'] - floor} "
                f"(**{100 * v[p]['removable_removed_share']:.1f}%** removed)")

    row("removable excess (above the proved floor) removed", removable, "≥ 95%")
    row("distinct pairs, re-lockable projects",
        lambda p: f"{rl(p)['before']['distinct_pairs']} → {rl(p)['after']['distinct_pairs']}")
    row("bytes of distinct wheels, re-lockable projects",
        lambda p: f"{_mib(rl(p)['before']['distinct_bytes'])} → "
                  f"{_mib(rl(p)['after']['distinct_bytes'])} (−{_mib(v[p]['bytes_saved'])})")
    row(f"bytes of distinct wheels, all {len(r['check_before'])} projects",
        lambda p: f"{_mib(pols[p]['all']['before']['distinct_bytes'])} → "
                  f"{_mib(pols[p]['all']['after']['distinct_bytes'])}")
    row("excess pairs, all projects",
        lambda p: f"{pols[p]['all']['before']['excess_pairs']} → "
                  f"{pols[p]['all']['after']['excess_pairs']}")
    if all("forks_created" in v[p] for p in pols):
        row("forks created (a package at more versions in a lock after than before)",
            lambda p: f"**{v[p]['forks_created']}**", "0")
        row("versions introduced that no lock used (in-use versions between / one fits)",
            lambda p: f"{v[p]['introduced']} ({v[p]['introduced_in_use_between']} / "
                      f"**{v[p]['introduced_in_use_fits']}**, "
                      f"{pols[p]['precision']['fit_uv_runs']} `uv lock --dry-run` runs)",
            "")
        row("… of which the project could stop at a version another project still holds after "
            "align / versions introduced that no project needs",
            lambda p: f"{v[p].get('introduced_fits_kept', '-')} / "
                      f"**{v[p].get('needless_versions', '-')}**", "0 needless")
    row("downgrades", lambda p: str(v[p]["downgrades"]), "0 by default")
    row("parents moved up", lambda p: str(v[p]["released"]))
    row("locks passing `uv lock --check` before and failing after",
        lambda p: str(len(v[p]["broken"])), "0")
    row("wall time vs the sum of full relocks",
        lambda p: f"{pols[p]['seconds']:.0f} s vs {v['full_relock_seconds']:.0f} s "
                  f"(**{v[p]['ratio_vs_full_relock']:.2f}×**)", "≤ 3×")
    second = pols["none"]["second_run"]
    lines += ["", (f"Second run right after (`devkit align --check`): would change anything: "
                   f"**{'yes' if second['changed'] else 'no'}** ({second['seconds']:.0f} s)."),
              "", f"Verdict: **{'all targets met' if v['ok'] else 'targets NOT met'}**.", ""]
    if all("forks_created" in v[p] for p in pols):
        lines += [
            ("Precision, from each re-lockable project's lock before (`uv lock`) and after "
             "align: a **fork created** is a package (index, name) the lock holds at two or "
             "more versions after and at more versions than before. A **version introduced** "
             "is a version of a package the project locked before that no project's lock held "
             "before (all projects, also those uv cannot re-lock here: align aligns to their "
             "versions too); the *in-use versions between* are those another project's lock held "
             "strictly between it and the project's nearest version before (PEP 440 order). "
             "*One fits* when `uv lock --dry-run -P NAME==U` from the aligned lock (from the cache, "
             "online only when the cache lacks data) "
             f"resolves for such a `U` (nearest the landing first, at most {FIT_TRIES} tried): "
             "align could have stopped at a version in use. Packages new to a lock are not "
             "counted (they had no version to move from). Such a stop only saves a version when "
             "another project still holds it after align: *fits after* tries those versions "
             "only. A version introduced is **needless** when every project holding it after "
             "align fits after; one project that cannot stop earlier needs it, and the others "
             "joining it add no version (they leave theirs)."), ""]
    for policy in (p for p in POLICIES if p in pols):
        p = pols[policy]
        title = "default policy" if policy == "none" else "`--allow-downgrade minor`"
        lines += [f"## Parents moved up ({title})", ""]
        lines += [f"- {x['project']}: {x['name']} {x['before']} → {x['after']} (for {x['for']})"
                  for x in p["released"]] or ["(none)"]
        if p["downgrades"]:
            lines += ["", f"## Downgrades ({title})", ""]
            lines += [f"- {x['project']}: {x['name']} {', '.join(x['before'])} → "
                      f"{', '.join(x['after'])}" for x in p["downgrades"]]
        if "precision" in p:
            prec = p["precision"]
            lines += ["", f"## Forks created ({title})", ""]
            lines += [f"- {x['project']}: {x['name']} {', '.join(x['before']) or '(none)'} → "
                      f"{', '.join(x['after'])}" for x in prec["forks_created"]] or ["(none)"]
            lines += ["", f"## Versions introduced that no lock used ({title})", ""]
            lines += [f"- {x['project']}: {x['name']} {', '.join(x['before'])} → {x['after']}; "
                      + (f"in use between: {', '.join(x['between'])}; "
                         + (f"**{x['fits']} fits**" if x.get("fits") else
                            f"uv: none fits{' (' + x['error'] + ')' if x.get('error') else ''}")
                         + ("" if "fits_after" not in x else
                            f"; still held after align: {', '.join(x['between_after']) or 'none'}"
                            + (f", **{x['fits_after']} fits**" if x["fits_after"] else
                               (", none fits" if x["between_after"] else "")))
                         if x["between"] else "no in-use version between")
                      for x in prec["introduced"]] or ["(none)"]
            lines += ["", "Needless versions introduced: "
                      + (", ".join(f"{x['name']} {x['version']} ({', '.join(x['holders'])})"
                                   for x in prec["needless"]) or "none")
                      if "needless" in prec else ""]
        lines += ["", f"## Remaining blockers ({title})", ""]
        lines += [f"- {b['project']}: {b['name']} {b['current']} (target {b['wanted']}), "
                  f"{b['kind']}: {b['reason'][:220]}" for b in p["blocked"]] or ["(none)"]
        lines += ["", f"## Projects ({title})", "",
                  "| project | status | changes | blocked | uv runs | seconds | check after |",
                  "|---|---|---|---|---|---|---|"]
        for x in p["projects"]:
            status = x["status"] + (" (stale)" if x["stale"] else "")
            if x["error"]:
                status += f": {x['error'][:90]}"
            check = p["check_after"].get(x["name"], {})
            lines.append(f"| {x['name']} | {status} | {x['changes']} | {x['blocked']} | "
                         f"{x['uv_runs']} | {x['seconds']:.0f} | {_check(check)} |")
        lines.append("")
    return "\n".join(lines)


def _check(entry: dict[str, Any]) -> str:
    if not entry:
        return "–"
    return "pass" if entry["rc"] == 0 else f"fail ({str(entry.get('error', ''))[:60]})"


if __name__ == "__main__":
    raise SystemExit(main())
