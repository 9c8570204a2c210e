"""The only module that runs git.

Every git process devkit starts gets :func:`environment`: the caller's environment plus
command-scope settings (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>``,
git-config(1) "ENVIRONMENT", git 2.31+) that override every config file and switch off what a
repository's own config could make git run: hooks, the fsmonitor command, a pager, an editor, the
``ext::`` transport. Settings whose names are chosen by the repository (``filter.<driver>.clean``,
``diff.<driver>.textconv``, ``include.path``…) cannot be overridden that way: before any other git
call in a repository devkit reads that repository's config (reading runs nothing) and refuses it
with one line naming the key (:func:`unsafe_config`). copier's own git calls get the same
environment (:func:`devkit.template` sets it for them).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from devkit.errors import DevkitError
from devkit.util import CalledProcessError, cmd_output

# Used only when the user has no identity configured, so the first commit never fails.
_FALLBACK_IDENTITY = ("-c", "user.name=devkit", "-c", "user.email=devkit@localhost")

#: Command-scope settings every git devkit starts runs with (git-config(1)): no hook
#: (``core.hooksPath`` to an empty place: also the ``.git/hooks/`` of a repository received as a
#: tarball), no fsmonitor command, no pager or editor (devkit captures output and never edits),
#: no ``ext::`` transport (which runs a command as a "remote").
OVERRIDES: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("protocol.ext.allow", "never"),
)

# Kept for callers that also pass the two main settings on the command line.
NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false")

#: Repository config keys (lower-cased as git lists them) naming a command that no command-scope
#: setting can switch off, with when git runs it. ``include.path``/``includeIf.<cond>.path``
#: load another file, which could change under a running command (a template update writes the
#: work tree): refused too.
_CODE_KEYS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), why) for pattern, why in (
        (r"filter\..+\.(clean|smudge|process)",
         "which runs a command on every git status or checkout of a file .gitattributes gives it"),
        (r"diff\..+\.(textconv|command)|diff\.external", "which runs a command to show a diff"),
        (r"merge\..+\.driver", "which runs a command to merge files"),
        (r"include\.path|includeif\..+\.path", "which loads another config file"),
        (r"core\.(sshcommand|gitproxy|askpass|alternaterefscommand)|remote\..+\.(uploadpack|receivepack)",
         "which runs a command to reach a remote"),
        (r"credential\.(.+\.)?helper", "which runs a command to get credentials"),
        (r"gpg\.(.+\.)?program|gpg\.ssh\.defaultkeycommand", "which runs a command to sign"),
    ))

#: The values ``git lfs install --local`` writes: git-lfs on the user's PATH, no repository code.
_GIT_LFS = {"filter.lfs.clean": "git-lfs clean -- %f", "filter.lfs.smudge": "git-lfs smudge -- %f",
            "filter.lfs.process": "git-lfs filter-process"}


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) plus :data:`OVERRIDES` as ``GIT_CONFIG_KEY_<n>`` /
    ``GIT_CONFIG_VALUE_<n>`` entries after any the caller already has (later entries win), and
    ``GIT_TERMINAL_PROMPT=0`` (never wait for a password). The environment for every git process
    devkit starts, and for copier's."""
    env = dict(os.environ if base is None else base)
    try:
        count = max(0, int(env.get("GIT_CONFIG_COUNT") or 0))
    except ValueError:
        count = 0
    for i, (key, value) in enumerate(OVERRIDES, start=count):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(OVERRIDES))
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


#: One process's answer: ``(exit code, stdout, stderr)``; a negative code when it could not run.
Runner = Callable[[Sequence[str], Path], tuple[int, str, str]]


def _run_plain(cmd: Sequence[str], cwd: Path) -> tuple[int, str, str]:
    try:
        proc = cmd_output(*cmd, cwd=cwd, env=environment(), check=False)
    except OSError as exc:
        return -1, "", f"cannot run git in {cwd}: {exc.strerror or exc}"
    return proc.returncode, proc.stdout, proc.stderr


def unsafe_config(path: Path, runner: Runner | None = None, *,
                  gitdir: str | None = None) -> str | None:
    """Why git must not run in the repository holding ``path``, or None (also outside a repository
    and without git).

    Reads the repository's own config (``local`` and ``worktree`` scopes, with the files they
    include: ``git config --list --show-scope --show-origin --includes``; reading runs nothing) and
    names the first key from :data:`_CODE_KEYS`, e.g. ``/p/.git/config sets filter.evil.clean,
    which runs a command on every git status…; remove it after review (git -C /p config --unset
    filter.evil.clean) or run the command yourself``. The user's global and system config are
    theirs, not the repository's, and are not judged. ``runner`` runs ``git ARGS`` in a directory
    (default: directly, with :func:`environment`; ``devkit doctor`` passes its host's). ``gitdir``:
    the repository's ``git rev-parse --absolute-git-dir`` when the caller already asked (with a
    ``runner`` only). A config git cannot read is reported too. Raises nothing.
    """
    if runner is None:
        if shutil.which("git") is None:
            return None
        # one discovery per path at a time: concurrent checks of one workspace wait for the first
        with _PATH_LOCKS_LOCK:
            lock = _PATH_LOCKS.setdefault(str(path), threading.Lock())
        with lock:
            return _unsafe_config(path, _run_plain)
    return _unsafe_config(path, runner, gitdir)


#: A lock per path :func:`unsafe_config` is asked about in this process.
_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_LOCK = threading.Lock()


def _unsafe_config(path: Path, runner: Runner, known: str | None = None) -> str | None:
    gitdir = known or (_GITDIRS.get(str(path)) if runner is _run_plain else None)
    if gitdir is None or (not known and (not os.path.isdir(gitdir) or (
            gitdir != os.path.join(path, ".git") and os.path.exists(os.path.join(path, ".git"))))):
        code, out, _ = runner(("git", "rev-parse", "--absolute-git-dir"), path)
        if code != 0:
            return None  # not a repository (or git cannot run): nothing of it is read
        gitdir = out.strip()
        if runner is _run_plain:
            _GITDIRS[str(path)] = gitdir
    key = (gitdir, _config_stamp(gitdir))
    if key in _JUDGED:
        return _JUDGED[key]
    code, out, err = runner(("git", f"--git-dir={gitdir}", "config", "--list", "--show-scope",
                             "--show-origin", "--includes", "-z"), path)
    if code != 0:
        lines = err.strip().splitlines()
        return f"cannot read the git config of {path}: {lines[-1] if lines else 'git failed'}"
    _JUDGED[key] = reason = _judge(out, gitdir)
    return reason


#: The git directory of each path :func:`unsafe_config` looked at in this process (asked again
#: when it is gone, or when the path got a ``.git`` of its own).
_GITDIRS: dict[str, str] = {}


def note_gitdir(path: Path, gitdir: str) -> None:
    """Record ``gitdir``, what ``git rev-parse --absolute-git-dir`` just printed in ``path`` for a
    caller that runs git itself with :func:`environment` (``devkit doctor``'s host), so that the
    git calls of this module in ``path`` do not ask again. Checked as a remembered answer is:
    asked again when it is not a directory, or when ``path`` has a ``.git`` of its own."""
    _GITDIRS[str(path)] = gitdir

#: :func:`unsafe_config`'s verdicts in this process, by git directory and the state of its config
#: files (an included file is itself refused, so these files are all a verdict depends on).
_JUDGED: dict[tuple[str, tuple[tuple[int, int, int], ...]], str | None] = {}


def _config_stamp(gitdir: str) -> tuple[tuple[int, int, int], ...]:
    """(inode, size, ctime ns) of the repository's ``config`` and ``config.worktree`` (and of the
    common directory's, for a linked worktree); zeros for an absent file."""
    stamps = []
    for name in ("config", "config.worktree", "commondir", "../../config",
                 "../../config.worktree"):
        try:
            st = os.stat(os.path.join(gitdir, name))
            stamps.append((st.st_ino, st.st_size, st.st_ctime_ns))
        except OSError:
            stamps.append((0, 0, 0))
    return tuple(stamps)


def _judge(listing: str, gitdir: str) -> str | None:
    """The refusal for the first code-running key in ``git config --list --show-scope
    --show-origin -z`` output ``listing`` of the repository at ``gitdir``, or None."""
    fields = listing.split("\0")
    for scope, origin, entry in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        if scope not in ("local", "worktree"):
            continue
        key, _, value = entry.partition("\n")
        key = key.lower()
        if _GIT_LFS.get(key) == value:
            continue
        for pattern, why in _CODE_KEYS:
            if pattern.fullmatch(key):
                where = os.path.normpath(origin.removeprefix("file:"))
                top = Path(gitdir).parent if Path(gitdir).name == ".git" else Path(gitdir)
                fix = f"git -C {shlex.quote(str(top))} config --unset {key}"
                return (f"{where} sets {key}, {why}; devkit runs no git there: remove it after "
                        f"review ({fix}) or run the command yourself")
    return None


def refuse_unsafe(path: Path) -> None:
    """Raise DevkitError with :func:`unsafe_config`'s line when git must not run in ``path``."""
    reason = unsafe_config(path)
    if reason:
        raise DevkitError(reason)


def has_identity(cwd: Path) -> bool:
    """True when ``user.name`` and ``user.email`` are configured (non-empty) for ``cwd``: one
    ``git config --get-regexp`` for both."""
    proc = cmd_output("git", "config", "--get-regexp", r"^user\.(name|email)$", cwd=cwd,
                      env=environment(), check=False)
    found = {key.lower() for key, _, value in
             (line.partition(" ") for line in proc.stdout.splitlines()) if value.strip()}
    return found >= {"user.name", "user.email"}


def init_and_commit(path: Path, message: str) -> None:
    """``git init`` (branch ``main``) ``path``, add everything and commit. Raises DevkitError
    (also when a repository holding ``path`` has config that runs commands)."""
    if (path / ".git").exists():
        commit_all(path, message)
        return
    # `git init` reads no config of an enclosing repository, and the config it writes is git's
    # own: nothing to refuse; a fresh repository always gets its first commit
    run("init", "-q", "-b", "main", cwd=path, verified=True)
    run("add", "-A", cwd=path, verified=True)
    identity = () if has_identity(path) else _FALLBACK_IDENTITY
    run(*identity, "commit", "-q", "--no-verify", "--allow-empty", "-m", message, cwd=path,
        verified=True)


def commit_all(path: Path, message: str) -> None:
    """Stage everything in ``path`` and commit if anything changed. Raises DevkitError."""
    refuse_unsafe(path)
    run("add", "-A", cwd=path, verified=True)
    if not run("status", "--porcelain", cwd=path, verified=True).strip():
        return
    identity = () if has_identity(path) else _FALLBACK_IDENTITY
    run(*identity, "commit", "-q", "--no-verify", "-m", message, cwd=path, verified=True)


def config_get(path: Path, key: str) -> str | None:
    """The value of git config ``key`` as seen from ``path``, or None when unset or not a repo.

    Raises DevkitError when the repository's config runs commands (:func:`unsafe_config`).
    """
    if shutil.which("git") is None:
        return None
    refuse_unsafe(path)
    proc = cmd_output("git", "config", "--get", key, cwd=path, env=environment(), check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def check_attr(path: Path, attr: str, file: str) -> str | None:
    """``git check-attr ATTR FILE`` value (``lf``, ``unspecified``…), or None outside a repo.

    Raises DevkitError when the repository's config runs commands (:func:`unsafe_config`).
    """
    if shutil.which("git") is None:
        return None
    refuse_unsafe(path)
    proc = cmd_output("git", "check-attr", attr, "--", file, cwd=path, env=environment(),
                      check=False)
    if proc.returncode != 0 or ": " not in proc.stdout:
        return None
    return proc.stdout.strip().rsplit(": ", 1)[-1]


def tracked(path: Path, pathspec: str) -> list[str]:
    """Files under ``pathspec`` (relative to ``path``) that git tracks (``git ls-files -z``); empty
    outside a repository. Raises DevkitError when the repository is refused
    (:func:`unsafe_config`) or git fails otherwise."""
    if shutil.which("git") is None:
        return []
    refuse_unsafe(path)
    proc = cmd_output("git", "ls-files", "-z", "--", pathspec, cwd=path, env=environment(),
                      check=False)
    if proc.returncode != 0:
        if "not a git repository" in proc.stderr:
            return []
        lines = proc.stderr.strip().splitlines()
        raise DevkitError(f"git ls-files failed in {path}: {lines[-1] if lines else 'no output'}")
    return [name for name in proc.stdout.split("\0") if name]


def repository_stamp(path: Path) -> str | None:
    """A stamp of everything :func:`tracked` reads in ``path`` when ``path`` is the top of its own
    repository, taken without running git; None when ``path/.git`` is not a directory (a linked
    worktree or submodule, or the repository is higher up: git must be asked).

    Made of the ``lstat`` of ``path`` and of ``path/.git`` (inode, owner, ``st_mtime_ns``,
    ``st_ctime_ns``: git replaces ``HEAD``, the index and its config by writing a ``*.lock`` file
    and renaming it, which changes the directory's times), the ``stat`` of ``.git/index`` and of
    the config files :func:`unsafe_config` judges, and every ``GIT_*`` variable of the
    environment (``GIT_DIR``, ``GIT_INDEX_FILE``… redirect git). Equal stamps mean git would read
    the same repository, config and index. Raises nothing."""
    top = os.fspath(path)
    gitdir = os.path.join(top, ".git")
    parts: list[object] = [top]
    for where in (top, gitdir, os.path.join(gitdir, "index")):
        try:
            st = os.lstat(where)
        except OSError:
            if where == gitdir:
                return None
            parts.append(None)
            continue
        if where == gitdir and not stat.S_ISDIR(st.st_mode):
            return None
        parts.append((st.st_dev, st.st_ino, st.st_uid, st.st_size, st.st_mtime_ns,
                      st.st_ctime_ns))
    parts.append(_config_stamp(gitdir))
    parts.append(sorted((k, v) for k, v in os.environ.items() if k.startswith("GIT_")))
    return repr(parts)


def answered_here(path: Path) -> bool:
    """True when the git calls this process made in ``path`` (:func:`unsafe_config`) found
    ``path/.git`` itself as the repository (``git rev-parse --absolute-git-dir``)."""
    gitdir = _GITDIRS.get(str(path))
    return gitdir is not None and os.path.normpath(gitdir) == os.path.normpath(
        os.path.join(os.fspath(path), ".git"))


def run(*args: str, cwd: Path, extra_env: Mapping[str, str] | None = None,
        verified: bool = False) -> str:
    """``git ARGS`` in ``cwd`` with :func:`environment` and ``extra_env``; returns stdout.

    First refuses a repository whose config runs commands (:func:`unsafe_config`), unless
    ``verified``: the caller checked the config of the repository git will use (the store's
    template repository, whose config is devkit's text; a repository already checked).
    Raises DevkitError when git is missing, the repository is refused, or git exits non-zero
    (with git's last line).
    """
    if shutil.which("git") is None:
        raise DevkitError("git not found on PATH: install git (e.g. `apt-get install git`)")
    if not verified:
        refuse_unsafe(cwd)
    env = environment({**os.environ, **(extra_env or {})})
    try:
        return cmd_output("git", *args, cwd=cwd, env=env).stdout
    except CalledProcessError as exc:
        name = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        raise DevkitError(f"git {name} failed in {cwd}: {exc.last_line()}") from exc


def status(path: Path) -> list[tuple[str, str]]:
    """``(XY, path)`` for every changed, untracked or unmerged file under ``path``
    (``git status --porcelain=v1 -z --untracked-files=all``; paths relative to ``path``).

    Raises DevkitError outside a work tree, and when the repository's config runs commands.
    """
    refuse_unsafe(path)
    out = run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".", cwd=path,
              verified=True)
    fields = out.split("\0")
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(fields):
        item = fields[i]
        i += 1
        if len(item) < 4:
            continue
        code, name = item[:2], item[3:]
        if code[0] in "RC":  # a rename/copy is followed by its source path
            i += 1
        entries.append((code, name))
    prefix = run("rev-parse", "--show-prefix", cwd=path, verified=True).strip()
    return [(c, n.removeprefix(prefix)) for c, n in entries]


def is_work_tree(path: Path) -> bool:
    """True when ``path`` is inside a git work tree (``git rev-parse --is-inside-work-tree``).

    Raises DevkitError when the repository's config runs commands (:func:`unsafe_config`).
    """
    if shutil.which("git") is None:
        return False
    refuse_unsafe(path)
    proc = cmd_output("git", "rev-parse", "--is-inside-work-tree", cwd=path, env=environment(),
                      check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def git_path(path: Path, name: str) -> Path:
    """The absolute path git uses for ``name`` inside the repository holding ``path``
    (``git rev-parse --path-format=absolute --git-path NAME``, git 2.31+): for ``info/exclude``
    and ``info/attributes`` the common git directory, which a linked worktree shares with the
    main one (gitrepository-layout(5)). Raises DevkitError outside a repository."""
    return Path(run("rev-parse", "--path-format=absolute", "--git-path", name, cwd=path).strip())


def show_prefix(path: Path) -> str:
    """``path`` relative to the top of its work tree, with a trailing ``/`` (``""`` at the top):
    ``git rev-parse --show-prefix``. Raises DevkitError outside a work tree."""
    return run("rev-parse", "--show-prefix", cwd=path).strip()


def upstream(path: Path) -> str | None:
    """The upstream branch of the current branch (``origin/main``), or None when it has none
    (detached HEAD, no tracking branch): ``git rev-parse --abbrev-ref @{upstream}``.
    Raises DevkitError when the repository's config runs commands."""
    refuse_unsafe(path)
    proc = cmd_output("git", "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}",
                      cwd=path, env=environment(), check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def tracked_in(path: Path, rev: str, names: Sequence[str]) -> list[str]:
    """Those of ``names`` (relative to ``path``) that the tree of ``rev`` (``HEAD``, an upstream
    branch) holds: ``git ls-tree -r --name-only REV -- NAMES``. Empty when ``rev`` does not
    exist (a repository without commits). Raises DevkitError when the repository is refused."""
    if not names:
        return []
    refuse_unsafe(path)
    proc = cmd_output("git", "--literal-pathspecs", "ls-tree", "-r", "-z", "--name-only",
                      "--full-name", rev, "--", *names, cwd=path, env=environment(), check=False)
    if proc.returncode != 0:
        return []
    prefix = show_prefix(path)
    found = {n.removeprefix(prefix) for n in proc.stdout.split("\0") if n}
    return [n for n in names if n in found]


def merge_file(current: bytes, base: bytes, other: bytes, *,
               labels: tuple[str, str, str] = ("before updating", "base", "after updating"),
               ) -> tuple[bytes, bool]:
    """Three-way merge of one file's contents: the changes from ``base`` to ``other`` applied
    to ``current`` (``git merge-file -p``, run in a private temporary directory, so no
    repository's config or attributes apply). Returns (merged bytes, True when conflicts
    remain: ``<<<<<<<``/``>>>>>>>`` markers named by ``labels`` are in the bytes).
    Raises DevkitError when git fails (exit code < 0 or > 127)."""
    import tempfile

    if shutil.which("git") is None:
        raise DevkitError("git not found on PATH: install git (e.g. `apt-get install git`)")
    with tempfile.TemporaryDirectory(prefix="devkit-merge-") as tmp:
        files = []
        for name, data in (("current", current), ("base", base), ("other", other)):
            file = Path(tmp) / name
            file.write_bytes(data)
            files.append(str(file))
        args = [a for label in labels for a in ("-L", label)]
        env = {**environment(), "GIT_CEILING_DIRECTORIES": str(Path(tmp).parent)}
        proc = subprocess.run(["git", "merge-file", "-p", *args, *files], cwd=tmp, env=env,
                              capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode < 0 or proc.returncode > 127:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DevkitError(f"git merge-file failed: {lines[-1] if lines else proc.returncode}")
    out = proc.stdout
    return out, proc.returncode > 0
