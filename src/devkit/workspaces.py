"""What makes a directory a devkit workspace, decided in one place.

A devkit workspace is a directory holding devkit's environment script ``.envrc.sh`` next to a
``pyproject.toml`` (``devkit new``, ``devkit adopt`` and a plain ``copier copy`` of devkit's
template all write it), or a copier answers file with devkit's ``env_loader`` answer. The answers
file is optional: ``devkit adopt`` never writes one. ``doctor``, ``update`` and the workspace's own
tasks all find a workspace with :func:`find`.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ANSWERS_FILE = ".copier-answers.yml"
ENV_SCRIPT = ".envrc.sh"


@dataclasses.dataclass(frozen=True)
class Found:
    """A workspace root and the answers of its answers file (values as text; {} without one)."""

    path: Path
    answers: Mapping[str, str]

    @property
    def has_answers(self) -> bool:
        """True when the workspace has devkit's answers file (made from devkit's template)."""
        return "env_loader" in self.answers

    @property
    def loader(self) -> str:
        """``mise``, ``direnv`` or ``both``: the ``env_loader`` answer, else what the loader
        configs present say (``.envrc`` alone: direnv; both files: both; else mise)."""
        answer = self.answers.get("env_loader")
        if answer:
            return answer
        mise, envrc = (self.path / ".mise.toml").is_file(), (self.path / ".envrc").is_file()
        return "both" if mise and envrc else "direnv" if envrc else "mise"


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` (libyaml's loader when PyYAML has it: the pure-Python reader
    costs ~25 ms per file). Raises ValueError when ``text`` is not YAML."""
    import yaml  # type: ignore[import-untyped]  # lazy: PyYAML costs ~30 ms of start-up

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def parse_answers(text: str, load: Callable[[str], Any] = load_yaml) -> dict[str, str] | None:
    """Top-level answers of a copier answers file (YAML, read with ``load``, default
    :func:`load_yaml`) as text.

    Scalars become strings (``true`` → ``"True"``, ``3.11`` → ``"3.11"``); nested values are
    dropped. Returns None when the text is not YAML or not a mapping.
    """
    try:
        data = load(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): str(v) for k, v in data.items()
            if isinstance(v, (str, int, float, bool)) and not isinstance(k, (list, dict))}


def find(path: Path, load: Callable[[str], Any] = load_yaml) -> Found | None:
    """The devkit workspace holding ``path`` (the nearest one from ``path`` up), or None.

    Directories up from ``path`` are tried in turn: one with ``.envrc.sh`` next to a
    ``pyproject.toml``, or with devkit's answers, is the workspace (a uv workspace member inside
    it is found from its root); an answers file of another template stops the search (None).
    ``load`` reads YAML (see :func:`parse_answers`). Never raises.
    """
    path = path.absolute()
    for directory in (path, *path.parents):
        try:
            text: str | None = (directory / ANSWERS_FILE).read_text(encoding="utf-8",
                                                                    errors="replace")
        except OSError:
            text = None
        answers = parse_answers(text, load) if text is not None else None
        devkit_answers = answers if answers and "env_loader" in answers else None
        has_script = (directory / ENV_SCRIPT).is_file() and (directory / "pyproject.toml").is_file()
        if devkit_answers is not None or has_script:
            return Found(directory, devkit_answers or {})
        if text is not None:
            return None
    return None


def git_init_command(path: Path) -> str:
    """The one command devkit prints to make ``path`` a git repository with a first commit
    (pasteable from any directory: ``git -C /abs/path …``)."""
    q = shlex.quote(str(path))
    return (f"git -C {q} init -b main && git -C {q} add -A && "
            f"git -C {q} commit -m 'Initial commit'")
