"""Hostile input and faults (issue 11): exact status and message, nothing touched, nothing left.

Every test runs with TMPDIR pointed at a fresh directory that must be empty
afterwards, and the runs that read a repository prove every file under it
(``.git`` included, with modification times) is unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

import pytest

from analyzer.sources import tree as source

from .conftest import FIXTURES, ROOT
from .gitutil import ENV, git, make_repo

TREE = FIXTURES / "rules" / "xive-raw-vp-base" / "header-helper"
EXAMPLE = FIXTURES / "trees" / "rfc-applied"
XIVE = "arch/powerpc/kvm/book3s_xive.c"
NATIVE = "arch/powerpc/kvm/book3s_xive_native.c"
TWO_PATCHES = FIXTURES / "series" / "rfc-plus-fix.mbox"
INTERNAL = "(please report; --debug shows the traceback)"


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch) -> Path:
    """TMPDIR is a fresh directory; whatever a run leaves there fails the test."""
    tmp = tmp_path / "TMPDIR"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield tmp
    assert sorted(p.name for p in tmp.iterdir()) == []


def git_state(repo: Path) -> dict:
    """Every file under the work tree and .git: bytes, mode, size and mtime; HEAD, refs, stash.

    Read-only itself: git runs with GIT_OPTIONAL_LOCKS=0, so `status` does not
    refresh the index (which would change .git's mtime).
    """
    state: dict = {}
    for p in sorted(repo.rglob("*")):
        st = p.lstat()
        data = os.readlink(p).encode() if p.is_symlink() else p.read_bytes() if p.is_file() else b""
        state[str(p.relative_to(repo))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                           hashlib.sha1(data).hexdigest())
    env = {**ENV, "GIT_OPTIONAL_LOCKS": "0"}
    for args in (["rev-parse", "HEAD"], ["for-each-ref"], ["stash", "list"],
                 ["status", "--porcelain=v1", "--untracked-files=all"]):
        state[" ".join(args)] = subprocess.run(["git", "-C", str(repo), *args], env=env,
                                               capture_output=True, text=True).stdout
    return state


def one_line(err: str, prefix: str = "vpcheck: error: ") -> str:
    assert err.count("\n") == 1 and err.startswith(prefix) and "Traceback" not in err, err
    return err[len(prefix):].rstrip("\n")


def bad(cli, *argv: str) -> str:
    rc, out, err = cli(*argv)
    assert (rc, out) == (2, ""), (rc, out, err)
    return one_line(err)


def vpcheck(*argv: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *argv], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=120, **kw)


# --- the boundary ---------------------------------------------------------


def test_usage_error_is_not_doubled(cli) -> None:
    assert bad(cli, "check", str(TREE), "--bogus") == \
        "unrecognized arguments: --bogus (see 'vpcheck --help')"
    assert bad(cli, "check", "--format", "yaml") == \
        "check: argument --format: invalid choice: 'yaml' (choose from 'text', 'json', " \
        "'gcc', 'checkpatch', 'sarif', 'github') (see 'vpcheck check --help')"


def test_internal_error_is_exit_3_without_traceback(cli, monkeypatch) -> None:
    def boom(*a, **k):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("analyzer.checks.run", boom)
    rc, out, err = cli("check", str(TREE))
    assert (rc, out) == (3, "")
    assert one_line(err, "vpcheck: internal error: ") == \
        f"RecursionError: maximum recursion depth exceeded {INTERNAL}"
    for argv in (("--debug", "check", str(TREE)), ("check", "--debug", str(TREE))):
        rc, _, err = cli(*argv)
        assert rc == 3 and err.startswith("Traceback (most recent call last):"), argv
        assert err.endswith("vpcheck: internal error: RecursionError: maximum recursion depth "
                            "exceeded (please report)\n")


def test_a_bug_never_exits_with_the_findings_status(cli, monkeypatch) -> None:
    """The faults other modules raised today (_TempGit's RuntimeError, GitPython's
    ValueError, an evaluator AttributeError) all end as exit 3 at the boundary."""
    for exc in (RuntimeError("git apply failed: x"), ValueError("SHA b'12' could not be "
                "resolved"), AttributeError("'NoneType' object has no attribute 'x'")):
        def boom(*a, exc=exc, **k):
            raise exc
        monkeypatch.setattr("analyzer.c.facts.extract", boom)
        rc, _, err = cli("check", str(TREE))
        assert rc == 3 and one_line(err, "vpcheck: internal error: ").startswith(
            type(exc).__name__ + ": "), err


def test_keyboard_interrupt_is_130(cli, monkeypatch) -> None:
    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("analyzer.checks.run", stop)
    assert cli("check", str(TREE)) == (130, "", "")


def test_broken_pipe_keeps_the_findings_status() -> None:
    """`vpcheck check T | head` with findings: exit 1, nothing on stderr."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before vpcheck writes anything
    try:
        p = subprocess.run([sys.executable, "-m", "analyzer.cli", "check", str(TREE)],
                           cwd=ROOT, stdout=w, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (1, b"")
    clean = subprocess.run(f"{sys.executable} -m analyzer.cli check {FIXTURES}/trees/pre-rfc "
                           "| head -c 0", shell=True, cwd=ROOT, capture_output=True)
    assert clean.stderr == b""


# --- limits ---------------------------------------------------------------


def test_model_configuration_space_is_bounded(cli) -> None:
    assert bad(cli, "model", "--nr-cpus", "100000000") == (
        "model: --nr-cpus 100000000 is outside what the kernel's configuration allows "
        "(2..8192, profiles/powerpc-kvm-hv.toml)")
    assert bad(cli, "model", "--nr-cpus", "16", "--stride", "8", "--vcpus", "99999") == (
        "model: --vcpus 99999 exceeds stride * NR_CPUS")
    assert bad(cli, "model", "--nr-cpus", "4096", "--stride", "8", "--vcpus", "20000") == (
        "model: --vcpus 20000: the number of vCPU IDs or slots in one 'vpcheck model' table "
        "exceeds the limit (20,000 > 16,384 IDs; set VPCHECK_MAX_MODEL_IDS to raise it)")


def test_limit_override_and_bad_value(cli, monkeypatch) -> None:
    monkeypatch.setenv("VPCHECK_MAX_MODEL_IDS", "8")
    assert "(16 > 8 IDs;" in bad(cli, "model", "--nr-cpus", "16")
    monkeypatch.setenv("VPCHECK_MAX_MODEL_IDS", "1M")
    assert cli("model", "--nr-cpus", "16", "--stride", "8", "--threads", "2", "--vcpus",
               "8")[0] == 0
    monkeypatch.setenv("VPCHECK_MAX_MODEL_IDS", "lots")
    assert bad(cli, "model") == \
        "VPCHECK_MAX_MODEL_IDS='lots': not a positive integer (default 16384)"


def test_big_source_file_is_refused_before_parsing(cli, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "arch/powerpc/kvm").mkdir(parents=True)
    body = b"int f(struct kvmppc_xive *xive, u32 i) { return xive->vp_base + i; }\n"
    (tree / XIVE).write_bytes(body * (5 * 2**20 // len(body) + 1))
    size = (tree / XIVE).stat().st_size
    assert bad(cli, "check", str(tree)) == (
        f"{tree}/{XIVE}: the size of one source file exceeds the limit "
        f"({size:,} > 4,194,304 bytes; set VPCHECK_MAX_FILE_BYTES to raise it)")


def test_big_blob_is_refused_from_git(cli, tmp_path: Path, monkeypatch) -> None:
    repo = make_repo(TREE, tmp_path / "repo")
    before = git_state(repo)
    monkeypatch.setenv("VPCHECK_MAX_FILE_BYTES", "100")
    msg = bad(cli, "check", str(repo), "--rev", "HEAD")
    assert re.fullmatch(r"arch/powerpc/kvm/book3s_xive\.h \([0-9a-f]{12}\): the size of one "
                        r"source file exceeds the limit \([\d,]+ > 100 bytes; set "
                        r"VPCHECK_MAX_FILE_BYTES to raise it\)", msg), msg
    assert git_state(repo) == before


def test_patches_per_series_are_bounded(cli, tmp_path: Path, monkeypatch) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    before = git_state(repo)
    monkeypatch.setenv("VPCHECK_MAX_PATCHES", "1")
    assert bad(cli, "series", str(TWO_PATCHES), "--repo", str(repo)) == (
        f"{TWO_PATCHES}: the number of patches in one series exceeds the limit (2 > 1 patches; "
        "set VPCHECK_MAX_PATCHES to raise it)")
    assert git_state(repo) == before


# --- tarballs -------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes | str]], mode: str = "w:xz") -> Path:
    """Members: (name, bytes) regular files, or (name, "->target") symlinks."""
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _tree_members(top: str = "linux-x") -> list[tuple[str, bytes]]:
    return [(f"{top}/{p.relative_to(TREE)}", p.read_bytes())
            for p in sorted(TREE.rglob("*")) if p.is_file()]


def test_member_climbing_out_is_refused(cli, tmp_path: Path) -> None:
    """Today `lstrip("./")` let this member replace the real book3s_xive_native.c."""
    tb = _tar(tmp_path / "linux.tar.xz", [*_tree_members(), (f"../{NATIVE}", b"int x;\n")])
    assert bad(cli, "check", str(tb)) == \
        f"{tb}: member '../{NATIVE}' escapes the archive: refused"
    tb = _tar(tmp_path / "b.tar.gz", [*_tree_members(), (f"linux-x/../../{NATIVE}", b"")],
              "w:gz")
    assert bad(cli, "check", str(tb)) == \
        f"{tb}: member 'linux-x/../../{NATIVE}' escapes the archive: refused"


def test_absolute_member_is_refused(cli, tmp_path: Path) -> None:
    tb = _tar(tmp_path / "linux.tar", [*_tree_members(), (f"/abs/{NATIVE}", b"int x;\n")], "w")
    assert bad(cli, "check", str(tb)) == \
        f"{tb}: member '/abs/{NATIVE}' has an absolute path: refused"


def test_member_given_twice_is_refused(cli, tmp_path: Path) -> None:
    tb = _tar(tmp_path / "linux.tar.xz", [*_tree_members(), (f"./linux-x/{NATIVE}", b"")])
    assert bad(cli, "check", str(tb)) == f"{tb}: {NATIVE} appears twice in the archive: refused"


def test_links_in_a_tarball_are_never_resolved(tmp_path: Path) -> None:
    tb = _tar(tmp_path / "linux.tar.xz", [*_tree_members(),
                                          ("linux-x/arch/powerpc/kvm/evil.c", "->/etc/passwd")])
    snap = source.from_tarball(tb)
    assert sorted(snap.files) == sorted(m[0].partition("/")[2] for m in _tree_members())


def _gz_bomb(path: Path, name: str, claimed: int, zeros: int) -> Path:
    """A gzip tarball whose one member claims ``claimed`` bytes and holds ``zeros`` of them."""
    info = tarfile.TarInfo(name)
    info.size = claimed
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(comp.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        chunk = bytes(1 << 20)
        for _ in range(zeros >> 20):
            fh.write(comp.compress(chunk))
        fh.write(comp.flush())
    return path


def test_decompression_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """Today a 229 KB .tar.xz holding a 1.5 GB member took 16 s and 3.1 GB."""
    bomb = _gz_bomb(tmp_path / "linux.tar.gz", "linux-x/Documentation/big", 1536 << 20, 96 << 20)
    assert bomb.stat().st_size < 200_000
    probe = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', "
             "'analyzer.cli', 'check', sys.argv[1]], capture_output=True, text=True); "
             "print(r.returncode); print(r.stderr, end=''); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, str(bomb)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120).stdout.splitlines()
    rc, err, rss_kb = int(out[0]), out[1], int(out[2])
    assert rc == 2
    assert re.fullmatch(rf"vpcheck: error: {re.escape(str(bomb))}: the expansion \(uncompressed/"
                        r"compressed\) of a tarball past 64 MiB exceeds the limit \([\d,]+ > 100 "
                        r"times; set VPCHECK_MAX_TAR_RATIO to raise it\)", err), err
    assert rss_kb < 300 * 1024, rss_kb


def test_huge_wanted_member_is_refused_from_its_header(cli, tmp_path: Path) -> None:
    bomb = _gz_bomb(tmp_path / "linux.tar.gz", f"linux-x/{XIVE}", 1536 << 20, 1 << 20)
    assert bad(cli, "check", str(bomb)) == (
        f"{bomb}: linux-x/{XIVE}: the size of one source file exceeds the limit "
        "(1,610,612,736 > 4,194,304 bytes; set VPCHECK_MAX_FILE_BYTES to raise it)")


def test_tarball_member_count_and_bytes_are_bounded(cli, tmp_path: Path, monkeypatch) -> None:
    tb = _tar(tmp_path / "linux.tar.gz", _tree_members(), "w:gz")
    monkeypatch.setenv("VPCHECK_MAX_TAR_MEMBERS", "1")
    assert bad(cli, "check", str(tb)) == (
        f"{tb}: the number of members in one tarball exceeds the limit (2 > 1 members; "
        "set VPCHECK_MAX_TAR_MEMBERS to raise it)")
    monkeypatch.delenv("VPCHECK_MAX_TAR_MEMBERS")
    monkeypatch.setenv("VPCHECK_MAX_TAR_BYTES", "1000")
    assert re.fullmatch(rf"{re.escape(str(tb))}: the uncompressed size of one tarball "
                        r"exceeds the limit \([\d,]+ > 1,000 bytes; set "
                        r"VPCHECK_MAX_TAR_BYTES to raise it\)", bad(cli, "check", str(tb)))


def test_zstd_and_garbage(cli, tmp_path: Path) -> None:
    z = tmp_path / "linux.tar.zst"
    z.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(64))
    assert bad(cli, "check", str(z)) == \
        f"{z}: zstd-compressed tarballs are not supported (decompress it with unzstd first)"
    g = tmp_path / "linux.tar.gz"
    g.write_bytes(gzip.compress(b"not a tar" * 100)[:-9])
    assert bad(cli, "check", str(g)).startswith(f"{g}: not a readable tarball (")


# --- directory trees ------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "tree"
    for p in TREE.rglob("*"):
        if p.is_file():
            (t / p.relative_to(TREE)).parent.mkdir(parents=True, exist_ok=True)
            (t / p.relative_to(TREE)).write_bytes(p.read_bytes())
    return t


@pytest.mark.parametrize("target", ["/etc/passwd", "/proc/self/environ"])
def test_symlink_out_of_the_tree_is_not_read(cli, tree: Path, target: str) -> None:
    (tree / XIVE).symlink_to(target)
    real = os.path.realpath(tree / XIVE)
    assert bad(cli, "check", str(tree)) == \
        f"{tree}/{XIVE}: symbolic link leads out of the tree (to {real})"


def test_directory_symlink_out_of_the_tree_is_not_read(cli, tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (tree / "arch/powerpc/kvm").rename(outside)
    (tree / "arch/powerpc/kvm").symlink_to(outside)
    msg = bad(cli, "check", str(tree))
    assert msg == f"{tree}/arch/powerpc/kvm/book3s_xive.h: symbolic link leads out of the tree " \
                  f"(to {outside}/book3s_xive.h)"


def test_symlink_inside_the_tree_is_followed(cli, tree: Path) -> None:
    want = cli("check", str(tree), "--format", "json")
    (tree / "elsewhere").mkdir()
    (tree / NATIVE).rename(tree / "elsewhere/native.c")
    (tree / NATIVE).symlink_to("../../../elsewhere/native.c")
    got = cli("check", str(tree), "--format", "json")
    assert got[0] == want[0] == 1
    assert json.loads(got[1])["findings"] == json.loads(want[1])["findings"]


def test_fifo_is_refused_without_hanging(cli, tree: Path) -> None:
    os.mkfifo(tree / "arch/powerpc/kvm/book3s_hv.c")
    assert bad(cli, "check", str(tree)) == \
        f"{tree}/arch/powerpc/kvm/book3s_hv.c: not a regular file"


def test_only_the_relevant_directories_are_listed(cli, tree: Path, monkeypatch) -> None:
    for i in range(50):
        (tree / "drivers" / f"d{i}").mkdir(parents=True)
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p=".": listed.append(str(p)) or real(p))
    monkeypatch.setattr(os, "walk", None)  # a walk would fail loudly
    monkeypatch.setattr(os, "scandir", None)
    assert cli("check", str(tree))[0] == 1
    assert {os.path.relpath(p, tree) for p in listed} <= set(source.RELEVANT_DIRS)


# --- git: messages, shallow clones, ownership ----------------------------


@pytest.fixture
def two_commits(tmp_path: Path) -> Path:
    repo = make_repo(TREE, tmp_path / "src")
    (repo / "README").write_text("x\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "second")
    return repo


def test_shallow_clone_rev_is_one_clear_line(cli, two_commits: Path, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{two_commits}", str(shallow)],
                   env=ENV, check=True)
    parent = git(two_commits, "rev-parse", "HEAD~1").strip()
    before = git_state(shallow)
    assert bad(cli, "check", str(shallow), "--rev", "HEAD~1") == (
        f"HEAD~1: commit {parent[:12]} is not in this shallow clone of {shallow} "
        "(git fetch --deepen=N or --unshallow)")
    assert git_state(shallow) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_repository_of_another_user(cli, two_commits: Path, tmp_path: Path,
                                    monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no safe.directory from the user's config
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    for p in [two_commits, *two_commits.rglob("*")]:
        os.lchown(p, 12345, 12345)
    before = git_state(two_commits)
    assert bad(cli, "check", str(two_commits), "--rev", "HEAD") == (
        f"{two_commits}: git refuses to read this repository: detected dubious ownership in "
        f"repository at '{two_commits}' (see 'git help config', safe.directory)")
    assert git_state(two_commits) == before


def test_fetch_failure_says_why_and_leaves_nothing(cli, tmp_path: Path) -> None:
    assert bad(cli, "check", "--remote", "file:///etc") == \
        "file:///etc: cannot fetch HEAD: '/etc' does not appear to be a git repository"
    remotes = tmp_path / "cache" / "vpcheck" / "remotes"
    assert list(remotes.iterdir()) == []


def test_fetch_of_a_missing_ref_leaves_nothing(cli, two_commits: Path, tmp_path: Path) -> None:
    before = git_state(two_commits)
    assert bad(cli, "check", "--remote", str(two_commits), "--ref", "nope") == \
        f"{two_commits}: cannot fetch nope: couldn't find remote ref nope"
    assert list((tmp_path / "cache" / "vpcheck" / "remotes").iterdir()) == []
    assert git_state(two_commits) == before


def test_remote_from_a_git_hook_leaves_the_hooks_repository_alone(
        cli, two_commits: Path, tmp_path: Path, monkeypatch) -> None:
    """In a hook GIT_DIR names the user's repository: the cache's git must not use it."""
    user = make_repo(TREE, tmp_path / "user")
    before = git_state(user)
    monkeypatch.setenv("GIT_DIR", str(user / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(user / ".git" / "index"))
    for _ in range(2):  # a new cache entry, then an existing one
        rc, out, err = cli("check", "--remote", str(two_commits), "--ref", "main")
        assert (rc, err) == (1, "")
    assert git_state(user) == before


def test_concurrent_remote_runs_share_the_cache(two_commits: Path, tmp_path: Path) -> None:
    """Today four runs on an empty cache raced in `git init --bare` (traceback, exit 1)."""
    before = git_state(two_commits)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": os.environ["TMPDIR"]}
    cmd = [sys.executable, "-m", "analyzer.cli", "check", "--remote", str(two_commits),
           "--ref", "main", "--format", "json"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    assert [(rc, err) for rc, _, err in results] == [(1, "")] * 4
    assert len({json.dumps(json.loads(out)["findings"]) for _, out, _ in results}) == 1
    remotes = tmp_path / "cache" / "vpcheck" / "remotes"
    assert [p.suffix for p in remotes.iterdir()] == [".git"]
    assert git_state(two_commits) == before


# --- signals --------------------------------------------------------------


def _blocking_git(tmp_path: Path, when: str) -> tuple[dict, Path]:
    """A `git` on PATH that, for the subcommand ``when``, records its pid and blocks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "blocked.pid"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (bin_dir / "git").write_text(f"""#!/bin/sh
for a in "$@"; do
  if [ "$a" = "{when}" ]; then echo $$ > "{mark}.tmp"; mv "{mark}.tmp" "{mark}"; exec sleep 60; fi
done
exec {real} "$@"
""")
    (bin_dir / "git").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "GIT_PYTHON_GIT_EXECUTABLE": "git"}
    return env, mark


def _interrupt_while_blocked(argv: list[str], env: dict, mark: Path, sig: int) -> tuple:
    p = subprocess.Popen([sys.executable, "-m", "analyzer.cli", *argv], cwd=ROOT,
                         env={**os.environ, **env}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not mark.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mark.exists(), p.communicate()
    child = int(mark.read_text())
    left_mid_run = sorted(os.listdir(os.environ["TMPDIR"]))
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    gone = not Path(f"/proc/{child}").exists() or \
        Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
    return p.returncode, out, err, left_mid_run, gone


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=lambda s: s.name)
def test_signal_during_series_removes_the_temporary_directory(sig, tmp_path: Path) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    before = git_state(repo)
    env, mark = _blocking_git(tmp_path, "apply")
    rc, out, err, mid, gone = _interrupt_while_blocked(
        ["series", str(TWO_PATCHES), "--repo", str(repo)], env, mark, sig)
    assert [n[:8] for n in mid] == ["vpcheck-"]  # there was something to clean up
    assert (rc, out, err) == (128 + sig, "", "")
    assert gone, "the git child outlived vpcheck"
    assert git_state(repo) == before  # and the fixture checks TMPDIR is empty


def test_signal_during_fetch_leaves_nothing_in_the_cache(two_commits: Path,
                                                         tmp_path: Path) -> None:
    env, mark = _blocking_git(tmp_path, "fetch")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    rc, out, err, _, gone = _interrupt_while_blocked(
        ["check", "--remote", str(two_commits), "--ref", "main"], env, mark, signal.SIGTERM)
    assert (rc, out, err) == (128 + signal.SIGTERM, "", "")
    assert gone
    assert list((tmp_path / "cache" / "vpcheck" / "remotes").iterdir()) == []


# --- faults once owned by the engine: deep nesting, loops in the packing function ---


def _nested_tree(tmp_path: Path, old: str, new: str) -> Path:
    t = tmp_path / "t"
    for p in EXAMPLE.rglob("*"):
        if p.is_file():
            (t / p.relative_to(EXAMPLE)).parent.mkdir(parents=True, exist_ok=True)
            (t / p.relative_to(EXAMPLE)).write_bytes(p.read_bytes())
    h = t / "arch/powerpc/include/asm/kvm_book3s.h"
    assert old in h.read_text()
    h.write_text(h.read_text().replace(old, new))
    return t


def _not_a_crash(cli, *argv: str) -> None:
    rc, _, err = cli(*argv)
    assert rc in (0, 1, 2) and err.count("\n") <= 1 and "Traceback" not in err, (rc, err)


def test_nested_parentheses(cli, tmp_path: Path) -> None:
    old = "packed_id = (id % KVM_MAX_VCPUS)"
    t = _nested_tree(tmp_path, old, "packed_id = " + "(" * 1000 + "id" + ")" * 1000 +
                     " % KVM_MAX_VCPUS")
    _not_a_crash(cli, "check", str(t))


def test_model_on_a_loop(cli, tmp_path: Path) -> None:
    t = _nested_tree(tmp_path, "\tu32 packed_id;\n",
                     "\tu32 packed_id;\n\tint i;\n\tfor (i = 0; i < 2; i++)\n\t\tid++;\n")
    _not_a_crash(cli, "model", "--tree", str(t))


@pytest.mark.parametrize("name,want", [
    ("linux-6.12/arch/powerpc/kvm/book3s_xive.c", "arch/powerpc/kvm/book3s_xive.c"),
    ("./linux-6.12/./arch/powerpc/kvm/x.c", "arch/powerpc/kvm/x.c"),
    ("arch/powerpc/kvm/x.c", "arch/powerpc/kvm/x.c"),
    ("linux/a/../arch/powerpc/kvm/x.c", "arch/powerpc/kvm/x.c"),  # stays inside: normalised
    ("linux-6.12/drivers/x.c", None),
    ("linux-6.12", None),
    (".", None),
])
def test_member_path_normalises(name: str, want: str | None) -> None:
    assert source.member_path(name, "T") == want


@pytest.mark.parametrize("name,why", [
    ("../arch/powerpc/kvm/x.c", "escapes the archive"),
    ("linux/../../arch/powerpc/kvm/x.c", "escapes the archive"),
    ("..", "escapes the archive"),
    ("/arch/powerpc/kvm/x.c", "has an absolute path"),
    ("//linux/arch/powerpc/kvm/x.c", "has an absolute path"),
])
def test_member_path_refuses(name: str, why: str) -> None:
    with pytest.raises(source.InputError) as e:
        source.member_path(name, "T")
    assert str(e.value) == f"T: member {name!r} {why}: refused"


def test_series_in_a_linked_worktree(cli, tmp_path: Path) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    before = git_state(repo)
    _not_a_crash(cli, "series", str(TWO_PATCHES), "--repo", str(tmp_path / "wt"))
    assert git_state(repo) == before


def test_series_leaves_object_mtimes_alone(cli, tmp_path: Path) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    git(repo, "am", "-q", str(TWO_PATCHES))  # the series' objects now exist in the repo
    git(repo, "reset", "-q", "--hard", "HEAD~2")
    before = git_state(repo)
    time.sleep(0.01)
    rc, _, err = cli("series", str(TWO_PATCHES), "--repo", str(repo), "--base", "HEAD")
    assert rc in (0, 1), err
    after = git_state(repo)
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert changed == [], (rc, err, changed)


def test_unwritable_cache_and_svg(cli, two_commits: Path, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert bad(cli, "check", "--remote", str(two_commits), "--ref", "main") == \
        f"{blocker}/vpcheck/remotes: cannot create the cache: Not a directory"
    assert bad(cli, "model", "--svg", str(blocker / "x.svg")) == \
        f"{blocker}/x.svg: cannot write: Not a directory"


def test_series_on_stdin_is_read_up_to_the_limit(tmp_path: Path) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    before = git_state(repo)
    r = vpcheck("series", "-", "--repo", str(repo), input=TWO_PATCHES.read_text(),
                env={"VPCHECK_MAX_SERIES_BYTES": "1K"})
    assert (r.returncode, r.stdout) == (2, "")
    assert one_line(r.stderr) == ("stdin: the size of one patch or mbox input exceeds the limit "
                                  "(more than 1,024 bytes; set VPCHECK_MAX_SERIES_BYTES to raise "
                                  "it)")
    assert git_state(repo) == before


def test_series_file_is_refused_before_it_is_read(cli, monkeypatch, tmp_path: Path) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    monkeypatch.setenv("VPCHECK_MAX_SERIES_BYTES", "1K")
    size = TWO_PATCHES.stat().st_size
    rc, out, err = cli("series", str(TWO_PATCHES), "--repo", str(repo))
    assert (rc, out) == (2, "")
    assert err == (f"vpcheck: error: {TWO_PATCHES}: the size of one patch or mbox input exceeds "
                   f"the limit ({size:,} > 1,024 bytes; set VPCHECK_MAX_SERIES_BYTES to raise "
                   "it)\n")


def test_concurrent_series_runs_on_one_repository(tmp_path: Path) -> None:
    """Each run has its own temporary index and object directory: no interference."""
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    before = git_state(repo)
    cmd = [sys.executable, "-m", "analyzer.cli", "series", str(TWO_PATCHES), "--repo",
           str(repo), "--format", "json"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    statuses = {(rc, err) for rc, _, err in results}
    assert statuses in ({(0, "")}, {(1, "")}), results
    assert len({json.dumps(json.loads(out)["findings"]) for _, out, _ in results}) == 1
    assert git_state(repo) == before
