"""``devkit adopt [PATH]``: bring an existing uv project (or a plain ``copier copy``) into the store.

devkit's template is rendered into a temporary directory with answers derived from the project
(name and description from ``pyproject.toml``, Python from ``.python-version`` or
``requires-python``; a devkit-made workspace's own answers file wins), and only the environment
files the project lacks are copied (``.mise.toml``, ``.envrc.sh``, ``.envrc``), plus the
``.gitattributes``/``.gitignore`` lines that protect them. ``pyproject.toml`` and the sources are
never touched and no answers file is added (a later ``copier update`` would otherwise try to
apply the whole template to the project). Then the project is registered, the configs devkit can
prove it rendered are approved, and ``uv sync`` runs with the store's environment: the only
project code that runs is what ``uv sync`` builds, which the user asked for by adopting.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shlex
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from devkit import direnv, git, mise, private, template, trust, uv
from devkit.errors import DevkitError
from devkit.registry import Registry
from devkit.store import Store
from devkit.util import atomic_write_bytes, atomic_write_text
from devkit.venvsync import CacheFacts, sync_workspace

ENV_FILES = (".mise.toml", ".envrc.sh", ".envrc")
LOADER_CONFIGS = {"mise": ".mise.toml", "direnv": ".envrc"}
ENTRY_FILES = (".gitattributes", ".gitignore")
# How a kept loader config can load the store's variables (as the template's own configs do).
LOAD_HINTS = {".mise.toml": 'add `_.source = "./.envrc.sh"` to its [env] table',
              ".envrc": "add the line `source_env ./.envrc.sh`"}
ANSWERS_FILE = template.ANSWERS_FILE
# The questions of devkit's template: an answers file holding them comes from devkit's template.
DEVKIT_QUESTIONS = frozenset({"project_name", "env_loader", "python_version", "uv_version"})


def adopt(path: Path, *, store: Store, loader: str | None = None, sync: bool = True,
          private: bool = False, remove: bool = False, force: bool = False,
          data: Mapping[str, Any] | None = None) -> int:
    """Adopt the project at ``path`` (see :func:`adopt_project`; ``private``:
    :func:`adopt_private`; ``remove``: :func:`remove_private`) under its workspace mutex
    (:meth:`devkit.store.Store.workspace_mutex`: ``update``, ``align``, ``sync`` and
    ``doctor --fix`` take it too); ``data``: template answers for ``private`` (``services``…).
    Raises DevkitError, before anything is written or
    registered, for a path inside the store (``DEVKIT_HOME``, the uv cache or Python
    directory), and when another command keeps the workspace busy.
    """
    root = path.expanduser().absolute()
    if not remove:
        store.check_outside(root, action="adopt a project")
    if not root.is_dir():
        raise DevkitError(f"{path} is not a directory")
    with store.workspace_mutex(root, command="devkit adopt"):
        if remove:
            return remove_private(path, store=store, force=force)
        if private:
            return adopt_private(path, store=store, loader=loader, sync=sync, data=data)
        return adopt_project(path, store=store, loader=loader, sync=sync)


def adopt_project(path: Path, *, store: Store, loader: str | None = None,
                  sync: bool = True) -> int:
    """Adopt the project at ``path``; returns 0, or 1 when ``uv sync`` failed.

    ``loader`` is ``mise``, ``direnv`` or ``both`` (None: the answers file's, else ``direnv`` for
    a project that has only an ``.envrc``, else ``mise``). Raises DevkitError when ``path`` is not
    a directory or has no ``pyproject.toml``, or when the template cannot be rendered.
    """
    root = path.expanduser().absolute()
    if not root.is_dir():
        raise DevkitError(f"{path} is not a directory")
    root = root.resolve()
    if private.load(store, root) is not None:
        q = shlex.quote(str(root))
        raise DevkitError(f"{root} was adopted with --private: run `devkit adopt --private {q}` "
                          "(without it, devkit would edit the tracked .gitignore and "
                          ".gitattributes)")
    if not (root / "pyproject.toml").is_file():
        raise DevkitError(
            f"{root} has no pyproject.toml: `devkit adopt` takes an existing Python project; "
            f"start a new one with: devkit new {shlex.quote(str(root))}"
        )
    previous = devkit_answers(root)
    data = project_answers(root, previous, loader)
    print(f"Adopting {data['project_name']} ({root}): environment loaded by {data['env_loader']}"
          + (" (answers from .copier-answers.yml)" if previous else ""))
    store.ensure()
    uv.expose(store.bin_dir)
    src, ref = template.resolve_source(None, store)
    with tempfile.TemporaryDirectory(prefix="devkit-adopt-") as tmp:
        rendered = Path(tmp) / "workspace"
        template.render(src, rendered, data=data, user_defaults={}, defaults=True, vcs_ref=ref)
        written, kept = copy_missing(rendered, root)
        entries = {name: merge_entries(rendered / name, root / name) for name in ENTRY_FILES}
        render = trust.render_of(rendered)
    for name in written:
        print(f"  wrote {name}")
    if ".mise.toml" in written:
        print("  " + tasks_line(data))
    for name in kept:
        print(f"  kept your {name} (it differs from devkit's template)")
        hint = LOAD_HINTS.get(name)
        if hint and (root / name).is_file() and ".envrc.sh" not in _text(root / name):
            print(f"    it does not load .envrc.sh (the store's variables): {hint}")
    for name, lines in entries.items():
        if lines:
            print(f"  added to {name}: {', '.join(lines)}")
    project, was_new = Registry(store).add(root, str(data["project_name"]))
    print(f"{'Registered' if was_new else 'Already registered'}: {project.path}")
    for line in approve(root, store, rendered=render):
        print(line)
    return _sync_and_report(root, store, sync=sync)


def _sync_and_report(root: Path, store: Store, *, sync: bool) -> int:
    """``uv sync`` ``root`` from the shared cache (unless not ``sync``), print the outcome and the
    next steps; returns 0, or 1 when the sync failed."""
    code = 0
    if sync:
        result = sync_workspace(root, store=store, cache=CacheFacts.of(store), lock_if_missing=True)
        for note in result.notes:
            print(note)
        if result.status == "failed":
            print(f"devkit: error: {result.reason}", file=sys.stderr)
            code = 1
        elif result.census:
            verb = "Already in sync" if result.status == "current" else "Synced .venv"
            python = venv_python(root / ".venv")
            print(f"{verb}{f' (Python {python})' if python else ''}: {result.census.linked} of "
                  f"{result.census.files} files are links into the shared cache")
    print("\nNext steps:")
    print(f"  cd {shlex.quote(str(root))}")
    if not sync or code:
        print("  devkit sync        # build .venv from the shared cache")
    print("  devkit doctor      # check the set-up (shell hooks, trust, cache, links)")
    return code


def devkit_answers(root: Path) -> dict[str, Any]:
    """The answers of a workspace made from devkit's template with plain ``copier copy``, or {}.

    Keys starting with ``_`` (copier's own: ``_src_path``, ``_commit``) are left out. An answers
    file of another template, or one that is not YAML, gives {}.
    """
    try:
        data = template.read_answers(root)
    except DevkitError:
        return {}
    if not DEVKIT_QUESTIONS <= data.keys():
        return {}
    return {str(k): v for k, v in data.items() if not str(k).startswith("_")}


def project_answers(root: Path, previous: Mapping[str, Any], loader: str | None) -> dict[str, Any]:
    """Template answers for ``root``: ``previous`` answers win, then what the project says.

    ``python_version`` comes from ``.python-version`` (its major.minor), else the lowest of the
    template's choices that ``requires-python`` allows, else the running interpreter's.
    """
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DevkitError(f"{root / 'pyproject.toml'} is not readable TOML: {exc}") from exc
    meta = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else {}
    assert isinstance(meta, dict)
    data: dict[str, Any] = {"project_name": str(meta.get("name") or root.name)}
    description = meta.get("description")
    if isinstance(description, str) and description.strip() and "\n" not in description:
        data["description"] = description.strip()
    choices = _python_choices()
    data["python_version"] = (
        _python_from_file(root, choices)
        or _python_from_requires(meta.get("requires-python"), choices)
        or f"{sys.version_info.major}.{sys.version_info.minor}"
    )
    try:
        data["uv_version"] = uv.version()
    except DevkitError:
        pass
    has_envrc, has_mise = (root / ".envrc").exists(), (root / ".mise.toml").exists()
    data["env_loader"] = "direnv" if has_envrc and not has_mise else "mise"
    data.update(tool_answers(project_tools(pyproject)))
    data.update(previous)
    if loader:
        data["env_loader"] = loader
    return data


def project_tools(pyproject: Mapping[str, Any]) -> set[str]:
    """Normalised names (PEP 503) of what ``uv run`` finds in the project's environment: the
    ``[project] dependencies``, the default dependency groups (``[tool.uv] default-groups``, else
    ``dev``, with their ``include-group`` entries) and ``[tool.uv] dev-dependencies``.

    Unparsable requirement strings are skipped. Raises nothing.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    project = pyproject.get("project")
    tool = pyproject.get("tool")
    tool_uv = tool.get("uv") if isinstance(tool, dict) else None
    tool_uv = tool_uv if isinstance(tool_uv, dict) else {}
    groups = pyproject.get("dependency-groups")
    groups = groups if isinstance(groups, dict) else {}
    requirements: list[object] = []
    if isinstance(project, dict) and isinstance(project.get("dependencies"), list):
        requirements += project["dependencies"]
    if isinstance(tool_uv.get("dev-dependencies"), list):
        requirements += tool_uv["dev-dependencies"]
    default = tool_uv.get("default-groups", ["dev"])
    wanted = list(groups) if default == "all" else default if isinstance(default, list) else []
    seen: set[str] = set()
    while wanted:
        group = str(wanted.pop())
        if group in seen or not isinstance(groups.get(group), list):
            continue
        seen.add(group)
        for item in groups[group]:
            if isinstance(item, dict) and isinstance(item.get("include-group"), str):
                wanted.append(item["include-group"])
            else:
                requirements.append(item)
    names: set[str] = set()
    for text in requirements:
        if isinstance(text, str):
            try:
                names.add(canonicalize_name(Requirement(text).name))
            except InvalidRequirement:
                continue
    return names


def tasks_line(data: Mapping[str, Any]) -> str:
    """One line: what ``mise run check`` runs, and the tools the project lacks a task for."""
    steps = ["uv lock --check"]
    missing = []
    for key, tool, step in (("lint", "ruff", "lint"), ("type_checker", None, "typecheck"),
                            ("tests", "pytest", "test")):
        value = data.get(key, True)
        if value in (False, "none"):
            missing.append(tool or "mypy")
        else:
            steps.append(step)
    line = f"mise tasks: check runs {', '.join(steps)}"
    if missing:
        line += (f"; no task for {', '.join(missing)} (not in the project's dependencies: "
                 f"`uv add --dev {' '.join(missing)}`, then run it with `uv run`)")
    return line


def venv_python(venv: Path) -> str | None:
    """The Python version ``venv`` runs (``version_info`` of its ``pyvenv.cfg``), or None."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("version_info", "version"):
            return value.strip()
    return None


def tool_answers(tools: set[str]) -> dict[str, Any]:
    """The template answers that give tasks only for the tools the project has: ``lint`` (ruff),
    ``type_checker`` (mypy, pyright or none), ``tests`` (pytest), ``coverage`` (pytest-cov)."""
    checker = "mypy" if "mypy" in tools else "pyright" if "pyright" in tools else "none"
    return {"lint": "ruff" in tools, "type_checker": checker, "tests": "pytest" in tools,
            "coverage": "pytest" in tools and "pytest-cov" in tools}


def _python_choices() -> list[str]:
    """Every ``major.minor`` the template's ``python_version`` validator accepts (``3.0``-``3.99``)."""
    return [f"3.{minor}" for minor in range(100)]


def _python_from_file(root: Path, choices: list[str]) -> str | None:
    try:
        text = (root / ".python-version").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        match = re.search(r"(\d+)\.(\d+)", line.split("#", 1)[0])
        if match:
            found = f"{match.group(1)}.{match.group(2)}"
            return found if not choices or found in choices else None
    return None


def _python_from_requires(requires: object, choices: list[str]) -> str | None:
    if not isinstance(requires, str):
        return None
    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        return None
    ordered = sorted(choices, key=lambda v: tuple(int(x) for x in v.split(".")))
    for minor in ordered:  # a minor is allowed when one of its releases is
        if any(spec.contains(f"{minor}.{patch}") for patch in (0, 20, 99)):
            return minor
    return None


def copy_missing(rendered: Path, root: Path) -> tuple[list[str], list[str]]:
    """Copy each environment file of ``rendered`` that ``root`` lacks; returns (written, kept).

    ``kept`` lists the files ``root`` already has with a content other than the rendered one.
    """
    written, kept = [], []
    for name in ENV_FILES:
        source, target = rendered / name, root / name
        if not source.is_file():
            continue
        if target.exists() or target.is_symlink():
            if not _same_file(source, target):
                kept.append(name)
            continue
        atomic_write_bytes(target, source.read_bytes())
        target.chmod(source.stat().st_mode & 0o777)
        written.append(name)
    return written, kept


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _same_file(rendered: Path, target: Path) -> bool:
    """True when ``target`` is a regular file (not a symlink) with ``rendered``'s bytes."""
    if target.is_symlink() or not target.is_file() or not rendered.is_file():
        return False
    return target.read_bytes() == rendered.read_bytes()


def _names_env_file(line: str) -> bool:
    pattern = line.split()[0] if line.split() else ""
    if pattern in ("", "*") or pattern.startswith("#"):
        return False
    names = (*ENV_FILES, ".envrc.local.sh")
    return any(fnmatch.fnmatch(name, pattern.strip("/")) for name in names)


def merge_entries(rendered: Path, target: Path) -> list[str]:
    """Append to ``target`` the lines of ``rendered`` that name an environment file and that it
    lacks (with the comment just above each); returns the appended entry lines.

    A catch-all like ``* text=auto`` is never added: it would renormalise the whole repository.
    """
    try:
        lines = rendered.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    if target.is_symlink():  # someone else's file: writing would replace the link
        return []
    try:
        existing = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    except (OSError, UnicodeDecodeError):
        return []
    have = {ln.strip() for ln in existing.splitlines()}
    block: list[str] = []
    added: list[str] = []
    for i, line in enumerate(lines):
        if not _names_env_file(line) or line.strip() in have:
            continue
        comment = lines[i - 1] if i and lines[i - 1].startswith("#") else None
        if comment and comment not in block and comment.strip() not in have:
            block.append(comment)
        block.append(line)
        added.append(line.strip())
    if block:
        prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
        created = not target.exists()
        atomic_write_text(target, prefix + "\n".join(block) + "\n")
        if created:  # a project file: the mode open() would give it, not a private 0600
            target.chmod(0o666 & ~_umask())
    return added


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells (``/proc/self/status``),
    else set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def approve(root: Path, store: Store, *, rendered: Mapping[str, bytes]) -> list[str]:
    """Record as devkit-rendered only the environment files of ``root`` that are byte for byte
    ``rendered`` (what devkit's template rendered for them: :func:`devkit.trust.render_of`), then
    approve the loader configs the approval rule allows (:func:`devkit.trust.trust_if_rendered`;
    an ``.envrc.local.sh`` found in the project is the project's, never approved).

    Returns one line per config. When mise or direnv fails to approve, says how to approve by
    hand instead of failing the adoption.
    """
    quoted = shlex.quote(str(root))
    verbs = {"mise": "trust", "direnv": "allow"}
    manual = [f"read {name}, then run: {tool} {verbs[tool]} {quoted}"
              for tool, name in LOADER_CONFIGS.items() if (root / name).is_file()]
    try:
        trust.record_rendered(root, store, rendered)
        return trust.trust_if_rendered(root, store, adopting=True)
    except (DevkitError, OSError) as exc:  # mise/direnv itself failed: the adoption still goes on
        return [f"Could not approve the environment configs ({exc}): {m}" for m in manual]


# -- devkit in a repository you don't own ---------------------------------------------------------
def _private_root(path: Path) -> Path:
    """The resolved project directory of a private adoption. Raises DevkitError (one line, with
    the fix) when it is not a directory, has no ``pyproject.toml`` or is not in a git work
    tree, or when the repository's config runs commands."""
    root = path.expanduser().absolute()
    if not root.is_dir():
        raise DevkitError(f"{path} is not a directory")
    root = root.resolve()
    q = shlex.quote(str(root))
    if not (root / "pyproject.toml").is_file():
        raise DevkitError(f"{root} has no pyproject.toml: `devkit adopt --private` takes an "
                          f"existing Python project (start a new one with: devkit new {q})")
    if not git.is_work_tree(root):
        raise DevkitError(f"{root} is not in a git work tree: `devkit adopt --private` hides its "
                          f"files in the repository's info/exclude; clone the repository, or "
                          f"use `devkit adopt {q}` for a project that is not in git")
    return root


def adopt_private(path: Path, *, store: Store, loader: str | None = None,
                  sync: bool = True, data: Mapping[str, Any] | None = None) -> int:
    """Adopt the project at ``path`` in a git repository the user does not own; returns 0, or 1
    when ``uv sync`` failed. ``data``: answers to template questions (``services``…), recorded
    with the others.

    As :func:`adopt_project`, except that nothing tracked is modified: the environment files the
    render holds (:func:`devkit.private.environment_files`) are added untracked and listed in
    the repository's ``info/exclude``, their line-ending rules in ``info/attributes``
    (:mod:`devkit.private`), and what devkit needs later is a record in the store. Running it
    again is idempotent and repairs a lost block or a deleted file. Raises DevkitError, before
    anything is written, when the path is not a git work tree, has no ``pyproject.toml``, or a
    file devkit would add is tracked, or exists untracked with other content than devkit's
    render (a file devkit added before and the user edited since is kept).
    """
    root = _private_root(path)
    q = shlex.quote(str(root))
    previous = private.load(store, root)
    given = dict(data or {})
    data = dict(previous.answers) if previous else project_answers(root, {}, loader)
    data.update(given)  # e.g. services=[postgres]: copier checks the values
    if loader:
        data["env_loader"] = loader
    store.ensure()
    uv.expose(store.bin_dir)
    current = template.ensure_template_repo(store)
    # adopting again repairs at the recorded template version: moving to a newer one (and
    # merging the user's edits) is `devkit update`'s job
    source, commit = ((previous.source, previous.commit) if previous else
                      (str(current.repo), current.tag))
    rendered = private.render(source, commit, data)
    names = list(rendered.files)
    known = previous.files if previous else {}
    tracked = [n for n in names if git.tracked(root, n)] or git.tracked_in(root, "HEAD", names)
    if tracked:
        name = tracked[0]
        hint = (" (choose another loader: --loader direnv)" if name == ".mise.toml" else
                " (choose another loader: --loader mise)" if name == ".envrc" else "")
        raise DevkitError(f"{name} is tracked by the repository at {root}: `devkit adopt "
                          f"--private` adds only files the repository does not have; use the "
                          f"repository's own {name}{hint}")
    plan: dict[str, str] = {}  # name -> write | adopt | keep | yours
    for name in names:
        target = root / name
        present = target.exists() or target.is_symlink()
        digest = private.file_sha256(target)
        if not present:
            plan[name] = "write"
        elif digest == private.sha256(rendered.files[name]):
            plan[name] = "keep" if name in known else "adopt"
        elif name in known:
            plan[name] = "yours"  # devkit's file, edited since: the user's edit stays
        else:
            raise DevkitError(
                f"{target} exists (untracked) and is not devkit's {name}: move it away "
                f"(mv {shlex.quote(str(target))} {shlex.quote(str(target) + '.mine')}) and run "
                f"`devkit adopt --private {q}` again, then merge your lines back")
    exclude_path, attributes_path = private.git_paths(root)
    prefix = git.show_prefix(root)
    lock_missing = sync and not (root / "uv.lock").exists() and not git.tracked(root, "uv.lock")
    lock_created = (previous.lock_created if previous else False) or lock_missing
    mode = "again" if previous else ""
    print(f"Adopting {data['project_name']} ({root}) privately{' ' + mode if mode else ''}: "
          f"environment loaded by {data['env_loader']}; nothing tracked is changed")
    files: dict[str, private.Added] = {}
    for name in names:
        if plan[name] == "yours":
            files[name] = known[name]
        else:
            created = known[name].created if name in known else plan[name] == "write"
            files[name] = private.Added(private.sha256(rendered.files[name]), created)
    # a file devkit added that the template no longer renders stays, excluded, until removed
    dropped = [n for n in known if n not in files and (root / n).exists()]
    files.update({n: known[n] for n in dropped})
    record = private.Record(
        root, source, commit, data, files,
        previous.exclude if previous else private.BlockFile(str(exclude_path)),
        previous.attribute_file if previous else private.BlockFile(str(attributes_path)),
        private.exclude_lines([*names, *dropped], rendered.gitignore, prefix, lock=lock_created),
        private.attribute_lines(rendered.gitattributes, names, prefix), lock_created)
    record.exclude.path, record.attribute_file.path = str(exclude_path), str(attributes_path)
    undo = private.Undo()
    with private.restoring(undo):
        for info in (exclude_path, attributes_path):
            undo.keep(info)
        for name in names:
            if plan[name] == "write":
                undo.keep(root / name)
                private.write_file(root / name, rendered.files[name], rendered.modes[name])
        private.write_blocks(record)
        private.save(store, record)
    for name in names:
        print({"write": f"  wrote {name}", "adopt": f"  adopted your untracked {name} (the same "
               "bytes as devkit's)", "keep": f"  {name} is devkit's, unchanged",
               "yours": f"  kept your edits to {name}"}[plan[name]])
    for name in dropped:
        print(f"  {name}: no longer rendered by devkit's template; left in place, still excluded")
    print(f"  excluded from git in {exclude_path}: {', '.join(record.excludes)}")
    if record.attributes:
        print(f"  line endings in {attributes_path}: {'; '.join(record.attributes)}")
    if ".mise.toml" in names and plan.get(".mise.toml") == "write":
        print("  " + tasks_line(data))
    project, was_new = Registry(store).add(root, str(data["project_name"]))
    project = Registry(store).set_flags(root, private=True)
    print(f"{'Registered' if was_new else 'Already registered'} (private): {project.path}")
    if not project.align:
        print(f"  `devkit align` leaves its uv.lock (the repository's) alone; opt in with: "
              f"devkit projects set {q} --align")
    for line in approve(root, store, rendered=rendered.loaders):
        print(line)
    code = _sync_and_report(root, store, sync=sync)
    print(f"  devkit adopt --remove {q}   # take devkit's files away again, the repository as "
          "it was")
    return code


def remove_private(path: Path, *, store: Store, force: bool = False) -> int:
    """Undo ``devkit adopt --private`` at ``path``; returns 0, or 1 when a file was kept.

    Deletes each file devkit added and created, unless the user changed it since devkit wrote
    it (kept, with its exclude line, and the adoption stays registered; ``force`` deletes it
    too); a file that was there before the adoption stays. Takes devkit's blocks out of
    ``info/exclude`` and ``info/attributes`` (each file ends byte for byte as before, or is
    deleted when devkit created it), untrusts the loader configs it deletes (``mise trust
    --untrust``, ``direnv deny``), forgets their rendered record and, when nothing is kept,
    unregisters the workspace. ``.venv`` is the user's: left in place. Raises DevkitError when
    ``path`` was not adopted with ``--private``.
    """
    root = path.expanduser().absolute().resolve()
    q = shlex.quote(str(root))
    record = private.load(store, root)
    if record is None:
        raise DevkitError(f"{root} was not adopted with --private: nothing to remove (`devkit "
                          f"projects remove {q}` only unregisters a workspace)")
    git.refuse_unsafe(root)
    deleted, kept, stayed = [], [], []
    for name, added in sorted(record.files.items()):
        target = root / name
        if not (target.exists() or target.is_symlink()):
            continue
        if not added.created:
            stayed.append(name)
        elif private.file_sha256(target) == added.sha256 or force:
            deleted.append(name)
        else:
            kept.append(name)
    environ = dict(os.environ)
    if ".mise.toml" in deleted and mise.find() and mise.is_trusted(root / ".mise.toml", environ):
        mise.untrust(root, env={**environ, "MISE_OFFLINE": "1"})
        print(f"  ran `mise trust --untrust {q}`")
    if ".envrc" in deleted and direnv.find():
        direnv.deny(root, env=environ)
        print(f"  ran `direnv deny {q}`")
    prefix = git.show_prefix(root)
    undo = private.Undo()
    with private.restoring(undo):
        for info in (Path(record.exclude.path), Path(record.attribute_file.path)):
            undo.keep(info)
        for name in deleted:
            undo.keep(root / name)
            (root / name).unlink()
        trust.record_rendered(root, store, {})  # forget the renders of the files now gone
        if kept:
            for name in deleted + stayed:
                del record.files[name]
            gone = {f"/{prefix}{n}" for n in deleted + stayed}
            record.excludes = [line for line in record.excludes if line not in gone]
            record.attributes = [line for line in record.attributes
                                 if line.split()[0] not in gone]
            private.write_blocks(record)
            private.save(store, record)
        else:
            private.remove_block(record.exclude, root)
            private.remove_block(record.attribute_file, root)
            if record.lock_created and (root / "uv.lock").is_file():
                (root / "uv.lock").unlink()
                print("  deleted uv.lock (uv created it at the adoption; the repository has none)")
            private.forget(store, root)
    for name in deleted:
        print(f"  deleted {name}")
    for name in stayed:
        print(f"  left {name}: it was there before the adoption")
    if kept:
        for name in kept:
            print(f"  kept {name}: you changed it since devkit wrote it (still excluded); "
                  f"review it, then delete it with `devkit adopt --remove --force {q}`")
        print(f"{root} stays a private devkit workspace until those files go")
        return 1
    print(f"  took devkit's blocks out of {record.exclude.path} and "
          f"{record.attribute_file.path}")
    with contextlib.suppress(DevkitError):
        Registry(store).remove(root)
        print(f"Unregistered: {root}")
    if (root / ".venv").exists():
        print(f"  left .venv: it is yours (delete it with `rm -rf {shlex.quote(str(root / '.venv'))}`)")
    return 0
