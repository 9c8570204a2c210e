"""The only module that calls copier: locating the template and rendering it."""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import copier
import filelock
from copier.errors import CopierError, DirtyLocalWarning
from plumbum import ProcessExecutionError

from devkit import __version__, git
from devkit.errors import DevkitError
from devkit.store import Store
from devkit.util import cmd_output

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_template_dir() -> Path:
    """The template shipped with devkit: ``devkit/_template`` in a wheel, the repo root in a checkout.

    Raises DevkitError when neither holds a ``copier.yml``.
    """
    for candidate in (_PACKAGE_DIR / "_template", _PACKAGE_DIR.parents[1]):
        if (candidate / "copier.yml").is_file() and (candidate / "templates").is_dir():
            return candidate
    raise DevkitError("devkit's bundled template is missing: reinstall devkit")


def _is_local(src: str) -> bool:
    return not re.match(r"^(gh:|gl:|[a-z][a-z0-9+.-]*://|git@)", src)


def ensure_template_repo(store: Store) -> str:
    """Mirror the bundled template into ``store.template_repo`` (a git repo) and return its path.

    Each devkit version's template is one commit tagged ``v<version>``, so workspaces record an
    absolute ``_src_path`` and a real ``_commit``: ``copier update`` then works from any directory
    (a relative or untracked local source cannot be updated: copier#335). Raises DevkitError.
    """
    src = bundled_template_dir()
    repo = store.template_repo
    repo.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(store.home / ".template.lock"), timeout=60):
        for child in repo.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copy2(src / "copier.yml", repo / "copier.yml")
        shutil.copytree(
            src / "templates", repo / "templates", ignore=shutil.ignore_patterns("__pycache__")
        )
        git.init_and_commit(repo, f"devkit {__version__} template")
        tag = f"v{__version__}"
        tags = cmd_output("git", "tag", "--list", tag, cwd=repo).stdout.split()
        if tag not in tags:
            cmd_output("git", "tag", tag, cwd=repo)
    return str(repo)


def resolve_source(template: str | None, store: Store) -> tuple[str, str | None]:
    """Return (copier source, vcs ref) for ``template`` (None = the bundled template).

    Local paths are made absolute, because copier stores ``_src_path`` as given (copier#335).
    Raises DevkitError for a local path that does not exist.
    """
    if not template:
        return ensure_template_repo(store), "HEAD"
    if _is_local(template):
        path = Path(template).expanduser()
        if not path.exists():
            raise DevkitError(f"template {template} does not exist")
        return str(path.resolve()), None
    return template, None


def render(
    src: str,
    dst: Path,
    *,
    data: Mapping[str, Any],
    user_defaults: Mapping[str, Any],
    defaults: bool,
    vcs_ref: str | None,
) -> dict[str, Any]:
    """``copier copy`` ``src`` into ``dst`` without trusting the template; returns the answers.

    Raises DevkitError with copier's message (e.g. a validator's) when rendering fails; a partly
    rendered ``dst`` is removed by copier (cleanup_on_error).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DirtyLocalWarning)
            worker = copier.run_copy(
                src,
                str(dst),
                data=dict(data),
                user_defaults=dict(user_defaults),
                defaults=defaults,
                vcs_ref=vcs_ref,
                unsafe=False,
                quiet=True,
            )
    except (CopierError, ValueError) as exc:
        raise DevkitError(f"cannot render the template: {_one_line(exc)}") from exc
    except ProcessExecutionError as exc:  # copier runs git through plumbum (clone, ls-remote)
        detail = (exc.stderr or "").strip().splitlines()
        reason = detail[-1] if detail else f"git exited with {exc.retcode}"
        raise DevkitError(f"cannot fetch the template {src}: {reason}") from exc
    return dict(worker.answers.combined)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
