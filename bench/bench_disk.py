"""The disk a user actually sees, side by side: pip + venv, uv with one cache, devkit after align.

Usage (from the repository root; needs the package index; ~5-10 minutes)::

    python bench/bench_disk.py [CORPUS] [--projects NAME ...] [--python 3.12] [--out bench/results]
                               [--png docs/disk.png]

On copies of a handful of small/medium corpus projects (PyPI only, no ML wheels), each leg starts
from an empty cache and installs every project's locked packages (default groups, not the project
itself) into its own venv:

* **pip**: ``python -m venv`` + ``pip install --no-deps -r`` the set exported by
  ``uv export --frozen`` (pip's own cache, ``PIP_CACHE_DIR``, counted);
* **uv**: ``uv sync --frozen --no-install-project`` per project with the committed locks and one
  shared cache (uv's default: venv files are hard links into the cache on ext4);
* **devkit**: the life a user lives: the committed locks synced as in the uv leg, then
  ``devkit align``, the aligned locks synced, ``devkit gc`` (measured at each step).

Bytes are bytes on disk (allocated blocks) of the cache plus every venv, each inode counted once
(:func:`devkit.usage.unique_bytes`, the way ``du`` counts hard links); seconds are the cold
installs of the leg (align's own time is reported apart). Results: ``<out>/disk.json``,
``<out>/disk.md`` (``--name``: another file name) and a bar chart (matplotlib, from the ``bench`` dependency group).
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

from devkit import usage
from devkit import uv as uv_mod

ROOT = Path(__file__).resolve().parent.parent
PYENV = Path("/root/.pyenv/versions")
DEFAULT_PROJECTS = (
    "000alen__slack-personal", "004Saichaithanya__ayursutra-panchakarma-app",
    "007ph__modelcase-backend", "006lp__nonebot-plugin-kuwo", "darrenburns__posting",
    "spotDL__spotify-downloader",
)
TIMEOUT = 900
LEGS = ("pip", "uv", "devkit")


def _python(version: str) -> str:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else shutil.which(f"python{version}") or sys.executable


def _env(work: Path, leg: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "VIRTUAL_ENV", "DEVKIT_", "PIP_"))}
    bins = [str(p.parent) for p in PYENV.glob("3.1[23].*/bin/python3")]
    env.update(PATH=os.pathsep.join([*bins, env.get("PATH", "")]), UV_PYTHON_DOWNLOADS="never",
               UV_NO_PROGRESS="1", UV_CACHE_DIR=str(work / leg / "cache"),
               PIP_CACHE_DIR=str(work / leg / "cache"), DEVKIT_HOME=str(work / leg / "home"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    tail = (proc.stderr + proc.stdout).strip().splitlines()[-1:] if proc.returncode else []
    return proc.returncode, time.monotonic() - start, " ".join(tail)[:300]


def _copy(corpus: Path, names: list[str], dest: Path,
          files: tuple[str, ...] = ("pyproject.toml", "uv.lock")) -> list[Path]:
    """Copy ``files`` of each corpus project ``names`` into ``dest/<name>``; returns the copies."""
    out = []
    for name in names:
        dst = dest / name
        dst.mkdir(parents=True)
        for file in files:
            shutil.copy2(corpus / name / file, dst / file)
        out.append(dst)
    return out


def _measure(cache: Path, venvs: list[Path]) -> dict[str, int]:
    cache_tree = usage.scan(cache)
    trees = [usage.scan(v) for v in venvs]
    return {"cache_bytes": cache_tree.bytes, "venv_bytes": usage.unique_bytes(trees),
            "on_disk_bytes": usage.unique_bytes([cache_tree, *trees])}


def leg_pip(projects: list[Path], env: dict[str, str], python: str) -> dict[str, Any]:
    """venv + pip per project, from the set ``uv export`` reads out of each lock."""
    uv = uv_mod.find_uv()
    runs, seconds = {}, 0.0
    for path in projects:
        req = path / "requirements.txt"
        rc, _, err = _run([uv, "export", "--frozen", "--no-hashes", "--no-emit-project",
                           "--format", "requirements-txt", "-o", str(req)], path, env)
        if rc:
            runs[path.name] = {"rc": rc, "error": err}
            continue
        rc1, s1, err1 = _run([python, "-m", "venv", ".venv"], path, env)
        rc2, s2, err2 = _run([str(path / ".venv/bin/python"), "-m", "pip", "install", "-q",
                              "--no-deps", "-r", str(req)], path, env)
        seconds += s1 + s2
        runs[path.name] = {"rc": rc1 or rc2, "seconds": s1 + s2, "error": err1 or err2}
    return {"runs": runs, "seconds": seconds}


def leg_uv(projects: list[Path], env: dict[str, str], python: str) -> dict[str, Any]:
    """``uv sync --frozen --no-install-project`` per project into one shared cache."""
    uv = uv_mod.find_uv()
    runs, seconds = {}, 0.0
    for path in projects:
        rc, s, err = _run([uv, "sync", "--frozen", "--no-install-project", "--python", python],
                          path, env)
        seconds += s
        runs[path.name] = {"rc": rc, "seconds": s, "error": err}
    return {"runs": runs, "seconds": seconds}


def leg_devkit(projects: list[Path], env: dict[str, str], python: str, work: Path,
               log: Any) -> dict[str, Any]:
    """The life a user lives: sync the committed locks (as plain uv), ``devkit align``, sync the
    aligned locks, ``devkit gc``; bytes measured before align, before gc (the caller measures
    after)."""
    devkit = [sys.executable, "-m", "devkit"]
    venvs = [p / ".venv" for p in projects]
    cache = work / "devkit" / "cache"
    _run([*devkit, "projects", "add", *map(str, projects)], work, env)
    log(f"leg devkit: installing {len(projects)} projects (committed locks)")
    first = leg_uv(projects, env, python)
    entry: dict[str, Any] = {"before_align": _measure(cache, venvs)}
    log("devkit align")
    rc, s, err = _run([*devkit, "align"], work, env)
    entry["align"] = {"rc": rc, "seconds": s, "error": err}
    log("leg devkit: syncing the aligned locks")
    second = leg_uv(projects, env, python)
    entry["before_gc"] = _measure(cache, venvs)
    log("devkit gc")
    rc, s, err = _run([*devkit, "gc"], work, env)
    entry["gc"] = {"rc": rc, "seconds": s, "error": err}
    # The floor for these aligned locks: plain uv syncing them into an empty cache. What devkit
    # keeps after gc beyond it is what gc could not (or would not) remove.
    log("leg devkit: the aligned locks synced into an empty cache (the floor)")
    floor_env = {**env, "UV_CACHE_DIR": str(work / "floor" / "cache")}
    floor = _copy(work / "devkit" / "projects", [p.name for p in projects], work / "floor" / "projects")
    leg_uv(floor, floor_env, python)
    entry["aligned_floor"] = _measure(work / "floor" / "cache", [p / ".venv" for p in floor])
    runs = {name: r if r["rc"] else second["runs"][name] for name, r in first["runs"].items()}
    return entry | {"runs": runs, "seconds": first["seconds"], "resync_seconds": second["seconds"]}


def main(argv: list[str] | None = None) -> int:
    """Run the three legs; returns 0 when every install succeeded."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("corpus", type=Path, nargs="?",
                        default=ROOT.parent / "shared" / "corpus" / "real")
    parser.add_argument("--projects", nargs="+", default=list(DEFAULT_PROJECTS))
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "disk.png")
    parser.add_argument("--name", default="disk",
                        help="results in <out>/NAME.json and <out>/NAME.md (default: disk)")
    parser.add_argument("--render", action="store_true", help="only redraw from <out>/NAME.json")
    parser.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS),
                        help="legs to run; the others are kept from <out>/disk.json")
    args = parser.parse_args(argv)
    if args.render:
        result = json.loads((args.out / f"{args.name}.json").read_text())
        write(result, args.out, args.png, args.name)
        return 0
    corpus = args.corpus.resolve()
    python = _python(args.python)
    work = Path(tempfile.mkdtemp(prefix="devkit-disk-"))
    result: dict[str, Any] = {"machine": platform.platform(), "uv": uv_mod.version(),
                              "python": python, "projects": args.projects,
                              "filesystem": usage.filesystem_type(work), "legs": {},
                              "command": " ".join(
                                  ["python", "bench/bench_disk.py", "CORPUS"]
                                  + ([] if args.projects == list(DEFAULT_PROJECTS)
                                     else ["--projects", *args.projects]))}
    if set(args.legs) != set(LEGS):
        kept = json.loads((args.out / f"{args.name}.json").read_text())["legs"]
        result["legs"] = {leg: kept[leg] for leg in LEGS if leg not in args.legs}

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    try:
        for leg in args.legs:
            env = _env(work, leg)
            projects = _copy(corpus, args.projects, work / leg / "projects")
            entry: dict[str, Any] = {}
            if leg == "devkit":
                entry |= leg_devkit(projects, env, python, work, log)
            else:
                log(f"leg {leg}: installing {len(projects)} projects")
                entry |= (leg_pip if leg == "pip" else leg_uv)(projects, env, python)
            entry |= _measure(work / leg / "cache", [p / ".venv" for p in projects])
            if leg == "uv":
                # what stays once uv drops cache entries nothing needs (uv docs, concepts/cache)
                _run([uv_mod.find_uv(), "cache", "prune"], work, env)
                pruned = _measure(work / leg / "cache", [p / ".venv" for p in projects])
                entry["pruned_on_disk_bytes"] = pruned["on_disk_bytes"]
            result["legs"][leg] = entry
            log(f"leg {leg}: {entry['on_disk_bytes'] / 2**20:,.0f} MiB, {entry['seconds']:.0f} s")
        write(result, args.out, args.png, args.name)
        failed = [(leg, name) for leg, e in result["legs"].items()
                  for name, r in e["runs"].items() if r["rc"]]
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def write(result: dict[str, Any], out: Path, png: Path, name: str = "disk") -> None:
    """``<name>.json``, ``<name>.md`` and the bar chart ``png``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    legs = result["legs"]
    label = {"pip": "pip + venv per project", "uv": "uv, one shared cache",
             "devkit": "devkit: sync, align, sync, gc"}
    lines = ["# Disk a user sees: pip, uv, devkit", "",
             (f"Machine: {result['machine']} ({result['filesystem']}); uv {result['uv']}; "
              f"Python {Path(result['python']).name}. Projects ({len(result['projects'])}): "
              f"{', '.join(result['projects'])}. Command: "
              f"`{result.get('command', 'python bench/bench_disk.py CORPUS')}`."),
             "", ("Each leg starts from an empty cache; bytes on disk of the cache plus every "
                  "venv, each inode once (hard links counted once, like `du`)."), "",
             "| leg | cache | venvs | cache + venvs | after `uv cache prune` | cold install |",
             "|---|---|---|---|---|---|"]
    for leg in LEGS:
        e = legs[leg]
        extra = (f" (+ align {e['align']['seconds']:.0f} s, re-sync "
                 f"{e.get('resync_seconds', 0):.0f} s, gc {e['gc']['seconds']:.0f} s)"
                 if "gc" in e else f" (+ align {e['align']['seconds']:.0f} s)" if "align" in e
                 else "")
        pruned = _mib(e["pruned_on_disk_bytes"]) if "pruned_on_disk_bytes" in e else "–"
        lines.append(f"| {label[leg]} | {_mib(e['cache_bytes'])} | {_mib(e['venv_bytes'])} | "
                     f"**{_mib(e['on_disk_bytes'])}** | {pruned} | {e['seconds']:.0f} s{extra} |")
    dk, plain = legs["devkit"], legs["uv"]
    if "before_gc" in dk:
        lines += ["", ("devkit leg, step by step (cache + venvs): committed locks synced "
                       f"{_mib(dk['before_align']['on_disk_bytes'])}; aligned locks synced "
                       f"{_mib(dk['before_gc']['on_disk_bytes'])}; after `devkit gc` "
                       f"**{_mib(dk['on_disk_bytes'])}** = "
                       f"**{dk['on_disk_bytes'] / plain['on_disk_bytes']:.2f}×** plain uv "
                       f"({_mib(plain['on_disk_bytes'])})."),
                  *(["", (f"The floor for the aligned locks (plain uv syncing them into an "
                          f"empty cache): {_mib(dk['aligned_floor']['on_disk_bytes'])} = "
                          f"{dk['aligned_floor']['on_disk_bytes'] / plain['on_disk_bytes']:.2f}× "
                          f"plain uv; devkit after gc is "
                          f"{dk['on_disk_bytes'] / dk['aligned_floor']['on_disk_bytes']:.2f}× "
                          "that floor.")] if "aligned_floor" in dk else []),
                  "", ("Before gc, the old versions stay in the cache (uv indexes them, so "
                       "`uv cache prune` keeps them) while the aligned ones are added: the store "
                       "grows. `devkit gc` removes every version no lock uses; the re-synced "
                       "venvs no longer link them, so their bytes come back.")]
    if legs["pip"]["cache_bytes"] < 2**20:
        lines.append("\npip's cache stays empty when pip reads a local `file://` index (as "
                     "configured on this machine): its downloads are not cached.")
    lines.append("\n`uv cache prune` drops what uv left in the cache that nothing indexes; "
                 "the devkit leg's last figure is after `devkit gc`, which runs it.")
    for leg in LEGS:
        for project, r in legs[leg]["runs"].items():
            if r["rc"]:
                lines.append(f"\n{leg}: {project} failed: {r['error']}")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.9), dpi=110)
    rows = [(label[leg].replace("`", ""), legs[leg], f", {legs[leg]['seconds']:.0f} s")
            for leg in LEGS]
    if "before_gc" in legs["devkit"]:  # the aligned store before gc, for the step it shows
        rows.insert(2, ("devkit: sync, align, sync", legs["devkit"]["before_gc"], ""))
    names = [name for name, _, _ in rows]
    cache = [row["cache_bytes"] / 2**20 for _, row, _ in rows]
    venv_only = [(row["on_disk_bytes"] - row["cache_bytes"]) / 2**20 for _, row, _ in rows]
    ax.barh(names, cache, color="#4c72b0", label="cache")
    ax.barh(names, venv_only, left=cache, color="#dd8452", label="venv files not in the cache")
    for i, (_, row, note) in enumerate(rows):
        total = row["on_disk_bytes"] / 2**20
        ax.text(total, i, f" {total:,.0f} MiB{note}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("MiB on disk (each inode once)")
    ax.set_title(f"{len(result['projects'])} projects from an empty cache")
    ax.set_xlim(0, max(row["on_disk_bytes"] for _, row, _ in rows) / 2**20 * 1.45)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)
    _save(fig, png)


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (the ``bench`` dependency group)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, png: Path) -> None:
    """Lay out ``fig``, write it to ``png`` (parents created) and free it."""
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    _pyplot().close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
