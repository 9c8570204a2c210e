"""``devkit store``: where everything lives, how much it weighs, how much the sharing saves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from devkit import gcplan, usage
from devkit.align import lockfile
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store
from devkit.util import format_bytes, stdout_console


def report(store: Store) -> dict[str, Any]:
    """The ``devkit store --json`` document (byte counts are bytes on disk, each inode once)."""
    projects = Registry(store).projects()
    table = usage.InodeTable()  # one walk of each tree, one stat per inode
    cache = table.scan(store.uv_cache_dir)
    venv_trees = [table.scan(p.path / ".venv") for p in projects if (p.path / ".venv").is_dir()]
    venvs = [usage.venv_usage(t.root, cache, t) for t in venv_trees]
    locks, unreadable = [], []
    for p in projects:
        if not p.exists:
            continue  # listed under projects.missing
        try:
            locks.append(lockfile.read(p.path / "uv.lock"))
        except lockfile.LockError as exc:  # malformed or missing: listed, never fatal
            unreadable.append(str(exc))
    fs_type = usage.filesystem_type(store.uv_cache_dir)
    on_disk = usage.unique_bytes([cache, *venv_trees])
    private_copies = sum(v.bytes for v in venvs)
    clone_fs = fs_type in usage.CLONE_FILESYSTEMS
    venv_private = sum(v.private_bytes for v in venvs)
    try:
        plan: gcplan.Plan | None = gcplan.make(store, measure_used=True)
        gc_error = None
    except DevkitError as exc:
        plan, gc_error = None, str(exc)
    baseline = plan.used_bytes + venv_private if plan else None
    return {
        "version": 1,
        "paths": {
            "devkit_home": str(store.home),
            "uv_cache_dir": str(store.uv_cache_dir),
            "python_install_dir": str(store.python_install_dir),
            "registry": str(store.registry_file),
            "manifest": str(store.manifest_file),
        },
        "env": store.env(),
        "filesystem": {
            "type": fs_type,
            "clone": clone_fs,
            "note": (
                "copy-on-write clones keep st_nlink == 1: link counts show no sharing here; "
                "see filesystem.usage (df) instead"
                if clone_fs
                else None
            ),
            "usage": usage.filesystem_usage(_existing(store.uv_cache_dir)),
        },
        "projects": {
            "registered": len(projects),
            "missing": [str(p.path) for p in projects if not p.exists],
            "with_venv": len(venvs),
        },
        "cache_bytes": cache.bytes,
        "cache_files": cache.files,
        "python_install_bytes": table.scan(store.python_install_dir).bytes,
        "venvs": [
            {
                "path": str(v.path),
                "files": v.files,
                "linked_files": v.linked_files,
                "linked_bytes": v.linked_bytes,
                "private_bytes": v.private_bytes,
            }
            for v in venvs
        ],
        "venv_linked_bytes": sum(v.linked_bytes for v in venvs),
        "venv_private_bytes": sum(v.private_bytes for v in venvs),
        "on_disk_bytes": on_disk,
        "private_copies_bytes": private_copies,
        "saving_bytes": private_copies - on_disk,
        "gc": {
            "reclaimable_bytes": plan.total.freed if plan else None,
            "linked_bytes": plan.total.linked if plan else None,
            "error": gc_error,
        },
        "uv_baseline_bytes": baseline,
        "saving_vs_uv_bytes": baseline - on_disk if baseline is not None else None,
        "locks": {**lockfile.summarize(locks).to_json(), "unreadable": unreadable},
    }


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def store(*, store: Store, as_json: bool = False) -> int:
    """Print :func:`report` as a table or JSON. Returns 0."""
    doc = report(store)
    if as_json:
        print(json.dumps(doc, indent=2))
        return 0
    console = stdout_console()
    paths = Table("what", "where", box=None, title="Store", title_justify="left")
    for key, value in doc["paths"].items():
        paths.add_row(key, value)
    console.print(paths)
    fs = doc["filesystem"]
    console.print(f"\nFilesystem: {fs['type'] or 'unknown'}"
                  + (f" (clone: {fs['note']})" if fs["clone"] else ""))
    sizes = Table("", "bytes on disk", box=None, title="\nSizes", title_justify="left")
    sizes.add_row("uv cache", format_bytes(doc["cache_bytes"]))
    sizes.add_row("uv-managed Pythons", format_bytes(doc["python_install_bytes"]))
    sizes.add_row("venvs: links into the cache", format_bytes(doc["venv_linked_bytes"]))
    sizes.add_row("venvs: private files", format_bytes(doc["venv_private_bytes"]))
    sizes.add_row("cache + venvs, each file once", format_bytes(doc["on_disk_bytes"]))
    sizes.add_row("one private copy per project", format_bytes(doc["private_copies_bytes"]))
    sizes.add_row("saving", format_bytes(doc["saving_bytes"]))
    if doc["uv_baseline_bytes"] is not None:
        sizes.add_row("plain uv, one cache, these locks", format_bytes(doc["uv_baseline_bytes"]))
        sizes.add_row("saving against plain uv", format_bytes(doc["saving_vs_uv_bytes"]))
    gc = doc["gc"]
    if gc["reclaimable_bytes"] is not None:
        sizes.add_row("reclaimable by `devkit gc`", format_bytes(gc["reclaimable_bytes"]))
    console.print(sizes)
    if gc["error"]:
        console.print(f"[yellow]warning:[/yellow] devkit gc cannot plan: {gc['error']}")
    locks = doc["locks"]
    projects = doc["projects"]
    console.print(
        f"\nProjects: {projects['registered']} registered, {projects['with_venv']} with a .venv"
        + (f", {len(projects['missing'])} missing" if projects["missing"] else "")
    )
    console.print(
        f"Locked pairs: {locks['pairs']} total, {locks['distinct_pairs']} distinct over "
        f"{locks['names']} packages ({locks['excess_pairs']} beyond one version per package)"
    )
    if locks["spread"]:
        spread = Table("package", "versions in use", box=None)
        for name, versions in sorted(locks["spread"].items(), key=lambda kv: -len(kv[1]))[:15]:
            spread.add_row(name, ", ".join(versions))
        console.print(spread)
        console.print("`devkit align` moves every project to one version per package.")
    for problem in locks["unreadable"]:
        console.print(f"[yellow]warning:[/yellow] {problem}")
    return 0
