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
