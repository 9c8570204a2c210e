"""`devkit adopt --private`: devkit in a repository you don't own.

Real git (a bare "client" repository, clones, worktrees), real uv, mise and direnv: nothing devkit
adds may reach the client's repository, on any branch, after a pull --rebase or a stash.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import run_uv

from devkit import mise
from devkit.store import Store

TRANSCRIPT = Path("/work/helpers/h3-transcript.txt")
DEVKIT_FILES = (".mise.toml", ".envrc.sh")


def git(*args: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI=true makes mise trust every config: trust tests need mise's real behaviour."""
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def client(tmp_path: Path) -> tuple[Path, Path]:
    """(bare client repository, the client's own working clone ``seed``): a locked uv project
    with its own .gitignore (no final newline) and .gitattributes, pushed to ``main``."""
    bare = tmp_path / "client.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "pyproject.toml").write_text(
        '[project]\nname = "client"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinyshared"]\n')
    assert run_uv(seed, "lock").returncode == 0
    (seed / "main.py").write_text("print('client')\n")
    (seed / ".gitignore").write_text("*.log\n.venv/")  # no final newline: byte-identical stays
    (seed / ".gitattributes").write_text("*.png binary\n")
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-qm", "client: initial", cwd=seed)
    git("remote", "add", "origin", str(bare), cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    return bare, seed


def clone(bare: Path, dst: Path) -> Path:
    git("clone", "-q", str(bare), str(dst), cwd=bare.parent)
    return dst


def tracked_bytes(repo: Path) -> dict[str, bytes]:
    return {name: (repo / name).read_bytes() for name in (".gitignore", ".gitattributes")}


def registry(store: Store) -> list[dict[str, object]]:
    return json.loads(store.registry_file.read_text())["projects"]


def test_adopt_private_leaves_git_status_clean(devkit, client, tmp_path: Path,
                                               store: Store) -> None:
    work = clone(client[0], tmp_path / "work")
    before = tracked_bytes(work)
    code, out, err = devkit("adopt", "--private", work)
    assert code == 0, (out, err)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    assert tracked_bytes(work) == before
    for name in DEVKIT_FILES:
        assert (work / name).is_file()
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=work,
                              check=False).returncode == 0
    assert (work / ".venv").is_dir() and "Synced .venv" in out
    exclude = (work / ".git" / "info" / "exclude").read_text()
    assert "# >>> devkit (private) >>>" in exclude and "# <<< devkit <<<" in exclude
    assert "/.envrc.sh\n/.mise.toml\n/.envrc.local.sh\n" in exclude
    attributes = (work / ".git" / "info" / "attributes").read_text()
    assert "/.envrc.sh text eol=lf" in attributes and "*.sh" not in attributes
    assert git("check-attr", "eol", ".envrc.sh", cwd=work).strip().endswith(": lf")
    ignored = git("status", "--porcelain", "--ignored", cwd=work)
    assert "!! .mise.toml" in ignored and "!! .envrc.sh" in ignored
    assert devkit("projects", "list")[1].splitlines()[1].endswith("Z  ok (private)")
    [entry] = registry(store)
    assert entry["path"] == str(work) and entry["private"] is True and "align" not in entry
    # nothing about the adoption is in the repository: the record is in the store
    assert not (work / ".copier-answers.yml").exists()
    record = json.loads(store.private_record(work).read_text())
    assert sorted(record["files"]) == [".envrc.sh", ".mise.toml"]
    assert oct(store.private_record(work).stat().st_mode & 0o777) == "0o600"


def test_adopt_private_in_a_linked_worktree_uses_the_common_exclude(devkit, client,
                                                                    tmp_path: Path) -> None:
    work = clone(client[0], tmp_path / "work")
    linked = tmp_path / "linked"
    git("worktree", "add", "-q", "-b", "feature", str(linked), cwd=work)
    assert (linked / ".git").is_file()  # a linked worktree: .git is a file
    code, out, err = devkit("adopt", "--private", "--no-sync", linked)
    assert code == 0, (out, err)
    common = work / ".git" / "info" / "exclude"
    assert f"# workspace: {linked}" in common.read_text() and str(common) in out
    assert not (work / ".git" / "worktrees" / "linked" / "info").exists()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=linked) == ""
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""


def test_the_freelance_flow(devkit, client, tmp_path: Path) -> None:
    """Clone, adopt --private, branch, commit, upstream moves, pull --rebase, stash: only the
    user's commits, no devkit file in any of them. A transcript is saved for the notes."""
    bare, seed = client
    log: list[str] = []

    def sh(*args: str, cwd: Path) -> str:
        out = git(*args, cwd=cwd)
        log.append(f"$ git {shlex.join(args)}\n{out}")
        return out

    def dk(*args: str) -> str:
        code, out, err = devkit(*args)
        log.append(f"$ devkit {shlex.join(str(a) for a in args)}\n{out}{err}")
        assert code == 0, (out, err)
        return out

    work = tmp_path / "mission"
    sh("clone", "-q", str(bare), str(work), cwd=tmp_path)
    dk("adopt", "--private", str(work))
    assert sh("status", "--porcelain", cwd=work) == ""
    sh("switch", "-c", "feature/login", cwd=work)
    (work / "login.py").write_text("def login() -> bool:\n    return True\n")
    sh("add", "-A", cwd=work)  # the habit that would commit devkit's files, were they visible
    sh("commit", "-qm", "Add login", cwd=work)
    # the client's team moves main meanwhile
    (seed / "main.py").write_text("print('client v2')\n")
    git("commit", "-qam", "client: v2", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    sh("pull", "--rebase", "origin", "main", cwd=work)
    assert (work / "main.py").read_text() == "print('client v2')\n"
    # work in progress survives a stash round trip; devkit's files are not stashed
    (work / "login.py").write_text("def login() -> bool:\n    return False\n")
    sh("stash", cwd=work)
    assert all((work / n).is_file() for n in DEVKIT_FILES)
    sh("stash", "pop", cwd=work)
    sh("commit", "-qam", "login: refuse by default", cwd=work)
    assert sh("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    sh("fetch", "-q", "origin", cwd=work)
    mine = sh("log", "--format=%s", "origin/main..HEAD", cwd=work).split("\n")
    assert [m for m in mine if m] == ["login: refuse by default", "Add login"]
    names = sh("log", "--all", "--name-only", "--format=", cwd=work).split()
    assert set(names) == {"login.py", "main.py", "pyproject.toml", "uv.lock", ".gitignore",
                          ".gitattributes"}
    sh("push", "-q", "-u", "origin", "feature/login", cwd=work)
    pushed = git("ls-tree", "-r", "--name-only", "feature/login", cwd=bare).split()
    assert not set(pushed) & {*DEVKIT_FILES, ".envrc", ".envrc.local.sh", ".copier-answers.yml"}
    out = dk("doctor", str(work))
    assert "none of .envrc.sh, .mise.toml is in the index, HEAD or origin/feature/login" in out
    try:
        TRANSCRIPT.write_text("\n".join(log).replace(str(tmp_path), "/tmp/demo"))
    except OSError:
        pass  # the transcript is a by-product for the notes, outside the test's own tree


def test_refusals_write_nothing(devkit, client, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "pyproject.toml").write_text('[project]\nname = "plain"\nversion = "0"\n')
    code, out, err = devkit("adopt", "--private", plain)
    assert code == 1 and err.count("\n") == 1 and "not in a git work tree" in err
    assert sorted(p.name for p in plain.iterdir()) == ["pyproject.toml"]

    bare, seed = client
    (seed / ".mise.toml").write_text("[env]\nCLIENT = '1'\n")
    git("add", ".mise.toml", cwd=seed)
    git("commit", "-qm", "client: mise", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    work = clone(bare, tmp_path / "work")
    exclude = (work / ".git" / "info" / "exclude").read_bytes()
    code, out, err = devkit("adopt", "--private", work)
    assert code == 1 and err.count("\n") == 1, (out, err)
    assert ".mise.toml is tracked" in err and "--loader direnv" in err
    assert not (work / ".envrc.sh").exists()
    assert (work / ".git" / "info" / "exclude").read_bytes() == exclude
    assert not (work / ".git" / "info" / "attributes").exists()

    other = clone(client[0], tmp_path / "other")
    (other / ".mise.toml").unlink()
    git("checkout", "HEAD~1", "-q", cwd=other)  # before the client's .mise.toml
    (other / ".envrc.sh").write_text("export MINE=1\n")  # the user's own, untracked
    code, out, err = devkit("adopt", "--private", other)
    assert code == 1 and "exists (untracked) and is not devkit's .envrc.sh" in err
    assert (other / ".envrc.sh").read_text() == "export MINE=1\n"
    assert not (other / ".mise.toml").exists()


def test_adopt_private_again_is_idempotent_and_repairs(devkit, client, tmp_path: Path) -> None:
    work = clone(client[0], tmp_path / "work")
    assert devkit("adopt", "--private", "--no-sync", work)[0] == 0
    exclude = work / ".git" / "info" / "exclude"
    attributes = work / ".git" / "info" / "attributes"
    first = (exclude.read_bytes(), attributes.read_bytes(), (work / ".mise.toml").read_bytes())
    code, out, err = devkit("adopt", "--private", "--no-sync", work)
    assert code == 0, err
    assert (exclude.read_bytes(), attributes.read_bytes(),
            (work / ".mise.toml").read_bytes()) == first
    assert "wrote" not in out and "Already registered (private)" in out
    # the user edits a devkit file, loses the block and a file: adopt repairs, keeps the edit
    (work / ".mise.toml").write_text((work / ".mise.toml").read_text() + "# mine\n")
    text = exclude.read_text()
    exclude.write_text(text[:text.index("# >>> devkit")])
    (work / ".envrc.sh").unlink()
    assert ".mise.toml" in git("status", "--porcelain", cwd=work)
    code, out, err = devkit("adopt", "--private", "--no-sync", work)
    assert code == 0, err
    assert "kept your edits to .mise.toml" in out and "wrote .envrc.sh" in out
    assert (work / ".mise.toml").read_text().endswith("# mine\n")
    assert exclude.read_bytes() == first[0]
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    # a plain `devkit adopt` would edit the tracked files: refused
    code, _, err = devkit("adopt", "--no-sync", work)
    assert code == 1 and "adopted with --private" in err


def _check(doc: dict[str, object], check_id: str) -> dict[str, str]:
    checks = doc["checks"]
    assert isinstance(checks, list)
    return next(c for c in checks if c["id"] == check_id)


def test_doctor_checks_the_exclude_block_and_fix_never_touches_tracked_files(
        devkit, client, tmp_path: Path) -> None:
    work = clone(client[0], tmp_path / "work")
    assert devkit("adopt", "--private", "--no-sync", work)[0] == 0
    doc = json.loads(devkit("doctor", work, "--json")[1])
    assert _check(doc, "workspace.private-excluded")["status"] == "ok"
    assert _check(doc, "workspace.private-tracked")["status"] == "ok"
    # the fix for a missing .python-version keeps the new file out of git as well
    python = _check(doc, "workspace.python")
    assert python["status"] == "warn" and "info/exclude" in python["fix"]
    subprocess.run(["sh", "-c", python["fix"].replace("uv python pin 3.11",
                                                      "echo 3.11 > .python-version")],
                   check=True)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    assert _check(doc, "workspace.gitattributes")["status"] == "ok"
    before = tracked_bytes(work)
    exclude = work / ".git" / "info" / "exclude"
    exclude.write_text(exclude.read_text().replace("/.envrc.sh\n", ""))
    (work / ".git" / "info" / "attributes").unlink()
    doc = json.loads(devkit("doctor", work, "--json")[1])
    found = _check(doc, "workspace.private-excluded")
    assert found["status"] == "fail" and "/.envrc.sh" in found["message"]
    assert found["fix"] == f"devkit adopt --private {work}"
    assert _check(doc, "workspace.gitattributes")["fix"] == f"devkit adopt --private {work}"
    out = devkit("doctor", work, "--fix", "--json")[1]
    doc = json.loads(out)
    assert _check(doc, "workspace.private-excluded")["status"] == "ok", doc["fixes_applied"]
    assert _check(doc, "workspace.gitattributes")["status"] == "ok"
    assert tracked_bytes(work) == before
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""


def test_doctor_warns_when_upstream_starts_tracking_a_devkit_file(devkit, client,
                                                                  tmp_path: Path) -> None:
    bare, seed = client
    work = clone(bare, tmp_path / "work")
    assert devkit("adopt", "--private", "--no-sync", work)[0] == 0
    (seed / ".envrc.sh").write_text("export CLIENT_ENV=1\n")
    git("add", ".envrc.sh", cwd=seed)
    git("commit", "-qm", "client: their own .envrc.sh", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    git("fetch", "-q", cwd=work)
    doc = json.loads(devkit("doctor", work, "--json")[1])
    found = _check(doc, "workspace.private-tracked")
    assert found["status"] == "warn", found
    assert ".envrc.sh (in origin/main)" in found["message"] and "overwrites" in found["message"]
    assert "devkit adopt --remove --force" in found["fix"]


def test_align_skips_a_private_workspace_unless_opted_in(devkit, client, tmp_path: Path,
                                                         store: Store) -> None:
    work = clone(client[0], tmp_path / "work")
    assert devkit("adopt", "--private", "--no-sync", work)[0] == 0
    lock = (work / "uv.lock").read_bytes()
    code, out, err = devkit("align", "--json")
    assert code == 0, err
    doc = json.loads(out)
    [skipped] = doc["skipped"]
    assert skipped["path"] == str(work) and "private workspace" in skipped["reason"]
    assert f"devkit projects set {work} --align" in skipped["reason"]
    code, out, _ = devkit("align")
    assert "1 skipped" in out and "its uv.lock belongs to the repository" in out
    assert (work / "uv.lock").read_bytes() == lock
    code, out, err = devkit("projects", "set", work, "--align")
    assert code == 0 and "may change its uv.lock" in out, err
    assert registry(store)[0]["align"] is True
    assert "ok (private, aligned)" in devkit("projects", "list")[1]
    doc = json.loads(devkit("align", "--json")[1])
    assert doc["skipped"] == [] and [p["path"] for p in doc["projects"]] == [str(work)]
    assert devkit("projects", "set", work, "--no-align")[0] == 0
    assert "align" not in registry(store)[0]
    assert json.loads(devkit("align", "--json")[1])["skipped"][0]["path"] == str(work)
    # unregistered and registered again (`projects add`, `doctor --fix`): still private
    assert devkit("projects", "remove", work)[0] == 0
    assert devkit("projects", "add", work)[0] == 0
    assert registry(store)[0]["private"] is True
    assert json.loads(devkit("align", "--json")[1])["skipped"][0]["path"] == str(work)


def test_update_refreshes_untouched_files_and_merges_changed_ones(
        devkit, client, tmp_path: Path, store: Store, bundled: Path) -> None:
    work = clone(client[0], tmp_path / "work")
    assert devkit("adopt", "--private", "--no-sync", work)[0] == 0
    old_commit = json.loads(store.private_record(work).read_text())["commit"]
    mise_toml = work / ".mise.toml"
    mine = mise_toml.read_text().replace('run = "uv lock"', 'run = "uv lock --upgrade"')
    mise_toml.write_text(mine)
    # the template changes: a new line in .envrc.sh, a new task in .mise.toml
    tpl = bundled / "templates" / "workspace"
    envrc = tpl / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    [mise_tpl] = [p for p in tpl.iterdir() if p.name.endswith(".mise.toml{% endif %}.jinja")]
    mise_tpl.write_text(mise_tpl.read_text().replace(
        '[tasks.sync]', '[tasks.hello]\nrun = "echo hello"\n\n[tasks.sync]'))
    doc = json.loads(devkit("doctor", work, "--json")[1])
    behind = _check(doc, "workspace.template-version")
    assert behind["status"] == "warn" and f"template {old_commit} is behind" in behind["message"]
    assert behind["fix"] == f"devkit update {work}"
    code, out, err = devkit("update", work, "--json")
    assert code == 0, (out, err)
    [result] = json.loads(out)["projects"]
    assert result["status"] == "updated" and result["files"] == [".envrc.sh", ".mise.toml"]
    doc = json.loads(devkit("doctor", work, "--json")[1])
    assert _check(doc, "workspace.template-version")["status"] == "ok"
    assert result["from_version"] == old_commit != result["to_version"]
    assert (work / ".envrc.sh").read_text().endswith("export DEVKIT_NEXT=1\n")
    merged = mise_toml.read_text()
    assert 'run = "uv lock --upgrade"' in merged and "[tasks.hello]" in merged
    assert "<<<<<<<" not in merged
    assert json.loads(store.private_record(work).read_text())["commit"] == result["to_version"]
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    # the new .envrc.sh is devkit's own render: recorded (trusted); the merged one is not
    rendered = json.loads(store.rendered_file.read_text())["configs"]
    assert str(work / ".envrc.sh") in rendered
    # a conflicting change: the user's line and the template's differ on the same line
    mise_toml.write_text(mise_toml.read_text().replace('run = "echo hello"', 'run = "echo hi"'))
    mise_tpl.write_text(mise_tpl.read_text().replace('run = "echo hello"', 'run = "echo bye"'))
    code, out, err = devkit("update", work)
    assert code == 1, (out, err)
    assert "conflicts" in out and ".mise.toml" in out
    text = mise_toml.read_text()
    assert "<<<<<<< before updating" in text and 'run = "echo hi"' in text and 'run = "echo bye"' in text
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    code, out, _ = devkit("update", work, "--json")
    assert json.loads(out)["projects"][0]["status"] == "current"


def test_remove_leaves_the_repository_as_it_was(devkit, client, tmp_path: Path, store: Store,
                                                no_ci) -> None:
    work = clone(client[0], tmp_path / "work")
    info = work / ".git" / "info"
    (info / "exclude").write_text("# the user's own\n*.tmp")  # no final newline
    assert not (info / "attributes").exists()
    status = git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=work)
    exclude = (info / "exclude").read_bytes()
    code, out, err = devkit("adopt", "--private", work)
    assert code == 0, (out, err)
    assert mise.is_trusted(work / ".mise.toml", os.environ)
    # a file the user changed is kept (and stays excluded) unless --force
    (work / ".envrc.sh").write_text((work / ".envrc.sh").read_text() + "export MINE=1\n")
    code, out, err = devkit("adopt", "--remove", work)
    assert code == 1 and "kept .envrc.sh" in out, (out, err)
    assert not (work / ".mise.toml").exists() and (work / ".envrc.sh").is_file()
    assert not mise.is_trusted(work / ".mise.toml", os.environ)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    assert registry(store)[0]["private"] is True
    code, out, err = devkit("adopt", "--remove", "--force", work)
    assert code == 0, (out, err)
    assert "deleted .envrc.sh" in out and "left .venv: it is yours" in out
    assert (work / ".venv").is_dir()
    subprocess.run(["rm", "-rf", str(work / ".venv")], check=True)
    assert (info / "exclude").read_bytes() == exclude
    assert not (info / "attributes").exists()
    assert git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=work) == status
    assert registry(store) == [] and not store.private_record(work).exists()
    code, _, err = devkit("adopt", "--remove", work)
    assert code == 1 and "was not adopted with --private" in err


def test_a_client_repositorys_own_configs_and_hooks_never_run(devkit, client, tmp_path: Path,
                                                              no_ci) -> None:
    bare, seed = client
    marker = tmp_path / "pwned"
    payload = f"touch {marker}\n"
    (seed / ".envrc").write_text(payload)
    (seed / ".mise.local.toml").write_text('[env]\n_.source = "./payload.sh"\n')
    (seed / "payload.sh").write_text(payload)
    git("add", "-A", cwd=seed)
    git("commit", "-qm", "client: their own loaders", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    work = clone(bare, tmp_path / "work")
    for hook in ("post-checkout", "pre-commit", "post-merge", "reference-transaction",
                 "post-index-change"):
        path = work / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\n{payload}")
        path.chmod(0o755)
    code, out, err = devkit("adopt", "--private", "--loader", "mise", "--no-sync", work)
    assert code == 0, (out, err)
    assert not mise.is_trusted(work / ".mise.toml", os.environ)  # .mise.local.toml joins it
    assert "not trusted" in out and ".mise.local.toml" in out, out
    proc = subprocess.run(["direnv", "status"], cwd=work, capture_output=True, text=True,
                          check=False)
    assert "Found RC allowed true" not in proc.stdout
    devkit("doctor", work, "--fix")
    devkit("update", work)
    assert devkit("adopt", "--remove", work)[0] == 0
    assert not marker.exists()


def test_update_dry_run_writes_nothing_and_a_failed_update_restores_every_file(
        devkit, client, tmp_path: Path, store: Store, bundled: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit import private

    work = clone(client[0], tmp_path / "work")
    assert devkit("adopt", "--private", "--no-sync", work)[0] == 0
    envrc = bundled / "templates" / "workspace" / ".envrc.sh.jinja"
    envrc.write_text(envrc.read_text() + "export DEVKIT_NEXT=1\n")
    info = work / ".git" / "info"

    def state() -> tuple[bytes, ...]:
        return tuple(p.read_bytes() for p in (work / ".envrc.sh", work / ".mise.toml",
                                               info / "exclude", info / "attributes",
                                               store.private_record(work)))

    before = state()
    code, out, err = devkit("update", work, "--dry-run", "--json")
    assert code == 0, (out, err)
    assert json.loads(out)["projects"][0]["status"] == "updated"
    assert state() == before

    def broken_save(store: Store, record: private.Record) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(private, "save", broken_save)
    code, out, err = devkit("update", work, "--json")
    assert code == 1, (out, err)
    [result] = json.loads(out)["projects"]
    assert result["status"] == "failed" and "No space left" in result["reason"]
    assert state() == before  # the new .envrc.sh was written, then put back


def test_a_project_in_a_subdirectory_without_a_lock(devkit, tmp_path: Path) -> None:
    """A monorepo member: anchored lines carry its path; uv's new uv.lock is excluded too and
    goes with the adoption."""
    repo = tmp_path / "mono"
    sub = repo / "services" / "api"
    sub.mkdir(parents=True)
    (sub / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinyshared"]\n')
    (repo / "README").write_text("mono\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "mono", cwd=repo)
    status = git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=repo)
    code, out, err = devkit("adopt", "--private", sub)
    assert code == 0, (out, err)
    assert (sub / "uv.lock").is_file() and (sub / ".venv").is_dir()
    lines = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert {"/services/api/.mise.toml", "/services/api/.envrc.sh",
            "/services/api/uv.lock"} <= set(lines)
    assert "/services/api/.envrc.sh text eol=lf" in (repo / ".git" / "info" / "attributes").read_text()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == ""
    assert git("check-attr", "eol", "services/api/.envrc.sh", cwd=repo).strip().endswith(": lf")
    code, out, err = devkit("adopt", "--remove", sub)
    assert code == 0, (out, err)
    assert not (sub / "uv.lock").exists() and "deleted uv.lock" in out
    subprocess.run(["rm", "-rf", str(sub / ".venv")], check=True)
    assert git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=repo) == status


def test_services_add_compose_yaml_excluded_like_the_rest(devkit, client, tmp_path: Path,
                                                          store: Store) -> None:
    work = clone(client[0], tmp_path / "work")
    code, out, err = devkit("adopt", "--private", "--no-sync", "--data", "services=postgres",
                            work)
    assert code == 0, (out, err)
    assert (work / "compose.yaml").is_file() and "wrote compose.yaml" in out
    assert "/compose.yaml" in (work / ".git" / "info" / "exclude").read_text().splitlines()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=work) == ""
    record = json.loads(store.private_record(work).read_text())
    assert "compose.yaml" in record["files"] and record["answers"]["services"] == '["postgres"]'
    code, _, err = devkit("adopt", "--data", "services=redis", work)
    assert code == 2 and "--data goes with --private" in err
    assert devkit("adopt", "--remove", work)[0] == 0
    assert not (work / "compose.yaml").exists()
