"""The seed RFC, checked as its author could have before sending it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .annotations import annotations
from .conftest import FIXTURES, SEED_MBOX
from .gitutil import git, make_repo, repo_state

SEED = SEED_MBOX
PRE_RFC = FIXTURES / "trees" / "pre-rfc"
RFC_APPLIED = FIXTURES / "trees" / "rfc-applied"
TWO = FIXTURES / "series" / "rfc-plus-fix.mbox"
RFC_SUBJECT = "KVM: PPC: Book3S HV: pack VCORE IDs to access full VCPU ID space"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(PRE_RFC, tmp_path / "repo")


def expected_leftovers() -> set[tuple[str, int]]:
    files = {p.relative_to(RFC_APPLIED).as_posix(): p.read_bytes()
             for p in RFC_APPLIED.rglob("*") if p.is_file()}
    marks = annotations(files).get("expect:xive-raw-vp-base", set())
    assert len(marks) >= 5
    return marks


def test_rfc_leftovers_attributed_to_patch_1(repo: Path, cli) -> None:
    before = repo_state(repo)
    rc, out, err = cli("series", str(SEED), "--repo", str(repo), "--format", "json",
                       "--rule", "xive-raw-vp-base")
    assert (rc, err) == (1, "")
    doc = json.loads(out)
    assert {(f["path"], f["line"]) for f in doc["findings"]} == expected_leftovers()
    assert {(f["patch"]["index"], f["patch"]["subject"]) for f in doc["findings"]} == {
        (1, RFC_SUBJECT)}
    assert all(f["fix"] and "xive_vp(" in f["fix"] for f in doc["findings"])
    assert doc["fixed"] == []
    assert repo_state(repo) == before


def test_rfc_applied_tree_matches_series_result(repo: Path, cli) -> None:
    rc, out, _ = cli("check", str(RFC_APPLIED), "--format", "json", "--rule", "xive-raw-vp-base")
    assert {(f["path"], f["line"]) for f in json.loads(out)["findings"]} == expected_leftovers()


def test_two_patch_series(repo: Path, cli) -> None:
    before = repo_state(repo)
    rc, out, _ = cli("series", str(TWO), "--repo", str(repo), "--format", "json",
                     "--rule", "xive-raw-vp-base")
    doc = json.loads(out)
    assert rc == 0 and doc["findings"] == [] and doc["fixed"] == []
    rc, out, _ = cli("series", str(TWO), "--repo", str(repo), "--format", "json", "--per-patch",
                     "--rule", "xive-raw-vp-base")
    per = json.loads(out)["findings"]
    assert {(f["path"], f["line"]) for f in per} == expected_leftovers()
    assert {f["patch"]["index"] for f in per} == {1}
    # with --all the end result is clean as well
    rc, out, _ = cli("series", str(TWO), "--repo", str(repo), "--format", "json", "--all",
                     "--rule", "xive-raw-vp-base")
    assert json.loads(out)["findings"] == []
    assert repo_state(repo) == before


def test_series_already_committed_on_branch(repo: Path, cli) -> None:
    """send-email/b4 case: the RFC is HEAD; each patch still applies on its preimage."""
    git(repo, "am", "-q", str(TWO))
    before = repo_state(repo)
    rc, out, _ = cli("series", str(TWO), "--repo", str(repo), "--format", "json", "--per-patch",
                     "--rule", "xive-raw-vp-base")
    assert {(f["path"], f["line"]) for f in json.loads(out)["findings"]} == expected_leftovers()
    rc, out, _ = cli("series", "HEAD~2..HEAD", "--repo", str(repo), "--format", "json",
                     "--per-patch", "--rule", "xive-raw-vp-base")
    assert {(f["path"], f["line"]) for f in json.loads(out)["findings"]} == expected_leftovers()
    assert repo_state(repo) == before


def _reencode_qp(mbox: bytes) -> bytes:
    """The seed as a list archive might carry it: MIME, quoted-printable, mboxrd-quoted."""
    import email
    import email.policy
    from email.message import EmailMessage

    head, _, body = mbox.partition(b"\n")
    src = email.message_from_bytes(body, policy=email.policy.default)
    msg = EmailMessage()
    for k in ("From", "Date", "Subject", "Message-Id"):
        msg[k] = src[k]
    text = src.get_content()
    text = text.replace("Signed-off-by:", "From the list:\nSigned-off-by:", 1)
    msg.set_content(text, cte="quoted-printable")
    out = msg.as_bytes(policy=email.policy.SMTP.clone(linesep="\n"))
    out = out.replace(b"\nFrom the list:", b"\n>From the list:")
    return head + b"\n" + out


def test_mime_quoted_printable_mboxrd(repo: Path, cli, tmp_path: Path) -> None:
    data = _reencode_qp(SEED.read_bytes())
    assert b"Content-Transfer-Encoding: quoted-printable" in data and b"=3D" in data
    assert b"\n>From the list:" in data
    p = tmp_path / "qp.mbox"
    p.write_bytes(data)
    rc, out, err = cli("series", str(p), "--repo", str(repo), "--format", "json",
                       "--rule", "xive-raw-vp-base")
    assert (rc, err) == (1, "")
    assert {(f["path"], f["line"]) for f in json.loads(out)["findings"]} == expected_leftovers()
