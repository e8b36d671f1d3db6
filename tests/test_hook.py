"""contrib/sendemail-validate, run the way git send-email runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import FIXTURES, ROOT
from .gitutil import ENV, git, make_repo, repo_state

HOOK = ROOT / "contrib" / "sendemail-validate"
TREE = FIXTURES / "rules" / "xive-raw-vp-base" / "header-helper"
NATIVE = "arch/powerpc/kvm/book3s_xive_native.c"


def vpcheck_bin() -> str:
    """The console script of the interpreter running the tests."""
    return str(Path(sys.executable).parent / "vpcheck") if (
        Path(sys.executable).parent / "vpcheck").exists() else shutil.which("vpcheck")


def run_hook(repo: Path, msg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(HOOK), str(msg)], cwd=repo, capture_output=True, text=True,
                          env={**ENV, "VPCHECK": vpcheck_bin(), "GIT_SENDEMAIL_FILE_COUNTER": "1",
                               "GIT_SENDEMAIL_FILE_TOTAL": "1"})


def test_hook_blocks_a_raw_use_and_passes_a_clean_patch(tmp_path: Path) -> None:
    repo = make_repo(TREE, tmp_path / "repo")
    p = repo / NATIVE
    p.write_text(p.read_text().replace("return rc;", "return xive->vp_base + rc;"))
    git(repo, "commit", "-q", "-am", "raw use")
    bad = tmp_path / "0001-raw.patch"
    bad.write_text(git(repo, "format-patch", "-1", "--stdout"))
    p.write_text(p.read_text().replace("return xive->vp_base + rc;",
                                       "return kvmppc_xive_vp(xive, rc);"))
    git(repo, "commit", "-q", "-am", "convert")
    good = tmp_path / "0002-convert.patch"
    good.write_text(git(repo, "format-patch", "-1", "--stdout"))
    before = repo_state(repo)

    r = run_hook(repo, bad)
    assert r.returncode == 1 and r.stdout == ""
    assert f"FILE: {NATIVE}:11:" in r.stderr and "WARNING:XIVE_RAW_VP_BASE" in r.stderr
    r = run_hook(repo, good)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    cover = tmp_path / "0000-cover-letter.patch"
    cover.write_text("Subject: [PATCH 0/2] cover\n\nwords\n")
    assert run_hook(repo, cover).returncode == 0
    assert repo_state(repo) == before


# --- vpcheck hook install ---------------------------------------------------

VPCHECK = [sys.executable, "-m", "analyzer.cli"]


def install(repo: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VPCHECK, "hook", "install", *argv, "--repo", str(repo)],
                          capture_output=True, text=True, env=ENV)


def test_install_names_this_interpreter_and_never_overwrites(tmp_path: Path) -> None:
    repo = make_repo(TREE, tmp_path / "repo")
    r = install(repo, "sendemail-validate")
    hook = repo / ".git" / "hooks" / "sendemail-validate"
    assert (r.returncode, r.stdout) == (0, f"installed {hook}\n"), r.stderr
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n") and hook.stat().st_mode & 0o111
    assert f"exec {sys.executable} -m analyzer.cli hook run sendemail-validate" in text
    hook.write_text("#!/bin/sh\n# the user's own hook\n")
    r = install(repo, "sendemail-validate")
    assert r.returncode == 2 and r.stderr == (
        f"vpcheck: error: {hook} already exists; pass --force to replace it\n")
    assert hook.read_text() == "#!/bin/sh\n# the user's own hook\n"
    assert install(repo, "sendemail-validate", "--force").returncode == 0
    assert "analyzer.cli" in hook.read_text()


def test_install_follows_core_hooks_path(tmp_path: Path) -> None:
    repo = make_repo(TREE, tmp_path / "repo")
    git(repo, "config", "core.hooksPath", "githooks")
    assert install(repo, "pre-commit").returncode == 0
    assert (repo / "githooks" / "pre-commit").is_file()


def test_git_pre_commit_hook_blocks_new_findings_only(tmp_path: Path) -> None:
    repo = make_repo(TREE, tmp_path / "repo")  # already has one raw use: not new
    assert install(repo, "pre-commit").returncode == 0
    env = {**ENV, "PATH": "/usr/bin:/bin"}
    p = repo / NATIVE
    p.write_text(p.read_text().replace("int rc;", "int rc = 0;"))
    r = subprocess.run(["git", "commit", "-qam", "clean"], cwd=repo, env=env,
                       capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    head = git(repo, "rev-parse", "HEAD")
    p.write_text(p.read_text().replace("return rc;", "return xive->vp_base + rc;"))
    r = subprocess.run(["git", "commit", "-qam", "bad"], cwd=repo, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{NATIVE}:11: warning: raw 'xive->vp_base + rc'" in r.stdout + r.stderr
    assert git(repo, "rev-parse", "HEAD") == head
