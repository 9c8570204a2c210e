"""Workspace check: the workspace is on the template version the installed devkit ships.

A workspace records its template version as copier's ``_commit`` (a tag of the store's template
repository, see :mod:`devkit.template`); after a devkit upgrade, or a change to a development
install's template, the store's repository gets a newer tag and ``devkit update`` brings the
workspace onto it.
"""

from __future__ import annotations

import shlex

from devkit import template
from devkit.checks.base import Context, Outcome, check, not_applicable, ok, warn
from devkit.errors import DevkitError


@check("workspace.template-version", "workspace on devkit's current template", requires=("tools.git",),
       workspace=True)
def template_version(ctx: Context) -> Outcome:
    """``_commit`` of ``.copier-answers.yml`` against the tag of the installed devkit's template."""
    assert ctx.workspace is not None
    ws = ctx.workspace.path
    src, commit = ctx.workspace.answers.get("_src_path"), ctx.workspace.answers.get("_commit")
    if not src or not commit:
        return not_applicable("the answers file records no template version (_src_path, _commit)")
    if not template.is_store_source(src, ctx.store):
        return ok(f"made from {src} at {commit}; `devkit update` brings its newest tag")
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
