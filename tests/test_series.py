"""vpcheck series: attribution per patch, inputs of every shape, and a repo left untouched."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .gitutil import git, make_repo, repo_state

TREE = FIXTURES / "rules" / "xive-raw-vp-base" / "header-helper"
NATIVE = "arch/powerpc/kvm/book3s_xive_native.c"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(TREE, tmp_path / "repo")
    # user state that must survive every run: a stash, a dirty file, an untracked file
    (r / NATIVE).write_text((r / NATIVE).read_text() + "/* wip */\n")
    git(r, "stash", "-q")
    (r / "arch/powerpc/kvm/book3s_xive.h").write_text(
        (r / "arch/powerpc/kvm/book3s_xive.h").read_text() + "/* dirty */\n")
    (r / "notes.txt").write_text("untracked\n")
    return r


def commit_patch(repo: Path, edit, message: str) -> str:
    """Make a commit with ``edit``, return it as a format-patch mail, and drop the commit."""
    stash = git(repo, "stash", "create").strip()
    git(repo, "reset", "-q", "--hard")
    edit(repo)
    git(repo, "add", "-A", "arch")
    git(repo, "commit", "-q", "-m", message)
    mail = git(repo, "format-patch", "-1", "--stdout", "HEAD")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    if stash:
        git(repo, "stash", "apply", "-q", stash)
    return mail


def replace_in(path: str, old: str, new: str):
    def edit(repo: Path) -> None:
        p = repo / path
        p.write_text(p.read_text().replace(old, new))
    return edit


@pytest.fixture
def run_series(cli, repo: Path, tmp_path: Path):
    """Run `vpcheck series`, and prove the repo is byte-identical afterwards."""
    def run(*argv: str, stdin: bytes | None = None):
        before = repo_state(repo)
        if stdin is not None:
            old = sys.stdin
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
            try:
                result = cli("series", *argv, "--repo", str(repo))
            finally:
                sys.stdin = old
        else:
            result = cli("series", *argv, "--repo", str(repo))
        assert repo_state(repo) == before, "vpcheck series changed the repository"
        return result
    return run


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


def test_patch_that_adds_a_raw_use(repo, run_series, tmp_path) -> None:
    mail = commit_patch(repo, replace_in(NATIVE, "return rc;", "return rc + xive->vp_base + 1;"),
                        "KVM: PPC: add a raw use")
    rc, out, err = run_series(write(tmp_path, "p.mbox", mail), "--format", "json")
    doc = json.loads(out)
    assert (rc, err) == (1, "")
    assert [(f["path"], f["line"], f["patch"]) for f in doc["findings"]] == [
        (NATIVE, 11, {"index": 1, "subject": "KVM: PPC: add a raw use"})]
    # the pre-existing finding is not new; --all shows it too
    rc, out, _ = run_series(write(tmp_path, "p.mbox", mail), "--format", "json", "--all")
    assert len(json.loads(out)["findings"]) == 2


def test_fixed_findings_are_listed(repo, run_series, tmp_path) -> None:
    mail = commit_patch(repo, replace_in(NATIVE, "xive->vp_base + server, priority",
                                         "kvmppc_xive_vp(xive, server), priority"), "fix")
    rc, out, _ = run_series(write(tmp_path, "p.mbox", mail), "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and doc["findings"] == []
    assert [(f["path"], f["line"]) for f in doc["fixed"]] == [(NATIVE, 12)]


def test_stdin_and_already_committed(repo, run_series, tmp_path) -> None:
    """b4 and send-email hand over one patch that is already in HEAD."""
    edit = replace_in(NATIVE, "return rc;", "return rc + xive->vp_base;")
    mail = commit_patch(repo, edit, "raw use")
    git(repo, "stash", "-q")  # commit the change for real this time
    edit(repo)
    git(repo, "commit", "-q", "-am", "raw use")
    rc, out, err = run_series("-", "--format", "checkpatch", "--terse", stdin=mail.encode())
    assert (rc, err) == (1, "")
    assert out.splitlines() == [
        f"{NATIVE}:11: WARNING: raw 'xive->vp_base + rc' bypasses kvmppc_xive_vp(): the VP "
        "block is indexed with an unpacked number [xive-raw-vp-base]"] or \
        len(out.splitlines()) == 1 and out.startswith(f"{NATIVE}:11: WARNING: ")


def test_checkpatch_layout(repo, run_series, tmp_path) -> None:
    mail = commit_patch(repo, replace_in(NATIVE, "return rc;", "return xive->vp_base + rc;"),
                        "[PATCH] raw use")
    rc, out, _ = run_series(write(tmp_path, "p.mbox", mail), "--format", "checkpatch")
    lines = out.splitlines()
    assert lines[0].startswith("WARNING:XIVE_RAW_VP_BASE: raw 'xive->vp_base + rc'")
    assert lines[1].startswith("#") and lines[1].endswith(f"FILE: {NATIVE}:11:")
    n = int(lines[1][1:].split(":")[0])  # checkpatch's #N: the line of the file as sent
    assert mail.split("\n")[n - 1] == "+\t\treturn xive->vp_base + rc;"
    assert lines[2] == "+\t\treturn xive->vp_base + rc;"
    assert lines[-1].startswith("total: 0 errors, 1 warnings, ") and "lines checked" in lines[-1]


def test_clean_checkpatch_prints_nothing(repo, run_series, tmp_path) -> None:
    mail = commit_patch(repo, replace_in(NATIVE, "int rc;", "int rc = 0;"), "noop")
    for extra in ((), ("--terse",)):
        rc, out, err = run_series(write(tmp_path, "p.mbox", mail), "--format", "checkpatch",
                                  *extra)
        assert (rc, out, err) == (0, "", "")


def test_new_renamed_deleted_files(repo, run_series, tmp_path) -> None:
    def edit(r: Path) -> None:
        (r / "arch/powerpc/kvm/book3s_new.c").write_text(
            '#include "book3s_xive.h"\nvoid f(struct kvmppc_xive *xive, u32 s)\n{\n'
            "\tconfigure(xive->vp_base + s);\n}\n")
        git(r, "mv", NATIVE, "arch/powerpc/kvm/book3s_xive_native2.c")
    mail = commit_patch(repo, edit, "new and renamed")
    rc, out, _ = run_series(write(tmp_path, "p.mbox", mail), "--format", "json")
    doc = json.loads(out)
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [
        ("arch/powerpc/kvm/book3s_new.c", 4)]
    # the rename moved the old finding: it is neither new nor fixed
    assert doc["fixed"] == []

    def delete(r: Path) -> None:
        git(r, "rm", "-q", NATIVE)
    mail = commit_patch(repo, delete, "delete")
    rc, out, _ = run_series(write(tmp_path, "d.mbox", mail), "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and [f["path"] for f in doc["fixed"]] == [NATIVE]


def test_two_patches_attribution_and_order(repo, run_series, tmp_path) -> None:
    p1 = commit_patch(repo, replace_in(NATIVE, "return rc;", "return xive->vp_base + rc;"),
                      "[PATCH 1/2] add raw")
    git(repo, "stash", "-q")
    replace_in(NATIVE, "return rc;", "return xive->vp_base + rc;")(repo)
    git(repo, "commit", "-q", "-am", "add raw")
    p2 = commit_patch(repo, replace_in(NATIVE, "return xive->vp_base + rc;",
                                       "return kvmppc_xive_vp(xive, rc);"), "[PATCH 2/2] fix")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "stash", "pop", "-q")
    p1 = p1.replace("Subject: [PATCH] [PATCH 1/2]", "Subject: [PATCH 1/2]")
    p2 = p2.replace("Subject: [PATCH] [PATCH 2/2]", "Subject: [PATCH 2/2]")
    mbox = write(tmp_path, "s.mbox", p2 + p1)  # out of order on purpose
    rc, out, _ = run_series(mbox, "--format", "json")
    assert rc == 0 and json.loads(out)["findings"] == []
    rc, out, _ = run_series(mbox, "--format", "json", "--per-patch")
    doc = json.loads(out)
    assert [(f["line"], f["patch"]["index"]) for f in doc["findings"]] == [(11, 1)]


# --- bad input: one line, exit 2, repo untouched --------------------------


def bad(run_series, *argv, stdin=None) -> str:
    rc, out, err = run_series(*argv, stdin=stdin)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, (rc, err)
    return err


def test_malformed_mbox(run_series, tmp_path) -> None:
    assert "malformed mbox" in bad(run_series, write(tmp_path, "m.mbox", "From nobody\nhello\n"))


def test_empty_input(run_series, tmp_path) -> None:
    assert "empty input" in bad(run_series, write(tmp_path, "e.mbox", ""))
    assert "empty input" in bad(run_series, "-", stdin=b"")


def test_binary_input(run_series, tmp_path) -> None:
    assert "binary" in bad(run_series, write(tmp_path, "b.patch", b"\x00\x01\x02" * 100))


def test_binary_patch_applies(repo, run_series, tmp_path) -> None:
    def edit(r: Path) -> None:
        (r / "arch/powerpc/kvm/blob.bin").write_bytes(bytes(range(256)))
    git(repo, "config", "diff.noprefix", "false")
    stash = git(repo, "stash", "create").strip()
    git(repo, "reset", "-q", "--hard")
    edit(repo)
    git(repo, "add", "-A", "arch")
    git(repo, "commit", "-q", "-m", "binary")
    mail = git(repo, "format-patch", "--binary", "-1", "--stdout", "HEAD")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "stash", "apply", "-q", stash)
    rc, out, err = run_series(write(tmp_path, "bin.mbox", mail), "--format", "json")
    assert (rc, err) == (0, "")


def test_corrupt_patch(run_series, tmp_path) -> None:
    diff = (f"diff --git a/{NATIVE} b/{NATIVE}\n--- a/{NATIVE}\n+++ b/{NATIVE}\n"
            "@@ -3,9 +3,9 @@\n-x\n+y\n")
    assert "is malformed: corrupt patch" in bad(run_series, write(tmp_path, "c.patch", diff))


def test_no_diff(run_series, tmp_path) -> None:
    msg = "From 1234 Mon Sep 17 00:00:00 2001\nSubject: hello\n\njust words\n"
    assert "no patch found" in bad(run_series, write(tmp_path, "n.mbox", msg))


def test_path_escaping_tree(run_series, tmp_path) -> None:
    diff = ("diff --git a/../../etc/passwd b/../../etc/passwd\n--- a/../../etc/passwd\n"
            "+++ b/../../etc/passwd\n@@ -1 +1 @@\n-root\n+toor\n")
    assert "escapes the tree" in bad(run_series, write(tmp_path, "esc.patch", diff))


def test_patch_does_not_apply(run_series, tmp_path) -> None:
    diff = (f"diff --git a/{NATIVE} b/{NATIVE}\n--- a/{NATIVE}\n+++ b/{NATIVE}\n"
            "@@ -3,2 +3,2 @@\n-no such line\n+another\n context\n")
    mail = f"From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 1/1] broken one\n\n---\n{diff}"
    err = bad(run_series, write(tmp_path, "x.mbox", mail))
    assert "patch 1/1 'broken one' does not apply" in err and NATIVE in err and "@@ -3,2" in err


def test_unknown_base(run_series, tmp_path, repo) -> None:
    mail = commit_patch(repo, replace_in(NATIVE, "int rc;", "int rc = 0;"), "noop")
    assert "unknown revision" in bad(run_series, write(tmp_path, "p.mbox", mail),
                                     "--base", "nope")


def test_missing_file(run_series, tmp_path) -> None:
    assert "no such file" in bad(run_series, str(tmp_path / "missing.mbox"))


def test_range(repo, cli) -> None:
    git(repo, "stash", "-q")
    replace_in(NATIVE, "return rc;", "return xive->vp_base + rc;")(repo)
    git(repo, "commit", "-q", "-am", "add raw")
    before = repo_state(repo)
    rc, out, _ = cli("series", "HEAD~1..HEAD", "--repo", str(repo), "--format", "json")
    assert rc == 1
    assert [(f["line"], f["patch"]["subject"]) for f in json.loads(out)["findings"]] == [
        (11, "add raw")]
    assert repo_state(repo) == before


def test_staged_and_worktree(repo, cli) -> None:
    """The uncommitted change as a patch on HEAD; the index is not refreshed or rewritten."""
    from .fsstate import tree_state

    def run(*argv: str):
        before = tree_state(repo)
        result = cli("series", *argv, "--repo", str(repo), "--format", "json")
        assert tree_state(repo) == before, "vpcheck changed the repository"
        return result

    rc, out, _ = run("--staged")
    assert rc == 0 and json.loads(out)["findings"] == []  # nothing staged
    p = repo / NATIVE
    p.write_text(p.read_text().replace("return rc;", "return xive->vp_base + rc;"))
    git(repo, "add", NATIVE)
    (repo / "arch/powerpc/kvm/book3s_wip.c").write_text(
        '#include "book3s_xive.h"\nu32 w(struct kvmppc_xive *xive) { return xive->vp_base + 2; }\n')
    rc, out, _ = run("--staged")
    assert rc == 1 and [(f["path"], f["line"]) for f in json.loads(out)["findings"]] == [
        (NATIVE, 11)]
    # the dirty header (fixture) is in the work tree change; untracked files are not
    rc, out, _ = run("--worktree")
    assert rc == 1 and [(f["path"], f["line"]) for f in json.loads(out)["findings"]] == [
        (NATIVE, 11)]
    rc, _, err = run("--staged", "p.mbox")
    assert rc == 2 and "take no SERIES" in err


def test_attribution_walks_back_only_as_far_as_needed() -> None:
    """A finding is tagged with the first patch after which it stays; snapshots older
    than every new finding's start, and unchanged ones, are not analysed."""
    from analyzer.findings import Finding
    from analyzer.sources.patches import Patch
    from analyzer.sources.series import Series, Step, attribute
    from analyzer.sources.tree import Snapshot

    present = {"base": {"old"}, "1": {"old", "a"}, "2": {"old"}, "3": {"old", "a"},
               "4": {"old", "a", "b"}, "5": {"a", "b"}}
    snaps = [Snapshot(name, {"f.c": name.encode()}) for name in present]
    # patch 6 touches no relevant file: same files as patch 5
    snaps.append(Snapshot("6", {"f.c": b"5"}))
    seen: list[str] = []

    def analyse(snap: Snapshot) -> list[Finding]:
        seen.append(snap.target)
        return [Finding(k, "warning", "f.c", 1, 1, None, k, fingerprint=k)
                for k in sorted(present[snap.target])]

    steps = tuple(Step(Patch(i, 6, f"p{i}", "t", ""), s) for i, s in enumerate(snaps[1:], 1))
    v = attribute(Series(snaps[0], steps), analyse)
    assert [(f.rule, f.patch.index) for f in v.new] == [("a", 3), ("b", 4)]
    assert [f.rule for f in v.fixed] == ["old"]
    assert seen == ["base", "5", "4", "3", "2"]
    seen.clear()
    v = attribute(Series(snaps[0], steps), analyse, per_patch=True)
    assert [[f.rule for f in step] for step in v.per_patch] == [["a"], [], ["a"], ["b"], [], []]
    assert sorted(seen) == sorted(present)


def test_progress_only_on_a_terminal_and_after_a_second(monkeypatch) -> None:
    from analyzer import cli as climod

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = iter([0.0, 0.5, 2.0])
    monkeypatch.setattr(climod.time, "perf_counter", lambda: next(clock))
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    p = climod._Progress(True, 3)
    p.step()
    assert err.getvalue() == ""  # under a second: silent
    p.step()
    assert err.getvalue() == "\rvpcheck: checked 2/3 snapshots"
    p.close()
    assert err.getvalue().endswith("\r\x1b[K")
    for enabled, stream in ((False, Tty()), (True, io.StringIO())):  # -q, or not a tty
        monkeypatch.setattr(sys, "stderr", stream)
        clock = iter([0.0, 5.0])
        p = climod._Progress(enabled, 3)
        p.step()
        p.close()
        assert stream.getvalue() == ""


def test_colour_only_on_a_terminal_without_no_color(monkeypatch) -> None:
    from analyzer import cli as climod

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    args = climod.build_parser().parse_args(["series", "x"])
    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert climod._style(args).color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not climod._style(args).color
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not climod._style(args).color
