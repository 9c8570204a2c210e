"""Benchmark `devkit new` with a warm shared cache and measure how much of the venv is linked.

Usage: python bench/bench_new.py [--runs 5] [--out bench/results/new.md]

Needs the package index (the template's dev group locks pytest). Runs in a throw-away HOME and
DEVKIT_HOME: one warm-up `devkit new` fills the cache, then RUNS timed `devkit new` subprocesses
(exactly what a user types) into fresh directories. Reports the median wall time (seconds) and,
for every timed workspace, the share of `.venv` files (and bytes) that are the cache's inodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from devkit import usage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/new.md"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-new-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "DEVKIT_", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp / "home"), DEVKIT_HOME=str(tmp / "store"), UV_PYTHON_DOWNLOADS="never")
    (tmp / "home").mkdir()
    devkit = [sys.executable, "-m", "devkit"]

    def new(name: str) -> float:
        start = time.perf_counter()
        subprocess.run([*devkit, "new", str(tmp / name), "--defaults"], env=env, check=True,
                       capture_output=True)
        return time.perf_counter() - start

    cold = new("warmup")
    times = [new(f"ws{i}") for i in range(args.runs)]
    cache = usage.scan(tmp / "store" / "uv" / "cache")
    shares = []
    for i in range(args.runs):
        v = usage.venv_usage(tmp / f"ws{i}" / ".venv", cache)
        shares.append({"files": v.files, "linked_files": v.linked_files,
                       "linked_bytes": v.linked_bytes, "private_bytes": v.private_bytes})
    last = shares[-1]
    result = {
        "runs": args.runs,
        "cold_seconds": round(cold, 3),
        "warm_seconds": [round(t, 3) for t in times],
        "median_warm_seconds": round(statistics.median(times), 3),
        "venv": last,
        "linked_file_share": round(last["linked_files"] / last["files"], 3),
        "linked_byte_share": round(last["linked_bytes"] / (last["linked_bytes"] + last["private_bytes"]), 3),
        "filesystem": usage.filesystem_type(tmp),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.write_text(
        "# `devkit new` with a warm cache\n\n"
        f"Command: `python bench/bench_new.py --runs {args.runs}` ({result['machine']}, "
        f"{result['filesystem']}).\n\n"
        "| what | value |\n| --- | --- |\n"
        f"| cold `devkit new` (empty cache) | {result['cold_seconds']} s |\n"
        f"| warm `devkit new`, median of {args.runs} | **{result['median_warm_seconds']} s** |\n"
        f"| warm runs | {', '.join(f'{t} s' for t in result['warm_seconds'])} |\n"
        f"| `.venv` files that are the cache's inodes | {last['linked_files']} of {last['files']} "
        f"({result['linked_file_share']:.1%}) |\n"
        f"| `.venv` bytes linked / private | {last['linked_bytes']} / {last['private_bytes']} "
        f"({result['linked_byte_share']:.1%} linked) |\n\n"
        "Private files are what uv writes per venv: `pyvenv.cfg`, activation scripts, the\n"
        "interpreter links and each distribution's `RECORD`/`INSTALLER`/`REQUESTED`\n"
        "(https://docs.astral.sh/uv/reference/settings/#link-mode).\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
