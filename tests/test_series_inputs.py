"""Patches as they arrive: one at a time with HEAD at the tip, CRLF, quoting, prefixes,
cover letters, any order. Every run leaves the repository as it was (mtimes too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fsstate import tree_state
from .gitutil import git
from .seriesutil import NATIVE, SUBJECTS, base_repo, commit_series, format_series


@pytest.fixture(scope="module")
def sent(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The repository with the series committed (HEAD at its tip) and its files."""
    tmp = tmp_path_factory.mktemp("inputs")
    repo = base_repo(tmp / "repo")
    commit_series(repo)
    files = format_series(repo, tmp / "out", "--cover-letter", "--base=HEAD~3")
    return repo, files


def series(cli, repo: Path, *argv: str) -> tuple[int, list[tuple], str]:
    before = tree_state(repo)
    rc, out, err = cli("series", *argv, "--repo", str(repo), "--format", "json")
    assert tree_state(repo) == before, "vpcheck changed the repository"
    if rc == 2:
        return rc, [], err
    doc = json.loads(out)
    return rc, [(f["path"], f["line"], f["patch"]["subject"]) for f in doc["findings"]], err


NEW = [(NATIVE, 12, SUBJECTS[1])]


def test_each_patch_alone_with_head_at_the_tip(cli, sent) -> None:
    """b4 prep --check and send-email: patch 1 is not blamed for what patch 2 does."""
    repo, files = sent
    verdicts = [series(cli, repo, str(f))[:2] for f in files[1:]]
    assert verdicts == [(0, []), (1, NEW), (0, [])]


def test_whole_series_any_order(cli, sent, tmp_path: Path) -> None:
    repo, files = sent
    mbox = tmp_path / "rev.mbox"
    mbox.write_bytes(b"".join(f.read_bytes() for f in reversed(files)))
    assert series(cli, repo, str(mbox))[:2] == (1, NEW)
    assert series(cli, repo, *map(str, files))[:2] == (1, NEW)


def test_cover_letter_base_commit(cli, sent, tmp_path: Path) -> None:
    """--base puts base-commit: in the cover letter only; it is used for every patch."""
    repo, files = sent
    cover = files[0].read_text()
    assert "base-commit: " in cover and "base-commit" not in files[1].read_text()
    rc, out, _ = cli("series", *map(str, files), "--repo", str(repo), "--format", "json")
    assert json.loads(out)["target"].endswith("@" + git(repo, "rev-parse", "HEAD~3").strip())
    # a cover letter without diffstat (hand-written) is dropped just the same
    bare = tmp_path / "0000-cover.patch"
    bare.write_text(cover.split("\n\n", 1)[0] + "\n\nJust words.\n")
    assert series(cli, repo, str(bare), *map(str, files[1:]))[:2] == (1, NEW)


@pytest.mark.parametrize("variant", ["crlf", "mixed"])
def test_crlf_line_ends(cli, sent, tmp_path: Path, variant: str) -> None:
    repo, files = sent
    data = files[2].read_bytes()
    if variant == "crlf":
        data = data.replace(b"\n", b"\r\n")
    else:  # headers and every other line CRLF, as some archives do
        lines = data.split(b"\n")
        data = b"\n".join(ln + b"\r" if i % 2 == 0 and ln else ln for i, ln in enumerate(lines))
    assert b"\r\n" in data
    p = tmp_path / "crlf.patch"
    p.write_bytes(data)
    assert series(cli, repo, str(p))[:2] == (1, NEW)


@pytest.mark.parametrize("quoting", ["mboxrd", "mboxo"])
def test_from_lines_quoted(cli, sent, tmp_path: Path, quoting: str) -> None:
    """A commit message line starting with 'From ' is quoted '>From ' (and '>From' '>>From'
    in mboxrd); either way the patch is read and applies."""
    repo, files = sent
    text = files[2].read_text()
    head, body = text.split("\n\n", 1)
    quoted = ">>From the list" if quoting == "mboxrd" else ">From the list"
    text = f"{head}\n\n>From a reviewer: looks fine\n{quoted}\n{body}"
    p = tmp_path / "q.mbox"
    p.write_text(text)
    assert series(cli, repo, str(p))[:2] == (1, NEW)


def test_subject_prefixes(cli, sent, tmp_path: Path) -> None:
    """[PATCH v3 07/12] orders by 7; [RFC PATCH] has no counter."""
    repo, files = sent
    texts = [f.read_text() for f in files[1:]]
    texts[0] = texts[0].replace("[PATCH 1/3]", "[PATCH v3 01/12]")
    texts[1] = texts[1].replace("[PATCH 2/3]", "[PATCH v3 07/12]")
    texts[2] = texts[2].replace("[PATCH 3/3]", "[PATCH v3 12/12]")
    p = tmp_path / "v3.mbox"
    p.write_text(texts[2] + texts[0] + texts[1])
    rc, got, _ = series(cli, repo, str(p))
    assert (rc, got) == (1, NEW)
    rfc = tmp_path / "rfc.patch"
    rfc.write_text(texts[1].replace("[PATCH v3 07/12]", "[RFC PATCH]"))
    assert series(cli, repo, str(rfc))[:2] == (1, NEW)


def test_comment_only_patch_inserting_lines_brings_nothing(cli, tmp_path: Path) -> None:
    """Every finding of the bundled example moves down a line; none of them is new."""
    from .conftest import FIXTURES
    from .gitutil import make_repo

    repo = make_repo(FIXTURES / "trees" / "rfc-applied", tmp_path / "repo")
    for rel in ("arch/powerpc/include/asm/kvm_host.h", "arch/powerpc/kvm/book3s_hv.c",
                "arch/powerpc/kvm/book3s_xive.c"):
        p = repo / rel
        p.write_text("/* a comment */\n" + p.read_text())
    git(repo, "commit", "-qam", "comments only")
    mail = tmp_path / "c.patch"
    mail.write_text(git(repo, "format-patch", "-1", "--stdout"))
    rc, got, err = series(cli, repo, str(mail))
    assert (rc, got, err) == (0, [], "")
