"""Benchmark ``devkit align`` on copies of the real corpus (not a test; needs the package index).

Usage (from the repository root; a few minutes on a warm cache, longer on the first run)::

    python bench/bench_align.py [--corpus ../shared/corpus/real] [--cache /tmp/devkit-bench-cache]
                                [--jobs 4] [--sync 4] [--out bench/results]

Steps, each on fresh copies of every ``<project>/{pyproject.toml,uv.lock}`` in a temp dir:

1. warm-up: ``uv lock --check`` and one full resolution per project, so the one shared uv cache
   (``--cache``, reused across runs) holds the index pages the timed steps need;
2. baselines, sequential: ``uv lock`` as committed (validation) and a full relock
   (``uv.lock`` removed, then ``uv lock``), both summed over the projects;
3. ``devkit align --json --jobs N`` over all copies, wall time; then ``uv lock --check`` in every
   project, and ``devkit align --check`` again (a second run must change nothing);
4. sync: up to ``--sync`` aligned projects without large ML wheels (torch, nvidia-*, …), each
   into its own venv, once with the committed locks and once with the aligned ones, each set on
   an empty cache; bytes on disk of cache + venvs (each inode once) before and after.

Locks pointing at indexes this machine cannot reach are reported per project, not fatal.
Results: ``<out>/align.json`` and ``<out>/align.md``. The environment gets pyenv's 3.12/3.13 on
PATH and ``UV_PYTHON_DOWNLOADS=never`` (../shared/notes/uv.md §10); UV_OFFLINE is never set.
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

from devkit import lockfile, usage
from devkit import uv as uv_mod

ROOT = Path(__file__).resolve().parent.parent
PYENV_BINS = ("/root/.pyenv/versions/3.12.1/bin", "/root/.pyenv/versions/3.13.0/bin")
ML_NAMES = ("torch", "tensorflow", "jax", "jaxlib", "triton", "onnxruntime", "opencv-python")
TIMEOUT = 600


def bench_env(cache: Path, home: Path) -> dict[str, str]:
    """The environment of every uv/devkit call: shared cache, store in ``home``, no downloads."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "VIRTUAL_ENV", "DEVKIT_"))}
    extra = [p for p in PYENV_BINS if Path(p).is_dir()]
    env.update(PATH=os.pathsep.join([*extra, env.get("PATH", "")]), UV_CACHE_DIR=str(cache),
               UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", DEVKIT_HOME=str(home))
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Run ``cmd``; returns (exit code, seconds, last meaningful output line)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return 124, time.monotonic() - start, f"timeout after {TIMEOUT}s"
    seconds = time.monotonic() - start
    text = proc.stderr + proc.stdout
    return proc.returncode, seconds, uv_mod.explain(text) if proc.returncode else ""


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
    return {p.name: dict(zip(("rc", "seconds", "error"), run([uv, *args], p, env)))
            for p in projects}


def summary(projects: list[Path]) -> tuple[lockfile.Summary, dict[str, lockfile.Lock]]:
    """Sharing figures over the readable locks of ``projects``."""
    locks = {}
    for p in projects:
        try:
            locks[p.name] = lockfile.read(p / "uv.lock")
        except lockfile.LockError:
            continue
    return lockfile.summarize(list(locks.values())), locks


def remaining_blockers(locks: dict[str, lockfile.Lock], doc: dict[str, Any]) -> list[dict[str, Any]]:
    """For every name still at several versions: who is not at the newest, and why."""
    reasons = {(b["project"], b["name"]): f"{b['kind']}: {b['reason']}" for b in doc["blocked"]}
    failed = {Path(f["path"]).name: f["error"] for f in doc["failed"]}
    out = []
    for name, versions in lockfile.summarize(list(locks.values())).spread.items():
        holders: dict[str, list[str]] = {}
        indexes = set()
        for project, lock in locks.items():
            for pkg in lock.packages:
                if pkg.name == name:
                    holders.setdefault(pkg.version, []).append(project)
                    indexes.add(pkg.index)
        newest = versions[-1]
        why = {}
        for version, projects in holders.items():
            if version == newest:
                continue
            for project in projects:
                if project in failed:
                    why[project] = f"project not aligned: {failed[project]}"
                else:
                    why[project] = reasons.get((project, name), "other index or fork")
        out.append({"name": name, "versions": versions, "indexes": sorted(indexes),
                    "excess": len(versions) - 1, "not_at_newest": why})
    return out


def relockable_pairs(corpus: Path, projects: list[Path]) -> dict[str, Any]:
    """Pairs before (the corpus) and after (the aligned copies) over the projects uv re-locked."""
    before = lockfile.summarize([lockfile.read(corpus / p.name / "uv.lock") for p in projects])
    after = lockfile.summarize([lockfile.read(p / "uv.lock") for p in projects])
    return {"projects": len(projects), "before": before.to_json(), "after": after.to_json()}


def pick_sync(projects: list[Path], aligned: set[str], count: int, corpus: Path) -> list[Path]:
    """Aligned PyPI-only projects without large ML wheels, largest locks first."""
    def heavy(p: Path) -> bool:
        names = lockfile.read(p / "uv.lock").names()
        return any(n in ML_NAMES or n.startswith("nvidia-") for n in names)

    def pypi_only(p: Path) -> bool:
        lock = lockfile.read(corpus / p.name / "uv.lock")
        return all(pkg.index.rstrip("/") == "https://pypi.org/simple" for pkg in lock.packages)

    pool = [p for p in projects if p.name in aligned and not heavy(p) and pypi_only(p)]
    pool.sort(key=lambda p: -len(lockfile.read(p / "uv.lock").packages))
    return pool[:count]


def disk_bytes(projects: list[Path], corpus_copy: Path, cache: Path, env: dict[str, str]
               ) -> dict[str, Any]:
    """Sync each of ``projects`` (as found in ``corpus_copy``) on the empty ``cache``; bytes."""
    env = {**env, "UV_CACHE_DIR": str(cache)}
    uv = uv_mod.find_uv()
    synced = {}
    for project in projects:
        path = corpus_copy / project.name
        synced[project.name] = run([uv, "sync", "--frozen", "--no-install-project"], path, env)[::2]
    cache_tree = usage.scan(cache)
    venvs = [usage.scan(corpus_copy / p.name / ".venv") for p in projects]
    return {"synced": {k: {"rc": v[0], "error": v[1]} for k, v in synced.items()},
            "cache_bytes": cache_tree.bytes, "on_disk_bytes": usage.unique_bytes([cache_tree, *venvs]),
            "private_copies_bytes": sum(v.bytes for v in venvs)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when the targets are met, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "real")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "devkit-bench-cache")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--sync", type=int, default=4, help="projects to sync (0: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--render", action="store_true",
                        help="only re-render <out>/align.md from <out>/align.json")
    args = parser.parse_args(argv)
    if args.render:
        finish(json.loads((args.out / "align.json").read_text()), args.out)
        return 0
    work = Path(tempfile.mkdtemp(prefix="devkit-bench-"))
    env = bench_env(args.cache.absolute(), work / "home")
    result: dict[str, Any] = {"machine": platform.platform(), "python": sys.version.split()[0],
                              "uv": uv_mod.version(), "jobs": args.jobs, "corpus": str(args.corpus)}
    try:
        log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
        warm = copy_corpus(args.corpus, work / "warm")
        log(f"warm-up over {len(warm)} projects (cache {args.cache})")
        result["check_before"] = uv_each(warm, ["lock", "--check"], env)
        devkit = [sys.executable, "-m", "devkit"]
        warm_env = {**env, "DEVKIT_HOME": str(work / "warm-home")}
        run([*devkit, "projects", "add", *map(str, warm)], work, warm_env)
        run([*devkit, "align", "--jobs", str(args.jobs)], work, warm_env)  # metadata of pins
        for p in warm:
            (p / "uv.lock").unlink(missing_ok=True)
        uv_each(warm, ["lock"], env)

        log("baseline: `uv lock` as committed")
        plain = copy_corpus(args.corpus, work / "plain")
        result["plain_lock"] = uv_each(plain, ["lock"], env)
        log("baseline: full relock (uv.lock removed)")
        relock = copy_corpus(args.corpus, work / "relock")
        for p in relock:
            (p / "uv.lock").unlink()
        result["full_relock"] = uv_each(relock, ["lock"], env)

        aligned_dir = work / "aligned"
        projects = copy_corpus(args.corpus, aligned_dir)
        before, _ = summary(projects)
        run([*devkit, "projects", "add", *map(str, projects)], work, env)
        log(f"devkit align --jobs {args.jobs}")
        start = time.monotonic()
        proc = subprocess.run([*devkit, "align", "--json", "--jobs", str(args.jobs)], check=False, cwd=work,
                              env=env, capture_output=True, text=True, timeout=3 * TIMEOUT)
        align_seconds = time.monotonic() - start
        doc = json.loads(proc.stdout)
        after, after_locks = summary(projects)
        result["align"] = {"rc": proc.returncode, "seconds": align_seconds, "doc": doc,
                           "stderr": proc.stderr[-2000:]}
        log("uv lock --check after align")
        result["check_after"] = uv_each(projects, ["lock", "--check"], env)
        log("devkit align --check (second run)")
        start = time.monotonic()
        proc = subprocess.run([*devkit, "align", "--check", "--json"], check=False, cwd=work, env=env,
                              capture_output=True, text=True, timeout=3 * TIMEOUT)
        again = json.loads(proc.stdout)
        result["second_run"] = {"rc": proc.returncode, "seconds": time.monotonic() - start,
                                "changed": again["changed"], "failed": len(again["failed"])}
        result["pairs"] = {"before": before.to_json(), "after": after.to_json()}
        relockable = [p for p in projects
                      if any(Path(o["path"]).name == p.name and o["status"] != "failed"
                             for o in doc["projects"])]
        result["pairs_relockable"] = relockable_pairs(args.corpus, relockable)
        result["remaining"] = remaining_blockers(after_locks, doc)
        aligned = {p["name"] for p in doc["projects"] if p["status"] == "aligned"}
        if args.sync:
            chosen = pick_sync(projects, aligned, args.sync, args.corpus)
            log(f"sync before/after: {[p.name for p in chosen]}")
            orig = copy_corpus(args.corpus, work / "sync-before")
            del orig
            result["sync"] = {
                "projects": [p.name for p in chosen],
                "before": disk_bytes(chosen, work / "sync-before", work / "cache-before", env),
                "after": disk_bytes(chosen, aligned_dir, work / "cache-after", env),
            }
        finish(result, args.out)
        log(f"results in {args.out}/align.md")
        return 0 if result["verdict"]["ok"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def finish(result: dict[str, Any], out: Path) -> None:
    """Compute the verdict and write ``align.json`` and ``align.md`` into ``out``."""
    b, a = result["pairs"]["before"], result["pairs"]["after"]
    removed = b["excess_pairs"] - a["excess_pairs"]
    ok_before = {k for k, v in result["check_before"].items() if v["rc"] == 0}
    ok_after = {k for k, v in result["check_after"].items() if v["rc"] == 0}
    broken = sorted(ok_before - ok_after)
    relock = sum(v["seconds"] for v in result["full_relock"].values())
    plain = sum(v["seconds"] for v in result["plain_lock"].values())
    seconds = result["align"]["seconds"]
    result["verdict"] = {
        "excess_removed": removed, "excess_removed_share": removed / max(b["excess_pairs"], 1),
        "broken": broken, "fixed": sorted(ok_after - ok_before),
        "align_seconds": seconds, "plain_lock_seconds": plain, "full_relock_seconds": relock,
        "ratio_vs_full_relock": seconds / max(relock, 1e-9),
        "ratio_vs_plain_lock": seconds / max(plain, 1e-9),
    }
    rl = result.get("pairs_relockable")
    if rl:
        gone = rl["before"]["excess_pairs"] - rl["after"]["excess_pairs"]
        result["verdict"]["relockable_excess_removed_share"] = gone / max(rl["before"]["excess_pairs"], 1)
    v = result["verdict"]
    v["ok"] = (v["excess_removed_share"] >= 0.6 and not broken and v["ratio_vs_full_relock"] <= 3
               and not result["second_run"].get("changed", True))
    out.mkdir(parents=True, exist_ok=True)
    (out / "align.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "align.md").write_text(markdown(result) + "\n")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def markdown(r: dict[str, Any]) -> str:
    """The human summary written to ``align.md``."""
    v, b, a = r["verdict"], r["pairs"]["before"], r["pairs"]["after"]
    doc = r["align"]["doc"]
    lines = [
        "# devkit align on the real corpus", "",
        (f"Machine: {r['machine']}; Python {r['python']}; uv {r['uv']}; `--jobs {r['jobs']}`; "
        f"corpus: {len(r['check_before'])} projects. Command: `python bench/bench_align.py`."), "",
        "| measure | result | target |", "|---|---|---|",
        f"| distinct (index, name, version) pairs | {b['distinct_pairs']} → {a['distinct_pairs']} | |",
        (f"| excess pairs over one version per name | {b['excess_pairs']} → {a['excess_pairs']} "
        f"(**{100 * v['excess_removed_share']:.0f}%** removed) | ≥ 60% |"),
        *([(f"| … over the {r['pairs_relockable']['projects']} projects uv can re-lock on this "
            f"machine | {r['pairs_relockable']['before']['excess_pairs']} → "
            f"{r['pairs_relockable']['after']['excess_pairs']} (**"
            f"{100 * v['relockable_excess_removed_share']:.0f}%** removed) | |")]
          if "pairs_relockable" in r else []),
        (f"| projects whose `uv lock --check` passed before and fails after | {len(v['broken'])} "
        f"{v['broken'] or ''} | 0 |"),
        f"| `devkit align` wall time | {v['align_seconds']:.1f} s | |",
        (f"| sum of full relocks (`uv.lock` removed, `uv lock`) | {v['full_relock_seconds']:.1f} s "
        f"(align = **{v['ratio_vs_full_relock']:.2f}×**) | ≤ 3× |"),
        (f"| sum of `uv lock` as committed (mostly validation) | {v['plain_lock_seconds']:.1f} s "
        f"(align = {v['ratio_vs_plain_lock']:.1f}×) | |"),
        (f"| second run (`devkit align --check --json`): would change anything? | "
        f"{'yes' if r['second_run'].get('changed', True) else 'no'} ({r['second_run']['seconds']:.1f} s; "
        f"rc {r['second_run']['rc']}: rc 1 also flags projects that cannot be re-locked) | no |"),
        *([f"\nNote: {r['second_run']['note']}."] if r["second_run"].get("note") else []),
        "", f"Verdict: **{'all targets met' if v['ok'] else 'targets NOT met'}**.", "",
        (f"{len(doc['failed'])} of {len(doc['projects'])} projects cannot be re-locked on this "
        "machine at all (unreachable mirrors or PyTorch indexes, Python >= 3.14, build backends "
        "that fail; see the table): their versions stay, and most of the remaining excess is "
        "theirs or comes from one name on two indexes (never switched). Over the projects uv "
        "can re-lock, the excess shrinks by the share in the second row."), "",
        "## Per project", "",
        "| project | check before | align | changes | blocked | uv runs | check after |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in doc["projects"]:
        name = Path(p["path"]).name
        cb, ca = r["check_before"].get(name, {}), r["check_after"].get(name, {})
        status = p["status"] + (" (stale)" if p["stale"] else "")
        if p["error"]:
            status += f": {p['error'][:90]}"
        lines.append(f"| {name} | {_check(cb)} | {status} | {len(p['changes'])} | "
                     f"{len(p['blocked'])} | {p['uv_runs']} | {_check(ca)} |")
    lines += ["", "## Remaining spread and its blockers", ""]
    for item in r["remaining"]:
        lines.append(f"- **{item['name']}** {', '.join(item['versions'])} "
                     f"({len(item['indexes'])} index(es)):")
        for project, why in sorted(item["not_at_newest"].items()):
            lines.append(f"  - {project}: {why[:200]}")
    if "sync" in r:
        s = r["sync"]
        lines += ["", "## Bytes on disk after syncing", "",
                  (f"Projects (no large ML wheels): {', '.join(s['projects'])}; each set synced on an "
                  "empty cache with `uv sync --frozen --no-install-project`."), "",
                  "| locks | cache | cache + venvs (each inode once) | venvs as private copies |",
                  "|---|---|---|---|"]
        for key in ("before", "after"):
            d = s[key]
            lines.append(f"| {'committed' if key == 'before' else 'aligned'} | {_mib(d['cache_bytes'])} "
                         f"| {_mib(d['on_disk_bytes'])} | {_mib(d['private_copies_bytes'])} |")
        for phase in ("before", "after"):
            for name, x in s[phase]["synced"].items():
                if x["rc"]:
                    lines.append(f"\nSync ({phase}) failed in {name}: {x['error']}")
    return "\n".join(lines)


def _check(entry: dict[str, Any]) -> str:
    if not entry:
        return "–"
    return "pass" if entry["rc"] == 0 else f"fail ({str(entry.get('error', ''))[:60]})"


if __name__ == "__main__":
    raise SystemExit(main())
