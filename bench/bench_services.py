"""Benchmark what a workspace's services cost when its environment loads (each `cd`, each reload).

`.envrc.sh` of a workspace with services asks Docker for the published ports with one `docker ps`.
This measures the median wall-clock time of loading the environment the way the hooks do, with
`mise env --json` and `direnv export json` run in the workspace, in five situations:

- ``none``: a workspace without services (Docker running): the reference;
- ``up``: services declared, Docker running, the services up;
- ``down``: services declared, Docker running, the services stopped;
- ``no-cli``: services declared, no docker command on PATH;
- ``dead-daemon``: services declared, DOCKER_HOST pointing at a socket nobody listens on.

Goal: ``up`` at most 100 ms more than ``none``. Runs are interleaved (one of each situation in
turn) so all see the same machine load. Usage::

    python bench/bench_services.py [--runs 20] [--write bench/results/services.md]

Needs a Docker engine, Compose, mise and direnv; the services run from the test suite's locally
built images (tests/docker_fixtures.py), in a temporary HOME/DEVKIT_HOME, offline.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_doctor import devkit_cmd, isolated_env  # the same isolated, offline set-up

SITUATIONS = ("none", "up", "down", "no-cli", "dead-daemon")
LOADERS = {"mise": ["mise", "env", "--json"], "direnv": ["direnv", "export", "json"]}
BUDGET_MS = 100.0


def path_without_docker(base: Path, path: str) -> str:
    """A directory of links to every command on ``path`` except docker*: PATH without docker."""
    bin_dir = base / "no-docker-bin"
    bin_dir.mkdir()
    for directory in path.split(os.pathsep):
        if os.path.isdir(directory):
            for entry in os.scandir(directory):
                target = bin_dir / entry.name
                if not entry.name.startswith("docker") and not target.exists():
                    target.symlink_to(entry.path)
    return str(bin_dir)


def new_workspace(path: Path, env: dict[str, str], *data: str) -> Path:
    """``devkit new --no-sync`` with both loaders (approved by devkit)."""
    args = [a for d in ("env_loader=both", *data) for a in ("--data", d)]
    subprocess.run([*devkit_cmd(), "new", str(path), "--defaults", "--no-sync", *args],
                   env=env, check=True, capture_output=True)
    return path


def load(cmd: list[str], ws: Path, env: dict[str, str]) -> tuple[float, dict[str, str]]:
    """Seconds one environment load takes, and what it exported (it must not print an error)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    errors = [ln for ln in proc.stderr.splitlines() if "direnv: " not in ln]
    if proc.returncode != 0 or errors:
        raise SystemExit(f"{' '.join(cmd)} failed in {ws}:\n{proc.stderr}")
    return elapsed, json.loads(proc.stdout or "{}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", type=Path, help="write Markdown here (and JSON beside it)")
    args = parser.parse_args()
    for tool in ("docker", "mise", "direnv"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    import docker_fixtures

    try:
        images = docker_fixtures.build_service_images()
    except BaseException as exc:  # noqa: BLE001 - pytest's skip outside pytest: say why, stop
        raise SystemExit(f"no Docker engine or service images: {exc}") from None

    with tempfile.TemporaryDirectory(prefix="devkit-bench-services-") as tmp:
        base = Path(tmp)
        env = isolated_env(base)
        env.update(images)
        plain = new_workspace(base / "ws" / "plain", env)
        svc = new_workspace(base / "ws" / "svc", env, "services=[postgres, redis]")
        down = new_workspace(base / "ws" / "svc-down", env, "services=[postgres, redis]")
        envs = {"none": (plain, env), "up": (svc, env), "down": (down, env),
                "no-cli": (down, {**env, "PATH": path_without_docker(base, env["PATH"])}),
                "dead-daemon": (down, {**env, "DOCKER_HOST": f"unix://{base}/no-docker.sock"})}
        subprocess.run(["mise", "run", "services:up"], cwd=svc, env=env, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        try:
            times: dict[str, dict[str, list[float]]] = {l: {s: [] for s in SITUATIONS}
                                                        for l in LOADERS}
            for loader, cmd in LOADERS.items():  # warm-up, and the URLs are as expected
                for name, (ws, e) in envs.items():
                    _, exported = load(cmd, ws, e)
                    assert ("DATABASE_URL" in exported) == (name == "up"), (loader, name)
            for _ in range(args.runs):
                for loader, cmd in LOADERS.items():
                    for name, (ws, e) in envs.items():
                        times[loader][name].append(load(cmd, ws, e)[0])
            docker_ps = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run(["docker", "ps", "--filter", "label=com.docker.compose.project=x",
                                "--format", "{{.Ports}}"], env=env, capture_output=True,
                               check=True)
                docker_ps.append(time.perf_counter() - start)
        finally:
            subprocess.run(["mise", "run", "--yes", "services:reset"], cwd=svc, env=env,
                           capture_output=True, check=False, stdin=subprocess.DEVNULL)

    medians = {l: {s: statistics.median(v) * 1000 for s, v in d.items()} for l, d in times.items()}
    mins = {l: {s: min(v) * 1000 for s, v in d.items()} for l, d in times.items()}
    result = {
        "runs": args.runs, "budget_ms": BUDGET_MS, "median_ms": medians, "min_ms": mins,
        "docker_ps_median_ms": statistics.median(docker_ps) * 1000,
        "overhead_up_ms": {l: medians[l]["up"] - medians[l]["none"] for l in LOADERS},
        "machine": f"{platform.platform()}, Python {platform.python_version()}, "
                   f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        "tools": {t: subprocess.run([t, "--version" if t != "direnv" else "version"],
                                    capture_output=True, text=True, check=False).stdout.strip()
                  for t in ("mise", "direnv", "docker")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    lines = ["# Services: cost of loading a workspace's environment", "",
             (f"Command: `python bench/bench_services.py --runs {args.runs}` (median wall-clock "
             "time of one environment load, run in the workspace; interleaved runs)"), "",
             "| situation | `mise env --json` | `direnv export json` |", "| --- | --- | --- |"]
    labels = {"none": "no services (Docker running)", "up": "services declared, up",
              "down": "services declared, down", "no-cli": "docker not on PATH",
              "dead-daemon": "daemon unreachable (DOCKER_HOST: dead socket)"}
    for name in SITUATIONS:
        cells = [f"{medians[l][name]:.0f} ms (min {mins[l][name]:.0f})" for l in LOADERS]
        lines.append(f"| {labels[name]} | {' | '.join(cells)} |")
    lines.append("")
    for loader in LOADERS:
        extra = result["overhead_up_ms"][loader]
        verdict = "met" if extra <= BUDGET_MS else "NOT met"
        lines.append(f"- {loader}: services up cost **{extra:+.0f} ms** over no services "
                     f"(goal ≤ {BUDGET_MS:.0f} ms: {verdict})")
    lines += [(f"- one `docker ps --filter … --format …` alone: median "
              f"{result['docker_ps_median_ms']:.0f} ms"),
              f"- machine: {result['machine']}",
              "- tools: " + "; ".join(f"{k} {v}" for k, v in result["tools"].items()),
              f"- date: {result['date']}"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)
        args.write.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
