"""The only module that runs uv. Failures become :class:`UvError` with uv's own explanation."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devkit import toolversions
from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output, make_private_dirs

if TYPE_CHECKING:
    from devkit.store import Store

UV_RUN_TIMEOUT = 900.0  # seconds for one uv run (`uv lock`, `uv sync`): resolution may hit the index
LOCK_TIMEOUT = UV_RUN_TIMEOUT  # the former name, kept for callers


class UvError(DevkitError):
    """uv exited non-zero; ``output`` holds its stderr (the resolver's explanation)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@functools.cache
def find_uv() -> str:
    """Path of the uv binary: ``DEVKIT_UV`` if set, then PATH, then the ``uv`` package's own binary.

    The PyPI ``uv`` package (a devkit dependency) ships the binary, so a plain ``pip install devkit``
    brings it. Raises DevkitError when none is found.
    """
    if os.environ.get("DEVKIT_UV"):
        return os.environ["DEVKIT_UV"]
    found = shutil.which("uv")
    if found:
        return found
    try:
        import uv as uv_package

        return str(uv_package.find_uv_bin())
    except (ImportError, FileNotFoundError) as exc:
        raise DevkitError("uv not found: install it with `pip install uv` or see docs.astral.sh/uv") from exc


TOOL_NAMES = ("uv", "uvx")


def expose(bin_dir: Path) -> Path:
    """Link ``bin_dir/uv`` (and ``bin_dir/uvx`` when it sits next to it) to the uv devkit uses.

    The target is :func:`find_uv` resolved to the real file (``DEVKIT_UV``, PATH, or the ``uv``
    package's binary, as pip, pipx or ``uv tool install`` put it): a workspace's ``.envrc.sh``
    puts ``bin_dir`` first on PATH, so its tasks run that uv whatever way devkit was installed.
    Each link is replaced atomically (a temporary link renamed over it); ``bin_dir`` is made
    mode 0700. Returns the resolved uv binary. Raises DevkitError when no uv is found or the
    links cannot be written.
    """
    target = Path(os.path.realpath(find_uv()))
    try:
        make_private_dirs(bin_dir)
        for name in TOOL_NAMES:
            source = target if name == "uv" else target.with_name("uvx" + target.suffix)
            if not source.is_file():
                continue
            link = bin_dir / (name + target.suffix)
            if link.is_symlink() and os.readlink(link) == str(source):
                continue
            temp = bin_dir / f".{name}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            temp.symlink_to(source)
            os.replace(temp, link)
    except OSError as exc:
        raise DevkitError(f"cannot link uv into {bin_dir}: {exc.strerror or exc}") from exc
    return target


def exposed(bin_dir: Path) -> Path | None:
    """The uv binary ``bin_dir/uv`` leads to when it is an executable file, else None."""
    link = bin_dir / "uv"
    try:
        real = Path(os.path.realpath(link))
        return real if real.is_file() and os.access(real, os.X_OK) else None
    except OSError:
        return None


def run(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, what: str = ""
) -> str:
    """Run ``uv ARGS`` and return its stderr+stdout text.

    Raises UvError("<what> failed: <uv's error line>") on a non-zero exit.
    """
    cmd = [find_uv(), *args]
    try:
        proc = cmd_output(*cmd, cwd=cwd, env=env, timeout=UV_RUN_TIMEOUT)
    except CalledProcessError as exc:
        label = what or f"uv {args[0]}"
        raise UvError(f"{label} failed: {explain(exc.stderr or exc.stdout)}", exc.stderr) from exc
    except FileNotFoundError as exc:
        raise DevkitError(f"cannot run uv ({cmd[0]}): {exc}") from exc
    return proc.stderr + proc.stdout


def explain(output: str) -> str:
    """The resolver's reason in one line: the ``cause:``/``Because …`` sentence, else the error line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        bare = line.removeprefix("╰─▶").removeprefix("cause:").strip()
        if bare.startswith("Because"):
            text = bare
            tail = []
            for nxt in lines[i + 1 : i + 4]:
                if nxt.startswith(("hint:", "help:", "error:")):
                    break
                tail.append(nxt)
            return " ".join([text, *tail]).strip()
    for line in reversed(lines):
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    return lines[-1] if lines else "no output"


def parse_version(output: str) -> str | None:
    """The version in ``uv --version`` output (``uv 0.13.9 (abc 2025-10-30)`` gives ``"0.13.9"``),
    or None."""
    match = re.search(r"uv (\d+\.\d+\.\d+\S*)", output)
    return match.group(1) if match else None


def version() -> str:
    """uv's version string, e.g. ``"0.13.9"``. Raises DevkitError if uv cannot run."""
    out = run("--version", what="uv --version")
    found = parse_version(out)
    if found is None:
        raise DevkitError(f"cannot parse `uv --version` output: {out.strip()!r}")
    return found


@functools.cache
def _version_of(binary: str) -> str:
    del binary  # the cache key: one `uv --version` per binary and process
    return version()


def version_once(store: Store | None = None) -> str:
    """:func:`version` of :func:`find_uv`'s binary, asked once per process (each ``uv --version``
    costs a process start). With ``store``, read from its memo of ``--version`` outputs while the
    binary is the same file (:mod:`devkit.toolversions`, shared with doctor), and remembered
    there when asked. Raises DevkitError if uv cannot run."""
    binary = find_uv()
    if store is None:
        return _version_of(binary)
    key = toolversions.binary_key(binary)
    if key is not None:
        found = toolversions.known(toolversions.read(store), binary, key)
        remembered = parse_version(found[0]) if found is not None else None
        if remembered is not None:
            return remembered
    cmd = [binary, "--version"]
    try:
        proc = cmd_output(*cmd, timeout=UV_RUN_TIMEOUT)
    except (CalledProcessError, OSError) as exc:
        raise DevkitError(f"cannot run uv ({binary}): {exc}") from exc
    found_version = parse_version(proc.stdout)
    if found_version is None:
        raise DevkitError(f"cannot parse `uv --version` output: {proc.stdout.strip()!r}")
    if key is not None and toolversions.binary_key(binary) == key:
        toolversions.remember(store, binary, key, proc.stdout, proc.stderr)
    return found_version


def find_python(request: str, *, env: Mapping[str, str]) -> str | None:
    """The interpreter uv would use for ``request`` (``3.13``) without downloading, or None.

    ``uv python find`` looks in virtual environments, the managed installs
    (``UV_PYTHON_INSTALL_DIR``) and PATH and never downloads (uv docs, concepts/python-versions).
    Raises nothing.
    """
    try:
        out = cmd_output(find_uv(), "python", "find", "--no-project", request, env=env,
                         timeout=60.0)
    except (CalledProcessError, OSError, DevkitError):
        return None
    return out.stdout.strip() or None


def installed_pythons(*, env: Mapping[str, str]) -> list[str]:
    """``major.minor`` of every Python uv finds without downloading, newest first (from
    ``uv python list --only-installed --output-format json``). Raises nothing: [] on any error."""
    import json

    try:
        out = cmd_output(find_uv(), "python", "list", "--only-installed", "--output-format",
                         "json", env=env, timeout=60.0)
        entries = json.loads(out.stdout)
    except (CalledProcessError, OSError, DevkitError, ValueError):
        return []
    found: list[tuple[int, int]] = []
    for entry in entries if isinstance(entries, list) else []:
        info = entry.get("version_parts") if isinstance(entry, dict) else None
        if isinstance(info, dict) and isinstance(info.get("major"), int) \
                and isinstance(info.get("minor"), int):
            pair = (info["major"], info["minor"])
            if pair not in found:
                found.append(pair)
    return [f"{a}.{b}" for a, b in sorted(found, reverse=True)]


def lock(
    project: Path,
    *,
    env: Mapping[str, str],
    upgrade_packages: Iterable[str] = (),
    check: bool = False,
    dry_run: bool = False,
    offline: bool = False,
    read_only: bool = False,
) -> str:
    """``uv lock`` in ``project``; each ``upgrade_packages`` entry (``NAME==VER``) becomes one ``-P``.

    ``-P NAME==VER`` is a hard pin for this run; on a conflict uv exits 1 and leaves ``uv.lock``
    byte-identical (uv docs, concepts/projects/sync). ``read_only`` (``devkit align --dry-run`` /
    ``--check``) adds ``--offline --no-build``: no network, no build of any package (uv still
    calls a project's own backend for dynamic metadata: callers ask
    :func:`devkit.workspace_code.uv_blocker` first, which also refuses a ``.venv`` devkit did
    not create: uv queries its interpreter). Returns uv's output.
    Raises UvError with the resolver's explanation.
    """
    args = ["lock", "--project", str(project)]
    for spec in upgrade_packages:
        args += ["--upgrade-package", spec]
    if check:
        args.append("--check")
    if dry_run:
        args.append("--dry-run")
    if offline or read_only:
        args.append("--offline")
    if read_only:
        args.append("--no-build")
    return run(*args, cwd=project, env=env, what=f"uv lock in {project}")


def lock_cache_first(project: Path, *, env: Mapping[str, str], upgrade_packages: Iterable[str],
                     dry_run: bool = False, on_run: Callable[[], None] = lambda: None) -> str:
    """:func:`lock` from the cache alone, then online only when the cache lacked something.

    ``-P`` implies ``--refresh-package`` (``uv lock --help``): online, each run revalidates the
    index page of every ``-P`` package, several seconds per run for a hundred of them (8.5 s
    against 0.24 s offline on one 112-package project). uv says when an offline run missed a
    package (:func:`needs_network`); only then is the run repeated online. The locks uv finds
    offline satisfy the same requirements; a newer release this machine never fetched is seen
    only once a run needs the network. ``on_run`` is called before each uv run (1 or 2).
    A ``dry_run`` is read-only: one run, ``--offline --no-build`` (see :func:`lock`).
    Returns uv's output; raises UvError as :func:`lock`.
    """
    specs = list(upgrade_packages)
    try:
        on_run()
        return lock(project, env=env, upgrade_packages=specs, dry_run=dry_run, offline=True,
                    read_only=dry_run)
    except UvError as exc:
        if dry_run or not needs_network(exc.output):
            raise
    on_run()
    return lock(project, env=env, upgrade_packages=specs, dry_run=dry_run)


def sync(project: Path, *, env: Mapping[str, str], locked: bool = True,
         python: str | None = None) -> str:
    """``uv sync`` in ``project`` (``--locked``: fail rather than change the lock). ``python``: an
    interpreter path uv already chose for this project (:func:`interpreter_used`), passed as
    ``--python`` so that uv does not discover it again. Raises UvError."""
    args = ["sync", "--project", str(project)]
    if locked:
        args.append("--locked")
    if python is not None:
        args += ["--python", python]
    return run(*args, cwd=project, env=env, what=f"uv sync in {project}")


_INTERPRETER_LINE = re.compile(r"^Using \S+ \S+ interpreter at: (/.+)$", re.MULTILINE)


def interpreter_used(output: str) -> str | None:
    """The interpreter uv says it used (``Using CPython 3.11.7 interpreter at: /path/python3.11``,
    printed by ``uv lock`` / ``uv sync`` when no project environment exists yet), when it is
    still an executable file; else None.

    uv discovers the Python of a project without an environment anew in every run: it queries
    each candidate on PATH, and a pyenv shim found there is a shell script that takes ~0.2 s
    (uv docs, concepts/python-versions, "Discovery of Python versions"). Passing the answer of
    one run to the next as ``--python`` skips that."""
    found = _INTERPRETER_LINE.search(output)
    if found is None:
        return None
    path = found.group(1).strip()
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@dataclasses.dataclass(frozen=True)
class Change:
    """One line of uv's install summary: ``action`` is ``+`` (installed), ``-`` (uninstalled) or
    ``~`` (reinstalled, e.g. the project itself); ``version`` as uv prints it."""

    action: str
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.action} {self.name}=={self.version}"


_CHANGE_LINE = re.compile(r"^\s*([-+~]) ([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def parse_changes(output: str) -> list[Change]:
    """The ``+ name==ver`` / ``- name==ver`` / ``~ name==ver (from …)`` lines of ``uv sync`` output.

    uv prints them after "Installed N packages" / "Uninstalled N packages" (uv docs,
    concepts/projects/sync); other lines (Resolved, Prepared, warnings) are ignored.
    """
    changes = []
    for line in output.splitlines():
        match = _CHANGE_LINE.match(line)
        if match:
            changes.append(Change(*match.groups()))
    return changes


def sync_check(project: Path, *, env: Mapping[str, str],
               build: bool = False) -> tuple[bool, list[str]]:
    """Does ``project``'s ``.venv`` match its ``uv.lock``? Returns (current, changes).

    Runs ``uv sync --check --locked --offline --no-build``: it installs nothing, never touches the
    network and never runs a build backend (uv docs, reference/cli ``uv sync --check``: "exits with
    an error if the environment is not up to date"). ``changes`` are uv's ``+ name==ver`` /
    ``- name==ver`` lines. A missing ``.venv`` is reported as not current. Raises UvError when uv
    cannot tell, with uv's reason (e.g. a stale lock that ``--locked`` refuses; uv 0.13.9 does not
    always refuse one: when the venv is outdated too it reports the venv against the re-resolved
    lock, so "not current" does not prove the lock is up to date — ``uv lock --check`` does).
    ``--no-build`` does not stop uv from running the project's own build backend for dynamic
    metadata: callers in a workspace devkit did not create ask
    :func:`devkit.workspace_code.uv_blocker` first. uv 0.13.9 refuses a lock holding a package
    only an sdist provides under ``--no-build`` even when the venv holds it already: then
    UvError says so, and ``build=True`` (for a caller about to run ``uv sync``, which builds
    anyway) leaves ``--no-build`` out; an installed package is never rebuilt by the check.
    A wheel the offline cache lacks means the venv does not hold it: not current.
    """
    if not (project / ".venv").exists():
        return False, ["(no .venv)"]
    cmd = [find_uv(), "sync", "--check", "--locked", "--offline",
           *(() if build else ("--no-build",)), "--project", str(project)]
    try:
        proc = cmd_output(*cmd, cwd=project, env=env, check=False, timeout=UV_RUN_TIMEOUT)
    except FileNotFoundError as exc:
        raise DevkitError(f"cannot run uv ({cmd[0]}): {exc}") from exc
    output = proc.stderr + proc.stdout
    changes = [str(change) for change in parse_changes(output)]
    if proc.returncode == 0:
        return True, []
    if "environment is outdated" in output:
        return False, changes
    missing = _NO_BUILD_MISS.search(output)
    if missing:
        # uv refuses a package only an sdist provides under `--no-build`, even one the venv
        # already holds (uv 0.13.9): only a check that may build can tell
        raise UvError(f"cannot tell whether {project}/.venv is current without building "
                      f"{missing[1]}=={missing[2]} (no wheel for it): devkit sync can",
                      proc.stderr)
    if any(hint in output for hint in OFFLINE_MISS):
        # the plan needs a wheel the cache lacks, so the venv does not hold it yet
        return False, ["+ a package not in the cache (to download)"]
    raise UvError(f"uv sync --check in {project} failed: {explain(output)}", proc.stderr)


# -- parsing uv's text output (uv 0.13; each function is tested against real uv output) ----------
CONFLICT = "No solution found when resolving dependencies"
STALE = "needs to be updated"
# `--offline` and the cache lacked something: uv 0.13 adds this hint to a failed resolution
# ("Packages were unavailable because the network was disabled. …") or fails a fetch outright
OFFLINE_MISS = ("because the network was disabled", "Network connectivity is disabled")
# `--no-build` and the plan needs a package only an sdist provides: "Distribution `NAME==VER @
# registry+URL` can't be installed because it is marked as `--no-build` but has no binary
# distribution" (uv 0.13)
_NO_BUILD_MISS = re.compile(r"Distribution `([^=`\s]+)==([^@`\s]+)[^`]*` can't be installed "
                            r"because it is marked as `--no-build`")
_LOCK_CHANGE_LINE = re.compile(
    r"^(Update|Add|Remove)d? (\S+) (v\S+(?:, v\S+)*)(?: -> (v\S+(?:, v\S+)*))?$")
# "Because tinyparent==1.0 depends on …", "… and opentelemetry-sdk==1.32.1 depends on …",
# "pycookiecheat>=0.8.0 depends on …", "django-stubs[compatible-mypy]==5.2.2 depends on …"
_DEPENDS = re.compile(
    r"(?:^|[Bb]ecause |and |, )([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?:\{[^}]*\})?"
    r"(?:[=<>!~]=?[^\s,]+(?:,[<>=!~]=?[^\s,]+)*)? depends on ")


def is_conflict(output: str) -> bool:
    """Does ``output`` of a failed ``uv lock`` report an unsatisfiable resolution?"""
    return CONFLICT in output


def needs_network(output: str) -> bool:
    """Did an ``--offline`` uv run fail for data its cache lacks (so a run online may succeed)?"""
    return any(marker in output for marker in OFFLINE_MISS)


def is_stale(output: str) -> bool:
    """Does ``output`` of a failed ``uv lock --check`` say the lock must be re-locked?"""
    return STALE in output


def conflict_reason(output: str, project: str) -> str:
    """uv's whole explanation of a failed resolution in one line, "your project" named ``project``.

    Takes every ``Because …`` paragraph uv prints after ``No solution found`` (uv 0.13:
    ``cause: Because your project depends on rich>=13,<14 and rich==14.0.0, …``; a long proof
    comes as several paragraphs separated by blank lines, later ones citing earlier conclusions
    as ``(1)``) up to its ``hint:``/``help:`` lines, joins the ``only the following versions of
    X are available:`` lists with commas, and adds the exclude-newer hint when uv gives one.
    """
    lines = [ln.strip() for ln in output.splitlines()]
    text: list[str] = []
    listing = False  # inside "only the following versions of X are available:"
    for line in lines:
        bare = line.removeprefix("╰─▶").removeprefix("cause:").strip()
        if text and line.startswith(("hint:", "help:", "error:", "warning:")):
            break
        if not text and not bare.startswith("Because"):
            continue
        if not bare:
            continue  # a blank line between two paragraphs of one explanation
        if listing:
            if not bare.startswith(("we ", "and ", "And ", "Because")):
                text[-1] += (" " if text[-1].endswith(":") else ", ") + bare
                continue
            text[-1] += ","  # the list ended: "…: a<=1.0, a>=1.1, we can conclude …"
        listing = bare.endswith("are available:")
        text.append(bare)
    reason = " ".join(text) or explain(output)
    if any(ln.startswith("hint:") and "exclude-newer" in ln for ln in lines):
        reason += " (filtered by exclude-newer)"
    return re.sub(r"\s+", " ", reason.replace("your project", f"project {project}")).strip()


def conflict_parents(output: str) -> list[str]:
    """Names of the packages uv's explanation says depend on something, in order of mention.

    ``Because tinyparent==1.0 depends on tinyshared<2 and tinyshared==2.0, …`` gives
    ``["tinyparent"]``; "your project" and workspace members (``name:dev``) are not packages
    and are left out. Names are PEP 503 normalised.
    """
    text = re.sub(r"\s+", " ", " ".join(
        ln.strip().removeprefix("╰─▶").removeprefix("cause:").strip()
        for ln in output.splitlines()))
    found: list[str] = []
    for match in _DEPENDS.finditer(text):
        name = match.group(1).lower().replace("_", "-").replace(".", "-")
        if name in ("project", "it") or name in found:
            continue
        found.append(name)
    return found


def mentions(output: str, spec: str) -> bool:
    """Does uv's ``output`` name ``spec`` (``NAME==VER``) as a whole word?"""
    return re.search(rf"(?<![\w.-]){re.escape(spec)}(?![\w.])", output) is not None


def lock_changes(output: str) -> list[tuple[str, list[str], list[str]]]:
    """``(name, old versions, new versions)`` from ``uv lock [--dry-run]`` output.

    uv prints ``Update name v1 -> v2`` (``Updated`` when it wrote), ``Add name v1``,
    ``Remove name v1``; a forked package lists several versions (``v1, v2``).
    """
    changes = []
    for line in output.splitlines():
        match = _LOCK_CHANGE_LINE.match(line.strip())
        if not match:
            continue
        verb, name, old, new = match.groups()
        def split(text: str | None) -> list[str]:
            return [v.strip().removeprefix("v") for v in (text or "").split(",") if v.strip()]
        if verb == "Update":
            changes.append((name, split(old), split(new)))
        elif verb == "Add":
            changes.append((name, [], split(old)))
        else:
            changes.append((name, split(old), []))
    return changes


# -- the cache and managed Pythons (``devkit gc``) ------------------------------------------------
_LOCK_WAIT = "when waiting for lock"  # uv 0.13: "error: Timeout (2s) when waiting for lock on …"


def _cache_run(args: list[str], *, env: Mapping[str, str], cache_dir: Path, timeout: float,
               what: str) -> str:
    """``uv ARGS`` that takes the cache lock exclusively, waiting ``timeout`` seconds for it
    (``UV_LOCK_TIMEOUT``, uv >= 0.9.4). Never ``--force``. Raises CacheBusy on the timeout,
    UvError otherwise."""
    from devkit import uvcache

    try:
        return run(*args, env={**env, "UV_LOCK_TIMEOUT": str(max(1, round(timeout)))}, what=what)
    except UvError as exc:
        if _LOCK_WAIT in exc.output or "is another uv process running" in exc.output:
            raise uvcache.CacheBusy(uvcache.busy_message(cache_dir, timeout)) from exc
        raise


def cache_clean(names: Iterable[str], *, env: Mapping[str, str], cache_dir: Path,
                timeout: float) -> str:
    """``uv cache clean NAME...``: every cached entry of those packages (uv docs, reference/cli
    ``uv cache clean``). Waits ``timeout`` seconds for other uv processes; raises
    :class:`devkit.uvcache.CacheBusy` after that, UvError on other failures."""
    return _cache_run(["cache", "clean", *names], env=env, cache_dir=cache_dir, timeout=timeout,
                      what="uv cache clean")


def cache_prune(*, env: Mapping[str, str], cache_dir: Path, timeout: float) -> str:
    """``uv cache prune``: unreferenced archives, old buckets, cached environments (uv docs,
    concepts/cache). Waits/raises as :func:`cache_clean`."""
    return _cache_run(["cache", "prune"], env=env, cache_dir=cache_dir, timeout=timeout,
                      what="uv cache prune")


def python_uninstall(keys: Iterable[str], *, env: Mapping[str, str]) -> str:
    """``uv python uninstall KEY...`` (uv docs, guides/install-python). Raises UvError."""
    return run("python", "uninstall", *keys, env=env, what="uv python uninstall")


def tool_dir(*, env: Mapping[str, str]) -> Path:
    """Where ``uv tool`` keeps its environments: ``uv tool dir``. Raises UvError."""
    return Path(_stdout("tool", "dir", env=env, what="uv tool dir").strip())


def _stdout(*args: str, env: Mapping[str, str], what: str) -> str:
    """``uv ARGS``'s stdout alone (warnings go to stderr). Raises UvError as :func:`run`."""
    try:
        return cmd_output(find_uv(), *args, env=env, timeout=UV_RUN_TIMEOUT).stdout
    except CalledProcessError as exc:
        raise UvError(f"{what} failed: {explain(exc.stderr or exc.stdout)}", exc.stderr) from exc
    except FileNotFoundError as exc:
        raise DevkitError(f"cannot run uv: {exc}") from exc
