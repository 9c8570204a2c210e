"""Checks of a private workspace (``devkit adopt --private``: a repository the user does not own).

Only there (``applies``): devkit's files are all listed in its block of the repository's
``info/exclude`` (and their line-ending rules in ``info/attributes``), and the repository does not
track a file devkit put there, in ``HEAD``, the index or the upstream branch: git treats an
ignored file as expendable and overwrites it without a word on the next checkout or pull.
``--fix`` rewrites the two blocks from the record in the store; it never touches ``.gitignore``
or ``.gitattributes``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from devkit.checks.base import Context, Outcome, check, fail, ok, safe_fix, skip, warn
from devkit.checks.workspace import git_env
from devkit.errors import DevkitError

if TYPE_CHECKING:  # devkit.private is imported only for a private workspace (doctor: ~2 ms less)
    from devkit.private import Record


def record_of(ctx: Context) -> Record | None:
    """The private adoption record of the workspace (memoised), or None; a malformed record
    raises DevkitError."""
    if ctx.workspace is None:
        return None
    path = ctx.workspace.path
    if not os.path.lexists(ctx.store.private_record(path)):
        return None
    from devkit import private

    return ctx.memo(("private.record", str(path)), lambda: private.load(ctx.store, path))


def only_private(ctx: Context) -> str | None:
    """An ``applies`` predicate: the workspace was adopted with ``--private``."""
    try:
        return None if record_of(ctx) is not None else "not a private workspace"
    except DevkitError:
        return None  # the check itself reports the malformed record


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _info_paths(ctx: Context) -> tuple[Path, Path] | None:
    """(``info/exclude``, ``info/attributes``) as git resolves them for the workspace now."""
    from devkit import private

    assert ctx.workspace is not None
    found = []
    for name in (private.EXCLUDE, private.ATTRIBUTES):
        result = ctx.run("git", "rev-parse", "--path-format=absolute", "--git-path", name,
                         cwd=ctx.workspace.path, env=git_env(ctx))
        if not result.ok:
            return None
        found.append(Path(result.stdout.strip()))
    return found[0], found[1]


def _current(ctx: Context) -> Record:
    record = record_of(ctx)
    assert record is not None
    paths = _info_paths(ctx)
    if paths is not None:
        record.exclude.path, record.attribute_file.path = str(paths[0]), str(paths[1])
    return record


@check("workspace.private-excluded", "devkit's files excluded from git (private workspace)",
       requires=("workspace.git",), workspace=True, applies=only_private)
def excluded(ctx: Context) -> Outcome:
    """Every file devkit added is in devkit's block of ``info/exclude`` and its line-ending
    rule in ``info/attributes`` (read from the files git uses now: ``git rev-parse
    --git-path``); otherwise ``git status`` shows them and a ``git add -A`` commits them."""
    from devkit import private

    try:
        record = _current(ctx)
    except DevkitError as exc:
        return fail(str(exc), None)
    ws = record.workspace
    missing = private.missing_lines(record)
    if missing:
        return fail(f"{', '.join(missing)} missing from devkit's block in "
                    f"{record.exclude.path} / {record.attribute_file.path}: git sees devkit's "
                    "files (`git add -A` would commit them)", f"devkit adopt --private {_q(ws)}")
    return ok(f"{len(record.files)} file(s) excluded in {record.exclude.path}, line endings in "
              f"{record.attribute_file.path}; .gitignore and .gitattributes untouched")


@safe_fix("workspace.private-excluded")
def fix_excluded(ctx: Context) -> str:
    """Rewrite devkit's two blocks from the record (``info/exclude``, ``info/attributes``);
    never touches a tracked file."""
    from devkit import private

    record = _current(ctx)
    private.write_blocks(record)
    private.save(ctx.store, record)
    return f"rewrote devkit's blocks in {record.exclude.path} and {record.attribute_file.path}"


@check("workspace.private-tracked", "the repository tracks none of devkit's files",
       requires=("workspace.git",), workspace=True, applies=only_private)
def tracked(ctx: Context) -> Outcome:
    """None of devkit's files is in the index, ``HEAD`` or the upstream branch (``@{upstream}``,
    as last fetched): git overwrites an ignored file silently when a checkout or pull brings a
    tracked one of the same name (gitignore(5): ignored files are expendable)."""
    try:
        record = _current(ctx)
    except DevkitError as exc:
        return fail(str(exc), None)
    ws = record.workspace
    names = sorted(record.files)
    if not names:
        return ok("devkit added no file here")
    env = git_env(ctx)
    prefix = ctx.run("git", "rev-parse", "--show-prefix", cwd=ws, env=env).stdout.strip()
    upstream = ctx.run("git", "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}",
                       cwd=ws, env=env)
    revs = ["HEAD"] + ([upstream.stdout.strip()] if upstream.ok and upstream.stdout.strip()
                       else [])
    found: dict[str, list[str]] = {}
    staged = ctx.run("git", "--literal-pathspecs", "ls-files", "-z", "--full-name", "--", *names,
                     cwd=ws, env=env)
    for name in staged.stdout.split("\0"):
        if name:
            found.setdefault(name.removeprefix(prefix), []).append("the index")
    for rev in revs:
        result = ctx.run("git", "--literal-pathspecs", "ls-tree", "-r", "-z", "--name-only",
                         "--full-name", rev, "--", *names, cwd=ws, env=env)
        if result.error:
            return skip(f"cannot run git: {result.error}")
        for name in result.stdout.split("\0"):
            if name and result.ok:
                found.setdefault(name.removeprefix(prefix), []).append(rev)
    if not found:
        where = ", ".join(["the index", *revs[:-1]]) + f" or {revs[-1]}"
        return ok(f"none of {', '.join(names)} is in {where}")
    which = "; ".join(f"{n} (in {', '.join(dict.fromkeys(w))})" for n, w in sorted(found.items()))
    first = min(found)
    return warn(f"the repository now tracks {which}: git overwrites devkit's excluded copy "
                "silently on the next checkout or pull", f"keep your copy (cp {_q(ws / first)} "
                f"{_q(str(ws / first) + '.mine')}), then stop devkit's: devkit adopt --remove "
                f"--force {_q(ws)}")
