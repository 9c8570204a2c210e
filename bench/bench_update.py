"""Benchmark `devkit update --all` on many workspaces after a template change.

Usage: python bench/bench_update.py [--workspaces 20] [--jobs 1,2,4] [--out bench/results/update.md]

Runs offline in a throw-away HOME and DEVKIT_HOME. Creates WORKSPACES workspaces with
`devkit new --no-sync` from a copy of devkit's template (version 0.1.0), then changes that copy
(a line in `.envrc.sh` and `README.md`, version 0.2.0) and times `devkit update --all --json`
subprocesses, exactly what a user types except that the bundled template and version are
replaced (this script re-runs itself as the `devkit` entry point with them patched). One warm-up
`--dry-run` first (it also adds the new template's tag to the store); then for each `--jobs`
value the workspaces are reset to HEAD and updated. Reports the wall time, the per-workspace
median (the `seconds` of each project in the JSON) and the run that finds everything current.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def as_devkit(version: str, template_dir: str, argv: list[str]) -> int:
    """Run devkit's CLI with the bundled template and version replaced."""
    sys.path.insert(0, str(REPO / "src"))
    from devkit import template
    from devkit.main import main

    template.bundled_template_dir = lambda: Path(template_dir)
    template.__version__ = version
    return main(argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--jobs", default="1,2,4")
    parser.add_argument("--out", type=Path, default=Path("bench/results/update.md"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-update-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "DEVKIT_", "VIRTUAL_ENV", "GIT_"))}
    env.update(HOME=str(tmp / "home"), DEVKIT_HOME=str(tmp / "store"), UV_OFFLINE="1",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"),
               PYTHONPATH=str(REPO / "src"))
    (tmp / "home").mkdir()
    (tmp / "gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    tpl = tmp / "template"
    tpl.mkdir()
    shutil.copy2(REPO / "copier.yml", tpl / "copier.yml")
    shutil.copytree(REPO / "templates", tpl / "templates")

    def devkit(version: str, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, __file__, "--as-devkit", version, str(tpl), *argv]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)

    names = [f"ws{i:02d}" for i in range(args.workspaces)]
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda n: devkit("0.1.0", "new", str(tmp / n), "--defaults",
                                                 "--no-sync"), names))
    assert all(p.returncode == 0 for p in made), [p.stderr for p in made if p.returncode]
    envrc = tpl / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_BENCH=1\n")
    readme = tpl / "templates" / "workspace" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nA line added by the next template.\n")

    def timed(*argv: str) -> tuple[float, dict]:
        start = time.perf_counter()
        proc = devkit("0.2.0", "update", "--all", "--json", *argv)
        seconds = time.perf_counter() - start
        assert proc.returncode == 0, proc.stderr
        return seconds, json.loads(proc.stdout)

    warmup, doc = timed("--dry-run", "--jobs", "4")
    assert doc["summary"]["updated"] == args.workspaces, doc["summary"]
    runs = []
    for jobs in [int(j) for j in args.jobs.split(",")]:
        for name in names:
            subprocess.run(["git", "reset", "-q", "--hard", "HEAD"], cwd=tmp / name, check=True)
            subprocess.run(["git", "clean", "-fdq"], cwd=tmp / name, check=True)
        seconds, doc = timed("--jobs", str(jobs))
        assert doc["summary"]["updated"] == args.workspaces, doc["summary"]
        per = [p["seconds"] for p in doc["projects"]]
        runs.append({"jobs": jobs, "wall_seconds": round(seconds, 2),
                     "median_workspace_seconds": round(statistics.median(per), 3),
                     "max_workspace_seconds": round(max(per), 3)})
    for name in names:
        subprocess.run(["git", "commit", "-qam", "update"], cwd=tmp / name, check=True, env=env)
    current_seconds, doc = timed("--jobs", "4")
    assert doc["summary"]["current"] == args.workspaces, doc["summary"]
    result = {
        "workspaces": args.workspaces,
        "warmup_dry_run_seconds": round(warmup, 2),
        "runs": runs,
        "all_current_seconds": round(current_seconds, 2),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "".join(f"| {r['jobs']} | {r['wall_seconds']} s | {r['median_workspace_seconds']} s | "
                   f"{r['max_workspace_seconds']} s |\n" for r in runs)
    args.out.write_text(
        f"# `devkit update --all` on {args.workspaces} workspaces\n\n"
        f"Command: `python bench/bench_update.py --workspaces {args.workspaces} --jobs {args.jobs}` "
        f"({result['machine']}; load average at the end {result['load_average_at_end']}).\n\n"
        "Each run updates every workspace from template 0.1.0 to 0.2.0 (two files change); the "
        "store's template tag already exists (a warm-up `--dry-run` made it).\n\n"
        "| `--jobs` | wall time | per-workspace median | slowest workspace |\n"
        "| --- | --- | --- | --- |\n" + rows +
        f"\nWarm-up `--dry-run --jobs 4`: {result['warmup_dry_run_seconds']} s. "
        f"Everything already current (no copier run): {result['all_current_seconds']} s.\n\n"
        "Per-workspace time is copier's update in its worker (it renders the old and the new "
        "template and merges), measured inside the worker; the wall time adds starting the "
        "worker processes (Python and copier imports) and the status checks.\n"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--as-devkit"]:
        raise SystemExit(as_devkit(sys.argv[2], sys.argv[3], sys.argv[4:]))
    raise SystemExit(main())
