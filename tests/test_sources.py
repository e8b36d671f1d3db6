"""One tree through the four sources gives the same findings; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .gitutil import git, make_repo, repo_state

TREE = FIXTURES / "rules" / "xive-raw-vp-base" / "header-helper"


def findings(out: str) -> list[tuple]:
    doc = json.loads(out)
    return [(f["rule"], f["path"], f["line"], f["function"], f["fingerprint"])
            for f in doc["findings"]]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(TREE, tmp_path / "repo")
    # uncommitted noise in the work tree must not leak into --rev results
    (r / "arch/powerpc/kvm/book3s_xive_native.c").write_text("/* dirty */\n")
    git(r, "stash", "-q")
    (r / "arch/powerpc/kvm/untracked.c").write_text("int x;\n")
    return r


def test_directory(cli) -> None:
    rc, out, err = cli("check", str(TREE), "--format", "json")
    assert rc == 1 and err == ""
    assert [f[:3] for f in findings(out)] == [
        ("xive-raw-vp-base", "arch/powerpc/kvm/book3s_xive_native.c", 12)]


def test_all_sources_agree(cli, repo: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    want = findings(cli("check", str(TREE), "--format", "json")[1])
    before = repo_state(repo)

    rc, out, _ = cli("check", str(repo), "--rev", "HEAD", "--format", "json")
    assert rc == 1 and findings(out) == want

    for suffix, mode in ((".tar.xz", "w:xz"), (".tar.gz", "w:gz")):
        tarball = tmp_path / f"linux-x{suffix}"
        with tarfile.open(tarball, mode) as tar:
            tar.add(TREE, arcname="linux-x")
        rc, out, _ = cli("check", str(tarball), "--format", "json")
        assert rc == 1 and findings(out) == want, suffix

    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    rc, out, err = cli("check", "--remote", str(bare), "--ref", "main", "--format", "json")
    assert (rc, err) == (1, "") and findings(out) == want
    # a second run reuses the cache
    rc, out, _ = cli("check", "--remote", str(bare), "--ref", "main", "--format", "json")
    assert rc == 1 and findings(out) == want

    assert repo_state(repo) == before


def test_rev_reads_objects_not_worktree(cli, repo: Path) -> None:
    (repo / "arch/powerpc/kvm/book3s_xive_native.c").write_text("int clean;\n")
    rc, out, _ = cli("check", str(repo), "--rev", "HEAD", "--format", "json")
    assert rc == 1 and len(findings(out)) == 1
    rc, out, _ = cli("check", str(repo), "--format", "json")
    assert rc == 0 and findings(out) == []


def _bad(cli, *argv: str) -> str:
    rc, out, err = cli(*argv)
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("vpcheck: error: "), err
    assert "Traceback" not in err
    return err


def test_missing_path(cli, tmp_path: Path) -> None:
    assert "no such file" in _bad(cli, "check", str(tmp_path / "nope"))


def test_not_a_tarball(cli, tmp_path: Path) -> None:
    f = tmp_path / "linux.tar.xz"
    f.write_bytes(b"this is not xz data\n" * 10)
    assert "not a readable tarball" in _bad(cli, "check", str(f))
    g = tmp_path / "notes.txt"
    g.write_text("hello\n")
    assert str(g) in _bad(cli, "check", str(g))


def test_unknown_revision(cli, repo: Path) -> None:
    assert "unknown revision" in _bad(cli, "check", str(repo), "--rev", "no-such-branch")
    assert "not a revision" in _bad(cli, "check", str(repo), "--rev=--output=/tmp/x")


def test_rev_outside_git(cli, tmp_path: Path) -> None:
    assert "not a git repository" in _bad(cli, "check", str(tmp_path), "--rev", "HEAD")


def test_not_a_kernel_tree(cli, tmp_path: Path) -> None:
    (tmp_path / "arch/x86/kvm").mkdir(parents=True)
    (tmp_path / "arch/x86/kvm/x86.c").write_text("int x;\n")
    assert "not a kernel tree" in _bad(cli, "check", str(tmp_path))


def test_non_utf8_source(cli, tmp_path: Path) -> None:
    kvm = tmp_path / "arch/powerpc/kvm"
    kvm.mkdir(parents=True)
    (kvm / "book3s_xive.c").write_bytes(b"int a;\n/* caf\xe9 */\nint b;\n")
    err = _bad(cli, "check", str(tmp_path))
    assert "book3s_xive.c:2: not UTF-8" in err


@pytest.mark.parametrize("url", [
    "ext::sh -c touch% /tmp/pwned", "fd::17", "--upload-pack=touch /tmp/pwned",
    "-uevil", "http://example.invalid/linux.git", "ftp://example.invalid/x",
    "transport::https://example.invalid/x", "/no/such/dir/repo.git",
])
def test_unsafe_remote(cli, url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _bad(cli, "check", "--remote", url, "--ref", "main")
    assert not Path("/tmp/pwned").exists()


def test_unsafe_ref(cli, repo: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert "unsafe ref" in _bad(cli, "check", "--remote", str(repo), "--ref=--upload-pack=x")


def test_usage_error_is_one_line(cli) -> None:
    _bad(cli, "check", "--format", "yaml")
    _bad(cli, "frobnicate")


def test_console_script_no_traceback(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "analyzer.cli", "check", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
