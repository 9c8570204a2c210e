"""devkit's command line: argparse, one ``_add_*`` per subcommand, explicit dispatch.

Exit codes (documented once, in the README): 0 ok, 1 a problem the user can fix (``DevkitError``),
2 a usage error (argparse's and POSIX utilities' convention), 3 a bug (traceback in the log file),
130 after Ctrl-C, 141 when stdout is a pipe that was closed early (128 + SIGPIPE, what a shell
reports for ``yes | head -1``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from devkit import __version__
from devkit.errors import error_handler
from devkit.store import Store
from devkit.util import terminate_as_interrupt

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

USAGE_ERROR = 2
BROKEN_PIPE = 141  # 128 + SIGPIPE


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``devkit store: error: …`` and a ``--help`` hint.

    argparse's default prints the full usage block of the parser that failed, and an unknown flag
    after a subcommand is reported by the top-level parser with the top-level usage.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and how to get help to stderr; exit 2.

        A mistyped command or choice gets the closest valid one (``difflib``): "did you mean
        doctor?".
        """
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}{_did_you_mean(message)}\n"
                               f"Run `{self.prog} --help` for usage.\n")

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        """Write the help to ``file`` (stdout); unlike argparse's, a closed pipe raises
        BrokenPipeError, so ``devkit --help | head -1`` ends like any other command."""
        (file or sys.stdout).write(self.format_help())


def _did_you_mean(message: str) -> str:
    """``"; did you mean X?"`` for argparse's "invalid choice: 'x' (choose from …)", else ""."""
    import difflib
    import re

    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not match:
        return ""
    choices = re.findall(r"'([^']*)'", match.group(2)) or match.group(2).split(", ")
    close = difflib.get_close_matches(match.group(1), choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _add_jobs(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--jobs", "-j", type=_positive_int, default=min(4, os.cpu_count() or 1),
                        help=f"{what} concurrently (default: min(4, CPUs))")


def _add_workspaces(parser: argparse.ArgumentParser) -> None:
    """``PATH...`` (default: the workspace holding the current directory) and ``--all``."""
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="workspaces (default: the one holding the current directory)")
    parser.add_argument("--all", action="store_true", dest="all_projects",
                        help="every registered workspace")


def _add_new(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("new", help="create a workspace from the devkit template",
                       description="Render the template, git init, register, lock, sync, trust.",
                       epilog=_NEW_EPILOG, formatter_class=_NewHelpFormatter)
    p.add_argument("path", type=Path, nargs="?",
                   help="directory to create (its name is the default project name)")
    p.add_argument("--demo", action="store_true",
                   help="create the demo workspace with the default answers in "
                        "~/.local/share/devkit-demo (beside the store), replacing the previous "
                        "demo: running it again never piles up demos")
    p.add_argument("--data", "-d", action="append", default=[], metavar="KEY=VALUE",
                   help="answer a template question (repeatable)")
    p.add_argument("--defaults", action="store_true", help="use default answers, ask nothing")
    p.add_argument("--template", default=os.environ.get("DEVKIT_TEMPLATE"), metavar="SRC",
                   help="template path or git URL (default: $DEVKIT_TEMPLATE, else the bundled one)")
    p.add_argument("--no-sync", action="store_true", help="skip `uv lock` and `uv sync`")
    p.add_argument("--force", action="store_true",
                   help="replace a workspace an interrupted `devkit new` left at PATH")


_NEW_EPILOG = "(the template's --data keys)"


class _NewHelpFormatter(argparse.HelpFormatter):
    """Reads the template's question names only when ``devkit new --help`` is printed."""

    def add_text(self, text: str | None) -> None:
        if text == _NEW_EPILOG:
            from devkit.commands import new

            text = new.data_help() or None
        super().add_text(text)


def _add_projects(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("projects", help="list, add, remove or prune registered workspaces",
                       description="The registry of workspaces that share the store "
                                   "(`devkit projects` alone lists them).")
    psub = p.add_subparsers(dest="projects_command", metavar="{list,add,remove,prune,set}")
    psub.required = False  # `devkit projects` alone lists them
    _add_json(psub.add_parser("list", help="list registered workspaces"))
    q = psub.add_parser("add", help="register workspaces (directories with a pyproject.toml)")
    q.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _add_json(q)
    q = psub.add_parser("remove", help="unregister workspaces (their files are untouched)")
    q.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    q.add_argument("--missing", action="store_true",
                   help="also unregister every project whose directory no longer exists")
    _add_json(q)
    q = psub.add_parser("set", help="change a registered workspace's settings",
                        description="--align / --no-align: whether `devkit align` may change "
                                    "the uv.lock of a private workspace (`devkit adopt "
                                    "--private`), which belongs to the repository.")
    q.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    flag = q.add_mutually_exclusive_group(required=True)
    flag.add_argument("--align", action="store_true", dest="align", default=None,
                      help="let `devkit align` change its uv.lock")
    flag.add_argument("--no-align", action="store_false", dest="align",
                      help="leave its uv.lock alone (the default for a private workspace)")
    _add_json(q)
    q = psub.add_parser("prune", help="unregister projects whose directory no longer exists")
    q.add_argument("--dry-run", action="store_true", help="list them, change nothing")
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
    p.add_argument("--only", action="append", type=Path, default=[], metavar="PATH",
                   help="plan with every registered project, but change, check and report only "
                        "PATH (repeatable): `--check --only .` fails when this project is off "
                        "the store's versions")
    _add_json(p)
    p.add_argument("--strategy", choices=("newest", "majority"), default="newest",
                   help="target version: newest in use (default) or used by most projects")
    _add_jobs(p, "projects locked")
    p.add_argument("--sync", action="store_true",
                   help="re-sync every venv that no longer matches its lock")
    p.add_argument("--allow-downgrade", choices=("patch", "minor", "major"), default="none",
                   help="let projects move down (within the same minor/major) to a version "
                        "another project uses")
    p.add_argument("--test", action="store_true",
                   help="run each changed project's tests before and after; hold back the "
                        "packages that break a test (runs the projects' code)")
    p.add_argument("--test-command", metavar="CMD",
                   help="the test command (implies --test; split like a shell, run without one; "
                        "default: the workspace's test task, else "
                        "'uv run --locked pytest -q -p no:cacheprovider')")
    p.add_argument("--clear-holds", action="store_true",
                   help="forget the moves the tests of PATH (default: every project) refused, "
                        "so the next align tries them again; with --test, clear then align "
                        "with the tests")


def _add_gc(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("gc", help="remove cached versions and Pythons no registered project uses",
                       description="Remove from the shared uv cache every package version no "
                                   "registered uv.lock uses (build requirements kept), and "
                                   "uv-managed Pythons nothing pins or uses, with uv's own "
                                   "commands. Waits UV_LOCK_TIMEOUT seconds for a busy cache.")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would go and the bytes it frees, change nothing")
    _add_json(p)


def _add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sync", help="sync workspaces' .venv with uv.lock from the shared cache",
                       description="`uv sync --locked` with the store's environment, whatever "
                                   "the calling shell has; rebuilds a .venv linked from another "
                                   "uv cache. Exit 1 if any workspace failed.")
    _add_workspaces(p)
    _add_json(p)
    _add_jobs(p, "workspaces synced")


def _add_adopt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("adopt", help="bring an existing uv project into the store",
                       description="Add devkit's environment files (.mise.toml, .envrc.sh…) that "
                                   "the project lacks, register it, approve the configs devkit "
                                   "rendered and `uv sync` from the shared cache. pyproject.toml "
                                   "and sources are never touched.")
    p.add_argument("path", nargs="?", type=Path, default=Path("."),
                   help="project directory (default: .)")
    p.add_argument("--loader", choices=("mise", "direnv", "both"), default=None,
                   help="what loads the environment on cd (default: the answers file's, else mise)")
    p.add_argument("--no-sync", action="store_true", help="skip `uv sync`")
    p.add_argument("--private", action="store_true",
                   help="a git repository you don't own: change no tracked file, hide devkit's "
                        "files in the repository's info/exclude (run again to repair)")
    p.add_argument("--data", "-d", action="append", default=[], metavar="KEY=VALUE",
                   help="with --private: answer a template question (repeatable), e.g. "
                        "services=postgres,redis adds compose.yaml, excluded like the rest")
    p.add_argument("--remove", action="store_true",
                   help="undo `adopt --private`: delete the files devkit added (not the ones "
                        "you changed), its info/exclude and info/attributes lines, unregister")
    p.add_argument("--force", action="store_true",
                   help="with --remove: delete devkit's files even when you changed them")


def _add_update(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("update", help="bring workspaces onto the current template",
                       description="Refresh the store's copy of devkit's template, then run "
                                   "copier's update in each workspace with its recorded answers. "
                                   "Nothing is committed. Exit 1 on conflicts or failures.")
    _add_workspaces(p)
    p.add_argument("--dry-run", action="store_true",
                   help="report what would change, write nothing in the workspaces")
    _add_json(p)
    p.add_argument("--vcs-ref", metavar="REF", help="template tag or commit to update to "
                   "(default: devkit's own template, or the newest tag of another source)")
    p.add_argument("--data", "-d", action="append", default=[], metavar="KEY=VALUE",
                   help="answer a template question anew (repeatable), e.g. "
                        "--data 'services=[postgres]' adds compose.yaml and the service URLs")
    _add_jobs(p, "workspaces updated")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; ``devkit --help`` lists every subcommand."""
    parser = Parser(
        prog="devkit",
        description="Many Python workspaces, one uv cache and Python store, aligned lockfiles.",
        epilog="Exit codes: 0 ok, 1 a problem to fix, 2 usage error, 3 bug, 130 interrupted, "
               "141 output pipe closed.",
    )
    parser.add_argument("--version", action="version", version=f"devkit {__version__}")
    # Subparsers are Parser too (argparse uses the parent's class): the same one-line errors.
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for add in (_add_new, _add_adopt, _add_sync, _add_update, _add_projects, _add_store,
                _add_doctor, _add_align, _add_gc):
        add(sub)
    _route_to_subparsers(parser)
    return parser


def _dispatch(args: argparse.Namespace, store: Store) -> int:
    if args.command == "new":
        from devkit import template
        from devkit.commands import new

        if args.demo:
            if args.path is not None or args.data:
                args.devkit_parser.error("--demo takes no PATH and no --data")
            return new.new_demo(store=store, sync=not args.no_sync)
        if args.path is None:
            args.devkit_parser.error("give the PATH of the workspace to create, or --demo")
        return new.new(args.path, store=store, data=template.parse_data(args.data),
                       defaults=args.defaults, template_src=args.template, sync=not args.no_sync,
                       force=args.force)
    if args.command == "projects":
        from devkit.commands import projects

        if args.projects_command in ("list", None):
            return projects.list_projects(store=store, as_json=getattr(args, "json", False))
        if args.projects_command == "add":
            return projects.add(args.paths, store=store, as_json=args.json)
        if args.projects_command == "set":
            return projects.set_flags(args.paths, store=store, align=args.align,
                                      as_json=args.json)
        if args.projects_command == "prune":
            return projects.prune(store=store, dry_run=args.dry_run, as_json=args.json)
        if not args.paths and not args.missing:
            args.devkit_parser.error("give at least one PATH, or --missing")
        return projects.remove(args.paths, store=store, as_json=args.json, missing=args.missing)
    if args.command == "store":
        from devkit.commands import store as store_cmd

        return store_cmd.store(store=store, as_json=args.json)
    if args.command == "doctor":
        from devkit.commands import doctor

        return doctor.doctor(args.path, store=store, as_json=args.json,
                             verbose=args.verbose, fix=args.fix)
    if args.command == "align":
        from devkit.commands import align

        if args.clear_holds:
            testing = args.test or args.test_command is not None
            if args.dry_run or args.check:
                args.devkit_parser.error("--clear-holds writes the manifest: it cannot be "
                                         "combined with --dry-run or --check")
            if not testing:
                extra = [flag for flag, used in (
                    ("--only", args.only), ("--sync", args.sync),
                    ("--strategy", args.strategy != "newest"),
                    ("--allow-downgrade", args.allow_downgrade != "none")) if used]
                if extra:
                    args.devkit_parser.error(
                        f"--clear-holds alone only clears: {', '.join(extra)} "
                        f"{'need' if len(extra) > 1 else 'needs'} an align run; add --test to "
                        "clear and then align with the tests")
                return align.clear_holds(args.paths, store=store, as_json=args.json)
        return align.align(args.paths, store=store, dry_run=args.dry_run, check=args.check,
                           as_json=args.json, strategy=args.strategy, jobs=args.jobs,
                           sync=args.sync, allow_downgrade=args.allow_downgrade,
                           only=args.only, test=args.test, test_command=args.test_command,
                           clear_holds=args.clear_holds)
    if args.command == "gc":
        from devkit.commands import gc

        return gc.gc(store=store, dry_run=args.dry_run, as_json=args.json)
    if args.command == "sync":
        from devkit.commands import sync

        return sync.sync(args.paths, store=store, all_projects=args.all_projects,
                         as_json=args.json, jobs=args.jobs)
    if args.command == "adopt":
        from devkit.commands import adopt

        if args.force and not args.remove:
            args.devkit_parser.error("--force goes with --remove")
        if args.remove and (args.loader or args.no_sync):
            args.devkit_parser.error("--remove takes no --loader or --no-sync")
        data: dict[str, str] = {}
        if args.data:
            if not args.private or args.remove:
                args.devkit_parser.error("--data goes with --private")
            from devkit import template

            data = template.list_answers(template.parse_data(args.data),
                                         str(template.bundled_template_dir()))
        return adopt.adopt(args.path, store=store, loader=args.loader, sync=not args.no_sync,
                           private=args.private, remove=args.remove, force=args.force,
                           data=data)
    if args.command == "update":
        from devkit import template
        from devkit.commands import update

        return update.update(args.paths, store=store, all_=args.all_projects, dry_run=args.dry_run,
                             as_json=args.json, vcs_ref=args.vcs_ref, jobs=args.jobs,
                             data=template.parse_data(args.data))
    raise AssertionError(args.command)  # argparse rejects unknown commands before this


def _route_to_subparsers(parser: argparse.ArgumentParser) -> None:
    """Record in each (sub)parser's namespace which parser it is, to report errors from there."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action.choices.values():
                choice.set_defaults(devkit_parser=choice)
                _route_to_subparsers(choice)


def _stdout_is_devnull() -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
    except (OSError, ValueError):  # stdout closed, or not a real file (pytest's capture)
        return False


def _broken_pipe() -> int:
    """The reader of stdout went away (``devkit doctor | head -1``): exit quietly with 141.

    As Python's docs recommend (library/signal.html, "Note on SIGPIPE"), stdout is pointed at
    /dev/null so the interpreter's final flush cannot raise again; SIGPIPE keeps Python's
    disposition (ignored), so a command interrupted this way still runs its clean-up.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devkit`` console script and ``python -m devkit``; returns the exit code.

    Usage errors raise SystemExit(2) (``--help`` and ``--version`` SystemExit(0)); see the module
    docstring for every exit code.
    Ctrl-C anywhere, even while arguments are parsed, exits 130 with one line, never a traceback.
    """
    try:
        try:
            return _main(argv)
        finally:  # stdout is block-buffered in a pipe: a closed reader shows here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:  # while printing --help, or at the final flush
        return _broken_pipe()
    except KeyboardInterrupt:
        print("devkit: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        failed: argparse.ArgumentParser = getattr(args, "devkit_parser", parser)
        failed.error(f"unrecognized arguments: {' '.join(extra)}")
    store = Store()
    # SIGTERM (a closed terminal, `kill`, a CI timeout) unwinds like Ctrl-C, so every command's
    # clean-up runs: backups restored, half-made directories removed; exit 130, one line.
    with error_handler(store.log_file), terminate_as_interrupt():
        try:
            code = _dispatch(args, store)
        except BrokenPipeError:
            return _broken_pipe()
        except SystemExit as exc:
            # rich's Console turns a broken pipe into SystemExit(1) after pointing stdout at
            # /dev/null (rich.console.Console.on_broken_pipe); report it like any broken pipe.
            if exc.code == 1 and _stdout_is_devnull() and "rich.console" in sys.modules:
                return BROKEN_PIPE
            raise
        return code
    return 3  # unreachable: error_handler raises SystemExit on errors
