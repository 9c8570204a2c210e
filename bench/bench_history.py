"""The history a user lives: projects locked at different dates, re-locked months later.

Usage (from the repository root; needs the package index; ~15-20 minutes, ``--quick`` ~5)::

    python bench/bench_history.py [CORPUS] [--quick] [--out bench/results] [--png docs/history.png]

A user's machine over time, replayed with today's index: uv's ``--exclude-newer DATE``
(``UV_EXCLUDE_NEWER``, "limit candidate packages to those that were uploaded prior to the given
date", ``uv lock --help``) locks each project's ``pyproject.toml`` as it would have been locked on
that date. At each step (a date):

* projects that start then are locked (a project whose requirements need releases from after
  its planned date starts at the first step where it locks);
* projects last locked ``RELOCK_EVERY`` steps ago or more are re-locked with ``uv lock
  --upgrade`` at the new date;
* each lock is then settled by a plain ``uv lock``: uv keeps every version (the old lock is its
  preference) and drops the ``exclude-newer`` option, so the lock is the one a user would have
  written then, not one pinned to a date;
* every project is synced (``uv sync --locked``).

Two legs with their own cache, never the real home:

* **uv**: one shared uv cache, never pruned; the figure after ``uv cache prune`` is measured at
  each step on a hard-linked copy of that cache (pruning it changes nothing the leg keeps, and
  prune only drops what nothing indexes, so it is what a user pruning at every step has);
* **devkit**: the projects registered (``devkit projects add``) in a temporary ``DEVKIT_HOME``;
  after the user's locks, ``devkit sync --all``, then ``devkit align``, ``devkit sync --all`` and
  ``devkit gc``.

Bytes are bytes on disk of the cache plus every venv, each inode counted once
(``bench_disk._measure``, :func:`devkit.usage.unique_bytes`); seconds are each leg's wall time
for the step. Caveat: align runs against today's index, so a parent it moves up may take a
release from after the step's date (counted per step: ``future_versions``). Results:
``<out>/history.json``, ``<out>/history.md`` and a chart ``--png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from bench_disk import TIMEOUT, _copy, _env, _measure, _mib, _pyplot, _run, _save
from packaging.specifiers import SpecifierSet

from devkit import uv as uv_mod
from devkit.align import lockfile

ROOT = Path(__file__).resolve().parent.parent
#: (corpus project, planned first step); small/medium projects without a build backend (their
#: copies have no sources, so ``uv sync`` must not build them), sharing web/HTTP stacks
PROJECTS = (
    ("007ph__modelcase-backend", 0), ("00660__frida-web", 0),
    ("004Saichaithanya__ayursutra-panchakarma-app", 0), ("000bachir__mini-mail-sender", 1),
    ("007vasy__polymarket-model", 2), ("JoeanAmier__TikTokDownloader", 3),
)
DATES = ("2025-03-01", "2025-06-01", "2025-09-01", "2026-01-01", "2026-06-01", "2026-11-01")
QUICK_PROJECTS = 3
QUICK_DATES = ("2025-03-01", "2025-09-01", "2026-03-01", "2026-11-01")
RELOCK_EVERY = 2  # steps between a project's re-locks (`uv lock --upgrade`)
LEGS = ("uv", "devkit")
PYTHONS = ("3.12", "3.13")  # the interpreters bench_disk._env puts on PATH


class Leg:
    """One leg's projects (copies of ``pyproject.toml`` only), cache and environment."""

    def __init__(self, name: str, work: Path, corpus: Path, projects: list[str]) -> None:
        self.name, self.work = name, work
        self.env = _env(work, name)
        self.cache = Path(self.env["UV_CACHE_DIR"])
        self.paths = dict(zip(projects, _copy(corpus, projects, work / name / "projects",
                                               files=("pyproject.toml",)), strict=True))
        for path in self.paths.values():
            pin_python(path)
        self.started: list[str] = []
        self.devkit = [sys.executable, "-m", "devkit"]

    @property
    def venvs(self) -> list[Path]:
        """The venvs of the projects started so far."""
        return [self.paths[name] / ".venv" for name in self.started]

    def lock(self, name: str, date: str, upgrade: bool) -> dict[str, Any]:
        """Lock ``name`` as on ``date`` (``--upgrade``: from scratch), then settle it with a plain
        ``uv lock``; returns rc, seconds, error."""
        uv = uv_mod.find_uv()
        path = self.paths[name]
        rc, s, err = _run([uv, "lock", *(["--upgrade"] if upgrade else [])], path,
                          {**self.env, "UV_EXCLUDE_NEWER": date})
        if rc == 0:
            rc, s2, err = _run([uv, "lock"], path, self.env)
            s += s2
        return {"rc": rc, "seconds": s, "error": err}

    def sync_each(self) -> dict[str, Any]:
        """``uv sync --locked`` in every started project."""
        uv = uv_mod.find_uv()
        runs = {name: dict(zip(("rc", "seconds", "error"),
                               _run([uv, "sync", "--locked"], self.paths[name], self.env),
                               strict=True)) for name in self.started}
        return runs

    def devkit_run(self, *args: str) -> dict[str, Any]:
        """``devkit ARGS --json`` in the leg's environment: rc, seconds, error (each failed
        workspace's reason for ``sync``) and a few figures of the JSON document."""
        start = time.monotonic()
        proc = subprocess.run([*self.devkit, *args, "--json"], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
        out: dict[str, Any] = {"rc": proc.returncode, "seconds": time.monotonic() - start,
                               "error": ""}
        try:
            doc = json.loads(proc.stdout)
        except json.JSONDecodeError:
            doc = {}
        if args[0] == "sync":
            out["error"] = "; ".join(f"{Path(w['path']).name}: {w['reason']}"
                                     for w in doc.get("workspaces", ())
                                     if w["status"] == "failed")
        elif args[0] == "align":
            out["changes"] = sum(len(p["changes"]) for p in doc.get("projects", ()))
            out["blocked"] = len(doc.get("blocked", ()))
        elif args[0] == "gc":
            out["reclaimable_bytes"] = doc.get("reclaimable_bytes")
            out["linked_bytes"] = doc.get("linked_bytes")
        if proc.returncode and not out["error"]:
            out["error"] = " ".join((proc.stderr + proc.stdout).strip().splitlines()[-1:])[:300]
        out["error"] = out["error"].replace(str(self.work) + "/", "")
        return out

    def measure(self) -> dict[str, int]:
        """Bytes on disk of the cache + the started projects' venvs, each inode once."""
        return _measure(self.cache, self.venvs)

    def measure_pruned(self) -> dict[str, Any]:
        """The same after ``uv cache prune``, run on a hard-linked copy of the cache."""
        copy = self.work / f"{self.name}-pruned-cache"
        shutil.rmtree(copy, ignore_errors=True)
        # cp -al: directories recreated, files hard-linked, uv's relative symlinks kept
        _run(["cp", "-al", str(self.cache), str(copy)], self.work, self.env)
        rc, s, _err = _run([uv_mod.find_uv(), "cache", "prune"], self.work,
                          {**self.env, "UV_CACHE_DIR": str(copy)})
        out = _measure(copy, self.venvs) | {"prune_rc": rc, "prune_seconds": s}
        shutil.rmtree(copy, ignore_errors=True)
        return out

    def locks(self) -> list[lockfile.Lock]:
        """The started projects' locks."""
        return [lockfile.read(self.paths[name] / "uv.lock") for name in self.started]


def pin_python(project: Path) -> None:
    """Write ``.python-version`` (read by uv, as a user's pin): the oldest of PYTHONS that the
    project's ``requires-python`` allows, so both legs use the same interpreter (pinned wheels
    such as ``pydantic-core`` 2.14 have none for the newest Python, and uv would build them)."""
    spec = tomllib.loads((project / "pyproject.toml").read_text())["project"].get(
        "requires-python", "")
    allowed = [v for v in PYTHONS if SpecifierSet(spec).contains(f"{v}.0")]
    (project / ".python-version").write_text((allowed or PYTHONS)[0] + "\n")


def future_versions(locks: list[lockfile.Lock], date: str) -> list[str]:
    """``name==version`` of locked packages uploaded after ``date`` (as ``uv.lock`` records
    ``upload-time``): what align took from after the step's date."""
    limit = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
    return sorted({f"{p.name}=={p.version}" for lock in locks for p in lock.packages
                   if p.uploaded is not None and p.uploaded > limit})


def main(argv: list[str] | None = None) -> int:
    """Replay the history in both legs; returns 0 when every lock, sync and devkit run succeeded."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("corpus", type=Path, nargs="?",
                        default=ROOT.parent / "shared" / "corpus" / "real")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_PROJECTS} projects, {len(QUICK_DATES)} steps")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "history.png")
    parser.add_argument("--render", action="store_true", help="only redraw from <out>/history.json")
    args = parser.parse_args(argv)
    if args.render:
        write(json.loads((args.out / "history.json").read_text()), args.out, args.png)
        return 0
    corpus = args.corpus.resolve()
    plan = list(PROJECTS[:QUICK_PROJECTS] if args.quick else PROJECTS)
    dates = list(QUICK_DATES if args.quick else DATES)
    work = Path(tempfile.mkdtemp(prefix="devkit-history-"))
    names = [name for name, _ in plan]
    result: dict[str, Any] = {
        "machine": platform.platform(), "uv": uv_mod.version(), "projects": names,
        "dates": dates, "relock_every": RELOCK_EVERY, "quick": args.quick,
        "command": "python bench/bench_history.py CORPUS" + (" --quick" if args.quick else ""),
        "steps": []}

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    try:
        legs = {leg: Leg(leg, work, corpus, names) for leg in LEGS}
        last: dict[str, int] = {}  # project -> step of its last lock
        for step, date in enumerate(dates):
            starting = [n for n, first in plan if first <= step and n not in last]
            relocking = [n for n in last if step - last[n] >= RELOCK_EVERY]
            entry: dict[str, Any] = {"date": date, "started": [], "deferred": [],
                                     "relocked": [], "legs": {}}
            for leg_name in LEGS:
                leg = legs[leg_name]
                log(f"{date} leg {leg_name}: start {starting or '-'}, re-lock {relocking or '-'}")
                start = time.monotonic()
                e: dict[str, Any] = {"locks": {}}
                for name in starting:  # the same attempts in both legs (same index pages)
                    r = leg.lock(name, date, upgrade=False)
                    e["locks"][name] = r
                    if leg_name != LEGS[0] and name not in entry["started"]:
                        continue  # it did not lock at this date in the first leg
                    if r["rc"] == 0:
                        leg.started.append(name)
                        if leg_name == "devkit":  # registered once it has a lock to read
                            _run([*leg.devkit, "projects", "add", str(leg.paths[name])],
                                 leg.work, leg.env)
                        if leg_name == LEGS[0]:
                            entry["started"].append(name)
                    elif leg_name == LEGS[0]:
                        entry["deferred"].append(name)
                for name in relocking:
                    e["locks"][f"{name} --upgrade"] = leg.lock(name, date, upgrade=True)
                    if leg_name == LEGS[0]:
                        entry["relocked"].append(name)
                if leg_name == "uv":
                    e["sync"] = leg.sync_each()
                    e |= leg.measure()
                    e["pruned"] = leg.measure_pruned()
                else:
                    e["sync"] = leg.devkit_run("sync", "--all")
                    e["before_align"] = leg.measure()
                    for cmd in (("align",), ("sync", "--all"), ("gc",)):
                        e[cmd[0] if cmd[0] != "sync" else "resync"] = leg.devkit_run(*cmd)
                    e |= leg.measure()
                    e["future_versions"] = future_versions(leg.locks(), date)
                e["seconds"] = time.monotonic() - start
                e["lock_seconds"] = sum(r["seconds"] for r in e["locks"].values())
                e["tool_seconds"] = (sum(r["seconds"] for r in e["sync"].values())
                                     if leg_name == "uv" else
                                     sum(e[k]["seconds"] for k in ("sync", "align", "resync", "gc")))
                summary = lockfile.summarize(leg.locks())
                e["locks_summary"] = {"distinct_pairs": summary.distinct_pairs,
                                      "excess_pairs": summary.excess_pairs}
                entry["legs"][leg_name] = e
                log(f"{date} leg {leg_name}: {e['on_disk_bytes'] / 2**20:,.0f} MiB, "
                    f"{e['seconds']:.0f} s")
            for name in entry["started"]:
                last[name] = step
            for name in entry["relocked"]:
                last[name] = step
            result["steps"].append(entry)
            write(result, args.out, args.png)
        return 0 if not failures(result) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def failures(result: dict[str, Any]) -> list[str]:
    """One line per failed lock (beyond a deferred start), sync or devkit command."""
    out = []
    for entry in result["steps"]:
        for leg, e in entry["legs"].items():
            for what, r in e["locks"].items():
                if r["rc"] and what not in entry["deferred"]:
                    out.append(f"{entry['date']} {leg}: uv lock {what}: {r['error']}")
            syncs = e["sync"] if leg == "uv" else {"devkit sync --all": e["sync"]}
            for what, r in syncs.items():
                if r["rc"]:
                    out.append(f"{entry['date']} {leg}: sync {what}: {r['error']}")
            for cmd in ("align", "resync", "gc"):
                if cmd in e and e[cmd]["rc"]:
                    out.append(f"{entry['date']} {leg}: devkit {cmd}: {e[cmd]['error']}")
    return out


def write(result: dict[str, Any], out: Path, png: Path) -> None:
    """``history.json``, ``history.md`` and the line chart ``png``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(result, indent=2) + "\n")
    steps = result["steps"]
    lines = [
        "# The history a user lives: plain uv vs devkit over time", "",
        (f"Machine: {result['machine']}; uv {result['uv']}. Projects ({len(result['projects'])}): "
         f"{', '.join(result['projects'])}. Command: `{result['command']}`."), "",
        ("Each step is a date: projects that start then are locked as on that date "
         "(`UV_EXCLUDE_NEWER=DATE uv lock`, then a plain `uv lock` that keeps every version and "
         "drops the date), projects last locked "
         f"{result['relock_every']} steps ago or more are re-locked (`uv lock --upgrade` at the "
         "date), all are synced. Plain uv: one shared cache, never pruned (and, measured on a "
         "hard-linked copy, after `uv cache prune`). devkit: `devkit sync --all`, then "
         "`devkit align`, `devkit sync --all`, `devkit gc`. Bytes on disk of cache + venvs, each "
         "inode once; excess pairs: distinct (name, version) pairs beyond one version per name "
         "over the locks; seconds: plain uv's `uv sync` runs against devkit's `sync --all`, "
         "`align`, `sync --all` and `gc` (the user's locks apart: they are the same work in "
         "both legs and mostly index fetches)."), "",
        ("| step | started | re-locked | uv, never pruned | uv after `uv cache prune` | "
        "devkit before align | devkit after align + gc | devkit / uv | devkit / uv pruned | "
        "excess pairs uv / devkit | seconds uv / devkit |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in steps:
        u, d = entry["legs"]["uv"], entry["legs"].get("devkit")
        if d is None:
            continue
        started = ", ".join(_short(n) for n in entry["started"]) or "–"
        if entry["deferred"]:
            started += f" (deferred: {', '.join(_short(n) for n in entry['deferred'])})"
        lines.append(
            f"| {entry['date']} | {started} | "
            f"{', '.join(_short(n) for n in entry['relocked']) or '–'} | "
            f"{_mib(u['on_disk_bytes'])} | {_mib(u['pruned']['on_disk_bytes'])} | "
            f"{_mib(d['before_align']['on_disk_bytes'])} | **{_mib(d['on_disk_bytes'])}** | "
            f"**{d['on_disk_bytes'] / u['on_disk_bytes']:.2f}×** | "
            f"{d['on_disk_bytes'] / u['pruned']['on_disk_bytes']:.2f}× | "
            f"{u['locks_summary']['excess_pairs']} / {d['locks_summary']['excess_pairs']} | "
            f"{u['tool_seconds']:.0f} / {d['tool_seconds']:.0f} s |")
    done = [e for e in steps if "devkit" in e["legs"]]
    if done:
        u, d = done[-1]["legs"]["uv"], done[-1]["legs"]["devkit"]
        lines += ["", (f"After the last step: plain uv {_mib(u['on_disk_bytes'])} "
                       f"(cache {_mib(u['cache_bytes'])}), after `uv cache prune` "
                       f"{_mib(u['pruned']['on_disk_bytes'])}; devkit "
                       f"{_mib(d['on_disk_bytes'])} (cache {_mib(d['cache_bytes'])}) = "
                       f"**{d['on_disk_bytes'] / u['on_disk_bytes']:.2f}×** plain uv, "
                       f"{d['on_disk_bytes'] / u['pruned']['on_disk_bytes']:.2f}× pruned uv.")]
        lines += ["", "devkit's time per step: "
                  + "; ".join(f"{e['date']}: sync {e['legs']['devkit']['sync']['seconds']:.0f} s, "
                              f"align {e['legs']['devkit']['align']['seconds']:.0f} s, re-sync "
                              f"{e['legs']['devkit']['resync']['seconds']:.0f} s, gc "
                              f"{e['legs']['devkit']['gc']['seconds']:.0f} s" for e in done) + "."]
        future = {e["date"]: e["legs"]["devkit"]["future_versions"] for e in done}
        lines += ["", ("Caveat: align and its syncs see today's index, so a parent align moves "
                       "up may take a release from after the step's date. Locked versions "
                       "uploaded after the step's date, devkit leg: "
                       + "; ".join(f"{k}: {', '.join(v) if v else 'none'}"
                                   for k, v in future.items()) + ".")]
    fails = failures(result)
    if fails:
        lines += ["", "Failures:", "", *(f"- {f}" for f in fails)]
    (out / "history.md").write_text("\n".join(lines) + "\n")
    if done:
        _chart(result, done, png)


def _short(name: str) -> str:
    return name.split("__", 1)[-1]


def _chart(result: dict[str, Any], steps: list[dict[str, Any]], png: Path) -> None:
    plt = _pyplot()
    dates = [e["date"][:7] for e in steps]
    series = [
        ("uv, one cache, never pruned", [e["legs"]["uv"]["on_disk_bytes"] for e in steps],
         "#4c72b0", "-"),
        ("uv after `uv cache prune`", [e["legs"]["uv"]["pruned"]["on_disk_bytes"] for e in steps],
         "#9ec5f0", "--"),
        ("devkit, the user's locks synced (before align)",
         [e["legs"]["devkit"]["before_align"]["on_disk_bytes"] for e in steps], "#dd8452", ":"),
        ("devkit after align + gc", [e["legs"]["devkit"]["on_disk_bytes"] for e in steps],
         "#dd8452", "-"),
    ]
    fig, ax = plt.subplots(figsize=(7, 3.9), dpi=110)
    for label, values, color, style in series:
        ax.plot(dates, [v / 2**20 for v in values], style, color=color, label=label,
                marker="o" if style == "-" else ".")
    for i, e in enumerate(steps):
        ratio = e["legs"]["devkit"]["on_disk_bytes"] / e["legs"]["uv"]["on_disk_bytes"]
        ax.annotate(f"{ratio:.2f}×", (i, e["legs"]["devkit"]["on_disk_bytes"] / 2**20),
                    textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    ax.set_ylabel("MiB on disk, cache + venvs (each inode once)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{len(result['projects'])} projects locked and re-locked over time")
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, png)


if __name__ == "__main__":
    raise SystemExit(main())
