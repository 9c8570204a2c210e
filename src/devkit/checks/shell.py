"""Shell integration: mise active in this shell and in the rc files; the direnv hook.

``MISE_SHELL`` is exported by ``mise activate`` only (``__MISE_DIFF`` also appears under
``mise exec``, so it is not used). In a ``both`` workspace ``.mise.toml`` sources ``.envrc.sh``
itself, so the mise hook alone loads it and a missing direnv hook is no problem.
"""

from __future__ import annotations

import re

from devkit.checks.base import Context, Outcome, check, not_applicable, ok, warn

_MISE_LINE = re.compile(r"\bmise(\.exe)?['\"]?\s+activate\b|# >>> mise:activate >>>")
_DIRENV_LINE = re.compile(r"\bdirenv(\.exe)?['\"]?\s+hook\b")

HOOK_LINES = {
    ("mise", "bash"): 'eval "$(mise activate bash)"',
    ("mise", "zsh"): 'eval "$(mise activate zsh)"',
    ("mise", "fish"): "mise activate fish | source",
    ("direnv", "bash"): 'eval "$(direnv hook bash)"',
    ("direnv", "zsh"): 'eval "$(direnv hook zsh)"',
    ("direnv", "fish"): "direnv hook fish | source",
}


def rc_files(ctx: Context) -> dict[str, list[str]]:
    """Startup files per shell, most usual first (``~`` expanded with the host's HOME)."""
    home = ctx.host.home
    zdot = ctx.host.env.get("ZDOTDIR") or home
    fish_dir = f"{home}/.config/fish"
    conf_d = [f"{fish_dir}/conf.d/{n}" for n in ctx.host.list_dir(f"{fish_dir}/conf.d")
              if n.endswith(".fish")]
    return {
        "bash": [f"{home}/.bashrc", f"{home}/.bash_profile", f"{home}/.profile"],
        "zsh": [f"{zdot}/.zshrc", f"{zdot}/.zprofile"],
        "fish": [f"{fish_dir}/config.fish", *conf_d],
    }


def hooked_files(ctx: Context, pattern: re.Pattern[str]) -> dict[str, list[str]]:
    """Per shell, the rc files with a line matching ``pattern`` (comment lines ignored)."""
    found: dict[str, list[str]] = {}
    for shell, files in rc_files(ctx).items():
        for path in files:
            text = ctx.host.read_text(path) or ""
            lines = (ln for ln in text.splitlines() if not ln.lstrip().startswith("#") or
                     ln.lstrip().startswith("# >>> mise:activate"))
            if any(pattern.search(ln) for ln in lines):
                found.setdefault(shell, []).append(path)
    return found


def _tilde(ctx: Context, path: str) -> str:
    home = ctx.host.home.rstrip("/")
    return "~" + path[len(home):] if home and path.startswith(home + "/") else path


def _hook_outcome(ctx: Context, tool: str, pattern: re.Pattern[str]) -> Outcome:
    found = hooked_files(ctx, pattern)
    where = "; ".join(f"{s}: {', '.join(_tilde(ctx, p) for p in ps)}" for s, ps in found.items())
    shell = ctx.platform.get("shell")
    if shell not in ("bash", "zsh", "fish"):
        if found:
            return ok(f"hooked in {where} (login shell {shell or 'unknown'} not checked)")
        return warn(f"no `{tool}` hook in any bash/zsh/fish rc file",
                    f"see https://{'mise.jdx.dev/getting-started.html' if tool == 'mise' else 'direnv.net/docs/hook.html'}")
    if shell in found:
        return ok(f"hooked for {shell} in {', '.join(_tilde(ctx, p) for p in found[shell])}")
    target = _tilde(ctx, rc_files(ctx)[shell][0])
    line = HOOK_LINES[(tool, shell)]
    other = f" (found for {where})" if found else ""
    return warn(f"new {shell} shells will not load workspaces: no `{tool}` hook in {target}{other}",
                f"echo '{line}' >> {target}")


@check("shell.mise-active", "mise active in this shell", requires=("tools.mise",))
def mise_active(ctx: Context) -> Outcome:
    """``MISE_SHELL`` is set by ``mise activate``; without it ``cd`` loads nothing."""
    if ctx.workspace is not None and not ctx.workspace.uses_mise:
        return not_applicable("the workspace does not use mise")
    shell = ctx.host.env.get("MISE_SHELL")
    if shell:
        return ok(f"mise is activated in this {shell} shell")
    login = ctx.platform.get("shell") or "bash"
    line = HOOK_LINES.get(("mise", login), HOOK_LINES[("mise", "bash")])
    fix = f"mise activate {login} | source" if login == "fish" else line
    return warn("mise is not activated in this shell: entering a workspace sets nothing", fix)


@check("shell.mise-rc", "mise hook in shell startup files", requires=("tools.mise",))
def mise_rc(ctx: Context) -> Outcome:
    """An ``mise activate`` line in the login shell's rc file (also reports other shells)."""
    if ctx.workspace is not None and not ctx.workspace.uses_mise:
        return not_applicable("the workspace does not use mise")
    return _hook_outcome(ctx, "mise", _MISE_LINE)


@check("shell.direnv-hook", "direnv hook in shell startup files", requires=("tools.direnv",))
def direnv_hook(ctx: Context) -> Outcome:
    """A ``direnv hook`` line in the login shell's rc file, when the workspace uses direnv (in a
    ``both`` workspace a mise hook for the login shell is enough)."""
    ws = ctx.workspace
    shell = ctx.platform.get("shell")
    if ws is not None and ws.uses_mise and not hooked_files(ctx, _DIRENV_LINE).get(str(shell)):
        mise_files = hooked_files(ctx, _MISE_LINE).get(str(shell))
        if mise_files:
            return ok(f"not needed: the mise hook ({', '.join(_tilde(ctx, p) for p in mise_files)})"
                      " loads .envrc.sh through .mise.toml in this workspace")
    return _hook_outcome(ctx, "direnv", _DIRENV_LINE)
