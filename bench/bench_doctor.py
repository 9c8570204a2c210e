"""Benchmark ``devkit doctor`` on a freshly generated workspace, run as a user would (a subprocess).

Target: median under 0.5 s. Usage::

    python bench/bench_doctor.py [--runs 30] [--write bench/results/doctor.md] [--baseline SRC]

``--baseline SRC`` times ``python -m devkit doctor`` from this tree's ``src`` and from another
source tree (e.g. an older commit's ``src`` from ``git archive``), interleaved run by run, so that
both see the same machine load.

Everything happens in a temporary HOME/DEVKIT_HOME with an offline local package index (the test
suite's tiny wheels), so the run touches neither your store nor the network.
"""

from __future__ import annotations

import argparse
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

from helpers import build_wheel, template_dev_stubs, write_simple_index  # the suite's offline index


def devkit_cmd() -> list[str]:
    """The ``devkit`` console script next to this Python (its venv), else ``python -m devkit``.

    Not ``shutil.which``: another installation earlier on PATH would be measured instead.
    """
    script = Path(sys.executable).with_name("devkit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "devkit"]


def isolated_env(base: Path) -> dict[str, str]:
    """HOME, DEVKIT_HOME, git config and uv's index inside ``base``; uv and mise offline."""
    wheels = [build_wheel(base / "wheels", "tinyshared", "1.0", payload=20_000),
              *template_dev_stubs(base / "wheels")]
    (base / "home").mkdir()
    gitconfig = base / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "MISE_", "__MISE", "DIRENV_", "VIRTUAL_ENV", "XDG_"))}
    env.pop("CI", None)
    # As users run it: an installed devkit has its bytecode cached (a machine-wide
    # PYTHONDONTWRITEBYTECODE would make every run compile devkit's modules from source again).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # This Python's bin directory first: its venv's uv is the real binary (a pyenv shim in front
    # of it would add a bash start-up to every uv call and measure pyenv, not devkit).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(HOME=str(base / "home"), DEVKIT_HOME=str(base / "devkit-home"),
               GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
               UV_DEFAULT_INDEX=write_simple_index(base / "simple", wheels), UV_OFFLINE="1",
               UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", MISE_OFFLINE="1",
               COPIER_SETTINGS_PATH=str(base / "copier.yml"))
    (base / "copier.yml").write_text("{}\n")
    return env


def time_runs(cmd: list[str], *, cwd: Path, env: dict[str, str], runs: int) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of ``cmd`` (after one warm-up run)."""
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"devkit doctor crashed:\n{proc.stderr}")
    return times


def time_pair(cmds: dict[str, list[str]], envs: dict[str, dict[str, str]], *, cwd: Path,
              runs: int) -> dict[str, list[float]]:
    """Wall-clock seconds of ``runs`` runs of each command, alternating run by run (after one
    warm-up each), so a change of machine load hits both alike."""
    for name, cmd in cmds.items():
        subprocess.run(cmd, cwd=cwd, env=envs[name], capture_output=True, check=False)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=cwd, env=envs[name], capture_output=True, text=True,
                                  check=False)
            times[name].append(time.perf_counter() - start)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"devkit doctor ({name}) crashed:\n{proc.stderr}")
    return times


def report(times: list[float], cmd: list[str], summary: str,
           baseline: tuple[str, list[float]] | None = None, path: str | None = None) -> str:
    """The Markdown written to ``bench/results/doctor.md``; ``path`` is the PATH the runs had."""
    median = statistics.median(times)
    compared = []
    if baseline is not None:
        src, base_times = baseline
        base_median = statistics.median(base_times)
        compared = [
            (f"- baseline `{src}` interleaved run by run: median {base_median * 1000:.0f} ms, "
             f"min {min(base_times) * 1000:.0f} ms; this tree / baseline = "
             f"{median / base_median:.2f}"),
        ]
    tools = {t: (shutil.which(t, path=path) or "-") for t in ("uv", "mise", "git")}
    return "\n".join([
        "# devkit doctor benchmark",
        "",
        (f"Command: `python bench/bench_doctor.py --runs {len(times)}"
         f"{' --baseline ' + baseline[0] if baseline else ''}` (runs "
         f"`{'python -m devkit' if baseline else ' '.join(Path(c).name for c in cmd)} doctor` "
         "in a fresh workspace)"),
        "",
        (f"- median **{median * 1000:.0f} ms** (target < 500 ms: "
        f"{'met' if median < 0.5 else 'NOT met'})"),
        f"- min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, runs {len(times)}",
        *compared,
        f"- doctor summary: {summary}",
        (f"- machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other work slows it)"),
        f"- tools: {', '.join(f'{k}={v}' for k, v in tools.items())}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        "",
    ])


def main() -> int:
    """Create the workspace, time the runs, print (and optionally write) the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    parser.add_argument("--baseline", type=Path, help="another source tree to time alongside")
    args = parser.parse_args()
    cmd = devkit_cmd()
    with tempfile.TemporaryDirectory(prefix="devkit-bench-") as tmp:
        base = Path(tmp)
        env = isolated_env(base)
        ws = base / "ws" / "bench"
        new = subprocess.run([*cmd, "new", str(ws), "--defaults", "--data", "env_loader=mise"],
                             env=env, capture_output=True, text=True, check=False)
        if new.returncode != 0:
            raise SystemExit(f"devkit new failed:\n{new.stdout}\n{new.stderr}")
        # as in a shell where the workspace environment is loaded: the store's cache
        home = Path(env["DEVKIT_HOME"])
        store_env = {**env, "UV_CACHE_DIR": str(home / "uv" / "cache"),
                     "UV_PYTHON_INSTALL_DIR": str(home / "uv" / "python")}
        subprocess.run(["uv", "add", "-q", "tinyshared"], cwd=ws, env=store_env, check=True)
        baseline = None
        if args.baseline:
            # both as `python -m devkit` from a source tree: the same start-up path
            module = [sys.executable, "-m", "devkit", "doctor"]
            pair = time_pair({"this": module, "base": module},
                             {"this": {**env, "PYTHONPATH": str(ROOT / "src")},
                              "base": {**env, "PYTHONPATH": str(args.baseline)}},
                             cwd=ws, runs=args.runs)
            times, baseline = pair["this"], (str(args.baseline), pair["base"])
        else:
            times = time_runs([*cmd, "doctor"], cwd=ws, env=env, runs=args.runs)
        last = subprocess.run([*cmd, "doctor"], cwd=ws, env=env, capture_output=True, text=True,
                              check=False).stdout.strip().splitlines()[-1]
    text = report(times, cmd, last, baseline, env["PATH"])
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
