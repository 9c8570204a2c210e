"""The only module that calls copier: the store's template repository, rendering and updating.

The store's template repository (``Store.template_repo``) is where every devkit workspace's
``_src_path`` points, so that ``copier update`` works from any directory (a relative or untracked
local source cannot be updated: copier#335, https://github.com/copier-org/copier/issues/335).

It is built to be read while another process writes it:

* Its working tree stays empty; each template version is one commit reached only through an
  immutable tag. Copier always renders from a tag (``vcs_ref``), never from a working tree, and
  with a ref other than ``HEAD`` it never looks at the source's working tree (copier ``_vcs.clone``).
* A writer only adds objects and then one new tag (``git update-ref`` with an all-zero old
  value, so an existing tag is never moved), under ``Store.mutex("template")``. Git writes
  objects and refs atomically, and ``git clone`` reads the refs before it copies the objects,
  so a reader sees a tag complete or not at all.
* Tags are PEP 440 versions that only ever grow (see :func:`tag_name`): ``v<devkit version>``
  for the first template of a devkit version, then ``v<version>.post<N>`` each time that
  version's bundled template changes (a development install). Copier compares ``_commit``
  versions and refuses downgrades (copier docs, "Updating a project"), so a later template must
  never carry a smaller version.
* It is private (mode 0700/0600 whatever the umask: ``core.sharedRepository = 0600``) and its
  config is devkit's own text: when the config differs (a planted ``core.fsmonitor``, an older
  devkit's layout), the repository is rebuilt beside it and swapped in, keeping every tag and
  commit that workspaces may name in ``_commit``. devkit runs git there, as everywhere, with
  :func:`devkit.git.environment` (no hooks, no fsmonitor command).

copier runs git itself (through plumbum): :func:`render` and :func:`update` give it the same
environment, and first refuse a workspace or local template source whose own git config names a
command (:func:`devkit.git.unsafe_config`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devkit import __version__, git
from devkit.errors import DevkitError, describe
from devkit.store import Store

if TYPE_CHECKING:  # packaging is imported where a version is parsed (doctor: 1.5 ms less)
    from packaging.version import Version

_PACKAGE_DIR = Path(__file__).resolve().parent
LOCK_TIMEOUT = 120.0  # seconds a writer waits for another one refreshing the template repository
DIGEST_TRAILER = "Devkit-Template-Digest"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
_ZERO = "0" * 40

# The whole ``.git/config`` of the store's template repository. Any other content (a planted
# ``core.fsmonitor`` or filter, an older devkit's repository) makes devkit rebuild the repository.
STORE_CONFIG = """\
# devkit's template repository: devkit rebuilds it when this file changes.
[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = false
\tsharedRepository = 0600
[gc]
\tauto = 0
"""


@dataclasses.dataclass(frozen=True)
class TemplateVersion:
    """The store's copy of one template: ``repo`` (copier's ``_src_path``), ``tag`` (copier's
    ``vcs_ref`` and the workspace's ``_commit``), ``version`` (the tag as a PEP 440 version)."""

    repo: Path
    tag: str

    @property
    def version(self) -> Version:
        """``tag`` parsed by PEP 440 (``v0.1.0.post2`` → ``0.1.0.post2``)."""
        from packaging.version import Version

        return Version(self.tag)


def bundled_template_dir() -> Path:
    """The template shipped with devkit: ``devkit/_template`` in a wheel, the repo root in a checkout.

    Raises DevkitError when neither holds a ``copier.yml``.
    """
    for candidate in (_PACKAGE_DIR / "_template", _PACKAGE_DIR.parents[1]):
        if (candidate / "copier.yml").is_file() and (candidate / "templates").is_dir():
            return candidate
    raise DevkitError("devkit's bundled template is missing: reinstall devkit")


def _template_files(src: Path) -> list[Path]:
    """The files of the bundled template, relative to ``src``: ``copier.yml`` and ``templates/``."""
    files = [Path("copier.yml")]
    for root, dirs, names in os.walk(src / "templates"):
        ignored = _IGNORED(root, [*dirs, *names])
        dirs[:] = sorted(d for d in dirs if d not in ignored)
        base = Path(root).relative_to(src)
        files += [base / n for n in sorted(names) if n not in ignored]
    return sorted(files)


def bundled_digest(src: Path | None = None) -> str:
    """SHA-256 (hex) over the bundled template's file names, executable bits and bytes.

    Identifies the installed template without asking git; recorded in each tag's commit message
    (``Devkit-Template-Digest:``). Raises DevkitError when the template is missing.
    """
    src = src or bundled_template_dir()
    digest = hashlib.sha256()
    for rel in _template_files(src):
        path = src / rel
        mode = "x" if os.access(path, os.X_OK) and path.is_file() else "-"
        digest.update(f"{rel.as_posix()}\0{mode}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def tag_name(version: str, n: int) -> str:
    """The tag of the ``n``-th template (0 = first) seen with devkit ``version``.

    ``n == 0`` gives ``v<version>``. Later ones must sort after it by PEP 440 and after each other:
    ``v0.1.0.post<n>`` for a plain release; for a version that already has a post, dev or
    pre-release part, a local label ``+<n>`` (``v0.2.0.dev1+2``); for one with a local label,
    one more local segment (``v0.1.0+g1a2b.3``). Raises DevkitError for a non-PEP 440 version.
    """
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(version)
    except InvalidVersion as exc:
        raise DevkitError(f"devkit's version {version!r} is not a PEP 440 version") from exc
    if n == 0:
        return f"v{version}"
    if parsed.local is not None:
        return f"v{version}.{n}"
    if parsed.post is None and parsed.dev is None and parsed.pre is None:
        return f"v{version}.post{n}"
    return f"v{version}+{n}"


def _series_index(tag: str, version: str) -> int | None:
    """``n`` when ``tag == tag_name(version, n)``, else None."""
    base = f"v{version}"
    if tag == base:
        return 0
    match = re.fullmatch(re.escape(base) + r"(?:\.post|\+|\.)([1-9][0-9]*)", tag)
    if match and tag_name(version, int(match.group(1))) == tag:
        return int(match.group(1))
    return None


# -- the store's template repository -------------------------------------------------------------
def _store_git(repo: Path, *args: str, cwd: Path | None = None,
               extra_env: Mapping[str, str] | None = None) -> str:
    """git in the store's template repository, never running its hooks or fsmonitor; its config
    is devkit's own text (:func:`_is_devkits`, or written by :func:`_rebuild`)."""
    return git.run(*git.NO_HOOKS, f"--git-dir={repo / '.git'}", *args, cwd=cwd or repo,
                   extra_env=extra_env, verified=True)


def _is_devkits(repo: Path) -> bool:
    """True when ``repo`` is a template repository as devkit builds it: ours, private, devkit's
    config, an empty working tree. Never runs git."""
    try:
        st = repo.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o077 or st.st_uid != os.getuid():
            return False
        if any(child.name != ".git" for child in repo.iterdir()):
            return False
        gitdir = repo / ".git"
        if not stat.S_ISDIR(gitdir.lstat().st_mode):
            return False
        return (gitdir / "config").read_text(encoding="utf-8") == STORE_CONFIG
    except (OSError, UnicodeDecodeError):
        return False


def _privatise(root: Path) -> None:
    """Drop group and other permission bits under ``root`` (symlinks are left alone)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                os.chmod(path, st.st_mode & 0o700)
    os.chmod(root, 0o700)


def _tags(repo: Path) -> dict[str, tuple[str, str | None]]:
    """``{tag: (commit, template digest or None)}`` of the store's template repository."""
    fmt = f"%(refname:strip=2)%00%(objectname)%00%(trailers:key={DIGEST_TRAILER},valueonly)%00"
    out = _store_git(repo, "for-each-ref", f"--format={fmt}", "refs/tags/")
    tags: dict[str, tuple[str, str | None]] = {}
    for record in out.split("\0\n"):
        parts = record.split("\0")
        if len(parts) >= 3 and parts[0]:
            tags[parts[0]] = (parts[1], parts[2].strip() or None)
    return tags


def _current(tags: Mapping[str, tuple[str, str | None]], version: str) -> tuple[int, str] | None:
    """``(n, tag)`` of the newest tag of devkit ``version``'s series, or None."""
    series = [(n, t) for t in tags if (n := _series_index(t, version)) is not None]
    return max(series) if series else None


def _rebuild(repo: Path, store: Store) -> None:
    """Build a fresh template repository beside ``repo`` and swap it in (under the mutex).

    Every tag and branch of the old repository is fetched (``git fetch`` from a local path runs
    ``git upload-pack`` there, which runs no hook or fsmonitor), so the ``_commit`` workspaces
    recorded still resolves; a commit an older devkit left untagged after its last tag
    (``v0.1.0-3-gabc1234`` in ``_commit``) is tagged ``v0.1.0.post3`` so that later tags sort after it.
    """
    new = Path(tempfile.mkdtemp(prefix=".template-new-", dir=store.home))
    try:
        # `git init DIR` reads no repository config of its working directory
        git.run(*git.NO_HOOKS, "init", "-q", "--template=", str(new), cwd=store.home,
                verified=True)
        (new / ".git" / "config").write_text(STORE_CONFIG, encoding="utf-8")
        if (repo / ".git").is_dir() or (repo / "HEAD").is_file():
            with contextlib.suppress(DevkitError):  # an unreadable old repository is dropped
                _store_git(new, "fetch", "-q", "--no-tags", "--no-write-fetch-head", str(repo),
                           "+refs/tags/*:refs/tags/*", "+refs/heads/*:refs/devkit/legacy/*")
                _tag_legacy_head(new)
        _store_git(new, "symbolic-ref", "HEAD", "refs/heads/main")
        _privatise(new)
        if repo.exists() or repo.is_symlink():
            trash = Path(tempfile.mkdtemp(prefix=".template-old-", dir=store.home))
            os.replace(repo, trash / "repo")
            os.replace(new, repo)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(new, repo)
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)


def _tag_legacy_head(repo: Path) -> None:
    for ref in _store_git(repo, "for-each-ref", "--format=%(refname)",
                          "refs/devkit/legacy/").split():
        with contextlib.suppress(DevkitError):
            described = _store_git(repo, "describe", "--tags", "--long", ref).strip()
            match = re.fullmatch(r"(v.+)-([0-9]+)-g[0-9a-f]+", described)
            if not match or match.group(2) == "0":
                continue
            from packaging.version import Version

            base = Version(match.group(1))
            if base.post is None and base.dev is None and base.pre is None and base.local is None:
                tag = f"{match.group(1)}.post{match.group(2)}"
                _store_git(repo, "update-ref", f"refs/tags/{tag}", ref, _ZERO)


def _add_version(repo: Path, store: Store, src: Path, digest: str, tag: str,
                 tags: Mapping[str, tuple[str, str | None]]) -> None:
    """Commit the bundled template (without touching any working tree) and tag it ``tag``."""
    with tempfile.TemporaryDirectory(prefix=".template-build-", dir=store.home) as tmp:
        tree_dir = Path(tmp) / "tree"
        tree_dir.mkdir()
        for rel in _template_files(src):
            (tree_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, tree_dir / rel, follow_symlinks=False)
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"),
               "GIT_AUTHOR_NAME": "devkit", "GIT_AUTHOR_EMAIL": "devkit@localhost",
               "GIT_COMMITTER_NAME": "devkit", "GIT_COMMITTER_EMAIL": "devkit@localhost"}
        _store_git(repo, f"--work-tree={tree_dir}", "add", "-A", "-f", ".", cwd=tree_dir,
                   extra_env=env)
        tree = _store_git(repo, "write-tree", extra_env=env).strip()
        parents: list[str] = []
        versions = [(v, c) for t, (c, _) in tags.items() if (v := _parse(t)) is not None]
        if versions:
            parents = ["-p", max(versions)[1]]
        message = f"devkit {__version__} template\n\n{DIGEST_TRAILER}: {digest}\n"
        commit = _store_git(repo, "commit-tree", tree, *parents, "-m", message,
                            extra_env=env).strip()
        _store_git(repo, "update-ref", f"refs/tags/{tag}", commit, _ZERO)


def _parse(tag: str) -> Version | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(tag)
    except InvalidVersion:
        return None


def ensure_template_repo(store: Store) -> TemplateVersion:
    """Bring ``store.template_repo`` to the installed devkit's template and return its tag.

    Fast path (nothing to write: one ``git for-each-ref``) without any lock; otherwise, under
    ``Store.mutex("template")``, rebuild a repository that is not devkit's and add a tagged commit
    for the bundled template. Raises DevkitError (git failed, or another devkit held the mutex for
    more than LOCK_TIMEOUT seconds).
    """
    import filelock

    src = bundled_template_dir()
    digest = bundled_digest(src)
    repo = store.template_repo
    if _is_devkits(repo):
        with contextlib.suppress(DevkitError):  # e.g. mid-swap by a rebuild: take the lock
            tags = _tags(repo)
            found = _current(tags, __version__)
            if found and tags[found[1]][1] == digest:
                return TemplateVersion(repo, found[1])
    store.ensure()
    try:
        with store.mutex("template", timeout=LOCK_TIMEOUT):
            if not _is_devkits(repo):
                _rebuild(repo, store)
            tags = _tags(repo)
            found = _current(tags, __version__)
            if found and tags[found[1]][1] == digest:
                return TemplateVersion(repo, found[1])
            tag = tag_name(__version__, found[0] + 1 if found else 0)
            _add_version(repo, store, src, digest, tag, tags)
            _privatise(repo)
            return TemplateVersion(repo, tag)
    except filelock.Timeout as exc:
        raise DevkitError(f"another devkit has been updating {repo} for {LOCK_TIMEOUT:.0f} s: "
                          "wait for it, or remove it if no devkit is running") from exc
    except OSError as exc:
        raise DevkitError(f"cannot write the template repository {repo}: {exc}") from exc


def available_version(store: Store) -> TemplateVersion:
    """The tag the installed devkit's template has, or will get at the next ``devkit new`` or
    ``devkit update``, in ``store.template_repo``; read-only (for ``devkit doctor``).

    Raises DevkitError when git fails in the repository.
    """
    digest = bundled_digest()
    repo = store.template_repo
    tags = _tags(repo) if _is_devkits(repo) else {}
    found = _current(tags, __version__)
    if found and tags[found[1]][1] == digest:
        return TemplateVersion(repo, found[1])
    return TemplateVersion(repo, tag_name(__version__, found[0] + 1 if found else 0))


def commit_version(commit: str) -> Version | None:
    """The PEP 440 version of a ``_commit`` value: a tag (``v0.1.0.post2``) or, as copier reads
    it, a ``git describe`` past a tag (``v0.1.0-3-gabc1234`` → ``0.1.0.post3.dev0+gabc1234``).
    None when it is neither (a bare commit hash)."""
    match = re.fullmatch(r"(.+)-([0-9]+)-g([0-9a-f]+)", commit)
    text = f"{match.group(1)}.post{match.group(2)}.dev0+g{match.group(3)}" if match else commit
    return _parse(text)


def is_store_source(src: str, store: Store) -> bool:
    """True when copier source ``src`` (an answers file's ``_src_path``) is the store's repository."""
    if not _is_local(src):
        return False
    try:
        return Path(src).expanduser().resolve() == store.template_repo.resolve()
    except OSError:
        return False


def is_local(src: str) -> bool:
    """True when copier source ``src`` is a local path (not ``gh:``, ``gl:``, a URL or ``git@``)."""
    return not re.match(r"^(gh:|gl:|[a-z][a-z0-9+.-]*://|git@)", src)


_is_local = is_local


def newest_tag(names: list[str]) -> str | None:
    """The newest PEP 440 tag among ``names`` (``v1.2``, ``1.3``), as copier picks it, or None."""
    from packaging.version import InvalidVersion, Version

    best: tuple[Version, str] | None = None
    for name in names:
        try:
            version = Version(name)
        except InvalidVersion:
            continue
        if best is None or version > best[0]:
            best = (version, name)
    return best[1] if best else None


def local_target(src: str) -> str | None:
    """What copier's update takes from the local git template ``src`` without ``--vcs-ref``: its
    newest PEP 440 tag, else the full hash of its HEAD (copier: "No git tags found in template;
    using HEAD as ref"). None when ``src`` is not a local git repository. Runs git without hooks.
    """
    if not is_local(src) or not Path(src).expanduser().is_dir():
        return None
    where = Path(src).expanduser()
    try:
        tag = newest_tag(git.run("tag", "--list", cwd=where).split())
        return tag or git.run("rev-parse", "HEAD", cwd=where).strip() or None
    except DevkitError:
        return None


def store_tag_of(src: str, commit: str, store: Store) -> str | None:
    """The tag of the store's template repository holding byte for byte the template that the
    local git template ``src`` (a clone of devkit, say) has at ``commit``, or None.

    Compares git object ids, which hash the content (gitglossary "object name"): ``copier.yml``
    and the ``templates`` tree, names and file modes included. Reads objects only (``git
    rev-parse`` without hooks or fsmonitor): nothing of ``src`` runs. When it matches, copier
    renders the same files from ``store.template_repo`` at that tag as from ``src`` at
    ``commit``, so the workspace can move onto the store without changing its merge base.
    """
    if not is_local(src) or not commit or not re.fullmatch(r"[\w.+-]+", commit) \
            or commit.startswith("-") or not _is_devkits(store.template_repo):
        return None
    where = Path(src).expanduser()
    if not where.is_dir():
        return None
    try:
        mine = git.run(*git.NO_HOOKS, "rev-parse", "--verify", "--quiet", "--end-of-options",
                       f"{commit}^{{commit}}:copier.yml", cwd=where).strip()
        mine_tree = git.run(*git.NO_HOOKS, "rev-parse", "--verify", "--quiet",
                            "--end-of-options", f"{commit}^{{commit}}:templates",
                            cwd=where).strip()
        zero = _parse("0")
        tags = sorted(_tags(store.template_repo), key=lambda t: (_parse(t) or zero, t),
                      reverse=True)
        if not tags:
            return None
        refs = [f"refs/tags/{t}^{{commit}}:{part}" for t in tags
                for part in ("copier.yml", "templates")]
        ids = _store_git(store.template_repo, "rev-parse", *refs).split()
    except DevkitError:
        return None
    for i, tag in enumerate(tags):
        if ids[2 * i:2 * i + 2] == [mine, mine_tree]:
            return tag
    return None


def repoint_command(workspace: Path, store: Store, tag: str) -> str:
    """The one command that moves ``workspace`` onto the store's template at ``tag`` when the
    template it was made from is gone: copier applied over the existing project with its
    recorded answers (copier docs, FAQ "Can Copier be applied over a preexisting project?";
    like ``copier recopy``, it overwrites the template's files, so local edits to them show up
    in ``git diff`` to restore). Runs copier with the Python running devkit (copier's
    ``python -m copier``), so it works whatever put devkit on ``PATH``.
    """
    import sys

    q = shlex.quote
    return (f"{q(sys.executable)} -m copier copy --defaults --overwrite --quiet "
            f"--vcs-ref {q(tag)} {q(str(store.template_repo))} {q(str(workspace))}")


# Sources ``devkit update`` accepts from an answers file: local paths and the URL forms copier
# documents (https, ssh, git, file, git+…, git@host:, gh:, gl:). Anything else (``ext::…``,
# ``fd::…`` git transports that run commands) is refused.
_SAFE_SOURCE = re.compile(r"^(/|~|gh:|gl:|git@[\w.-]+:|(git\+)?(https?|ssh|git|file)://)")


def check_source(src: str) -> str | None:
    """Why a template source named in an answers file cannot be used, or None when it can."""
    if "\n" in src or src.startswith("-") or not _SAFE_SOURCE.match(src):
        return f"unsupported template source {src!r}"
    if _is_local(src) and not Path(src).expanduser().exists():
        return f"template source {src} does not exist"
    return None


def resolve_source(template: str | None, store: Store) -> tuple[str, str | None]:
    """Return (copier source, vcs ref) for ``template`` (None = the bundled template).

    The bundled template renders from its immutable tag in the store's repository. Local paths
    are made absolute, because copier stores ``_src_path`` as given (copier#335). Raises
    DevkitError for a local path that does not exist.
    """
    if not template:
        current = ensure_template_repo(store)
        return str(current.repo), current.tag
    if _is_local(template):
        path = Path(template).expanduser()
        if not path.exists():
            raise DevkitError(f"template {template} does not exist")
        return str(path.resolve()), None
    return template, None


# -- --data answers ------------------------------------------------------------------------------
def parse_data(pairs: list[str]) -> dict[str, str]:
    """Turn ``["KEY=VALUE", ...]`` into a dict. Raises DevkitError on an item without ``=``."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DevkitError(f"--data expects KEY=VALUE, got {pair!r}")
        data[key.strip()] = value
    return data


def _copier_config(template_dir: Path) -> dict[object, object] | None:
    """``copier.yml`` (or ``copier.yaml``) of the template in ``template_dir``, read with
    PyYAML; None when missing or when it uses something PyYAML's safe loader cannot read (e.g.
    copier's ``!include``). Raises nothing."""
    import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints

    for name in ("copier.yml", "copier.yaml"):
        path = template_dir / name
        if path.is_file():
            try:
                # libyaml's safe loader when PyYAML has it: ~10x the pure-Python one here
                doc = yaml.load(path.read_text(encoding="utf-8"),
                                Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return None
            return doc if isinstance(doc, dict) else None
    return None


def question_names(template_dir: Path) -> list[str] | None:
    """The question names of the copier template in ``template_dir``, in file order.

    Every top-level key of ``copier.yml`` not starting with ``_`` is a question (copier docs,
    configuring: "the questionnaire"). Returns None when the file is missing or unreadable
    (:func:`_copier_config`): the keys are then not checked. Raises nothing.
    """
    doc = _copier_config(template_dir)
    if doc is None:
        return None
    return [k for k in doc if isinstance(k, str) and not k.startswith("_")]


def list_questions(template_dir: Path) -> set[str]:
    """The names of the multiple-choice questions (``multiselect: true``) of the copier template
    in ``template_dir``; empty when ``copier.yml`` is missing or unreadable. Raises nothing."""
    doc = _copier_config(template_dir) or {}
    return {k for k, v in doc.items()
            if isinstance(k, str) and isinstance(v, dict) and v.get("multiselect") is True}


def list_answers(data: Mapping[str, str], src: str) -> dict[str, str]:
    """``data`` with the answers to the local template's multiple-choice questions written as the
    YAML list copier expects: ``services=postgres,redis`` (or ``services=postgres``) becomes
    ``["postgres", "redis"]``; a value already in brackets (``[postgres, redis]``) and every other
    answer are passed as given. copier itself takes only the list form and fails on the others
    with ``TypeError: Not a YAML list``. Remote templates are not read: their data is unchanged.
    Raises nothing; the values are checked by copier (the question's choices)."""
    path = Path(src)
    lists = list_questions(path) if path.is_dir() else set()
    out = dict(data)
    for key in lists & set(data):
        value = data[key].strip()
        if not value.startswith("["):
            items = [item.strip() for item in value.split(",") if item.strip()]
            out[key] = json.dumps(items)
    return out


def check_data_keys(data: Mapping[str, str], src: str) -> None:
    """Refuse ``--data`` keys that are not questions of the local template ``src``.

    copier ignores unknown keys silently, so a typo (``pyhton_version``) would go unnoticed.
    Remote templates are not checked (their ``copier.yml`` is only known after cloning).
    Raises DevkitError listing the valid keys.
    """
    path = Path(src)
    if not data or not path.is_dir():
        return
    names = question_names(path)
    if names is None:
        return
    unknown = [key for key in data if key not in names]
    if not unknown:
        return
    import difflib  # only for a mistyped key

    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, names, n=1)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise DevkitError(f"unknown --data key(s): {', '.join(hints)}; the template's questions are: "
                      f"{', '.join(names)}")


# -- copier --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _copier_git_safety(*paths: str | Path) -> Iterator[None]:
    """Make every git that copier runs see this process's environment plus the command-scope
    settings of :func:`devkit.git.environment` (no hooks, no fsmonitor command, no prompt).

    First refuses (DevkitError, one line) any of ``paths`` — the workspace, a local template
    source — inside a repository whose own config names a command no setting can switch off
    (:func:`devkit.git.unsafe_config`: a ``filter.<driver>.clean``…). Not thread-safe (plumbum's
    environment is process-wide).
    """
    from plumbum import local

    for path in paths:
        if isinstance(path, Path) or _is_local(path):
            where = Path(path).expanduser()
            if where.is_dir():
                git.refuse_unsafe(where)
    with local.env():
        # plumbum copies os.environ once, when first imported: give copier's git today's.
        local.env.clear()
        local.env.update(**git.environment())
        yield


def _copier_errors() -> tuple[type[BaseException], ...]:
    """What copier raises for a template or an answer it refuses; PyYAML's errors included: a
    multiple-choice answer is parsed as a YAML list (``services=[postgres`` is not one)."""
    import yaml  # PyYAML comes with copier (untyped: see _copier_config)
    from copier.errors import CopierError
    from plumbum import ProcessExecutionError

    return (CopierError, ValueError, ProcessExecutionError, yaml.YAMLError)


def _as_devkit_error(exc: BaseException, src: str, action: str) -> DevkitError:
    from plumbum import ProcessExecutionError

    if isinstance(exc, ProcessExecutionError):  # copier runs git through plumbum
        detail = (exc.stderr or "").strip().splitlines()
        reason = detail[-1] if detail else f"git exited with {exc.retcode}"
        return DevkitError(f"cannot fetch the template {src}: {reason}")
    where = f" {src}" if action != "render" else ""
    return DevkitError(f"cannot {action} the template{where}: {describe(exc)}")


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
    import copier
    from copier.errors import DirtyLocalWarning

    try:
        with warnings.catch_warnings(), _copier_git_safety(src):
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
    except _copier_errors() as exc:
        raise _as_devkit_error(exc, src, "render") from exc
    return dict(worker.answers.combined)


def check_data(src: str, data: Mapping[str, str], *, answers: Mapping[str, Any],
               vcs_ref: str | None, shown: Mapping[str, str] | None = None) -> None:
    """Validate ``--data`` answers as copier will when it updates a workspace with them: a pretend
    copy (``run_copy(pretend=True)``: copier validates every answer and writes nothing) of ``src``
    at ``vcs_ref`` with the workspace's recorded ``answers`` and ``data`` over them.

    A multiple-choice answer is a YAML list (``services=[postgres]``; copier's ``parse_yaml_list``).
    Raises DevkitError (one line, naming the ``--data`` given: ``shown``, default ``data``) on a
    value copier refuses: a choice not offered, a failed validator, text that is not a YAML list.
    """
    import copier
    import yaml  # PyYAML comes with copier (untyped: see _copier_config)

    given = {str(k): v for k, v in answers.items() if not str(k).startswith("_")}
    given.update(data)
    typed = " ".join(f"--data {shlex.quote(f'{k}={v}')}" for k, v in (shown or data).items())
    refused: tuple[type[BaseException], ...] = (*_copier_errors(), TypeError)  # "Not a YAML list"
    try:
        with tempfile.TemporaryDirectory(prefix="devkit-check-") as tmp, \
                warnings.catch_warnings(), _copier_git_safety(src):
            warnings.simplefilter("ignore")
            copier.run_copy(src, str(Path(tmp) / "workspace"), data=given, defaults=True,
                            pretend=True, quiet=True, unsafe=False, vcs_ref=vcs_ref)
    except refused as exc:
        reason = describe(exc).removeprefix("Validation error for question ")
        if "YAML list" in reason or isinstance(exc, yaml.YAMLError):
            reason += " (a multiple-choice answer is a YAML list, e.g. services=[postgres])"
        raise DevkitError(f"{typed} refused: {reason}") from exc


def update(dst: Path, *, vcs_ref: str | None, src: str = "named in the answers file",
           data: Mapping[str, str] | None = None) -> None:
    """``copier update`` the workspace ``dst`` to ``vcs_ref`` (None = the source's newest PEP 440
    tag) with its recorded answers, asking nothing and trusting nothing:
    ``run_update(defaults=True, skip_answered=True, overwrite=True, unsafe=False,
    conflict="inline")`` (copier docs, "Updating a project").

    ``dst`` must be a clean git work tree. Conflicts are not errors: copier writes
    ``<<<<<<< before updating`` markers and records the file as unmerged in the index. Changes the
    process's working directory while it runs (copier's plumbum ``local.cwd``), so run one at a
    time per process. ``src`` (the answers file's ``_src_path``) only words the errors. ``data``
    answers questions anew (``KEY: text``, as ``--data`` gives them; copier's ``data`` argument
    wins over the recorded answers, which answer the rest). Raises DevkitError with copier's or
    git's message (e.g. a downgrade, a refused answer).
    """
    import copier

    try:
        local_src = [src] if src.startswith(("/", "~")) else []
        with warnings.catch_warnings(), _copier_git_safety(dst, *local_src):
            warnings.simplefilter("ignore")
            copier.run_update(
                str(dst),
                data=dict(data or {}),
                defaults=True,
                overwrite=True,
                skip_answered=True,
                vcs_ref=vcs_ref,
                unsafe=False,
                quiet=True,
                conflict="inline",
            )
    except _copier_errors() as exc:
        raise _as_devkit_error(exc, src, "update from") from exc


#: copier's default answers file, at the root of every workspace rendered from a template.
ANSWERS_FILE = ".copier-answers.yml"


def read_answers(workspace: Path) -> dict[str, Any]:
    """The answers file of ``workspace`` (``.copier-answers.yml``) as a mapping, read with
    ``yaml.safe_load`` (copier writes it with ``to_nice_yaml``; copier docs, "The answers file").

    Raises DevkitError (one line) when it is missing, unreadable, not YAML or not a mapping.
    """
    import yaml  # PyYAML comes with copier (untyped: see _copier_config)

    path = workspace / ANSWERS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DevkitError(f"cannot read {path}: {describe(exc)}") from exc
    if not isinstance(data, dict):
        raise DevkitError(f"{path} is not a copier answers file")
    return data
