"""The approval rule, second round of hostile repositories (real mise, direnv, copier, git).

devkit approves a loader config only when every file inside the workspace that the loader would
execute or read is byte for byte what devkit rendered from its own template, and that set is
closed. Each test plants a payload that ``touch``es a witness file, runs devkit, then does what
the user does next (``cd`` in: ``mise env`` / ``direnv exec``), and checks the witness is absent.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from test_doctor import by_id, doctor_json

from devkit import mise, trust
from devkit.store import Store


@pytest.fixture(autouse=True)
def no_ci(monkeypatch) -> None:
    """CI=true makes mise trust every config: these tests need mise's real behaviour."""
    monkeypatch.delenv("CI", raising=False)
    for name in ("MISE_ENV", "MISE_OVERRIDE_CONFIG_FILENAMES", "MISE_PARANOID"):
        monkeypatch.delenv(name, raising=False)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def _commit_all(ws: Path, message: str = "commit") -> None:
    if not (ws / ".git").exists():
        _git("init", "-q", "-b", "main", cwd=ws)
    _git("add", "-A", "-f", cwd=ws)
    _git("commit", "-qm", message, cwd=ws)


def _project(root: Path) -> Path:
    """A plain uv project, as cloned from anywhere."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "cloned"\nversion = "1"\n'
                                         'requires-python = ">=3.11"\ndependencies = []\n')
    return root


def _payload(witness: Path) -> str:
    return f"touch {witness}\nexport DEVKIT_PROJECT=pwned\n"


def _cd_mise(ws: Path, **extra: str) -> None:
    """What the user's shell does on ``cd ws`` with mise hooked: compute the environment."""
    require_tool("mise")
    subprocess.run(["mise", "env", "--json"], cwd=ws, capture_output=True, timeout=60,
                   check=False, env={**os.environ, "MISE_OFFLINE": "1", **extra})


def _cd_direnv(ws: Path) -> None:
    """What the user's shell does on ``cd ws`` with direnv hooked."""
    require_tool("direnv")
    subprocess.run(["direnv", "exec", str(ws), "true"], cwd=ws, capture_output=True, timeout=60,
                   check=False)


# -- case 1: adopt never trusts what the project brought ------------------------------------------
def test_adopt_never_trusts_the_projects_envrc_sh(devkit, tmp_path: Path, store: Store) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    proj = _project(tmp_path / "cloned")
    (proj / ".envrc.sh").write_text(_payload(witness))
    _commit_all(proj)
    code, out, err = devkit("adopt", proj, "--no-sync")
    _cd_mise(proj)
    devkit("doctor", proj)
    assert not witness.exists(), "the project's own .envrc.sh ran"
    assert code == 0, err
    assert "kept your .envrc.sh" in out and "  wrote .mise.toml" in out
    assert f"not trusted: .envrc.sh in {proj} is not what devkit rendered" in out
    assert not mise.is_trusted(proj / ".mise.toml", os.environ)
    records = store.rendered_file.read_text()
    assert str(proj / ".envrc.sh") not in records and str(proj / ".mise.toml") in records


@pytest.mark.parametrize("loader", ["mise", "direnv"])
def test_adopt_never_trusts_a_committed_envrc_local_sh(devkit, tmp_path: Path, loader) -> None:
    witness = tmp_path / "pwned"
    proj = _project(tmp_path / "cloned")
    (proj / ".envrc.local.sh").write_text(_payload(witness))
    _commit_all(proj)
    code, out, err = devkit("adopt", proj, "--no-sync", "--loader", loader)
    if loader == "mise":
        _cd_mise(proj)
    else:
        _cd_direnv(proj)
    assert not witness.exists(), "a committed .envrc.local.sh ran"
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "per-user" in ln)
    assert line.startswith("not trusted:") and "per-user file" in line
    assert "rm --cached .envrc.local.sh" in line
    if loader == "mise":  # the fix the line gives: reviewed, out of git, kept as the user's own
        (proj / ".envrc.local.sh").write_text("export MY_SETTING=1\n")
        _git("rm", "-q", "--cached", ".envrc.local.sh", cwd=proj)
        _git("commit", "-qm", "per-user file out of git", cwd=proj)
        assert trust.trust_if_rendered(proj, Store()) == [f"ran `mise trust {proj}`"]


# -- case 2: everything mise would read, not only .mise.toml --------------------------------------
@pytest.mark.parametrize("how", ["miserc", "env-override", "mise-dir-conf.d"])
def test_redirected_or_extra_mise_configs_are_never_trusted(devkit, tmp_path: Path, monkeypatch,
                                                            how) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    proj = _project(tmp_path / "cloned")
    (proj / "evil.sh").write_text(_payload(witness))
    evil = '[env]\n_.source = "./evil.sh"\n'
    if how == "miserc":
        (proj / ".miserc.toml").write_text('override_config_filenames = ["evil.toml"]\n')
        (proj / "evil.toml").write_text(evil)
    elif how == "env-override":  # the user's own setting names a file the clone supplies
        monkeypatch.setenv("MISE_OVERRIDE_CONFIG_FILENAMES", "evil.toml")
        (proj / "evil.toml").write_text(evil)
    else:
        (proj / ".mise" / "conf.d").mkdir(parents=True)
        (proj / ".mise" / "conf.d" / "evil.toml").write_text(evil)
    _commit_all(proj)
    code, out, err = devkit("adopt", proj, "--no-sync")
    _cd_mise(proj)
    assert not witness.exists(), "a config mise reads besides .mise.toml ran"
    assert code == 0, err
    assert "not trusted: mise would also trust" in out
    assert "evil.toml" in out and f"mise trust {proj}" in out


def test_a_users_miserc_outside_names_files_devkit_then_checks(devkit, tmp_path: Path,
                                                               make_workspace) -> None:
    """A ``.miserc.toml`` above the workspace (the user's) makes mise read other file names: a
    pulled file of such a name joins what the trusted directory loads; doctor flags it and does
    not evaluate it."""
    require_tool("mise")
    witness = tmp_path / "pwned"
    parent = tmp_path / "ws"  # where make_workspace creates them
    parent.mkdir()
    (parent / ".miserc.toml").write_text(
        'override_config_filenames = ["team.toml", ".mise.toml"]\n')
    ws = make_workspace("team")  # synced: doctor evaluates a trusted config it can vouch for
    (ws / "x.sh").write_text(_payload(witness))
    (ws / "team.toml").write_text('[env]\n_.source = "./x.sh"\n')
    _git("add", "-A", cwd=ws)
    _git("commit", "-qm", "pulled", cwd=ws)
    _, doc = doctor_json(devkit, ws)
    assert not witness.exists(), "doctor evaluated a file the user's .miserc.toml names"
    drift = by_id(doc)["workspace.approved-unchanged"]
    assert drift["status"] == "warn" and "team.toml" in drift["message"]


# -- case 3: update trusts only devkit's own render -------------------------------------------------
def _foreign_template(root: Path, witness: Path) -> Path:
    """A template from elsewhere: v1 is harmless, v2 changes .mise.toml and runs the payload."""
    (root / "tpl").mkdir(parents=True)
    (root / "copier.yml").write_text("_subdirectory: tpl\nname:\n  type: str\n  default: team\n")
    (root / "tpl" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers|to_nice_yaml -}}\n")
    (root / "tpl" / "pyproject.toml.jinja").write_text('[project]\nname = "{{ name }}"\n'
                                                      'version = "1"\n')
    (root / "tpl" / ".mise.toml").write_text('[env]\n_.source = "./.envrc.sh"\n')
    (root / "tpl" / ".envrc.sh").write_text("export DEVKIT_PROJECT=team\n")
    _commit_all(root, "v1")
    _git("tag", "v1.0.0", cwd=root)
    (root / "tpl" / ".mise.toml").write_text('# v2\n[env]\n_.source = "./.envrc.sh"\n')
    (root / "tpl" / ".envrc.sh").write_text(_payload(witness))
    _commit_all(root, "v2")
    _git("tag", "v2.0.0", cwd=root)
    return root


def test_update_never_trusts_what_a_foreign_template_renders(devkit, tmp_path: Path) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    tpl = _foreign_template(tmp_path / "attacker-template", witness)
    ws = tmp_path / "ws"
    from devkit import template

    template.render(str(tpl), ws, data={"name": "team"}, user_defaults={}, defaults=True,
                    vcs_ref="v1.0.0")
    _commit_all(ws, "from the template")
    _, out, err = devkit("update", ws)
    _cd_mise(ws)
    assert not witness.exists(), "a foreign template's update ran"
    assert "updated" in out, (out, err)
    assert f"from {tpl}, not devkit's own template" in out
    assert f"mise trust {ws}" in out
    assert not mise.is_trusted(ws / ".mise.toml", os.environ)


def test_update_with_devkits_template_compares_envrc_sh_too(devkit, tmp_path: Path, bundled,
                                                            store: Store) -> None:
    """devkit's own template: a hostile .envrc.sh committed in the workspace (not changed by the
    template) is neither recorded nor trusted when the template moves up."""
    require_tool("mise")
    witness = tmp_path / "pwned"
    ws = tmp_path / "ws"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    (ws / ".envrc.sh").write_text(_payload(witness))
    _git("commit", "-qam", "a contributor's change", cwd=ws)
    config = next((bundled / "templates" / "workspace").glob("*.mise.toml*"))
    config.write_text(config.read_text() + '\n[tasks.hello]\nrun = "echo hello"\n')
    code, out, err = devkit("update", ws)
    _cd_mise(ws)
    assert not witness.exists(), "a hostile .envrc.sh was trusted by update"
    assert code == 0, (out, err)
    assert f"not trusted: .envrc.sh in {ws} is not what devkit rendered" in out
    assert not trust.is_rendered(ws, ".envrc.sh", store)
    assert trust.is_rendered(ws, ".mise.toml", store)


# -- case 7: the store's permissions, through symlinks -------------------------------------------
def _forged_store(tmp_path: Path, ws: Path, monkeypatch, *, link: str) -> Path:
    """Forge the store's record with the hashes of ``ws``'s (hostile) files, as another user who
    can write it would, and put the store (or its record) behind a symlink, in a folder everyone
    may write. Returns the folder."""
    real = Store()
    trust.record_rendered(ws, real)  # the forged record
    shared = tmp_path / "shared-folder"
    shared.mkdir()
    if link == "home":
        real.home.rename(shared / "devkit")
        os.chmod(shared / "devkit", 0o777)
        (tmp_path / "devkit-link").symlink_to(shared / "devkit")
        monkeypatch.setenv("DEVKIT_HOME", str(tmp_path / "devkit-link"))
    else:
        real.rendered_file.rename(shared / "rendered.json")
        real.rendered_file.symlink_to(shared / "rendered.json")
        os.chmod(shared / "rendered.json", 0o666)
    os.chmod(shared, 0o777)
    return shared


@pytest.mark.parametrize("link", ["home", "rendered"])
def test_a_store_others_can_write_is_seen_through_symlinks(devkit, tmp_path: Path, monkeypatch,
                                                           link) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    ws = tmp_path / "ws"
    code, _, err = devkit("new", ws, "--defaults", "--no-sync")
    assert code == 0, err
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    (ws / ".envrc.sh").write_text(_payload(witness))  # the hostile clone's content
    _forged_store(tmp_path, ws, monkeypatch, link=link)
    _, before = doctor_json(devkit, ws)
    _, doc = doctor_json(devkit, ws, "--fix")
    _cd_mise(ws)
    assert not witness.exists(), "a forged record got a config trusted"
    assert by_id(before)["store.permissions"]["status"] == "fail", before["checks"]
    assert not mise.is_trusted(ws / ".mise.toml", os.environ), doc["fixes_applied"]
    assert any("not fixed" in ln and "proves nothing" in ln for ln in doc["fixes_applied"])


# -- case 10: doctor sees an approved config that changed -----------------------------------------
def test_doctor_flags_a_pulled_change_to_an_approved_config(devkit, tmp_path: Path,
                                                           make_workspace) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    ws = make_workspace("ws")  # synced: doctor evaluates a trusted config it can vouch for
    assert mise.is_trusted(ws / ".mise.toml", os.environ)
    _, first = doctor_json(devkit, ws)
    # a `git pull` brings a changed .envrc.sh: mise's trust is by path, it stays trusted
    (ws / ".envrc.sh").write_text((ws / ".envrc.sh").read_text() + f"touch {witness}\n")
    _git("commit", "-qam", "pulled", cwd=ws)
    _, doc = doctor_json(devkit, ws)
    assert not witness.exists(), "doctor evaluated a config that changed since it was approved"
    assert by_id(first)["workspace.approved-unchanged"]["status"] == "ok"
    checks = by_id(doc)
    drift = checks["workspace.approved-unchanged"]
    assert drift["status"] == "warn", drift
    assert ".envrc.sh changed since devkit approved it" in drift["message"]
    assert "paranoid = true" in drift["fix"] and "https://mise.jdx.dev/paranoid.html" in drift["fix"]
    assert f"mise trust --untrust {ws} && mise trust {ws}" in drift["fix"]
    assert checks["workspace.mise-env"]["status"] == "skip"
    # reviewed and approved again by the user: no longer reported
    subprocess.run(["mise", "trust", "--untrust", str(ws)], check=True, capture_output=True)
    subprocess.run(["mise", "trust", str(ws)], check=True, capture_output=True)
    _, doc = doctor_json(devkit, ws)
    assert by_id(doc)["workspace.approved-unchanged"]["status"] != "warn"


def test_doctor_flags_a_config_file_that_joined_an_approved_workspace(devkit, tmp_path: Path,
                                                                      make_workspace) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    ws = make_workspace("ws")
    (ws / "x.sh").write_text(_payload(witness))
    (ws / "mise.toml").write_text('[env]\n_.source = "./x.sh"\n')  # shares the directory's trust
    _git("add", "-A", cwd=ws)
    _git("commit", "-qm", "pulled", cwd=ws)
    _, doc = doctor_json(devkit, ws)
    assert not witness.exists()
    drift = by_id(doc)["workspace.approved-unchanged"]
    assert drift["status"] == "warn" and "mise.toml" in drift["message"]


def test_doctor_flags_a_committed_envrc_local_sh_only_while_it_is_there(devkit, tmp_path: Path,
                                                                       make_workspace) -> None:
    require_tool("mise")
    witness = tmp_path / "pwned"
    ws = make_workspace("ws")
    local = ws / ".envrc.local.sh"
    local.write_text(_payload(witness))
    _git("add", "-f", ".envrc.local.sh", cwd=ws)
    _git("commit", "-qm", "pulled", cwd=ws)
    _, doc = doctor_json(devkit, ws)
    assert not witness.exists()
    drift = by_id(doc)["workspace.approved-unchanged"]
    assert drift["status"] == "warn" and ".envrc.local.sh (committed)" in drift["message"], drift
    # still in git but gone from the work tree: `.envrc.sh` sources nothing, nothing to report
    local.unlink()
    _, doc = doctor_json(devkit, ws)
    assert by_id(doc)["workspace.approved-unchanged"]["status"] == "ok"


# -- adopt: project files get the user's mode -----------------------------------------------------
def test_adopt_creates_gitignore_and_gitattributes_with_the_umask_mode(devkit,
                                                                       tmp_path: Path) -> None:
    proj = _project(tmp_path / "plain")
    old = os.umask(0o022)
    try:
        code, _, err = devkit("adopt", proj, "--no-sync")
    finally:
        os.umask(old)
    assert code == 0, err
    for name in (".gitignore", ".gitattributes"):
        assert stat.S_IMODE((proj / name).stat().st_mode) == 0o644, name
