"""The report of ``devkit align``: the ``--json`` document and the human text. Rendering only:
no file I/O, no uv; the engine (:mod:`devkit.align.engine`) gathers every figure first."""

from __future__ import annotations

import io
import json
import shlex
from typing import TYPE_CHECKING, Any

from devkit.align import lockfile
from devkit.util import format_bytes

if TYPE_CHECKING:
    from devkit.align.engine import Result

JSON_VERSION = 1  # additions only since version 1: new keys, no key changed meaning


def document(result: Result) -> dict[str, Any]:
    """The ``devkit align --json`` document (schema in docs/align.md, ``version`` 1)."""
    outcomes = result.outcomes
    before = lockfile.summarize(result.before.values())
    after = lockfile.summarize(result.after.values())
    gone = result.unreferenced
    return {
        "version": JSON_VERSION,
        "strategy": result.strategy,
        "allow_downgrade": result.allow_downgrade,
        "dry_run": result.dry_run,
        "check": result.check,
        "changed": any((o.changes or o.stale) and o.status != "failed" for o in outcomes),
        "seconds": round(result.seconds, 3),
        "before": before.to_json(),
        "after": after.to_json(),
        # excess pairs no alignment can remove without editing a project (planner.excess_floor)
        "floor": {"excess_pairs": result.floor},
        "saved": {"distinct_pairs": before.distinct_pairs - after.distinct_pairs,
                  "excess_pairs": before.excess_pairs - after.excess_pairs,
                  "distinct_bytes": before.distinct_bytes - after.distinct_bytes},
        "targets": [t.to_json() for t in result.plan.targets],
        "projects": [o.to_json() for o in outcomes],
        # a blocker whose package ended at one version everywhere no longer matters
        "blocked": [b.to_json() for o in outcomes for b in o.blocked if b.name in after.spread],
        "released": [{"project": o.name, **r.to_json()} for o in outcomes for r in o.released],
        # align's own downgrades; a stale lock's plain re-lock moves as uv decides
        "downgrades": [{"project": o.name, **c.to_json()} for o in outcomes for c in o.downgrades],
        "failed": [{"path": str(o.path), "error": o.error} for o in outcomes if o.status == "failed"],
        "skipped": [{"path": str(o.path), "reason": o.error} for o in outcomes
                    if o.status == "skipped"],
        "unreferenced": {"bytes": sum(e.bytes for e in gone),
                         "entries": [e.to_json() for e in gone]},
        "stale_venvs": [v.to_json() for v in result.venvs if not v.current],
        "sync_command": result.sync_command,
        "notes": result.notes,
        "test": result.test,             # --test: changed projects were gated by their tests
        "test_seconds": round(result.test_seconds, 3),
        "held": [{"project": o.name, "path": str(o.path), "name": b.name, "current": b.current,
                  "wanted": b.wanted, "tests": list(b.tests)} for o in outcomes
                 for b in o.blocked if b.kind == "tests"],
        # what forgets those holds and retries the moves under the tests
        "clear_holds_command": _clear_holds_command(outcomes),
    }


def _clear_holds_command(outcomes: list[Any]) -> str:
    """``devkit align --clear-holds PATH... --test`` for the projects with test holds, or ``""``."""
    paths = dict.fromkeys(str(o.path) for o in outcomes for b in o.blocked if b.kind == "tests")
    return " ".join(["devkit", "align", "--clear-holds", *map(shlex.quote, paths), "--test"]) \
        if paths else ""


def to_json(doc: dict[str, Any]) -> str:
    """``doc`` as indented JSON text."""
    return json.dumps(doc, indent=2)


def _versions(versions: list[str]) -> str:
    return ", ".join(versions) if versions else "(none)"


def to_text(doc: dict[str, Any], *, width: int = 100) -> str:
    """A short human report of ``doc`` (rich markup rendered to plain text)."""
    from rich.console import Console
    from rich.markup import escape

    buffer = io.StringIO()
    out = Console(file=buffer, highlight=False, soft_wrap=True, width=width, color_system=None)
    verb = "would change" if doc["dry_run"] else "changed"
    projects = doc["projects"]
    changed = [p for p in projects if p["changes"] or (p["stale"] and p["status"] != "failed")]
    failed = [p for p in projects if p["status"] == "failed"]
    skipped = [p for p in projects if p["status"] == "skipped"]
    b, a = doc["before"], doc["after"]
    policy = doc["allow_downgrade"]
    out.print(f"devkit align ({doc['strategy']}{', dry run' if doc['dry_run'] else ''}"
              f"{', downgrades: ' + policy if policy != 'none' else ''}): "
              f"{len(projects)} project{'s' * (len(projects) != 1)}, {len(changed)} {verb}, "
              f"{len(doc['blocked'])} blocked, "
              + (f"{len(skipped)} skipped, " if skipped else "") + f"{len(failed)} failed")
    out.print(f"Distinct (index, name, version) pairs: {b['distinct_pairs']} -> {a['distinct_pairs']}"
              f" ({b['excess_pairs']} -> {a['excess_pairs']} beyond one version per package; "
              f"at least {doc['floor']['excess_pairs']} held by the projects' own requirements "
              f"and forks)")
    if b["distinct_bytes"] or a["distinct_bytes"]:  # 0: the locks record no sizes (file:// index)
        out.print(f"Bytes of distinct wheels: {format_bytes(b['distinct_bytes'])} -> "
                  f"{format_bytes(a['distinct_bytes'])}")
    for p in changed:
        moves = ", ".join(f"{c['name']} {_versions(c['before'])} -> {_versions(c['after'])}"
                          for c in p["changes"])
        stale = " [lock was stale: re-locked]" if p["stale"] else ""
        out.print(escape(f"  {p['name']}: {moves or 'no version moves'}{stale}"))
    if doc["released"]:
        out.print("Parents moved up to let a package align:")
        for r in doc["released"]:
            out.print(escape(f"  {r['project']}: {r['name']} {r['before']} -> {r['after']} "
                             f"(for {r['for']})"))
    if doc["downgrades"]:
        out.print(f"Downgrades (--allow-downgrade {policy}):")
        for d in doc["downgrades"]:
            out.print(escape(f"  {d['project']}: {d['name']} {_versions(d['before'])} -> "
                             f"{_versions(d['after'])}"))
    if doc["blocked"]:
        out.print("Blocked:")
        for item in doc["blocked"]:
            out.print(escape(f"  {item['project']}: {item['name']} {item['current']} (target "
                             f"{item['wanted']}): {item['reason']}"))
    if a["spread"]:
        out.print("Still at several versions:")
        for name, versions in a["spread"].items():
            out.print(escape(f"  {name}: {', '.join(versions)}"))
    gone = doc["unreferenced"]
    if gone["entries"]:
        out.print(f"Cache no longer referenced by any lock: {format_bytes(gone['bytes'])} in "
                  f"{len(gone['entries'])} wheel(s)")
    if doc["stale_venvs"]:
        out.print("Venvs that no longer match their lock:")
        for v in doc["stale_venvs"]:
            out.print(escape(f"  {v['name']} ({v['path']})"))
        out.print(escape(f"Sync them with: {doc['sync_command']}"))
    if doc["test"]:
        tested = [p for p in projects if p["tests"]]
        runs = sum(p["tests"]["runs"] for p in tested)
        out.print(f"Tests: {len(tested)} project(s) tested, {runs} run(s) in "
                  f"{doc['test_seconds']:.1f} s; {len(doc['held'])} package(s) held back "
                  f"for failing tests")
        for p in tested:
            if p["tests"]["note"]:
                out.print(escape(f"  {p['name']}: {p['tests']['note']}"))
    if doc["held"]:
        out.print(escape(f"Held by failing tests until the requirements change; once the tests "
                         f"are fixed, retry with: {doc['clear_holds_command']}"))
    for p in [*skipped, *failed]:
        out.print(escape(f"[{p['name']}] {p['error']}"))
    for note in doc["notes"]:
        out.print(escape(f"note: {note}"))
    if doc["check"] and doc["changed"]:
        out.print("Locks are not aligned: run `devkit align`.")
    return buffer.getvalue()
