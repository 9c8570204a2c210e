"""``devkit update``: bring workspaces onto the current version of their template with copier.

Flow: refresh the store's template repository to the installed devkit's template (an immutable
tag, :func:`devkit.template.ensure_template_repo`); per workspace, check it can be updated
(directory, answers file, template source, git, no uncommitted changes), then, under the
workspace's mutex (:meth:`devkit.store.Store.workspace_mutex`), check again, snapshot what
``git status`` lists, run copier's update with the recorded answers
(:func:`devkit.template.update`) and report what changed: a failure puts back only the files
changed since the snapshot, and the undo command printed names only those. Copier changes
the process's working directory and warning filters while it runs, so each update runs in its own
worker process (``--jobs`` of them at a time); one workspace's failure never stops the others.
Nothing is committed: the user reviews with ``git diff`` and commits, or undoes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit import git, private, template, trust, workspaces
from devkit.errors import DevkitError, describe
from devkit.registry import Registry
from devkit.store import Store
from devkit.util import atomic_write_text, pid_alive, shielded

JSON_VERSION = 1
ANSWERS_FILE = template.ANSWERS_FILE
LOADER_CONFIGS = (".mise.toml", ".envrc")
STATUSES = ("updated", "current", "conflicts", "skipped", "failed")
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")
_UNMERGED = {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}
WORKER_STOP_WAIT = 60.0  # seconds an interrupted run waits for each worker to restore its workspace


@dataclasses.dataclass
class Result:
    """One workspace's outcome. ``status`` is one of STATUSES; versions are ``_commit`` values;
    ``files`` and ``conflicts`` are paths relative to the workspace; ``reason`` is one line."""

    path: Path
    name: str
    status: str = "current"
    source: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    files: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[str] = dataclasses.field(default_factory=list)
    reason: str | None = None
    loaders_rendered: bool = False  # a loader file changed without conflict: retrust() checks
    trust: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    undo: str | None = None  # the shell command that reverts this update's files, and only them

    def to_json(self) -> dict[str, Any]:
        """The ``projects[]`` shape of ``devkit update --json``."""
        return {"path": str(self.path), "name": self.name, "status": self.status,
                "source": self.source, "from_version": self.from_version,
                "to_version": self.to_version, "files": self.files, "conflicts": self.conflicts,
                "reason": self.reason, "trust": self.trust, "undo": self.undo,
                "seconds": round(self.seconds, 3)}


@dataclasses.dataclass(frozen=True)
class Job:
    """An update to run: workspace ``path``, copier ``vcs_ref`` (None = newest tag), dry run?
    ``data``: answers given anew (``--data KEY=VALUE``), over the recorded ones."""

    path: Path
    name: str
    source: str
    vcs_ref: str | None
    from_version: str
    dry_run: bool
    repoint: str | None = None  # the store's tag with the same template as ``source``
    home: str | None = None  # the store (its workspace mutexes); None: the environment's
    data: dict[str, str] = dataclasses.field(default_factory=dict)


# -- choosing the workspaces ---------------------------------------------------------------------
def workspace_root(path: Path) -> Path | None:
    """The workspace holding ``path`` (:func:`devkit.workspaces.find`), else the nearest directory
    from ``path`` up with a copier answers file (another template's project), or None."""
    found = workspaces.find(path)
    if found is not None:
        return found.path
    path = path.absolute()
    for directory in (path, *path.parents):
        if (directory / ANSWERS_FILE).is_file():
            return directory
    return None


def targets(paths: Sequence[Path], *, all_: bool, store: Store) -> list[tuple[Path, str]]:
    """``(absolute path, display name)`` of the workspaces to update.

    ``paths`` (each resolved to the workspace holding it), every registered one with ``all_``, or
    the workspace holding the current directory. Raises DevkitError for ``paths`` with ``all_``,
    an empty registry, or no workspace around the current directory.
    """
    registry = Registry(store)
    if all_:
        if paths:
            raise DevkitError("give workspace PATHs or --all, not both")
        projects = registry.projects()
        if not projects:
            raise DevkitError("no registered workspaces: create one with `devkit new` or register "
                              "one with `devkit projects add PATH`")
        return [(p.path, p.name) for p in projects]
    if not paths:
        root = workspace_root(Path.cwd())
        if root is None:
            raise DevkitError(f"{Path.cwd()} is not inside a workspace (no .envrc.sh or "
                              f"{ANSWERS_FILE} here or above): give its PATH, or --all for every "
                              "registered workspace")
        paths = [root]
    found: dict[Path, str] = {}
    for given in paths:
        path = given.expanduser().absolute()
        root = workspace_root(path) if path.is_dir() else None
        path = (root or path).resolve() if path.exists() else path
        registered = registry.find(path) if path.exists() else None
        found.setdefault(path, registered.name if registered else path.name)
    return list(found.items())


def plan(path: Path, name: str, *, store: Store, current: template.TemplateVersion,
         vcs_ref: str | None, dry_run: bool,
         data: Mapping[str, str] | None = None) -> Job | Result:
    """Decide what to do with one workspace: a :class:`Job` for copier, or a final
    :class:`Result` (``skipped`` with the reason, or ``current``). With ``data`` (new answers)
    a workspace already at the target version is updated too: copier re-renders it with them.
    Never raises."""
    result = Result(path, name, status="skipped")
    q = shlex.quote(str(path))
    if not path.is_dir():
        result.reason = (f"missing directory: {path} does not exist (unregister it with "
                         f"`devkit projects remove {q}`)")
        return result
    try:
        record = private.load(store, path)
    except DevkitError as exc:
        result.status, result.reason = "failed", str(exc)
        return result
    if record is not None:
        return update_private(record, name, store=store, target=vcs_ref or current.tag,
                              dry_run=dry_run)
    if not (path / ANSWERS_FILE).is_file():
        if (path / workspaces.ENV_SCRIPT).is_file():
            result.reason = (f"adopted workspace: devkit gave it only its environment files, not "
                             f"the template, so there is nothing to update (`devkit adopt {q}` "
                             "adds any that are missing)")
        else:
            result.reason = f"not made from a template: {path} has no {ANSWERS_FILE}"
        return result
    try:
        answers = template.read_answers(path)
    except DevkitError as exc:
        result.reason = str(exc)
        return result
    src, commit = answers.get("_src_path"), answers.get("_commit")
    result.source = str(src) if src else None
    result.from_version = str(commit) if commit else None
    if not isinstance(src, str) or not src or not commit:
        result.reason = (f"foreign template: {ANSWERS_FILE} names no versioned template "
                         "(_src_path and _commit), so copier cannot update it")
        return result
    own = template.is_store_source(src, store)
    repoint = None if own else template.store_tag_of(src, str(commit), store)
    problem = None if own or repoint else template.check_source(src)
    if problem and template.is_local(src) and "env_loader" in answers \
            and not Path(src).expanduser().exists():
        result.reason = (f"its template {src} no longer exists: move it onto devkit's template "
                         f"(copier re-renders it with its answers; review `git -C {q} diff`) "
                         f"with `{template.repoint_command(path, store, vcs_ref or current.tag)}`")
        return result
    if problem:
        result.reason = f"foreign template: {problem}"
        return result
    if own or repoint:
        result.to_version = vcs_ref or current.tag
    unsafe = git.unsafe_config(path)  # before any other git call there
    if unsafe:
        result.reason = unsafe
        return result
    try:
        inside = git.run("rev-parse", "--is-inside-work-tree", cwd=path).strip() == "true"
    except DevkitError:
        inside = False
    except OSError as exc:
        result.status, result.reason = "failed", f"cannot run git in {path}: {describe(exc)}"
        return result
    if not inside:
        result.reason = (f"not a git repository: copier update needs one "
                         f"(`{workspaces.git_init_command(path)}`)")
        return result
    dirty = _dirty(result)
    if dirty is None:
        return result
    if vcs_ref:
        at_target = str(commit) == vcs_ref
    elif own:
        at_target = str(commit) == current.tag
    else:  # a local template: its newest tag, or its HEAD (``_commit`` then holds a short hash)
        target = template.local_target(src) if dirty else None
        at_target = bool(target) and (str(commit) == target or (
            len(str(commit)) >= 7 and str(target).startswith(str(commit))))
    if dirty and at_target and not data and interrupted_update(path, store) is None:
        # e.g. an update made a moment ago and not committed yet
        result.status, result.to_version = "current", str(commit)
        result.files = sorted(p for _, p in dirty)
        result.reason = (f"already at {commit}; its {len(dirty)} uncommitted changed file(s) "
                         f"are yours to review (`git -C {q} diff HEAD`) and commit")
        return result
    if _uncommitted(result, store, dirty):
        return result
    mine = template.commit_version(str(commit))
    if own and not vcs_ref and mine is not None and mine > current.version:
        result.reason = (f"its template {commit} is newer than this devkit's {current.tag} (a newer "
                         "devkit updated it): upgrade devkit; copier refuses downgrades")
        return result
    if own and not vcs_ref and not data and str(commit) == current.tag:
        result.status, result.to_version = "current", current.tag
        return result
    if repoint:
        return Job(path, name, src, vcs_ref or current.tag, str(commit), dry_run,
                   repoint=repoint, home=str(store.home), data=dict(data or {}))
    return Job(path, name, src, vcs_ref or (current.tag if own else None), str(commit), dry_run,
               home=str(store.home), data=dict(data or {}))


def _dirty(result: Result) -> list[tuple[str, str]] | None:
    """``git status`` of ``result.path``; None when it cannot be read (``result`` is then
    ``failed``: a full disk, a broken index; never reported as a mere skip)."""
    try:
        return git.status(result.path)
    except (DevkitError, OSError) as exc:
        result.status, result.reason = "failed", f"cannot read git status: {describe(exc)}"
        return None


def _uncommitted(result: Result, store: Store,
                 dirty: list[tuple[str, str]] | None = None) -> bool:
    """True when ``result.path`` cannot be updated now: it has uncommitted changes (``result``
    becomes ``skipped``, with the files; when a killed update left them, which and how to undo
    them) or its git status cannot be read (``failed``). ``dirty``: its status, if read."""
    q = shlex.quote(str(result.path))
    if dirty is None:
        dirty = _dirty(result)
        if dirty is None:
            return True
    killed = interrupted_update(result.path, store)
    if not dirty:
        if killed:  # its changes were undone or committed since
            store.update_record(result.path).unlink(missing_ok=True)
        return False
    result.status = "skipped"
    result.files = sorted(p for _, p in dirty)
    result.reason = (f"uncommitted changes ({len(dirty)} files), left untouched: commit them, "
                     f"or `git -C {q} stash`, run `devkit update {q}`, then "
                     f"`git -C {q} stash pop`")
    if killed:
        pid, snapshot = killed
        try:
            names = sorted(name for _, name in snapshot.changed(result.path))
            undo = undo_command(result.path, names, _split_new(result.path, names)[1])
        except (DevkitError, OSError):
            names, undo = [], ""
        if undo:
            result.reason = (f"an interrupted `devkit update` (pid {pid}) left changes in "
                             f"{', '.join(names)}: review them (`git -C {q} diff`), then undo "
                             f"them with `{undo}` (or commit them) and run `devkit update {q}` "
                             "again")
    return True


def interrupted_update(path: Path, store: Store) -> tuple[int, Snapshot] | None:
    """``(pid, snapshot)`` of a ``devkit update`` of ``path`` that was killed while copier ran
    (its :meth:`devkit.store.Store.update_record` is left and its process is gone), else None.
    Raises nothing."""
    try:
        doc = json.loads(store.update_record(path).read_text(encoding="utf-8"))
        pid, entries = doc["pid"], doc["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or not isinstance(entries, dict) or pid_alive(pid):
        return None
    return pid, Snapshot({str(k): None if v is None else str(v) for k, v in entries.items()})


# -- running one update (in a worker process) ----------------------------------------------------
@contextlib.contextmanager
def _scratch_copy(path: Path) -> Iterator[Path]:
    """A throw-away clone of the repository holding ``path`` (HEAD checked out, no hooks run);
    yields the workspace's path inside it."""
    top = Path(git.run("rev-parse", "--show-toplevel", cwd=path).strip())
    rel = path.resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="devkit-update-") as tmp:
        clone = Path(tmp) / top.name
        git.run(*git.NO_HOOKS, "clone", "-q", "--no-hardlinks", str(top), str(clone), cwd=Path(tmp))
        yield clone / rel


def _sha256(file: Path) -> str | None:
    """SHA-256 of ``file``'s bytes (a symlink: of its target's name); None when absent."""
    import hashlib

    try:
        if file.is_symlink():
            return "link:" + os.readlink(file)
        return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None
    except OSError:
        return None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A workspace's state just before copier touches it: every path ``git status`` lists
    (relative to the workspace) with the SHA-256 of its bytes (None: absent). A path changed
    since is copier's doing (the workspace mutex keeps other devkit commands out); every other
    file is left alone by :func:`restore` and :func:`undo_command`."""

    entries: dict[str, str | None]

    @classmethod
    def take(cls, path: Path) -> Snapshot:
        """Read ``path``'s state. Raises DevkitError when git status cannot be read."""
        return cls({name: _sha256(path / name) for _, name in git.status(path)})

    def changed(self, path: Path) -> list[tuple[str, str]]:
        """``(XY, path)`` git status entries whose content differs from the snapshot."""
        return [(code, name) for code, name in git.status(path)
                if name not in self.entries or _sha256(path / name) != self.entries[name]]


def _split_new(path: Path, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``names`` (relative to ``path``) split into (in HEAD, not in HEAD)."""
    if not names:
        return [], []
    out = git.run("--literal-pathspecs", "ls-tree", "-r", "-z", "--name-only", "HEAD", "--",
                  *names, cwd=path)
    known = set(filter(None, out.split("\0")))
    return [n for n in names if n in known], [n for n in names if n not in known]


def undo_command(path: Path, files: Sequence[str], new: Sequence[str] = ()) -> str:
    """The shell command that discards an update of ``path`` and nothing else: ``files`` (paths
    relative to ``path`` that the update changed) are unstaged (unmerged entries too) and put
    back as in HEAD, except ``new`` ones (not in HEAD), which are deleted. Other files,
    committed or not, are left alone. ``""`` when nothing changed."""
    if not files:
        return ""
    q = shlex.quote(str(path))
    git_ = f"git -C {q} --literal-pathspecs"
    names = " ".join(shlex.quote(f) for f in files)
    tracked = " ".join(shlex.quote(f) for f in files if f not in set(new))
    steps = [f"{git_} reset -q -- {names}"]
    if tracked:
        steps.append(f"{git_} checkout -- {tracked}")
    if new:
        steps.append("rm -f -- " + " ".join(shlex.quote(str(path / f)) for f in new))
    return " && ".join(steps)


def restore(path: Path, snapshot: Snapshot) -> list[str]:
    """Put back what an update changed in ``path`` since ``snapshot``: files in HEAD from HEAD,
    new files deleted (and the directories that held only them); every other file is left as
    it is. Returns the paths put back. Never raises (a failed step leaves the rest as is)."""
    try:
        names = sorted(name for _, name in snapshot.changed(path))
        tracked, new = _split_new(path, names)
        if names:
            git.run(*git.NO_HOOKS, "--literal-pathspecs", "reset", "-q", "--", *names, cwd=path)
        if tracked:
            git.run(*git.NO_HOOKS, "--literal-pathspecs", "checkout", "--", *tracked, cwd=path)
    except (DevkitError, OSError):
        return []
    for name in new:
        file = path / name
        with contextlib.suppress(OSError):
            file.unlink()
        for parent in file.parents:
            if parent == path or path not in parent.parents:
                break
            try:
                parent.rmdir()  # only an empty directory: one the update made for new files
            except OSError:
                break
    return names


def _has_markers(file: Path) -> bool:
    try:
        with file.open("rb") as fh:
            return any(line.rstrip() in CONFLICT_MARKERS for line in fh)
    except OSError:
        return False


def _own_render(workspace: Path, answers: dict[str, Any], store: Store) -> dict[str, bytes]:
    """The loader files (:data:`devkit.trust.RENDERED_NAMES`) that the store's template renders
    at the workspace's new ``_commit`` with its answers. Raises DevkitError when it cannot."""
    from devkit import trust

    data = {k: v for k, v in answers.items() if not str(k).startswith("_")}
    with tempfile.TemporaryDirectory(prefix="devkit-render-") as tmp:
        dst = Path(tmp) / workspace.name
        template.render(str(store.template_repo), dst, data=data, user_defaults={},
                        defaults=True, vcs_ref=str(answers["_commit"]))
        return trust.render_of(dst)


_SCRATCH_GIT = ("-c", "commit.gpgsign=false", "-c", "user.name=devkit",
                "-c", "user.email=devkit@localhost")


def _repoint(work: Path, tag: str, store: Store) -> None:
    """In the scratch clone ``work``: name the store's repository at ``tag`` as the template in the
    answers file (``_src_path``, ``_commit``) and commit it there. Only for a source whose files
    at ``_commit`` are those of ``tag`` (:func:`devkit.template.store_tag_of`): copier's old side
    of the merge renders the same files from either, and copier's update then rewrites both keys
    itself. Raises DevkitError when the answers file lacks them."""
    import yaml  # type: ignore[import-untyped]  # PyYAML comes with copier, without stubs

    path = work / ANSWERS_FILE
    values: dict[str, str] = {"_src_path": str(store.template_repo), "_commit": tag}
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        key = line.split(":", 1)[0]
        if key in values:
            line = yaml.safe_dump({key: values.pop(key)}, width=1 << 16)
        lines.append(line)
    if values:
        raise DevkitError(f"{ANSWERS_FILE} has no top-level {', '.join(values)}")
    path.write_text("".join(lines), encoding="utf-8")
    git.run(*git.NO_HOOKS, *_SCRATCH_GIT, "commit", "-q", "--no-verify", "-m",
            "devkit: the same template, from devkit's store", "--", ANSWERS_FILE, cwd=work)


def _carry_back(work: Path, job: Job) -> None:
    """Move the scratch clone's changes, counted from the workspace's HEAD, into ``work``'s index
    (the re-point commit is undone, keeping its change) and, unless a dry run, apply the same
    patch (``git diff --binary``, ``git apply``) to the real workspace, which is clean."""
    git.run(*git.NO_HOOKS, "add", "-A", "--", ".", cwd=work)
    git.run(*git.NO_HOOKS, "reset", "-q", "--soft", "HEAD~1", cwd=work)
    if job.dry_run:
        return
    with tempfile.TemporaryDirectory(prefix="devkit-patch-") as tmp:
        patch = Path(tmp) / "update.patch"
        git.run(*git.NO_HOOKS, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff",
                f"--output={patch}", "--", ".", cwd=work)
        top = Path(git.run("rev-parse", "--show-toplevel", cwd=job.path).strip())
        if patch.stat().st_size:
            git.run(*git.NO_HOOKS, "apply", "--binary", "--whitespace=nowarn", str(patch),
                    cwd=top)


def recheck(job: Job) -> Result | None:
    """Check again, right before copier runs (the caller holds the workspace mutex), that
    ``job``'s workspace can be updated: it may have changed since :func:`plan` (an edit, a
    ``devkit align``). Returns the ``skipped``/``failed``/``current`` result, or None."""
    result = Result(job.path, job.name, status="skipped", source=job.source,
                    from_version=job.from_version)
    if not job.path.is_dir():
        result.reason = f"missing directory: {job.path} no longer exists"
        return result
    try:
        commit = template.read_answers(job.path).get("_commit")
    except DevkitError as exc:
        result.reason = str(exc)
        return result
    if str(commit) != job.from_version:
        result.status, result.to_version = "current", str(commit)
        result.reason = f"updated to {commit} meanwhile (by another run)"
        return result
    return result if _uncommitted(result, Store(Path(job.home) if job.home else None)) else None


def run_job(job: Job) -> Result:
    """Run copier's update for ``job`` (in a scratch clone for a dry run or a re-point, whose
    changes are then applied to the workspace: :func:`_carry_back`) and classify the result.

    A real workspace is updated under its mutex (:meth:`devkit.store.Store.workspace_mutex`,
    which ``align``, ``sync``, ``adopt`` and ``doctor --fix`` take too) and checked again first
    (:func:`recheck`). Never raises for a workspace problem: a failure is ``failed`` with one
    line, and only the files copier changed (compared with a :class:`Snapshot` taken just
    before it ran) are put back: anything else in the workspace is left alone. Re-raises
    KeyboardInterrupt after restoring.
    """
    start = time.perf_counter()
    result = Result(job.path, job.name, source=job.source, from_version=job.from_version)
    with contextlib.ExitStack() as stack:
        try:
            scratch = job.dry_run or job.repoint is not None
            work = stack.enter_context(_scratch_copy(job.path)) if scratch else job.path
            store = Store(Path(job.home) if job.home else None)
            if not job.dry_run:
                stack.enter_context(store.workspace_mutex(job.path, command="devkit update"))
                refused = recheck(job)
                if refused is not None:
                    refused.seconds = time.perf_counter() - start
                    return refused
            if job.repoint:
                _repoint(work, job.repoint, store)
            before = Snapshot.take(work)  # what copier changes in ``work``
            # what a failure puts back in the real workspace (a re-point changes it by a patch)
            real = before if work == job.path else Snapshot.take(job.path)
            if not job.dry_run:  # removed when done, whatever happens short of a SIGKILL
                record = store.update_record(job.path)
                stack.callback(record.unlink, missing_ok=True)
                atomic_write_text(record, json.dumps(
                    {"pid": os.getpid(), "path": str(job.path), "entries": real.entries}) + "\n")
        except (DevkitError, OSError) as exc:
            result.status, result.reason = "failed", describe(exc)
            result.seconds = time.perf_counter() - start
            return result
        try:
            template.update(work, vcs_ref=job.vcs_ref, src=job.source, data=job.data)
            changed = before.changed(work)
            answers = template.read_answers(work)
            unmerged = {p for code, p in changed if code in _UNMERGED}
            if job.repoint:
                _carry_back(work, job)
                changed = git.status(work if job.dry_run else job.path)
        except BaseException as exc:
            if not job.dry_run:
                with shielded():  # a second Ctrl-C must not cut the restore short
                    restore(job.path, real)
            if not isinstance(exc, (DevkitError, OSError)):
                raise
            result.status, result.reason = "failed", describe(exc)
            result.seconds = time.perf_counter() - start
            return result
        result.to_version = str(answers.get("_commit") or "") or None
        result.files = sorted(p for _, p in changed)
        conflicts = unmerged | {p for code, p in changed if code in _UNMERGED or p.endswith(".rej")}
        where = job.path if job.repoint and not job.dry_run else work
        conflicts |= {p for code, p in changed if code != "D " and _has_markers(where / p)}
        result.conflicts = sorted(conflicts)
        if result.conflicts:
            result.status = "conflicts"
        elif result.files:
            result.status = "updated"
        if job.repoint and result.status != "current":
            result.reason = (f"{'would move' if job.dry_run else 'moved'} from the template "
                             f"{job.source} (the same files as devkit's {job.repoint}) onto "
                             "devkit's template, so updates no longer need that path")
        if result.files and not job.dry_run:
            with contextlib.suppress(DevkitError, OSError):
                result.undo = undo_command(job.path, result.files,
                                           _split_new(job.path, result.files)[1])
        touched = set(result.files) & {*LOADER_CONFIGS, ".envrc.sh"}
        if touched and not job.dry_run and not set(result.conflicts) & touched:
            result.loaders_rendered = True  # retrust() decides, from devkit's own render
    result.seconds = time.perf_counter() - start
    return result


def _job_to_wire(job: Job) -> str:
    return json.dumps({**dataclasses.asdict(job), "path": str(job.path)})


def _job_from_wire(line: str) -> Job:
    data = json.loads(line)
    return Job(**{**data, "path": Path(data["path"])})


def _result_to_wire(result: Result) -> str:
    return json.dumps({**dataclasses.asdict(result), "path": str(result.path)})


def _result_from_wire(line: str) -> Result:
    data = json.loads(line)
    return Result(**{**data, "path": Path(data["path"])})


def worker_main(stdin: Any = None, stdout: Any = None) -> int:
    """``python -m devkit.commands.update --worker``: read one JSON :class:`Job` per line, run it,
    write one JSON :class:`Result` per line. Copier gets a process of its own (it changes the
    working directory and warning filters), imported once for all the jobs this worker runs."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    sys.stdout = sys.stderr  # anything copier prints must not mix with the results
    for line in stdin:
        if line.strip():
            stdout.write(_result_to_wire(run_job(_job_from_wire(line))) + "\n")
            stdout.flush()
    return 0


def _worker_env() -> dict[str, str]:
    """This process's environment, with devkit's own import path first for the workers."""
    import devkit

    root = str(Path(devkit.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def _run_all(jobs: list[Job], workers: int) -> list[Result]:
    """Run ``jobs`` in at most ``workers`` worker processes (:func:`worker_main`), a single job
    in this process; returns the results in ``jobs`` order. A worker that dies fails its current
    job only, and a fresh worker takes the remaining ones."""
    if not jobs:
        return []
    if len(jobs) == 1:  # no process to start: copier runs here, on this thread
        return [run_job(jobs[0])]
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(jobs)):
        pending.put(i)
    results: list[Result | None] = [None] * len(jobs)
    env = _worker_env()
    live: list[subprocess.Popen[str]] = []

    def serve() -> None:
        while not pending.empty():  # a worker that died is replaced for the jobs left
            with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
                proc = subprocess.Popen(  # devkit's own module, no shell
                    [sys.executable, "-m", "devkit.commands.update", "--worker"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                    env=env)
                live.append(proc)
                try:
                    _feed(proc, err)
                finally:
                    assert proc.stdin is not None
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                    proc.wait()

    def _feed(proc: subprocess.Popen[str], err: Any) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        while True:
            try:
                i = pending.get_nowait()
            except queue.Empty:
                return
            job = jobs[i]
            try:
                proc.stdin.write(_job_to_wire(job) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError:
                line = ""
            if line:
                results[i] = _result_from_wire(line)
                continue
            proc.wait()
            err.seek(0)
            tail = " ".join([ln for ln in err.read().splitlines() if ln.strip()][-1:])
            results[i] = Result(job.path, job.name, status="failed", source=job.source,
                                from_version=job.from_version,
                                reason=f"the update process exited with {proc.returncode}: "
                                       f"{tail}".rstrip(": "))
            return

    threads = [threading.Thread(target=serve, daemon=True)
               for _ in range(max(1, min(workers, len(jobs))))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # Ctrl-C or SIGTERM here: each worker restores its workspace first
        with shielded():
            for proc in live:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGINT)
            for proc in live:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=WORKER_STOP_WAIT)
        raise
    return [r if r is not None else
            Result(j.path, j.name, status="failed", source=j.source, from_version=j.from_version,
                   reason="no update process could be started")
            for j, r in zip(jobs, results, strict=True)]


# -- a private workspace (devkit adopt --private) ------------------------------------------------
def update_private(record: private.Record, name: str, *, store: Store, target: str,
                   dry_run: bool) -> Result:
    """Bring the files ``devkit adopt --private`` added (untracked, excluded: no ``git status``
    is involved) onto the template at ``target`` (a tag of the store's template repository).

    The recorded answers are rendered at the recorded commit and at ``target``; for each file:
    still byte for byte the old render → replaced by the new one (deleted when the template no
    longer renders it); changed by the user → three-way merge (:func:`devkit.git.merge_file`),
    and on conflict the file gets ``<<<<<<< before updating`` / ``>>>>>>> after updating``
    markers (as copier's update writes them: your lines first) and the
    status is ``conflicts``; a file the new render adds is written (one already there and
    different is a conflict, left alone); a devkit file the user deleted stays deleted. Then the
    record (new commit, files, hashes) and the exclude/attributes blocks follow, and the loader
    configs are re-approved only when they are byte for byte the new render
    (:func:`devkit.trust.record_rendered`). Runs under the workspace mutex; every file it
    changed is restored on any failure. Never raises: a failure is ``failed`` with one line.
    """
    start = time.perf_counter()
    root = record.workspace
    result = Result(root, name, status="current", source=record.source,
                    from_version=record.commit, to_version=target)
    try:
        with contextlib.ExitStack() as stack:
            if not dry_run:
                stack.enter_context(store.workspace_mutex(root, command="devkit update"))
                fresh = private.load(store, root)  # another run may have updated it meanwhile
                record = fresh if fresh is not None else record
            result.from_version = record.commit
            if not record.source or not template.is_store_source(record.source, store):
                result.status = "skipped"
                result.reason = (f"private workspace rendered from {record.source}, not "
                                 "devkit's template: nothing to update")
                return result
            if record.commit == target:
                return result
            _update_private(record, result, store=store, target=target, dry_run=dry_run)
    except (DevkitError, OSError) as exc:
        result.status, result.reason = "failed", describe(exc)
    result.seconds = time.perf_counter() - start
    return result


def _update_private(record: private.Record, result: Result, *, store: Store, target: str,
                    dry_run: bool) -> None:
    root = record.workspace
    old = private.render(record.source, record.commit, record.answers)
    new = private.render(str(store.template_repo), target, record.answers)
    prefix = git.show_prefix(root)
    names = sorted(set(record.files) | set(new.files))
    tracked = set(git.tracked_in(root, "HEAD", list(new.files)))
    writes: dict[str, bytes | None] = {}  # None: delete
    files = dict(record.files)
    for name in names:
        target_file = root / name
        have = target_file.read_bytes() if target_file.is_file() else None
        before, after = old.files.get(name), new.files.get(name)
        if name not in record.files:  # the new render adds it
            if name in tracked:
                result.conflicts.append(name)
                result.reason = f"the repository tracks {name}: devkit's new {name} not added"
            elif have is None:
                writes[name] = after
                assert after is not None
                files[name] = private.Added(private.sha256(after))
            elif have != after:
                result.conflicts.append(name)
                result.reason = f"{name} exists and is not devkit's: the template's new one is not added"
            else:  # already there, byte for byte the new render: adopted as it is
                files[name] = private.Added(private.sha256(have), created=False)
            continue
        if have is None:  # the user deleted it: it stays deleted
            if not (target_file.exists() or target_file.is_symlink()):
                del files[name]
            continue
        if have == after:
            if after is not None:
                files[name] = private.Added(private.sha256(after), record.files[name].created)
            continue
        if before is not None and have == before:
            writes[name] = after
            if after is None:
                del files[name]
            else:
                files[name] = private.Added(private.sha256(after), record.files[name].created)
            continue
        merged, conflicted = git.merge_file(have, before or b"", after or b"",
                                            labels=("before updating", "devkit's previous render",
                                                    "after updating"))
        if merged != have:
            writes[name] = merged
        if conflicted:
            result.conflicts.append(name)
    result.files = sorted(writes)
    result.status = "conflicts" if result.conflicts else "updated" if writes else "current"
    if writes and not result.reason:
        result.reason = ("private workspace: devkit's files are untracked (excluded), so "
                         "`git diff` does not show this update")
    if dry_run:
        return
    kept = [n for n in files if n not in new.files]
    record.files = files
    record.commit, record.source = target, str(store.template_repo)
    record.excludes = private.exclude_lines([*new.files, *kept], new.gitignore, prefix,
                                            lock=record.lock_created)
    record.attributes = private.attribute_lines(new.gitattributes, [*new.files], prefix)
    record.exclude.path, record.attribute_file.path = map(str, private.git_paths(root))
    undo = private.Undo()
    with private.restoring(undo):
        undo.keep(Path(record.exclude.path))
        undo.keep(Path(record.attribute_file.path))
        undo.keep(store.private_record(root))
        for name, data in writes.items():
            undo.keep(root / name)
            if data is None:
                (root / name).unlink()
            else:
                private.write_file(root / name, data, new.modes.get(name))
        private.write_blocks(record)
        private.save(store, record)
    if set(writes) & {*LOADER_CONFIGS, ".envrc.sh"}:
        try:
            trust.record_rendered(root, store, new.loaders)
            result.trust = trust.trust_if_rendered(root, store)
        except (DevkitError, OSError) as exc:
            result.trust = [f"could not approve the loader configs: {describe(exc)}"]
        if set(result.conflicts) & {*LOADER_CONFIGS, ".envrc.sh"}:
            q = shlex.quote(str(root))
            result.trust.append(f"a loader file has conflicts: resolve them, then review and "
                                f"run `mise trust {q}` / `direnv allow {q}` yourself")


# -- trust ---------------------------------------------------------------------------------------
def retrust(workspace: Path, store: Store) -> list[str]:
    """After an update changed a loader file of ``workspace``: record and approve the loader
    configs (:func:`devkit.trust.record_rendered`, :func:`devkit.trust.trust_if_rendered`) only
    when they are what devkit's OWN template (the store's repository) renders at the new
    ``_commit`` with the workspace's answers, compared byte for byte, ``.envrc.sh`` included.

    A workspace whose answers file names another template (``_src_path``, which came with the
    repository) is never approved by devkit: its line says to review and approve by hand.
    Returns one line per config. Never raises.
    """
    from devkit import trust

    q = shlex.quote(str(workspace))
    by_hand = (f"review .mise.toml, .envrc and .envrc.sh, then run `mise trust {q}` / "
               f"`direnv allow {q}` yourself")
    try:
        answers = template.read_answers(workspace)
        src = answers.get("_src_path")
        if not isinstance(src, str) or not template.is_store_source(src, store):
            return [(f"not trusted: the loader configs changed, and they come from {src}, not "
                     f"devkit's own template: {by_hand}")]
        trust.record_rendered(workspace, store, _own_render(workspace, answers, store))
        return trust.trust_if_rendered(workspace, store)
    except (DevkitError, OSError) as exc:
        return [f"could not approve the loader configs: {describe(exc)}; {by_hand}"]


# -- the command ---------------------------------------------------------------------------------
def check_data(jobs: Sequence[Job], data: Mapping[str, str], *, store: Store) -> list[Job]:
    """Check ``--data`` before any workspace changes, as ``devkit new`` does: its keys must be
    questions of the template (:func:`devkit.template.check_data_keys`; devkit's own for
    workspaces made from it), a multiple-choice answer may be given as ``a,b``
    (:func:`devkit.template.list_answers`), and copier must accept the values with each template
    version the jobs go to (:func:`devkit.template.check_data`, once per template source and
    version, with the first such workspace's answers). Returns ``jobs`` carrying those answers.
    Raises DevkitError (one line) otherwise."""
    seen: set[tuple[str, str | None]] = set()
    checked = []
    for job in jobs:
        own = job.repoint is not None or template.is_store_source(job.source, store)
        questions = str(template.bundled_template_dir()) if own else job.source
        template.check_data_keys(data, questions)
        answers_given = template.list_answers(data, questions)
        checked.append(dataclasses.replace(job, data=answers_given))
        src = str(store.template_repo) if own else job.source
        if (src, job.vcs_ref) in seen:
            continue
        seen.add((src, job.vcs_ref))
        answers = template.read_answers(job.path)
        template.check_data(src, answers_given, answers=answers, vcs_ref=job.vcs_ref, shown=data)
    return checked


def update(
    paths: Sequence[Path],
    *,
    store: Store,
    all_: bool = False,
    dry_run: bool = False,
    as_json: bool = False,
    vcs_ref: str | None = None,
    jobs: int = 4,
    data: Mapping[str, str] | None = None,
) -> int:
    """``devkit update``: returns 0, or 1 when a workspace has conflicts or failed.

    ``data`` (``--data KEY=VALUE``) answers template questions anew in every workspace updated,
    e.g. ``{"services": "[postgres]"}``; the keys and values are checked (:func:`check_data`)
    before any workspace changes.

    Raises DevkitError when no workspace is selected, the store's template cannot be refreshed, or
    ``data`` has a key or value the template refuses.
    """
    start = time.perf_counter()
    chosen = targets(paths, all_=all_, store=store)
    if vcs_ref is not None and (not vcs_ref.strip() or vcs_ref.startswith("-")):
        raise DevkitError(f"--vcs-ref expects a tag or commit, got {vcs_ref!r}")
    current = template.ensure_template_repo(store)
    planned = [plan(p, n, store=store, current=current, vcs_ref=vcs_ref, dry_run=dry_run,
                    data=data) for p, n in chosen]
    todo = [j for j in planned if isinstance(j, Job)]
    if data:
        todo = check_data(todo, data, store=store)
        jobs_by_path = {j.path: j for j in todo}
        planned = [jobs_by_path[p.path] if isinstance(p, Job) else p for p in planned]
    done = iter(_run_all(todo, max(1, jobs)))
    results = [next(done) if isinstance(p, Job) else p for p in planned]
    for result in results:
        if dry_run:
            continue
        if result.loaders_rendered and result.status == "updated":
            result.trust = retrust(result.path, store)
        elif result.status in ("updated", "conflicts") and not result.trust and any(
                Path(f).name in LOADER_CONFIGS for f in result.files):
            q = shlex.quote(str(result.path))
            result.trust = [(f"a loader config changed and differs from the template's "
                             f"rendering (your edits were kept): review it, then `mise trust {q}` "
                             f"/ `direnv allow {q}`")]
    summary = {s: sum(r.status == s for r in results) for s in STATUSES}
    if as_json:
        print(json.dumps(document(results, current, dry_run=dry_run, summary=summary,
                                  seconds=time.perf_counter() - start), indent=2))
    else:
        _print_human(results, current, dry_run=dry_run, summary=summary)
    return 1 if summary["conflicts"] or summary["failed"] else 0


def document(results: Sequence[Result], current: template.TemplateVersion, *, dry_run: bool,
             summary: dict[str, int], seconds: float) -> dict[str, Any]:
    """The ``devkit update --json`` document (version 1)."""
    return {
        "version": JSON_VERSION,
        "dry_run": dry_run,
        "template": {"source": str(current.repo), "version": current.tag},
        "projects": [r.to_json() for r in results],
        "summary": summary,
        "seconds": round(seconds, 3),
    }


def _print_human(results: Sequence[Result], current: template.TemplateVersion, *, dry_run: bool,
                 summary: dict[str, int]) -> None:
    print(f"devkit's template: {current.tag} ({current.repo})")
    verb = {"updated": "would update" if dry_run else "updated"}
    for r in results:
        moved = r.status in ("updated", "conflicts") and r.to_version != r.from_version
        arrow = f" {r.from_version} → {r.to_version}" if moved else f" {r.from_version or ''}"
        print(f"  {verb.get(r.status, r.status):<12} {r.name}{arrow}  ({r.path})")
        if r.status in ("updated", "conflicts"):
            print(f"      files: {', '.join(r.files)}")
        if r.conflicts:
            print(f"      conflicts (look for <<<<<<< before updating): {', '.join(r.conflicts)}")
        if r.undo and not dry_run:
            print(f"      undo: {r.undo}")
        if r.reason:
            print(f"      {r.reason}")
        for line in r.trust:
            print(f"      {line}")
    counts = ", ".join(f"{n} {verb.get(s, s)}" for s, n in summary.items() if n)
    print(f"\n{'Dry run: nothing was written. ' if dry_run else ''}{counts}.")
    # a private workspace's files are untracked: no undo line, nothing for git to show
    changed = [r for r in results if r.status in ("updated", "conflicts") and r.undo]
    if changed and not dry_run:
        print("Nothing was committed. Review with `git -C PATH diff HEAD` and commit; to undo one "
              "workspace's update (only the files it changed), run its `undo:` line.")
    if summary["conflicts"] and not dry_run:
        print("Conflicts: edit the files listed above (both versions are kept between the "
              "markers), then `git add` them and commit.")


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    from devkit.util import terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # SIGTERM, too, restores the workspace being updated
            _code = worker_main()
    except KeyboardInterrupt:
        _code = 130
    raise SystemExit(_code)

__all__ = ["Job", "Result", "Snapshot", "document", "interrupted_update", "plan", "recheck",
           "restore", "retrust", "run_job", "targets", "undo_command", "update", "workspace_root"]
