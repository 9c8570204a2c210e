"""devkit's command line: argparse, one ``_add_*`` per subcommand, explicit dispatch."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from devkit import __version__
from devkit.errors import error_handler
from devkit.store import Store


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _add_new(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("new", help="create a workspace from the devkit template",
                       description="Render the template, git init, register, lock, sync, trust.")
    p.add_argument("path", type=Path, help="directory to create (its name is the default project name)")
    p.add_argument("--data", "-d", action="append", default=[], metavar="KEY=VALUE",
                   help="answer a template question (repeatable)")
    p.add_argument("--defaults", action="store_true", help="use default answers, ask nothing")
    p.add_argument("--template", default=os.environ.get("DEVKIT_TEMPLATE"), metavar="SRC",
                   help="template path or git URL (default: $DEVKIT_TEMPLATE, else the bundled one)")
    p.add_argument("--no-sync", action="store_true", help="skip `uv lock` and `uv sync`")


def _add_projects(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("projects", help="list, add or remove registered workspaces",
                       description="The registry of workspaces that share the store.")
    psub = p.add_subparsers(dest="projects_command", metavar="{list,add,remove}")
    psub.required = True
    _add_json(psub.add_parser("list", help="list registered workspaces"))
    for name, verb in (("add", "register"), ("remove", "unregister")):
        q = psub.add_parser(name, help=f"{verb} workspaces")
        q.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        _add_json(q)


def _add_store(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("store", help="where the shared cache lives and what it saves",
                       description="Paths, bytes on disk and sharing of the store.")
    _add_json(p)


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check this machine and a workspace",
                       description="Check the machine and, inside a workspace, the workspace; "
                                   "print the exact fix for each problem. Exit 1 if a check fails.")
    p.add_argument("path", nargs="?", type=Path, default=Path("."), help="workspace (default: .)")
    _add_json(p)
    p.add_argument("--verbose", "-v", action="store_true", help="show details and timings")
    p.add_argument("--fix", action="store_true", help="apply the safe fixes")


def _add_align(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("align", help="move all projects' locks to one version per package",
                       description="Align the uv.lock files of registered projects (or PATHs) on "
                                   "the same versions, with uv itself, never by editing uv.lock.")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="projects to align (default: every registered project)")
    p.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
    p.add_argument("--check", action="store_true", help="exit 1 if aligning would change something")
    _add_json(p)
    p.add_argument("--strategy", choices=("newest", "majority"), default="newest",
                   help="target version: newest in use (default) or used by most projects")
    p.add_argument("--jobs", "-j", type=int, default=min(4, os.cpu_count() or 1),
                   help="projects locked concurrently")
    p.add_argument("--sync", action="store_true",
                   help="re-sync every venv that no longer matches its lock")
    p.add_argument("--allow-downgrade", choices=("patch", "minor", "major"), default="none",
                   help="let projects move down (within the same minor/major) to a version "
                        "another project uses")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; ``devkit --help`` lists every subcommand."""
    parser = argparse.ArgumentParser(
        prog="devkit",
        description="Many Python workspaces, one uv cache and Python store, aligned lockfiles.",
    )
    parser.add_argument("--version", action="version", version=f"devkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_new, _add_projects, _add_store, _add_doctor, _add_align):
        add(sub)
    return parser


def _dispatch(args: argparse.Namespace, store: Store) -> int:
    if args.command == "new":
        from devkit.commands import new

        return new.new(args.path, store=store, data=new.parse_data(args.data),
                       defaults=args.defaults, template_src=args.template, sync=not args.no_sync)
    if args.command == "projects":
        from devkit.commands import projects

        if args.projects_command == "list":
            return projects.list_projects(store=store, as_json=args.json)
        func = projects.add if args.projects_command == "add" else projects.remove
        return func(args.paths, store=store, as_json=args.json)
    if args.command == "store":
        from devkit.commands import store as store_cmd

        return store_cmd.store(store=store, as_json=args.json)
    if args.command == "doctor":
        from devkit.commands import doctor

        return doctor.doctor(args.path, store=store, as_json=args.json,
                             verbose=args.verbose, fix=args.fix)
    if args.command == "align":
        from devkit.commands import align

        return align.align(args.paths, store=store, dry_run=args.dry_run, check=args.check,
                           as_json=args.json, strategy=args.strategy, jobs=args.jobs,
                           sync=args.sync, allow_downgrade=args.allow_downgrade)
    raise AssertionError(args.command)  # argparse rejects unknown commands before this


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devkit`` console script and ``python -m devkit``; returns the exit code."""
    args = build_parser().parse_args(argv)
    store = Store()
    with error_handler(store.log_file):
        return _dispatch(args, store)
    return 3  # unreachable: error_handler raises SystemExit on errors
