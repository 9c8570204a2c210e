"""Workspace checks: git, line endings, trust, the environment mise or direnv computes.

Nothing here evaluates a config devkit cannot vouch for: trust is read from mise's state directory
and ``direnv status`` (neither loads the config), ``mise env`` runs only on a trusted config and
``direnv export`` only on an allowed ``.envrc`` devkit proved it rendered (:mod:`devkit.trust`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from devkit import git, trust, workspaces
from devkit.checks.base import (
    Context,
    Outcome,
    check,
    fail,
    not_applicable,
    ok,
    prefetch,
    safe_fix,
    skip,
    warn,
)
from devkit.errors import DevkitError
from devkit.hostfacts import RunResult
from devkit.util import atomic_write_text

GITATTRIBUTES_LINES = {".envrc.sh": "*.sh text eol=lf", ".envrc": ".envrc text eol=lf"}


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _ws(ctx: Context) -> Path:
    assert ctx.workspace is not None  # workspace checks run only inside one
    return ctx.workspace.path


def git_env(ctx: Context) -> dict[str, str]:
    """Environment for git calls: the user's own with :func:`devkit.git.environment`'s settings
    (no hook, fsmonitor command, pager or editor of the repository runs)."""
    return git.environment(ctx.host.env)


def mise_env(ctx: Context) -> dict[str, str]:
    """Environment for mise calls: the user's own, offline (no version-list fetches)."""
    return {**ctx.host.env, "MISE_OFFLINE": "1"}


def direnv_env(ctx: Context) -> dict[str, str]:
    """Environment for ``direnv export``: the user's own without direnv's state of this shell, so
    the export lists every variable the ``.envrc`` sets."""
    return {k: v for k, v in ctx.host.env.items() if not k.startswith("DIRENV_")}


@check("git.autocrlf", "git core.autocrlf", requires=("tools.git",))
def autocrlf(ctx: Context) -> Outcome:
    """``core.autocrlf=true`` checks ``.envrc.sh`` out with CRLF: every value then ends in ``\\r``."""
    cwd = _ws(ctx) if ctx.workspace else Path(ctx.host.home)
    result = ctx.run("git", "config", "--show-origin", "--get", "core.autocrlf", cwd=cwd,
                     env=git_env(ctx))
    if result.returncode == 1 and not result.stdout:
        return ok("core.autocrlf is not set")
    if not result.ok:
        return warn(f"cannot read git config: {result.last_line()}", None)
    origin, _, value = result.stdout.strip().partition("\t")
    if value.lower() != "true":
        return ok(f"core.autocrlf = {value}")
    scope = "" if origin.endswith("/.git/config") else "--global "
    where = f"git -C {_q(cwd)} config" if not scope else "git config --global"
    return fail(f"core.autocrlf = true ({origin.removeprefix('file:')}): shell scripts get CRLF",
                f"{where} core.autocrlf input")


@check("workspace.git", "workspace is a git repository", requires=("tools.git",), workspace=True)
def git_repository(ctx: Context) -> Outcome:
    """``git rev-parse --show-toplevel``: ``devkit update`` (copier update) needs a repository,
    whose own config names no command git would run (:func:`devkit.git.unsafe_config`: a
    ``filter.<driver>.clean``, ``diff.<driver>.textconv``… runs on the next ``git status``).
    One ``rev-parse`` answers both questions (it prints one line per option, in order)."""
    ws = _ws(ctx)
    result = ctx.run("git", "rev-parse", "--show-toplevel", "--absolute-git-dir", cwd=ws,
                     env=git_env(ctx))
    fix = workspaces.git_init_command(ws)
    if result.error:
        return warn(f"cannot run git: {result.error}", None)
    if not result.ok:
        return fail(f"{ws} is not a git repository: `devkit update` (copier update) needs one", fix)
    lines = result.stdout.splitlines()
    if len(lines) == 2:
        top, gitdir = Path(lines[0]), lines[1]
    else:  # a newline in the path: ask for the top level alone, the git directory below
        alone = ctx.run("git", "rev-parse", "--show-toplevel", cwd=ws, env=git_env(ctx))
        top, gitdir = Path(alone.stdout.strip()), None

    def runner(cmd: Sequence[str], cwd: Path) -> tuple[int, str, str]:
        found = ctx.run(*cmd, cwd=cwd, env=git_env(ctx))
        return (-1 if found.error else found.returncode), found.stdout, found.stderr

    if ctx.host.live and gitdir:  # the same answer devkit.git's own `rev-parse` would get
        git.note_gitdir(ws, gitdir)
    unsafe = git.unsafe_config(ws, runner, gitdir=gitdir)
    if unsafe:
        return fail(unsafe, None)
    if top.resolve() != ws.resolve():
        return ok(f"inside the git repository {top}")
    return ok(f"{ws} is a git repository")


def _envrc_names(ctx: Context) -> list[str]:
    assert ctx.workspace is not None
    return [".envrc.sh", *([".envrc"] if ctx.workspace.uses_direnv else [])]


@check("workspace.envrc-lf", ".envrc.sh line endings", workspace=True)
def envrc_lf(ctx: Context) -> Outcome:
    """``.envrc.sh`` (and ``.envrc`` when direnv loads the workspace) exist and have LF endings
    (mise and direnv accept CRLF silently, and every value then ends in ``\\r``)."""
    ws = _ws(ctx)
    sed = "sed -i ''" if ctx.platform.get("system") == "macos" else "sed -i"
    for name in _envrc_names(ctx):
        path = ws / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return fail(f"{name} is missing", f"git -C {_q(ws)} checkout -- {name}")
        except OSError as exc:
            return fail(f"cannot read {name}: {exc.strerror or exc}", f"chmod u+r {_q(path)}")
        if b"\r" in data:
            lines = data.count(b"\r\n")
            return fail(f"{name} has CRLF line endings ({lines} lines): every exported value "
                        "ends in \\r", f"{sed} 's/\\r$//' {_q(path)}")
    names = _envrc_names(ctx)
    return ok(f"{' and '.join(names)} {'has' if len(names) == 1 else 'have'} LF line endings")


def unprotected(ctx: Context) -> list[str]:
    """The workspace's env scripts that git would not check out with LF, by ``git check-attr eol``
    (``.gitattributes`` at any level, ``info/attributes``, ``core.attributesFile``).

    Raises DevkitError when git cannot answer (not a repository).
    """
    ws = _ws(ctx)
    bad = []
    for name in _envrc_names(ctx):
        value = git.check_attr(ws, "eol", name)
        if value is None:
            raise DevkitError(f"`git check-attr eol {name}` failed in {ws}")
        if value != "lf":
            bad.append(name)
    return bad


@check("workspace.gitattributes", ".gitattributes keeps .envrc.sh LF",
       requires=("workspace.git",), workspace=True)
def gitattributes(ctx: Context) -> Outcome:
    """``git check-attr eol`` says ``lf`` for ``.envrc.sh`` (and ``.envrc`` with direnv), so no
    checkout turns them into CRLF."""
    path = _ws(ctx) / ".gitattributes"
    try:
        bad = unprotected(ctx)
    except DevkitError as exc:
        return warn(str(exc), None)
    if not bad:
        return ok(f"git checks {' and '.join(_envrc_names(ctx))} out with LF endings (eol=lf)")
    lines = "".join(f"{GITATTRIBUTES_LINES[n]}\\n" for n in bad)
    if _private(ctx):  # a repository the user does not own: never its .gitattributes
        return warn(f"git does not pin {' and '.join(bad)} to LF (`git check-attr eol`): "
                    "devkit's block in info/attributes is missing",
                    f"devkit adopt --private {_q(_ws(ctx))}")
    return warn(f"git does not pin {' and '.join(bad)} to LF (`git check-attr eol`): a Windows "
                "checkout can add \\r", f"printf '{lines}' >> {_q(path)}")


@safe_fix("workspace.gitattributes")
def fix_gitattributes(ctx: Context) -> str:
    """Append the missing ``eol=lf`` lines to ``.gitattributes`` (re-checked first: a concurrent
    doctor may have added them; the caller holds the workspace's fix mutex)."""
    path = _ws(ctx) / ".gitattributes"
    if _private(ctx):
        from devkit.checks.private import fix_excluded

        return fix_excluded(ctx)
    bad = unprotected(ctx)
    if not bad:
        return f"{path} already keeps them LF"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    sep = "" if not text or text.endswith("\n") else "\n"
    added = [GITATTRIBUTES_LINES[n] for n in bad]
    atomic_write_text(path, text + sep + "".join(f"{line}\n" for line in added))
    return f"added `{'`, `'.join(added)}` to {path}"


def _private(ctx: Context) -> bool:
    """True in a private workspace (``devkit adopt --private``), whose tracked files devkit never
    changes; a malformed record counts as private (never wrong to leave tracked files alone)."""
    from devkit.checks.private import record_of

    try:
        return record_of(ctx) is not None
    except DevkitError:
        return True


def is_mise_trusted(ctx: Context) -> bool:
    """Is the workspace's ``.mise.toml`` trusted, by mise's state directory (nothing evaluated)."""
    return trust.mise_trusted(_ws(ctx) / ".mise.toml", ctx.host.env)


def store_unsafe(ctx: Context) -> str | None:
    """:func:`devkit.trust.store_problem`, read once per doctor run, before any fix: a store that
    someone else could write when the run started makes ``--fix`` trust nothing in that run,
    even after ``chmod go-w`` (the record may already be forged)."""
    return ctx.memo("trust.store-problem", lambda: trust.store_problem(ctx.store))


def _direnv_approved(ctx: Context) -> bool:
    ws = _ws(ctx)
    if not ctx.workspace or not ctx.workspace.uses_direnv or not (ws / ".envrc").is_file() \
            or not ctx.host.which("direnv"):
        return False
    from devkit import direnv

    return bool(direnv.parse_status(ctx.run("direnv", "status", cwd=ws).stdout))


def drift(ctx: Context, loader: str) -> list[str]:
    """What changed since devkit approved the workspace's ``loader`` (``mise``/``direnv``) config
    that the loader still approves (:func:`devkit.trust.approval_drift`); memoised."""
    def compute() -> list[str]:
        ws = _ws(ctx)
        if loader == "mise":
            approved = bool(ctx.workspace and ctx.workspace.uses_mise
                            and (ws / ".mise.toml").is_file() and is_mise_trusted(ctx))
            return trust.approval_drift(ws, ctx.store, ctx.host.env, mise_approved=approved,
                                        direnv_approved=False)
        return trust.approval_drift(ws, ctx.store, ctx.host.env, mise_approved=False,
                                    direnv_approved=_direnv_approved(ctx))

    return ctx.memo(("trust.drift", loader), compute)


def env_json(ctx: Context) -> RunResult:
    """``mise env --json`` in the workspace (memoised). Evaluates the config: only when trusted."""
    return ctx.run("mise", "env", "--json", cwd=_ws(ctx), env=mise_env(ctx))


@prefetch
def _start_mise(ctx: Context) -> None:
    ws = ctx.workspace
    if ws is None or not ws.uses_mise or not (ws.path / ".mise.toml").is_file() \
            or not ctx.host.which("mise") or not is_mise_trusted(ctx) or drift(ctx, "mise"):
        return
    # A config with `_.python.venv = {create = true}` (older devkit templates, or the user's own)
    # makes `mise env` create a missing .venv: never do that under the ".venv" check.
    if (ws.path / ".venv" / "pyvenv.cfg").is_file():
        env_json(ctx)


@check("workspace.mise-trusted", ".mise.toml trusted", requires=("tools.mise",), workspace=True)
def mise_trusted(ctx: Context) -> Outcome:
    """mise's trusted-configs state: an untrusted ``.mise.toml`` loads nothing. Read without
    running mise (``mise trust --show`` would evaluate the config it reports on)."""
    ws = _ws(ctx)
    if not ctx.workspace or not ctx.workspace.uses_mise:
        return not_applicable("the workspace does not use mise")
    config = ws / ".mise.toml"
    store_unsafe(ctx)
    if not config.is_file():
        return fail(".mise.toml is missing", f"git -C {_q(ws)} checkout -- .mise.toml")
    if is_mise_trusted(ctx):
        return ok(f"{config} is trusted")
    if ctx.host.env.get("CI", "").lower() in ("true", "1"):
        return warn(f"{config} is trusted by mise only because CI is set (mise then trusts every "
                    "config); devkit does not evaluate it", f"mise trust {_q(ws)}")
    if trust.is_rendered(ws, ".mise.toml", ctx.store):
        return fail(f"{config} is not trusted: mise loads none of its environment",
                    f"mise trust {_q(ws)}")
    return fail(f"{config} is not trusted, and it is not the file devkit rendered here: mise "
                "loads none of its environment", f"review {_q(config)} and {_q(ws / '.envrc.sh')}"
                f", then: mise trust {_q(ws)}")


@safe_fix("workspace.mise-trusted")
@safe_fix("workspace.direnv-allowed")
def fix_trust(ctx: Context) -> str:
    """Trust (``mise trust`` / ``direnv allow``) only configs devkit proves it rendered
    (:func:`devkit.trust.trust_if_rendered`). Raises DevkitError when nothing could be trusted."""
    problem = store_unsafe(ctx)
    if problem:
        raise DevkitError(problem)
    lines = trust.trust_if_rendered(_ws(ctx), ctx.store)
    if lines and all(line.startswith("not trusted") for line in lines):
        raise DevkitError("; ".join(lines))
    return "; ".join(lines) or "nothing to trust"


def _compare_env(ctx: Context, tool: str, data: dict[str, str], fix: str) -> Outcome:
    """The store's variables in ``data`` (what ``tool`` exports), without ``\\r``, agreeing with
    devkit's own computation."""
    ws = _ws(ctx)
    expected = ctx.store.env()
    crlf = sorted(k for k, v in data.items() if "\r" in v)
    if crlf:
        return fail(f"{', '.join(crlf)} end in \\r", f"sed -i 's/\\r$//' {_q(ws / '.envrc.sh')}")
    # mise lists only variables it changes: one already exported with the same value is absent.
    seen = {k: data.get(k, ctx.host.env.get(k, "")) for k in expected}
    missing = [k for k, v in seen.items() if not v]
    if missing or "DEVKIT_PROJECT" not in data:
        return fail(f"{tool} does not export {', '.join(missing or ['DEVKIT_PROJECT'])}: "
                    ".envrc.sh is not loaded", fix)
    differ = [k for k, v in expected.items() if Path(seen[k]).expanduser() != Path(v)]
    if differ:
        pairs = "; ".join(f"{k}: {tool} {seen[k]} vs devkit {expected[k]}" for k in differ)
        return warn(f"the workspace and devkit disagree: {pairs}",
                    "export the same " + " and ".join(differ) + " in your shell profile, or "
                    "drop the override from .envrc.local.sh")
    return ok(f"UV_CACHE_DIR={seen['UV_CACHE_DIR']} and the other store variables match")


@check("workspace.mise-env", "workspace environment (mise env)",
       requires=("tools.mise", "workspace.mise-trusted", "workspace.envrc-lf", "workspace.venv"),
       workspace=True)
def mise_env_check(ctx: Context) -> Outcome:
    """``mise env --json`` (only on a trusted config) yields the store's variables."""
    from devkit import mise

    ws = _ws(ctx)
    if not is_mise_trusted(ctx):  # re-read: never evaluate an untrusted config
        return skip(f"{ws / '.mise.toml'} is not trusted: not evaluated")
    if drift(ctx, "mise"):
        return skip("not evaluated: the config changed since devkit approved it "
                    "(see \"approved configs unchanged\")")
    result = env_json(ctx)
    if result.error:  # could not run at all (timeout): not evidence of a broken workspace
        return warn(f"cannot run `mise env`: {result.error}", f"cd {_q(ws)} && mise env")
    data = mise.parse_env_json(result.stdout) if result.ok else None
    if data is None:
        return fail(f"`mise env --json` failed: {result.last_line()}", f"cd {_q(ws)} && mise env")
    return _compare_env(ctx, "mise", data,
                        f"check `_.source = \"./.envrc.sh\"` under [env] in {ws / '.mise.toml'}")


@check("workspace.direnv-allowed", ".envrc allowed", requires=("tools.direnv",), workspace=True)
def direnv_allowed(ctx: Context) -> Outcome:
    """``direnv status`` (which does not evaluate the ``.envrc``): ``Found RC allowed true``."""
    ws = _ws(ctx)
    store_unsafe(ctx)
    if not (ws / ".envrc").is_file():
        return fail(".envrc is missing", f"git -C {_q(ws)} checkout -- .envrc")
    from devkit import direnv

    result = ctx.run("direnv", "status", cwd=ws)
    allowed = direnv.parse_status(result.stdout)
    if allowed:
        return ok(f"{ws / '.envrc'} is allowed")
    if allowed is False:
        return fail(f"{ws / '.envrc'} is blocked: direnv loads nothing", f"direnv allow {_q(ws)}")
    return warn(f"direnv status did not report the .envrc: {result.last_line()}",
                f"direnv allow {_q(ws)}")


@check("workspace.direnv-env", "workspace environment (direnv export)",
       requires=("tools.direnv", "workspace.direnv-allowed", "workspace.envrc-lf"),
       workspace=True)
def direnv_env_check(ctx: Context) -> Outcome:
    """``direnv export json`` exports the store's variables; run only when the ``.envrc`` is
    allowed AND devkit proves it rendered ``.envrc`` and ``.envrc.sh`` (else not evaluated)."""
    from devkit import direnv

    ws = _ws(ctx)
    unproven = trust.unproven(ws, (".envrc", ".envrc.sh"), ctx.store)
    if unproven:
        return skip(f"not evaluated: {', '.join(unproven)} differ from what devkit rendered here")
    if trust.direnv_problems(ws, ctx.store):
        return skip("not evaluated: devkit would not approve this .envrc now "
                    "(see \"approved configs unchanged\")")
    result = ctx.run("direnv", "export", "json", cwd=ws, env=direnv_env(ctx))
    if result.error:
        return warn(f"cannot run `direnv export`: {result.error}", f"cd {_q(ws)} && direnv export json")
    data = direnv.parse_export_json(result.stdout) if result.ok else None
    if data is None:
        return fail(f"`direnv export json` failed: {result.last_line()}",
                    f"cd {_q(ws)} && direnv export json")
    values = {k: v for k, v in data.items() if v is not None}
    return _compare_env(ctx, "direnv", values, f"check `source_env ./.envrc.sh` in {ws / '.envrc'}")


@check("workspace.approved-unchanged", "approved configs unchanged", workspace=True)
def approved_unchanged(ctx: Context) -> Outcome:
    """The loader files devkit approved still have the content it recorded, and nothing joined
    the set mise or direnv reads (:func:`devkit.trust.approval_drift`). mise's default trust is
    by path: after a ``git pull`` changes an approved ``.mise.toml`` or ``.envrc.sh``, the next
    ``cd`` runs what nobody reviewed. Hashes a few small files; evaluates nothing."""
    ws = _ws(ctx)
    lines = drift(ctx, "mise") + drift(ctx, "direnv")
    if not lines:
        if not trust.changed_since_recorded(ws, ctx.store) and any(
                trust.is_rendered(ws, n, ctx.store) for n in trust.RENDERED_NAMES):
            return ok("the loader files are what devkit approved")
        return not_applicable("no loader config devkit approved is loaded here")
    q = _q(ws)
    return warn("; ".join(lines) + ": the next cd loads it unreviewed",
                f"review the change (`git -C {q} log -p -- .mise.toml .envrc .envrc.sh`), then "
                f"approve it yourself: `mise trust --untrust {q} && mise trust {q}` / "
                f"`direnv allow {q}`; to make mise tie trust to content, set `paranoid = true` "
                f"under [settings] in ~/.config/mise/config.toml ({trust.PARANOID_URL})")
