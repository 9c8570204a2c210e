"""``devkit new``: render the template, git init, register, lock, sync and trust a workspace."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from devkit import direnv, git, mise, template, usage, uv
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store


def parse_data(pairs: list[str]) -> dict[str, str]:
    """Turn ``["KEY=VALUE", ...]`` into a dict. Raises DevkitError on an item without ``=``."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DevkitError(f"--data expects KEY=VALUE, got {pair!r}")
        data[key.strip()] = value
    return data


def new(
    path: Path,
    *,
    store: Store,
    data: Mapping[str, str],
    defaults: bool = False,
    template_src: str | None = None,
    sync: bool = True,
) -> int:
    """Create the workspace at ``path``; returns 0, or 1 when a post-render step failed.

    Raises DevkitError when ``path`` exists and is not empty, or when rendering fails (nothing is
    left behind then).
    """
    dst = path.expanduser().absolute()
    if dst.exists() and any(dst.iterdir()):
        raise DevkitError(f"{dst} already exists and is not empty")
    store.ensure()
    src, ref = template.resolve_source(template_src, store)
    user_defaults = {
        "project_name": dst.name,
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
    }
    try:
        user_defaults["uv_version"] = uv.version()
    except DevkitError:
        pass
    # Without a terminal copier cannot ask: use the defaults instead of failing.
    answers = template.render(
        src, dst, data=data, user_defaults=user_defaults,
        defaults=defaults or not sys.stdin.isatty(), vcs_ref=ref,
    )
    print(f"Created workspace {answers.get('project_name', dst.name)} in {dst}")
    Registry(store).add(dst, str(answers.get("project_name", dst.name)))
    problems: list[str] = []
    env = store.subprocess_env()
    if sync:
        try:
            uv.lock(dst, env=env)
            _born_aligned(dst, store)
        except DevkitError as exc:
            problems.append(str(exc))
    git.init_and_commit(dst, "Initial commit from devkit")
    if sync and not problems:
        try:
            uv.sync(dst, env=env)
            linked, total = usage.count_linked(dst / ".venv")
            print(f"Synced .venv: {linked} of {total} files are links into the shared cache")
        except DevkitError as exc:
            problems.append(str(exc))
    problems += _approve_loaders(dst, answers)
    _print_next_steps(dst, answers, synced=sync and not problems)
    for problem in problems:
        print(f"devkit: warning: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _born_aligned(dst: Path, store: Store) -> None:
    """Move the fresh lock onto versions other workspaces already use (see ``devkit align``)."""
    from devkit.align import engine

    engine.align_new_project(dst, store=store)


def _approve_loaders(dst: Path, answers: Mapping[str, object]) -> list[str]:
    """``mise trust`` / ``direnv allow`` the configs the workspace uses; returns the problems."""
    loader = answers.get("env_loader", "mise")
    steps = [("mise", "trust", mise.find, mise.trust), ("direnv", "allow", direnv.find, direnv.allow)]
    problems = []
    for name, verb, find, approve in steps:
        if loader not in (name, "both"):
            continue
        if find() is None:
            print(f"{name} is not installed: install it, then run `{name} {verb}` in {dst}")
            continue
        try:
            approve(dst)
            print(f"Ran `{name} {verb}`: the workspace's {name} configuration is approved")
        except DevkitError as exc:
            problems.append(str(exc))
    return problems


def _print_next_steps(dst: Path, answers: Mapping[str, object], *, synced: bool) -> None:
    print("\nNext steps:")
    print(f"  cd {dst}")
    if not synced:
        print("  uv sync            # build .venv from the shared cache")
    print("  uv run pytest      # run the tests")
    print("  devkit doctor      # check the set-up (shell hooks, cache, links)")
