"""Workspace check: the workspace is on the template version the installed devkit ships.

A workspace records its template version as copier's ``_commit`` (a tag of the store's template
repository, see :mod:`devkit.template`); after a devkit upgrade, or a change to a development
install's template, the store's repository gets a newer tag and ``devkit update`` brings the
workspace onto it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from devkit import template
from devkit.checks.base import Context, Outcome, check, not_applicable, ok, warn
from devkit.errors import DevkitError


def other_source(ctx: Context, src: str, commit: str) -> Outcome:
    """What ``devkit update`` does for a workspace made from ``src`` (not the store's template),
    in the words ``devkit update`` uses: a local source holding devkit's template at ``commit``
    (:func:`devkit.template.store_tag_of`) is moved onto the store's template; a devkit
    workspace whose local source is gone gets the one command that moves it there
    (:func:`devkit.template.repoint_command`); otherwise copier's update from that source's
    newest PEP 440 tag, or its HEAD when it has none. Runs git in a local source (reading
    objects and tags only, no hooks run)."""
    ws = ctx.workspace.path if ctx.workspace else Path(".")
    fix = f"devkit update {shlex.quote(str(ws))}"
    if not template.is_local(src):
        return ok(f"made from {src} at {commit}; `devkit update` brings its newest tag")
    path = Path(src).expanduser()
    devkits = bool(ctx.workspace and "env_loader" in ctx.workspace.answers)
    if not path.is_dir():
        if devkits:
            try:
                tag = template.available_version(ctx.store).tag
            except DevkitError as exc:
                return warn(f"its template {src} no longer exists, and the store's template "
                            f"repository cannot be read: {exc}", fix)
            q = shlex.quote(str(ws))
            return warn(f"its template {src} no longer exists: move it onto devkit's template "
                        f"(copier re-renders it with its answers; review `git -C {q} diff`); "
                        "`devkit update` says the same",
                        template.repoint_command(ws, ctx.store, tag))
        return warn(f"made from the local template {src}, which no longer exists: `devkit update` "
                    "cannot update this workspace", f"put the template back at {shlex.quote(src)}, "
                    f"then {fix}")
    same = template.store_tag_of(src, commit, ctx.store)
    if same:
        return warn(f"made from {src} at {commit}, the same files as devkit's {same}: "
                    f"`devkit update` moves it onto devkit's template ({ctx.store.template_repo}), "
                    "so updates no longer need that path", fix)
    result = ctx.run("git", "-C", str(path), "tag", "--list")
    newest = template.newest_tag(result.stdout.split()) if result.ok else None
    where = f"its newest tag {newest}" if newest else "its HEAD (it has no version tags)"
    if newest and newest == commit:
        return ok(f"made from the local template {src} at {commit}, its newest tag; updates "
                  f"come from that path while it exists")
    return ok(f"made from the local template {src} at {commit}; `devkit update` brings {where}, "
              f"from that path while it exists")


@check("workspace.template-version", "workspace on devkit's current template", requires=("tools.git",),
       workspace=True)
def template_version(ctx: Context) -> Outcome:
    """``_commit`` of ``.copier-answers.yml`` (of a private workspace, the commit its record in
    the store holds) against the tag of the installed devkit's template."""
    assert ctx.workspace is not None
    ws = ctx.workspace.path
    src, commit = ctx.workspace.answers.get("_src_path"), ctx.workspace.answers.get("_commit")
    if not src or not commit:
        from devkit.checks.private import record_of

        try:
            record = record_of(ctx)
        except DevkitError as exc:
            return warn(str(exc), f"devkit adopt --private {shlex.quote(str(ws))}")
        if record is None:
            return not_applicable("the answers file records no template version "
                                  "(_src_path, _commit)")
        src, commit = record.source, record.commit  # a private workspace: the store's record
    if not template.is_store_source(src, ctx.store):
        return other_source(ctx, src, commit)
    try:
        available = template.available_version(ctx.store)
    except DevkitError as exc:
        return warn(f"cannot read the store's template repository: {exc}",
                    f"devkit update {shlex.quote(str(ws))}")
    if commit == available.tag:
        return ok(f"template {commit}, the current one")
    mine = template.commit_version(commit)
    fix = f"devkit update {shlex.quote(str(ws))}"
    if mine is None or mine < available.version:
        return warn(f"template {commit} is behind devkit's {available.tag}", fix)
    return warn(f"template {commit} is newer than this devkit's {available.tag}: a newer devkit "
                "updated it", "upgrade devkit (e.g. `uv tool upgrade devkit`)")
