"""devkit at 10, 100 and 1,000 registered workspaces: each read-only command against its yardstick.

Usage::

    python bench/bench_scale.py [--src SRC] [--label NAME] [--ns 10,100] [--runs 5]
                                [--fixture DIR] [--huge] [--write bench/results/scale]

What is timed (medians of ``--runs`` wall-clock runs after one warm-up run, each command
interleaved run by run with its yardstick so that both see the same machine load):

* ``devkit store`` at the largest N against ``du -skc`` of the same trees (cache, Pythons, venvs);
* ``devkit align --dry-run`` and ``devkit sync --all`` at each N: the marginal cost per added
  aligned, unchanged project ``(t(N) - t(10)) / (N - 10)``, against one
  ``uv lock --check --offline`` / ``uv sync --check --locked --offline`` in one workspace;
* ``devkit doctor`` in one workspace with N registered, against ``devkit --version``;
* ``devkit projects list`` with 10 and 1,000 entries, ``devkit projects add`` of 1 and 1,000 paths;
* a warm ``devkit new --defaults`` with N registered against the same steps by hand (``copier
  copy`` of the store's template, ``git init`` + commit, ``uv lock``, ``uv sync``, ``mise trust``);
* ``--huge``: ``align --dry-run`` and ``store`` with one 10,000-package ``uv.lock``: seconds and
  peak memory (``ru_maxrss`` of the devkit process itself, not of the uv it runs).

The workspaces are built once into ``--fixture`` (kept for later runs): one ``devkit new
--defaults`` workspace locked offline against a local index of tiny wheels (the test suite's, plus
one wheel of 2,100 small modules so a venv holds ~2,200 files as a real one does), then copies whose
``.venv`` is hard-linked to the first one's and finished by ``uv sync --locked``. ``--src`` runs
``python -m devkit`` from another source tree (e.g. ``git archive main src``) to measure a
baseline on the very same fixture. Every run happens in a private HOME/DEVKIT_HOME, offline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import build_wheel, template_dev_stubs, write_simple_index

BULK_FILES = 2_100  # modules in the bulk wheel: a venv of ~2,200 files, as the default template's
HUGE_PACKAGES = 10_000
HUGE_TAGS = ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
             "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
             "cp311-cp311-musllinux_1_2_x86_64", "cp311-cp311-macosx_11_0_arm64",
             "cp311-cp311-macosx_10_9_x86_64", "cp311-cp311-win_amd64",
             "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
             "cp312-cp312-macosx_11_0_arm64", "cp312-cp312-win_amd64",
             "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64",
             "cp313-cp313-win_amd64")
RSS_WRAPPER = """\
import atexit, os, resource, runpy, sys
def _report():
    with open(os.environ["BENCH_RSS_FILE"], "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
atexit.register(_report)
sys.argv = ["devkit", *sys.argv[1:]]
runpy.run_module("devkit", run_name="__main__")
"""


def bulk_wheel(out: Path, name: str, version: str, files: int) -> Path:
    """A pure-Python wheel of ``files`` small modules (a RECORD uv accepts)."""
    modules = {f"m{i // 100:02d}/mod{i:04d}.py": f"VALUE = {i}\n" + "#" * (i % 700) + "\n"
               for i in range(files)}
    return build_wheel(out, name, version, modules=modules)


def base_env(base: Path) -> dict[str, str]:
    """HOME, DEVKIT_HOME, git identity and an offline local index, all inside ``base``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "MISE_", "__MISE", "DIRENV_", "VIRTUAL_ENV", "XDG_"))}
    env.pop("CI", None)
    # As users run it: an installed devkit has its bytecode cached (a machine-wide
    # PYTHONDONTWRITEBYTECODE would make every run compile devkit's modules from source again).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("DEVKIT_UV", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(HOME=str(base / "home"), DEVKIT_HOME=str(base / "devkit-home"),
               GIT_CONFIG_GLOBAL=str(base / "gitconfig"), GIT_CONFIG_NOSYSTEM="1",
               UV_DEFAULT_INDEX=(base / "simple").as_uri(), UV_OFFLINE="1",
               UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", MISE_OFFLINE="1",
               COPIER_SETTINGS_PATH=str(base / "copier.yml"), COLUMNS="120")
    return env


def store_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` as in a shell where the workspace environment is loaded (the store's cache)."""
    home = Path(env["DEVKIT_HOME"])
    return {**env, "UV_CACHE_DIR": str(home / "uv" / "cache"),
            "UV_PYTHON_INSTALL_DIR": str(home / "uv" / "python")}


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None,
        ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; exit with its output when its code is not in ``ok``."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def build_fixture(base: Path, count: int, devkit: list[str]) -> None:
    """``count`` workspaces ``ws/p0000``… in ``base`` (kept: later runs reuse them)."""
    ready = base / "ready.json"
    if ready.is_file() and json.loads(ready.read_text())["count"] >= count:
        return
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    (base / "home").mkdir()
    (base / "gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    (base / "copier.yml").write_text("{}\n")
    wheels = [build_wheel(base / "wheels", "tinyshared", "1.0", payload=20_000),
              bulk_wheel(base / "wheels", "bulkpkg", "1.0", BULK_FILES),
              *template_dev_stubs(base / "wheels")]
    write_simple_index(base / "simple", wheels)
    env = base_env(base)
    first = base / "ws" / "p0000"
    run([*devkit, "new", str(first), "--defaults", "--data", "env_loader=mise"], env=env)
    run(["uv", "add", "-q", "tinyshared", "bulkpkg"], env=store_env(env), cwd=first)
    run(["git", "commit", "-qam", "deps"], env=env, cwd=first)
    started = time.perf_counter()
    for i in range(1, count):
        copy = base / "ws" / f"p{i:04d}"
        shutil.copytree(first, copy, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
        run(["cp", "-al", str(first / ".venv"), str(copy / ".venv")], env=env)
        run(["uv", "sync", "-q", "--locked"], env=store_env(env), cwd=copy)
        if i % 50 == 0:
            print(f"  fixture: {i} copies, {time.perf_counter() - started:.0f} s", flush=True)
    ready.write_text(json.dumps({"count": count}))


def build_huge(base: Path, env: dict[str, str]) -> Path:
    """A workspace ``huge`` whose ``uv.lock`` holds :data:`HUGE_PACKAGES` packages, each with one
    wheel per tag of :data:`HUGE_TAGS` (hard links to one tiny wheel), locked by uv offline."""
    project = base / "huge"
    if (project / "uv.lock").is_file():
        # a fixture copied from another directory records another index path: re-lock (a no-op
        # when the lock is current), so the timed runs see a current lock, as a user's would be
        run(["uv", "lock", "-q"], env={**store_env(env), "UV_DEFAULT_INDEX":
                                       (base / "huge-simple").as_uri()}, cwd=project)
        return project
    wheels = base / "huge-wheels"
    simple = base / "huge-simple"
    for d in (wheels, simple, project):
        shutil.rmtree(d, ignore_errors=True)
    names = [f"hugepkg{i:05d}" for i in range(HUGE_PACKAGES)]
    for name in names:
        wheel = build_wheel(wheels, name, "1.0")
        page = simple / name
        page.mkdir(parents=True)
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        links = []
        for tag in HUGE_TAGS:
            file = f"{name}-1.0-{tag}.whl"
            os.link(wheel, page / file)
            links.append(f'<a href="{file}#sha256={sha}">{file}</a><br>')
        (page / "index.html").write_text("<html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    (simple / "index.html").write_text("<html><body>\n" + "\n".join(
        f'<a href="{n}/">{n}</a><br>' for n in names) + "\n</body></html>\n")
    project.mkdir()
    deps = ",\n".join(f'  "{n}>=1"' for n in names)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "huge"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = [\n{deps},\n]\n\n[tool.uv]\npackage = false\n")
    (project / ".python-version").write_text(f"{sys.version_info.major}.{sys.version_info.minor}\n")
    huge_env = {**store_env(env), "UV_DEFAULT_INDEX": simple.as_uri()}
    started = time.perf_counter()
    run(["uv", "lock", "-q"], env=huge_env, cwd=project)
    print(f"  huge lock: {(project / 'uv.lock').stat().st_size / 1e6:.1f} MB in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return project


def register(env: dict[str, str], paths: list[Path]) -> None:
    """Write the registry with exactly ``paths`` (the documented ``projects.json`` format)."""
    home = Path(env["DEVKIT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "projects": [{"path": str(p), "name": p.name,
                                       "added": "2026-01-01T00:00:00Z"} for p in sorted(paths)]}
    (home / "projects.json").write_text(json.dumps(doc, indent=2) + "\n")


def time_new(env: dict[str, str], senv: dict[str, str], devkit: list[str], base: Path,
             registered: list[Path], runs: int) -> dict[str, float]:
    """Median seconds of a warm ``devkit new --defaults DIR`` with ``registered`` workspaces in
    the registry, against the same steps by hand: ``copier copy`` of the store's template with the
    answers devkit passes, ``git init`` + add + commit, ``uv lock``, ``uv sync`` (in the store's
    environment, as a loaded workspace shell has it) and ``mise trust``. Interleaved run by run
    after one warm-up of each; every run gets a fresh directory, removed after the timing."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    uv_minor = ".".join(run(["uv", "--version"], env=env).stdout.split()[1].split(".")[:2])
    template_repo = Path(env["DEVKIT_HOME"]) / "template"
    runs_dir = base / "new-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir()
    count = 0

    def fresh() -> Path:
        nonlocal count
        count += 1
        return runs_dir / f"n{count:04d}"

    def by_devkit(dst: Path) -> None:
        run([*devkit, "new", str(dst), "--defaults"], env=env)

    def by_hand(dst: Path) -> None:
        run(["copier", "copy", "--defaults", "--quiet", "--data", f"project_name={dst.name}",
             "--data", f"python_version={python}", "--data", f"uv_version={uv_minor}",
             str(template_repo), str(dst)], env=env)
        run(["git", "init", "-q", "-b", "main"], env=env, cwd=dst)
        run(["git", "add", "-A"], env=env, cwd=dst)
        run(["git", "commit", "-qm", "Initial commit"], env=env, cwd=dst)
        run(["uv", "lock", "-q"], env=senv, cwd=dst)
        run(["uv", "sync", "-q"], env=senv, cwd=dst)
        run(["mise", "trust", "-q", str(dst)], env=env, cwd=dst)

    steps = {"new": by_devkit, "manual": by_hand}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for round_ in range(runs + 1):  # the first round warms both up
        for key, step in steps.items():
            register(env, registered)
            dst = fresh()
            start = time.perf_counter()
            step(dst)
            if round_:
                times[key].append(time.perf_counter() - start)
            shutil.rmtree(dst)
    register(env, registered)
    return {k: statistics.median(v) for k, v in times.items()}


def timed(cmds: dict[str, Callable[[], None]], runs: int) -> dict[str, float]:
    """Median seconds of each callable, interleaved run by run after one warm-up of each."""
    for fn in cmds.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for key, fn in cmds.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    """Build or reuse the fixture, time every command, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="time `python -m devkit` from this source tree")
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--ns", default="10,100", help="registered workspaces, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fixture", type=Path, default=Path("/tmp/devkit-scale-fixture"))
    parser.add_argument("--huge", action="store_true", help="also the 10,000-package uv.lock")
    parser.add_argument("--only", default="", help="comma-separated subset: store,align,sync,"
                        "doctor,list,add,huge,new")
    parser.add_argument("--write", type=Path, help="write PREFIX.json (merged by label) and PREFIX.md")
    parser.add_argument("--chart", type=Path, help="also draw the chart (PNG) here")
    args = parser.parse_args()
    ns = sorted(int(n) for n in args.ns.split(","))
    only = set(filter(None, args.only.split(","))) or {"store", "align", "sync", "doctor", "list",
                                                       "add", "huge", "new"}
    src = (args.src or ROOT / "src").resolve()
    devkit = [sys.executable, "-m", "devkit"]
    base = args.fixture.resolve()
    build_fixture(base, max(ns), devkit)
    env = {**base_env(base), "PYTHONPATH": str(src)}
    senv = store_env(env)
    workspaces = sorted((base / "ws").iterdir())
    first = workspaces[0]
    results: dict[str, object] = {"label": args.label, "src": str(src), "ns": ns,
                                  "runs": args.runs, "machine": {
                                      "platform": platform.platform(), "cpus": os.cpu_count(),
                                      "python": platform.python_version(),
                                      "load_average_at_start": round(os.getloadavg()[0], 2)},
                                  "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}

    def dk(*argv: str, cwd: Path | None = None, ok: tuple[int, ...] = (0, 1)) -> Callable[[], None]:
        return lambda: run([*devkit, *argv], env=env, cwd=cwd or first, ok=ok) and None

    def sh(*argv: str, cwd: Path | None = None, e: dict[str, str] | None = None
           ) -> Callable[[], None]:
        return lambda: run(list(argv), env=e or senv, cwd=cwd or first) and None

    per_n: dict[int, dict[str, float]] = {}
    for n in ns:
        register(env, workspaces[:n])
        row: dict[str, float] = {}
        if "align" in only:
            row["align_dry_run"] = timed({"a": dk("align", "--dry-run")}, args.runs)["a"]
            row["uv_lock_check"] = timed(
                {"u": sh("uv", "lock", "--check", "--offline")}, args.runs)["u"]
        if "sync" in only:
            row["sync_all"] = timed({"s": dk("sync", "--all")}, args.runs)["s"]
            row["uv_sync_check"] = timed(
                {"u": sh("uv", "sync", "--check", "--locked", "--offline")}, args.runs)["u"]
        if "doctor" in only:
            both = timed({"doctor": dk("doctor"), "version": dk("--version")}, args.runs)
            row["doctor"], row["version"] = both["doctor"], both["version"]
        if "store" in only:
            venvs = [str(w / ".venv") for w in workspaces[:n]]
            home = Path(env["DEVKIT_HOME"])
            both = timed({"store": dk("store"),
                          "du": sh("du", "-skc", str(home / "uv" / "cache"),
                                   str(home / "uv" / "python"), *venvs)}, args.runs)
            row["store"], row["du"] = both["store"], both["du"]
        if "new" in only:
            row.update(time_new(env, senv, devkit, base, workspaces[:n], args.runs))
        per_n[n] = row
        print(f"N={n}: " + ", ".join(f"{k}={v:.3f}s" for k, v in row.items()), flush=True)
    results["per_n"] = {str(n): row for n, row in per_n.items()}
    lo, hi = ns[0], ns[-1]
    ratios: dict[str, float] = {}
    if len(ns) > 1:
        span = hi - lo
        if "align" in only:
            marginal = (per_n[hi]["align_dry_run"] - per_n[lo]["align_dry_run"]) / span
            ratios["align_marginal_vs_uv_lock_check"] = marginal / per_n[hi]["uv_lock_check"]
            results["align_marginal_seconds"] = marginal
        if "sync" in only:
            marginal = (per_n[hi]["sync_all"] - per_n[lo]["sync_all"]) / span
            ratios["sync_marginal_vs_uv_sync_check"] = marginal / per_n[hi]["uv_sync_check"]
            results["sync_marginal_seconds"] = marginal
        if "doctor" in only:
            # interleaved run by run (the registry rewritten before each run, ~1 ms): load drift
            # between the N rounds above would otherwise show as a ratio
            def doctor_with(n: int) -> Callable[[], None]:
                return lambda: (register(env, workspaces[:n]), dk("doctor")())  # type: ignore[func-returns-value]
            both = timed({"lo": doctor_with(lo), "hi": doctor_with(hi)}, args.runs)
            ratios["doctor_hi_vs_lo"] = both["hi"] / both["lo"]
            results["doctor_interleaved"] = both
    if "new" in only:
        for n in ns:
            ratios[f"new_vs_manual_{n}"] = per_n[n]["new"] / per_n[n]["manual"]
    if "doctor" in only:
        ratios["doctor_vs_version"] = per_n[hi]["doctor"] / per_n[hi]["version"]
    if "store" in only:
        ratios["store_vs_du"] = per_n[hi]["store"] / per_n[hi]["du"]

    registry_paths = base / "registry-dirs"
    if {"list", "add"} & only:
        if not (registry_paths / "r0999" / "pyproject.toml").is_file():
            for i in range(1000):
                d = registry_paths / f"r{i:04d}"
                d.mkdir(parents=True, exist_ok=True)
                (d / "pyproject.toml").write_text(f'[project]\nname = "r{i:04d}"\nversion = "0"\n')
        dirs = sorted(registry_paths.iterdir())
    if "list" in only:
        listing: dict[str, float] = {}
        for size in (10, 1000):
            register(env, dirs[:size])
            listing[f"list_{size}"] = timed({"l": dk("projects", "list")}, args.runs)["l"]
        results["projects_list"] = listing
        ratios["list_1000_vs_10"] = listing["list_1000"] / listing["list_10"]
    if "add" in only:
        adding: dict[str, float] = {}
        for size in (1, 1000):
            def add(size: int = size) -> None:
                register(env, [])
                run([*devkit, "projects", "add", *map(str, dirs[:size])], env=env, cwd=first)
            adding[f"add_{size}"] = timed({"a": add}, args.runs)["a"]
        results["projects_add"] = adding
        ratios["add_1000_vs_1"] = adding["add_1000"] / adding["add_1"]
    if args.huge and "huge" in only:
        project = build_huge(base, env)
        register(env, [project])
        huge_env = {**env, "UV_DEFAULT_INDEX": (base / "huge-simple").as_uri()}
        rss_file = base / "rss.txt"
        huge: dict[str, float] = {}
        for name, argv in (("align_dry_run", ["align", "--dry-run"]), ("store", ["store"])):
            cmd = [sys.executable, "-c", RSS_WRAPPER, *argv]
            secs, peaks = [], []
            for _ in range(max(1, min(args.runs, 3))):
                start = time.perf_counter()
                run(cmd, env={**huge_env, "BENCH_RSS_FILE": str(rss_file)}, cwd=project, ok=(0, 1))
                secs.append(time.perf_counter() - start)
                peaks.append(int(rss_file.read_text()) / 1024)  # KiB -> MiB
            huge[f"{name}_seconds"] = statistics.median(secs)
            huge[f"{name}_peak_mib"] = max(peaks)
        huge["lock_mb"] = (project / "uv.lock").stat().st_size / 1e6
        results["huge"] = huge
        print("huge: " + ", ".join(f"{k}={v:.2f}" for k, v in huge.items()), flush=True)
    register(env, workspaces[:hi])
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    results["ratios"] = ratios
    print(json.dumps(ratios, indent=2))
    if args.write:
        out = args.write.with_suffix(".json")
        doc = json.loads(out.read_text()) if out.is_file() else {}
        previous = doc.get(args.label, {})
        if isinstance(previous, dict):  # a partial run (--only) keeps the other figures
            for key in ("per_n", "ratios"):
                merged = previous.get(key, {})
                if key == "per_n":
                    for n, row in results["per_n"].items():  # type: ignore[union-attr]
                        merged[n] = {**merged.get(n, {}), **row}
                else:
                    merged.update(results[key])  # type: ignore[arg-type]
                results[key] = merged
            results = {**previous, **results}
        doc[args.label] = results
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        args.write.with_suffix(".md").write_text(markdown(doc), encoding="utf-8")
        if args.chart:
            chart(doc, args.chart)
    return 0


GOALS = {  # ratio -> (goal, what it measures)
    "store_vs_du": (2.0, "`devkit store` / `du -skc` of the same trees, largest N"),
    "align_marginal_vs_uv_lock_check": (0.5, ("`align --dry-run` per added unchanged project / "
                                        "one `uv lock --check --offline`")),
    "sync_marginal_vs_uv_sync_check": (0.5, ("`sync --all` per added current venv / one "
                                       "`uv sync --check --locked --offline`")),
    "doctor_hi_vs_lo": (1.2, "`doctor` with the largest N registered / with the smallest"),
    "doctor_vs_version": (2.0, "`doctor` / `devkit --version`, largest N"),
    "list_1000_vs_10": (3.0, "`projects list` 1,000 entries / 10"),
    "add_1000_vs_1": (10.0, "`projects add` of 1,000 paths in one call / 1 path"),
    "new_vs_manual_10": (1.05, ("warm `devkit new --defaults`, 10 registered / the same steps by "
                         "hand (copier copy, git, uv lock, uv sync, mise trust)")),
    "new_vs_manual_100": (1.05, "the same, 100 registered"),
}


def markdown(doc: dict[str, dict[str, object]]) -> str:
    """``bench/results/scale.md``: one column per label (e.g. main, branch)."""
    labels = list(doc)
    lines = ["# devkit at 10, 100 and 1,000 registered workspaces", "",
             ("Produced by `python bench/bench_scale.py` (see its docstring). Medians of interleaved "
             "runs; ratios are taken within one run, so machine load hits both sides alike. "
             "Absolute seconds depend on the load average (recorded per run: 2 cores, shared "
             "with other jobs)."), "",
             "| ratio | goal | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for key, (goal, what) in GOALS.items():
        cells = []
        for label in labels:
            value = doc[label].get("ratios", {}).get(key)  # type: ignore[union-attr]
            cells.append("-" if value is None else
                         f"{value:.2f}× {'✓' if value <= goal else '✗'}")
        lines.append(f"| {what} | ≤ {goal:g}× | " + " | ".join(cells) + " |")
    lines += ["", "## Seconds per N (medians)", ""]
    for label in labels:
        entry = doc[label]
        lines += [f"### {label}", "", (f"source `{entry.get('src')}`, {entry.get('runs')} runs, "
                  f"{entry.get('date')}, {entry.get('machine')}"), ""]
        per_n = entry.get("per_n", {})
        keys = sorted({k for row in per_n.values() for k in row})  # type: ignore[union-attr]
        lines += ["| N | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for n, row in sorted(per_n.items(), key=lambda kv: int(kv[0])):  # type: ignore[union-attr]
            lines.append(f"| {n} | " + " | ".join(
                f"{row[k]:.3f}" if k in row else "-" for k in keys) + " |")
        for extra in ("align_marginal_seconds", "sync_marginal_seconds"):
            if extra in entry:
                lines.append(f"\n{extra}: {float(entry[extra]) * 1000:.1f} ms")  # type: ignore[arg-type]
        for table in ("projects_list", "projects_add", "huge"):
            if table in entry:
                cells = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in entry[table].items())  # type: ignore[union-attr]
                lines.append(f"\n{table}: {cells}")
        lines.append("")
    return "\n".join(lines) + "\n"


def chart(doc: dict[str, dict[str, object]], out: Path) -> None:
    """Seconds against N per command, log-log, one line style per label (matplotlib)."""
    import matplotlib  # the `bench` dependency group

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = ["--", "-", ":", "-."]
    for i, (label, entry) in enumerate(doc.items()):
        per_n = entry.get("per_n", {})
        ns = sorted(int(n) for n in per_n)  # type: ignore[union-attr]
        series: dict[str, list[tuple[int, float]]] = {}
        for n in ns:
            for key, value in per_n[str(n)].items():  # type: ignore[index]
                series.setdefault(key, []).append((n, value))
        for key in ("listing", "adding"):
            table = entry.get("projects_list" if key == "listing" else "projects_add", {})
            for name, value in table.items():  # type: ignore[union-attr]
                series.setdefault(f"projects {name.split('_')[0]}", []).append(
                    (int(name.split("_")[1]), value))
        for j, (key, points) in enumerate(sorted(series.items())):
            if len(points) < 2:
                continue
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, styles[i % len(styles)], marker="o", color=f"C{j % 10}",
                    label=f"{key} ({label})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (registered workspaces; projects list/add: entries/paths)")
    ax.set_ylabel("seconds (median)")
    ax.set_title("devkit read-only commands against N")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
