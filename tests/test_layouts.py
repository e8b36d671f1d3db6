"""`vpcheck series` in every repository layout git has, leaving each byte and mtime alone."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .fsstate import leftovers, tree_state
from .gitutil import ENV, git, make_repo

TREE = FIXTURES / "rules" / "xive-raw-vp-base" / "header-helper"
NATIVE = "arch/powerpc/kvm/book3s_xive_native.c"
NEW = "arch/powerpc/kvm/book3s_xive_extra.c"


def _commit_raw_use(repo: Path) -> str:
    """Commit a patch adding a raw VP use and a new file; return it as a mail (HEAD = it)."""
    p = repo / NATIVE
    p.write_text(p.read_text().replace("return rc;", "return rc + xive->vp_base + 1;"))
    (repo / NEW).write_text("// SPDX-License-Identifier: GPL-2.0\n/* extra */\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "KVM: PPC: raw use")
    return git(repo, "format-patch", "-1", "--stdout", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(TREE, tmp_path / "origin")
    mail = tmp_path / "p.mbox"
    mail.write_text(_commit_raw_use(repo))
    return repo, mail


def run(cli, *argv: str, roots: tuple[Path, ...]) -> tuple[int, str, str]:
    """Run vpcheck; assert every root is unchanged (mtimes too) and no scratch dir is left.

    The run gets a temporary directory of its own, so that other processes using
    /tmp at the same time cannot make a leftover appear (or hide one)."""
    private = Path(tempfile.mkdtemp(prefix="layouts-"))
    before = tree_state(*roots)
    saved, tempfile.tempdir = tempfile.tempdir, str(private)
    try:
        result = cli(*argv)
    finally:
        tempfile.tempdir = saved
    assert tree_state(*roots) == before, "vpcheck changed the repository"
    assert leftovers(private, set()) == set(), "vpcheck left a scratch directory"
    private.rmdir()  # fails if anything at all was left behind
    return result


def found(out: str) -> list[tuple[str, int, int]]:
    return [(f["path"], f["line"], f["patch"]["index"]) for f in json.loads(out)["findings"]]


def test_plain_repository_committed_patch_with_new_file(cli, origin) -> None:
    """HEAD is the patch: its base is found in history; the new file applies; nothing freshened."""
    repo, mail = origin
    rc, out, err = run(cli, "series", str(mail), "--repo", str(repo), "--format", "json",
                       roots=(repo,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])
    assert json.loads(out)["target"].endswith("@" + git(repo, "rev-parse", "HEAD~1")[:12])


def test_linked_worktree(cli, origin, tmp_path: Path) -> None:
    repo, _ = origin
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(wt), "HEAD~1")
    mail = tmp_path / "wt.mbox"
    mail.write_text(_commit_raw_use(wt))
    rc, out, err = run(cli, "series", str(mail), "--repo", str(wt), "--format", "json",
                       roots=(repo, wt))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])


def test_subdirectory(cli, origin, monkeypatch) -> None:
    repo, mail = origin
    sub = repo / "arch" / "powerpc"
    rc, out, err = run(cli, "series", str(mail), "--repo", str(sub), "--format", "json",
                       roots=(repo,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])
    monkeypatch.chdir(sub / "kvm")
    rc, out, err = run(cli, "series", str(mail), "--format", "json", roots=(repo,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])


def test_bare_repository(cli, origin, tmp_path: Path) -> None:
    repo, mail = origin
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    rc, out, err = run(cli, "series", str(mail), "--repo", str(bare), "--format", "json",
                       roots=(bare,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])


def test_submodule_git_file(cli, origin, tmp_path: Path) -> None:
    repo, mail = origin
    sup = tmp_path / "super"
    sup.mkdir()
    git(sup, "init", "-q", "-b", "main")
    git(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(repo), "linux")
    assert (sup / "linux" / ".git").is_file()
    rc, out, err = run(cli, "series", str(mail), "--repo", str(sup / "linux"), "--format",
                       "json", roots=(sup,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])


def test_shallow_clone(cli, origin, tmp_path: Path) -> None:
    repo, mail = origin
    deep = tmp_path / "deep"
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{repo}", str(deep))
    rc, out, err = run(cli, "series", str(mail), "--repo", str(deep), "--format", "json",
                       roots=(deep,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])

    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    for argv in ((str(mail),), (str(mail), "--base", "HEAD~1"), ("HEAD~1..HEAD",)):
        rc, out, err = run(cli, "series", *argv, "--repo", str(shallow), roots=(shallow,))
        assert (rc, out) == (2, "") and err.count("\n") == 1, (argv, err)
        assert "shallow clone" in err and "Traceback" not in err, err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository away")
def test_safe_directory_refusal(cli, origin, monkeypatch) -> None:
    repo, mail = origin
    subprocess.run(["chown", "-R", "65534:65534", str(repo)], check=True)
    monkeypatch.delenv("SUDO_UID", raising=False)  # git trusts sudo's caller
    rc, out, err = run(cli, "series", str(mail), "--repo", str(repo), roots=(repo,))
    assert (rc, out) == (2, "") and err.count("\n") == 1
    assert "safe.directory" in err and "unknown revision" not in err, err


def test_patch_from_another_branch_falls_back_to_preimages(cli, tmp_path: Path) -> None:
    """No commit of HEAD's history holds the preimage: HEAD, with the file at that blob."""
    repo = make_repo(TREE, tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "side")
    p = repo / NATIVE
    p.write_text(p.read_text().replace("int rc;", "int rc = 0;"))
    git(repo, "commit", "-q", "-am", "side work")
    mail = tmp_path / "side.mbox"
    mail.write_text(_commit_raw_use(repo))
    git(repo, "checkout", "-q", "main")
    rc, out, err = run(cli, "series", str(mail), "--repo", str(repo), "--format", "json",
                       roots=(repo,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])
    assert json.loads(out)["target"].endswith("@HEAD+preimages")


def test_failure_leaves_nothing(cli, origin, tmp_path: Path) -> None:
    repo, _ = origin
    bad = tmp_path / "bad.patch"
    bad.write_text(f"diff --git a/{NATIVE} b/{NATIVE}\n--- a/{NATIVE}\n+++ b/{NATIVE}\n"
                   "@@ -3,2 +3,2 @@\n-no such line\n+another\n context\n")
    rc, out, err = run(cli, "series", str(bad), "--repo", str(repo), roots=(repo,))
    assert (rc, out) == (2, "") and "does not apply" in err


def test_env_from_a_hook_is_harmless(cli, origin, monkeypatch) -> None:
    """git runs hooks with GIT_DIR (send-email) or GIT_INDEX_FILE (commit) set."""
    repo, mail = origin
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(repo / ".git" / "index"))
    rc, out, err = run(cli, "series", str(mail), "--repo", str(repo), "--format", "json",
                       roots=(repo,))
    assert (rc, err, found(out)) == (1, "", [(NATIVE, 11, 1)])
    assert ENV  # the helpers' identity is what made the commits above


def test_committed_pure_rename_and_mode_change(cli, tmp_path: Path) -> None:
    """No index line names a preimage: the base is still the commit before the patch."""
    repo = make_repo(TREE, tmp_path / "repo")
    git(repo, "mv", NATIVE, NEW)
    (repo / "arch/powerpc/kvm/book3s_xive.h").chmod(0o755)
    git(repo, "commit", "-q", "-am", "rename and chmod")
    mail = tmp_path / "r.patch"
    mail.write_text(git(repo, "format-patch", "-M", "-1", "--stdout"))
    assert "rename from" in mail.read_text() and "\nindex " not in mail.read_text()
    rc, out, err = run(cli, "series", str(mail), "--repo", str(repo), "--format", "json",
                       roots=(repo,))
    doc = json.loads(out)
    assert (rc, err, doc["findings"], doc["fixed"]) == (0, "", [], [])
    assert doc["target"].endswith("@" + git(repo, "rev-parse", "HEAD~1")[:12])


def test_base_search_is_bounded(origin) -> None:
    """Beyond the bound the base is not searched for: HEAD with the preimage blobs."""
    from analyzer.sources.gitread import open_repo
    from analyzer.sources.patches import read_series
    from analyzer.sources.series import find_base

    repo, mail = origin
    for i in range(3):  # three commits on top of the patch that touch nothing it does
        (repo / f"notes{i}.txt").write_text(f"{i}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"notes {i}")
    patches = read_series([str(mail)])
    r = open_repo(str(repo))
    parent = git(repo, "rev-parse", "HEAD~4").strip()
    assert find_base(r, patches, bound=5).commit == parent
    far = find_base(r, patches, bound=4)
    assert far.label == "HEAD+preimages" and far.commit == git(repo, "rev-parse", "HEAD").strip()
    assert far.overrides[NEW] is None and far.overrides[NATIVE] is not None
