"""Fault campaign: kill `devkit new`, `align`, `update` and `sync` at random points; parallel `new`.

Usage: python bench/faults.py [--runs 40] [--seed 1] [--out bench/results/faults.md]
       [--phases new,align,parallel,update,sync]

Everything runs offline in a throw-away HOME and DEVKIT_HOME against a local index of tiny wheels
(tests/helpers.py), with real uv, git and copier, exactly as a user types the commands
(`python -m devkit ...` subprocesses). Five phases, RUNS runs each:

1. `devkit new` killed by SIGINT, SIGTERM or SIGKILL (chosen at random) after a random delay in
   [0, duration of an uninterrupted run]. Then the destination is classified: complete (every
   template file, .git, uv.lock, .venv, and registered), absent (no directory, not registered), or
   neither. Recovery: `devkit new` again (with --force when devkit asks for it); it must end
   complete with no temporary sibling left.
2. `devkit align` on four generated workspaces whose uv.lock files spread over versions, killed
   the same way. Each uv.lock must be byte-equal to its before or after version right after the
   kill (SIGINT/SIGTERM: devkit restores its backups itself) and after the next `devkit align`
   (which recovers a SIGKILL's backups) equal to the after version, with no `*.tmp` left in
   align-backups.
3. `devkit new` 8 at a time on one store, each killed at a random point with probability 1/2:
   every destination complete or absent (or refused with one line), the registry intact and
   holding exactly the complete workspaces.
4. `devkit update` of four workspaces (two worker processes; one with uncommitted work) killed the
   same way: each workspace must be as before or as after, the uncommitted work never touched,
   and the next `devkit update` must finish the job.
5. `devkit sync` killed while it rebuilds a `.venv` linked from another uv cache: `.venv`
   complete or absent, and the next `devkit sync` cleans any `.venv.devkit-old-*` left.

Random points are wall-clock delays: this is a campaign, not a test (the tests in
tests/test_new_faults.py synchronise on observable state instead).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import build_wheel, template_dev_stubs, write_simple_index

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
TEMPLATE_FILES = ("pyproject.toml", "README.md", ".gitignore", ".copier-answers.yml",
                  ".python-version", ".envrc.sh")
TEMP_INFIX = ".devkit-new-"


class Campaign:
    """One throw-away environment: HOME, DEVKIT_HOME, git identity, local index."""

    def __init__(self, root: Path) -> None:
        self.root = root
        wheels = [build_wheel(root / "wheels", "tinyshared", v, payload=20_000)
                  for v in ("1.0", "1.1", "2.0")]
        wheels += [build_wheel(root / "wheels", "tinyother", v, payload=5_000) for v in ("1.0", "2.0")]
        wheels += template_dev_stubs(root / "wheels")
        index = write_simple_index(root / "simple", wheels)
        (root / "home").mkdir()
        gitconfig = root / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n"
                             "[init]\n\tdefaultBranch = main\n")
        settings = root / "copier-settings.yml"
        settings.write_text("{}\n")
        leaky = ("UV_", "DEVKIT_", "VIRTUAL_ENV", "MISE_", "__MISE", "DIRENV_", "XDG_", "PYTHONPATH")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(leaky)}
        self.env.update(
            HOME=str(root / "home"), DEVKIT_HOME=str(root / "store"),
            GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", UV_DEFAULT_INDEX=index,
            UV_OFFLINE="1", UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", MISE_OFFLINE="1",
            COPIER_SETTINGS_PATH=str(settings),
        )
        self.store = root / "store"

    # -- running ---------------------------------------------------------------------------
    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "devkit", *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "devkit", *args], env=self.env, cwd=cwd,
                              capture_output=True, text=True, check=False, timeout=600)

    def tool(self, *cmd: str, cwd: Path) -> None:
        subprocess.run(cmd, env=self.env, cwd=cwd, check=True, capture_output=True, timeout=600)

    @staticmethod
    def kill_at(proc: subprocess.Popen[str], delay: float, sig: int) -> tuple[bool, int, str]:
        """Send ``sig`` after ``delay`` seconds unless done; returns (interrupted, code, stderr)."""
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        interrupted = proc.poll() is None
        if interrupted:
            os.kill(proc.pid, sig)
        _out, err = proc.communicate(timeout=600)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # children a SIGKILL orphaned (uv, git)
        except ProcessLookupError:
            pass
        return interrupted, proc.returncode, err

    # -- state -----------------------------------------------------------------------------
    def registered(self) -> list[str]:
        try:
            doc = json.loads((self.store / "projects.json").read_text())
        except FileNotFoundError:
            return []
        return [p["path"] for p in doc["projects"]]

    def state(self, dst: Path) -> str:
        """``complete``, ``absent`` or ``incomplete`` (and which part is missing)."""
        registered = str(dst) in self.registered()
        if not dst.exists():
            return "absent" if not registered else "incomplete: registered, no directory"
        missing = [n for n in (*TEMPLATE_FILES, ".git", "uv.lock", ".venv") if not (dst / n).exists()]
        if missing or not registered:
            return "incomplete: " + ", ".join(missing + ([] if registered else ["registration"]))
        return "complete"

    @staticmethod
    def temps(dst: Path) -> list[Path]:
        return list(dst.parent.glob(f".{dst.name}{TEMP_INFIX}*"))


def _fmt(counter: Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "-"


def phase_new(c: Campaign, runs: int, rng: random.Random) -> list[str]:
    ws = c.root / "new"
    ws.mkdir()
    start = time.perf_counter()
    proc = c.run("new", str(ws / "reference"), "--defaults")
    duration = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    by_signal: dict[str, Counter[str]] = {name: Counter() for name in SIGNALS}
    outcome: Counter[str] = Counter()
    recovered: Counter[str] = Counter()
    one_line = 0
    odd: list[str] = []
    for i in range(runs):
        name = rng.choice(list(SIGNALS))
        dst = ws / f"n{i}"
        interrupted, code, err = c.kill_at(c.start("new", str(dst), "--defaults"),
                                           rng.uniform(0, duration), SIGNALS[name])
        state = c.state(dst)
        key = "complete" if state == "complete" else "absent" if state == "absent" else "incomplete"
        if key == "incomplete" and c.temps(dst) and name == "SIGKILL":
            key = "incomplete, marked"
        by_signal[name]["interrupted" if interrupted else "finished first"] += 1
        by_signal[name][key] += 1
        outcome[key] += 1
        if name != "SIGKILL" and interrupted:
            one_line += err.count("\n") <= 1 and "Traceback" not in err
            if code not in (130, 0, 1, -signal.SIGTERM):  # -15: before or after the handler
                odd.append(f"n{i} {name}: exit {code}: {err.strip()[-200:]}")
        if key == "incomplete":
            odd.append(f"n{i} {name}: {state}")
        if state != "complete":
            rerun = c.run("new", str(dst), "--defaults")
            if rerun.returncode != 0 and "--force" in rerun.stderr:
                recovered["needed --force"] += 1
                rerun = c.run("new", str(dst), "--defaults", "--force")
            ok = rerun.returncode == 0 and c.state(dst) == "complete" and not c.temps(dst)
            recovered["clean" if ok else "NOT clean"] += 1
            if not ok:
                odd.append(f"n{i} recovery: exit {rerun.returncode} {rerun.stderr.strip()[-200:]}")
    signalled = sum(by_signal[n]["interrupted"] for n in ("SIGINT", "SIGTERM"))
    lines = [
        "## 1. `devkit new` killed at a random point",
        "",
        f"Uninterrupted `devkit new`: {duration:.2f} s; kill delay uniform in [0, {duration:.2f}] s.",
        "",
        "| signal | runs | interrupted | complete | absent | incomplete, marked | incomplete |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, ctr in by_signal.items():
        total = ctr["interrupted"] + ctr["finished first"]
        lines.append(f"| {name} | {total} | {ctr['interrupted']} | {ctr['complete']} | "
                     f"{ctr['absent']} | {ctr['incomplete, marked']} | {ctr['incomplete']} |")
    lines += [
        "",
        (f"- workspaces complete or absent: {outcome['complete'] + outcome['absent']} of {runs}"
        f" ({outcome['incomplete, marked']} SIGKILLed after the rename: incomplete but marked, "
        f"{outcome['incomplete']} incomplete and unmarked)"),
        (f"- interrupted SIGINT/SIGTERM runs ending with at most one line on stderr, no traceback: "
        f"{one_line} of {signalled}"),
        f"- recoveries (`devkit new` again) clean: {_fmt(recovered)}",
    ]
    return lines + [f"- odd: {o}" for o in odd]


def _make_align_workspaces(c: Campaign) -> list[Path]:
    root = c.root / "align"
    root.mkdir()
    specs = [("low", ["tinyshared<1.1"], []), ("mid", ["tinyshared>=1"], ["tinyshared==1.1"]),
             ("top", ["tinyshared", "tinyother"], []),
             ("old", ["tinyshared>=1", "tinyother>=1"], ["tinyshared==1.0", "tinyother==1.0"])]
    paths = []
    for name, deps, pins in specs:
        path = root / name
        proc = c.run("new", str(path), "--defaults", "--no-sync")
        assert proc.returncode == 0, proc.stderr
        uv = shutil.which("uv") or "uv"
        c.tool(uv, "add", "-q", "--no-sync", *deps, cwd=path)
        for pin in pins:
            c.tool(uv, "lock", "-q", "-P", pin, cwd=path)
        c.tool("git", "commit", "-qam", "deps", cwd=path)
        paths.append(path)
    return paths


def phase_align(c: Campaign, runs: int, rng: random.Random) -> list[str]:
    paths = _make_align_workspaces(c)
    before = {p: (p / "uv.lock").read_bytes() for p in paths}
    start = time.perf_counter()
    proc = c.run("align")
    duration = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = {p: (p / "uv.lock").read_bytes() for p in paths}
    changed = sum(before[p] != after[p] for p in paths)
    backups = c.store / "align-backups"
    by_signal: dict[str, Counter[str]] = {name: Counter() for name in SIGNALS}
    odd: list[str] = []
    for i in range(runs):
        for p in paths:
            (p / "uv.lock").write_bytes(before[p])
        name = rng.choice(list(SIGNALS))
        interrupted, code, err = c.kill_at(c.start("align"), rng.uniform(0, duration),
                                           SIGNALS[name])
        ctr = by_signal[name]
        ctr["runs"] += 1
        ctr["interrupted"] += interrupted
        now = {p: (p / "uv.lock").read_bytes() for p in paths}
        ctr["locks"] += len(paths)
        ctr["old-or-new"] += sum(now[p] in (before[p], after[p]) for p in paths)
        ctr["old"] += sum(now[p] == before[p] for p in paths)
        if name != "SIGKILL" and interrupted and code != 130:
            odd.append(f"a{i} {name}: exit {code}: {err.strip()[-200:]}")
        rerun = c.run("align")
        final = all((p / "uv.lock").read_bytes() == after[p] for p in paths)
        tmp_left = list(backups.glob("*.tmp")) if backups.is_dir() else []
        json_left = list(backups.glob("*.json")) if backups.is_dir() else []
        ok = rerun.returncode == 0 and final and not tmp_left and not json_left
        ctr["recovered clean"] += ok
        if not ok:
            odd.append(f"a{i} {name} recovery: exit {rerun.returncode}, locks final {final}, "
                       f"{len(tmp_left)} *.tmp, {len(json_left)} backups left: "
                       f"{rerun.stderr.strip()[-200:]}")
    lines = [
        "## 2. `devkit align` killed at a random point",
        "",
        (f"{len(paths)} generated workspaces, {changed} of whose uv.lock files `devkit align` "
        f"changes; uninterrupted run {duration:.2f} s; kill delay uniform in [0, {duration:.2f}] s."),
        "",
        ("| signal | runs | interrupted | locks old-or-new right after | of which old | "
        "recoveries clean |"),
        "|---|---|---|---|---|---|",
    ]
    for name, ctr in by_signal.items():
        lines.append(f"| {name} | {ctr['runs']} | {ctr['interrupted']} | {ctr['old-or-new']} of "
                     f"{ctr['locks']} | {ctr['old']} | {ctr['recovered clean']} of {ctr['runs']} |")
    lines += ["", ("A recovery is the next `devkit align`: every lock ends byte-equal to the "
              "uninterrupted result, no `*.tmp` and no backup left in align-backups.")]
    return lines + [f"- odd: {o}" for o in odd]


def phase_parallel(c: Campaign, runs: int, rng: random.Random, width: int = 8) -> list[str]:
    ws = c.root / "parallel"
    ws.mkdir()
    outcome: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    odd: list[str] = []
    duration = None
    done = 0
    while done < runs:
        batch = list(range(done, min(runs, done + width)))
        start = time.perf_counter()
        procs = {i: c.start("new", str(ws / f"p{i}"), "--defaults") for i in batch}
        plan = {i: (rng.random() < 0.5, rng.choice(list(SIGNALS)), rng.uniform(0, duration or 5))
                for i in batch}
        for i in sorted(batch, key=lambda j: (not plan[j][0], plan[j][2])):
            kill, name, delay = plan[i]
            wait = max(0.0, start + delay - time.perf_counter()) if kill else None
            interrupted, code, err = c.kill_at(procs[i], wait if kill else 600, SIGNALS[name])
            key = "killed" if kill and interrupted else "ran to the end"
            outcome[key] += 1
            if key == "ran to the end" and code != 0:
                errors[err.strip().splitlines()[-1][:160] if err.strip() else f"exit {code}"] += 1
        if duration is None:
            duration = time.perf_counter() - start
        done += len(batch)
    states: Counter[str] = Counter()
    registered = set(c.registered())
    for i in range(runs):
        dst = ws / f"p{i}"
        state = c.state(dst)
        key = state if state in ("complete", "absent") else (
            "incomplete, marked" if c.temps(dst) else "incomplete")
        states[key] += 1
        if key == "incomplete":
            odd.append(f"p{i}: {state}")
        if (state == "complete") != (str(dst) in registered):
            odd.append(f"p{i}: registration does not match the directory ({state})")
        if state == "absent" and c.temps(dst):
            states["of the absent: with a marked temporary (removed by the next devkit new)"] += 1
    lines = [
        f"## 3. `devkit new`, {width} at a time on one store, half of them killed",
        "",
        (f"- runs: {runs}; killed while running: {outcome['killed']}; ran to the end: "
        f"{outcome['ran to the end']}"),
        f"- failures among the runs not killed: {sum(errors.values())}"
        + "".join(f"\n  - {n} x `{e}`" for e, n in errors.most_common()),
        f"- destinations: {_fmt(states)}",
        (f"- registry readable and matching the complete workspaces: "
        f"{'yes' if not any('registration' in o for o in odd) else 'NO'}"),
    ]
    return lines + [f"- odd: {o}" for o in odd]


def _tree(path: Path) -> dict[str, bytes]:
    """Every file of a workspace but ``.git`` and ``.venv``: relative path -> bytes."""
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*"))
            if f.is_file() and not {".git", ".venv"} & set(f.relative_to(path).parts)}


def _template_repo(c: Campaign) -> Path:
    """A git copy of the bundled template with one tag, v1.0.0 (a second comes later)."""
    tpl = c.root / "tpl"
    tpl.mkdir()
    shutil.copy2(ROOT / "copier.yml", tpl / "copier.yml")
    shutil.copytree(ROOT / "templates", tpl / "templates")
    c.tool("git", "init", "-q", "-b", "main", cwd=tpl)
    c.tool("git", "add", "-A", cwd=tpl)
    c.tool("git", "commit", "-qm", "v1", cwd=tpl)
    c.tool("git", "tag", "v1.0.0", cwd=tpl)
    return tpl


WIP = {"README.md": b"my unsaved README edit\n", "src/wip_module.py": b"VALUE = 1\n"}


def _put_back(c: Campaign, path: Path, dirty: bool) -> None:
    """Harness only: the workspace as before the update (HEAD, plus the user's work if dirty)."""
    c.tool("git", "reset", "-q", "--hard", "HEAD", cwd=path)
    c.tool("git", "clean", "-fdq", cwd=path)
    if dirty:
        for name, data in WIP.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)


def phase_update(c: Campaign, runs: int, rng: random.Random) -> list[str]:
    """`devkit update` of four workspaces (2 workers) killed at a random point: each workspace
    must be old or new, a dirty one untouched, the user's uncommitted work never lost."""
    tpl = _template_repo(c)
    root = c.root / "update"
    root.mkdir()
    paths = []
    for i in range(4):
        path = root / f"u{i}"
        proc = c.run("new", str(path), "--defaults", "--no-sync", "--template", str(tpl))
        assert proc.returncode == 0, proc.stderr
        paths.append(path)
    (paths[0] / "NOTES.md").write_text("my committed notes\n")
    c.tool("git", "add", "-A", cwd=paths[0])
    c.tool("git", "commit", "-qm", "notes", cwd=paths[0])
    dirty = paths[3]
    _put_back(c, dirty, True)
    envrc = tpl / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    gitignore = tpl / "templates" / "workspace" / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "/scratch/\n")
    c.tool("git", "commit", "-qam", "v2", cwd=tpl)
    c.tool("git", "tag", "v2.0.0", cwd=tpl)
    before = {p: _tree(p) for p in paths}
    start = time.perf_counter()
    proc = c.run("update", *map(str, paths), "--jobs", "2")
    duration = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = {p: _tree(p) for p in paths}
    assert after[dirty] == before[dirty] and all(after[p] != before[p] for p in paths[:3])
    by_signal: dict[str, Counter[str]] = {name: Counter() for name in SIGNALS}
    odd: list[str] = []
    for i in range(runs):
        for p in paths:
            _put_back(c, p, p == dirty)
        name = rng.choice(list(SIGNALS))
        interrupted, code, err = c.kill_at(c.start("update", *map(str, paths), "--jobs", "2"),
                                           rng.uniform(0, duration), SIGNALS[name])
        ctr = by_signal[name]
        ctr["runs"] += 1
        ctr["interrupted"] += interrupted
        for p in paths:
            now = _tree(p)
            ctr["workspaces"] += 1
            state = "old" if now == before[p] else "new" if now == after[p] else "partial"
            ctr[state] += 1
            if state == "partial":
                changed = sorted(k for k in set(now) | set(before[p])
                                 if now.get(k) != before[p].get(k))
                odd.append(f"u{i} {name} {p.name}: partial ({', '.join(changed)})")
        kept = all((dirty / n).read_bytes() == d for n, d in WIP.items())
        ctr["user work kept"] += kept
        if not kept:
            odd.append(f"u{i} {name}: the user's uncommitted work in {dirty.name} was LOST")
        if name != "SIGKILL" and interrupted and code not in (0, 1, 130):
            odd.append(f"u{i} {name}: exit {code}: {err.strip()[-200:]}")
        rerun = c.run("update", *map(str, paths), "--jobs", "2", "--json")
        try:
            report = json.loads(rerun.stdout)["projects"]
        except ValueError:
            report = []
        undone = 0
        for project in report:  # a SIGKILLed update: the next one names it and its undo
            reason = project.get("reason") or ""
            if "an interrupted `devkit update`" in reason:
                undo = reason.split("undo them with `", 1)[1].split("`", 1)[0]
                subprocess.run(undo, shell=True, check=True, capture_output=True)
                undone += 1
        if undone:
            ctr["named and undone"] += undone
            rerun = c.run("update", *map(str, paths), "--jobs", "2")
        final = all(_tree(p) == after[p] for p in paths)
        ctr["recovered"] += final
        if not final:
            odd.append(f"u{i} {name} recovery: exit {rerun.returncode}, not every workspace "
                       f"updated: {(rerun.stdout + rerun.stderr).strip()[-400:]}")
    lines = [
        "## 4. `devkit update` killed at a random point",
        "",
        (f"4 workspaces made from a git template at v1.0.0, updated to v2.0.0 with 2 worker "
         f"processes; one has uncommitted work (an edited README, a new module) and must be "
         f"skipped untouched. Uninterrupted run {duration:.2f} s; kill delay uniform in "
         f"[0, {duration:.2f}] s. A recovery is the next `devkit update` (after running the "
         "undo it names for a workspace a SIGKILL left partial): every workspace updated, the "
         "dirty one untouched."),
        "",
        ("| signal | runs | interrupted | workspaces old | new | partial | user's work kept | "
         "partial named and undone | recoveries |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ctr in by_signal.items():
        lines.append(f"| {name} | {ctr['runs']} | {ctr['interrupted']} | {ctr['old']} | "
                     f"{ctr['new']} | {ctr['partial']} of {ctr['workspaces']} | "
                     f"{ctr['user work kept']} of {ctr['runs']} | {ctr['named and undone']} | "
                     f"{ctr['recovered']} of {ctr['runs']} |")
    return lines + [f"- odd: {o}" for o in odd]


def phase_sync(c: Campaign, runs: int, rng: random.Random) -> list[str]:
    """`devkit sync` rebuilding a venv linked from another uv cache, killed at a random point:
    ``.venv`` complete or absent, any leftover cleaned by the next sync."""
    path = c.root / "sync" / "s0"
    proc = c.run("new", str(path), "--defaults", "--no-sync")
    assert proc.returncode == 0, proc.stderr
    uv = shutil.which("uv") or "uv"
    c.tool(uv, "add", "-q", "--no-sync", "tinyshared", "tinyother", cwd=path)
    c.tool("git", "commit", "-qam", "deps", cwd=path)
    user = _tree(path)
    other = {**c.env, "UV_CACHE_DIR": str(c.root / "other-cache")}
    store_env = {**c.env, "UV_CACHE_DIR": str(c.store / "uv" / "cache"),
                 "UV_PYTHON_INSTALL_DIR": str(c.store / "uv" / "python")}

    def foreign_venv() -> None:
        shutil.rmtree(path / ".venv", ignore_errors=True)
        subprocess.run([uv, "sync", "--locked", "-q"], cwd=path, env=other, check=True,
                       capture_output=True, timeout=600)

    def venv_state() -> str:
        if not (path / ".venv").exists():
            return "absent"
        check = subprocess.run([uv, "sync", "--locked", "--check", "--offline"], check=False,
                               cwd=path,
                               env=store_env, capture_output=True, timeout=600)
        return "complete" if check.returncode == 0 else "incomplete"

    foreign_venv()
    start = time.perf_counter()
    proc = c.run("sync", str(path))
    duration = time.perf_counter() - start
    assert proc.returncode == 0 and "rebuilt" in proc.stdout, proc.stdout + proc.stderr
    by_signal: dict[str, Counter[str]] = {name: Counter() for name in SIGNALS}
    odd: list[str] = []
    for i in range(runs):
        foreign_venv()
        name = rng.choice(list(SIGNALS))
        interrupted, code, err = c.kill_at(c.start("sync", str(path)), rng.uniform(0, duration),
                                           SIGNALS[name])
        ctr = by_signal[name]
        ctr["runs"] += 1
        ctr["interrupted"] += interrupted
        state = venv_state()
        ctr[state] += 1
        left = list(path.glob(".venv.devkit-old-*"))
        ctr["leftover"] += bool(left)
        if state == "incomplete":
            odd.append(f"s{i} {name}: .venv incomplete right after the kill")
        if name != "SIGKILL" and interrupted and code not in (0, 130):
            odd.append(f"s{i} {name}: exit {code}: {err.strip()[-200:]}")
        rerun = c.run("sync", str(path))
        ok = (rerun.returncode == 0 and venv_state() == "complete"
              and not list(path.glob(".venv.devkit-old-*")) and _tree(path) == user)
        ctr["recovered"] += ok
        if not ok:
            odd.append(f"s{i} {name} recovery: exit {rerun.returncode}: "
                       f"{(rerun.stdout + rerun.stderr).strip()[-300:]}")
    lines = [
        "## 5. `devkit sync` killed while it rebuilds a `.venv`",
        "",
        (f"A workspace whose `.venv` was built from another uv cache, so `devkit sync` moves it "
         f"aside and rebuilds it. Uninterrupted run {duration:.2f} s; kill delay uniform in "
         f"[0, {duration:.2f}] s. A recovery is the next `devkit sync`: exit 0, `.venv` "
         "matching `uv.lock`, no `.venv.devkit-old-*` left, the workspace's files unchanged."),
        "",
        ("| signal | runs | interrupted | .venv complete | absent | incomplete | leftover "
         "right after | recoveries |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, ctr in by_signal.items():
        lines.append(f"| {name} | {ctr['runs']} | {ctr['interrupted']} | {ctr['complete']} | "
                     f"{ctr['absent']} | {ctr['incomplete']} | {ctr['leftover']} | "
                     f"{ctr['recovered']} of {ctr['runs']} |")
    return lines + [f"- odd: {o}" for o in odd]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--phases", default="new,align,parallel,update,sync")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="devkit-faults-"))
    c = Campaign(root)
    started = time.perf_counter()
    lines = [
        "# Fault campaign",
        "",
        (f"`python bench/faults.py --runs {args.runs} --seed {args.seed}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, offline, local index of tiny wheels)"),
        "",
    ]
    phases = {"new": phase_new, "align": phase_align, "parallel": phase_parallel,
              "update": phase_update, "sync": phase_sync}
    for name in args.phases.split(","):
        lines += phases[name](c, args.runs, rng) + [""]
    lines.append(f"Total time: {time.perf_counter() - started:.0f} s.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
