"""vpcheck series --inbox / --remote: a series fetched where it lives, checked as from a file."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.sources import inbox

from .conftest import FIXTURES, SEED_MBOX
from .gitutil import git, make_repo, repo_state
from .inboxutil import AUTHOR, append, mail

PRE_RFC = FIXTURES / "trees" / "pre-rfc"
XIVE = "arch/powerpc/kvm/book3s_xive.c"
RULE = ("--rule", "xive-raw-vp-base")
RFC = "KVM: PPC: Book3S HV: pack VCORE IDs to access full VCPU ID space"
FIX1 = "KVM: PPC: Book3S HV: XIVE: use xive_vp() when targeting"
FIX2 = "KVM: PPC: Book3S HV: XIVE: use xive_vp() when mapping and disabling"
FIX1_EDIT = [("xive->vp_base + server, prio", "xive_vp(xive, server), prio")]
FIX2_EDIT = [("state->act_server + xive->vp_base;", "xive_vp(xive, state->act_server);"),
             ("xc->xive->vp_base + xc->server_num", "xive_vp(xc->xive, xc->server_num)")]


def _body(mbox: str) -> str:
    """A format-patch mail without its headers: the commit message, ---, the diff."""
    return mbox.split("\n\n", 1)[1]


def _commit(repo: Path, edits, subject: str) -> str:
    p = repo / XIVE
    text = p.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    p.write_text(text)
    git(repo, "commit", "-q", "-am", f"{subject}\n\n(vpcheck test patch.)")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def bodies(tmp_path_factory) -> dict[str, str]:
    """The three patches, made with git on the pre-RFC tree: the seed RFC and two fixes."""
    repo = make_repo(PRE_RFC, tmp_path_factory.mktemp("author") / "repo")
    git(repo, "am", "-q", str(SEED_MBOX))
    _commit(repo, FIX1_EDIT, FIX1)
    _commit(repo, FIX2_EDIT, FIX2)
    out = {name: _body(git(repo, "format-patch", "-1", "--stdout", rev))
           for name, rev in (("rfc", "HEAD~2"), ("fix1", "HEAD~1"), ("fix2", "HEAD"))}
    return {**out, "base": git(repo, "rev-parse", "HEAD~3").strip()}


def thread_messages(b: dict[str, str]) -> list[bytes]:
    """v1 (2 patches, no cover), replies, v2 (cover + 3 patches) in v1's thread, and noise."""
    quoted = "".join(f"> {ln}\n" for ln in b["rfc"].splitlines()[40:70])
    encoded = "=?utf-8?q?Re=3A_=5BPATCH_v2_2=2F3=5D_KVM=3A_PPC=3A_XIVE_=E2=80=94_ok?="
    b64 = base64.encodebytes("Reviewed-by: Cédric <clg@example.invalid>\n".encode()).decode()
    cover = (f"This packs VCORE ids.\n\n{'x' * 10} | 4 ++--\n 1 file changed\n\n"
             f"base-commit: {b['base']}\n")
    return [
        mail("v1-1@ibm", f"[RFC PATCH 1/2] {RFC}", b["rfc"], day=1),
        mail("v1-2@ibm", f"[RFC PATCH 2/2] {FIX1}", b["fix1"], day=1, parents=["v1-1@ibm"]),
        mail("r1@rev", f"Re: [RFC PATCH 1/2] {RFC}", quoted + "\nThis is wrong.\n", day=2,
             parents=["v1-1@ibm"], author="Reviewer <r@example.invalid>"),
        b"From: \xff\xfe broken\nSubject: =?bogus?x?==?=\nDate: yesterday\n\nno id\n",
        mail("v2-0@ibm", f"[PATCH v2 0/3] {RFC}", cover, day=5, parents=["v1-1@ibm"]),
        mail("v2-1@ibm", f"[PATCH v2 1/3] {RFC}", b["rfc"], day=5,
             parents=["v1-1@ibm", "v2-0@ibm"]),
        mail("v2-2@ibm", f"[PATCH v2 2/3] {FIX1}", b["fix1"], day=5,
             parents=["v1-1@ibm", "v2-0@ibm"]),
        mail("v2-3@ibm", f"[PATCH v2 3/3] {FIX2}", b["fix2"], day=5,
             parents=["v1-1@ibm", "v2-0@ibm"]),
        mail("r2@rev", encoded, b64, day=6, parents=["v2-0@ibm", "v2-2@ibm"],
             author="=?utf-8?q?C=C3=A9dric?= <clg@example.invalid>",
             extra="MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                   "Content-Transfer-Encoding: base64\n"),
        mail("v2-2@ibm", "buy now", "a message reusing a Message-ID\n", day=7),
        mail("loop-a@x", f"Re: [PATCH v2 0/3] {RFC}", "loops\n", day=7,
             parents=["loop-b@x", "loop-a@x", "v2-0@ibm"]),
        mail("loop-b@x", f"Re: [PATCH v2 0/3] {RFC}", "loops\n", day=7,
             parents=["loop-a@x"]),
        mail("o-1@other", "[PATCH 1/3] other: one", b["fix1"], day=8),
        mail("o-3@other", "[PATCH 3/3] other: three", b["fix2"], day=8, parents=["o-1@other"]),
    ]


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """Cache, temporary files and home each in their own directory, to see who writes where."""
    dirs = {k: tmp_path / k for k in ("cache", "tmp", "home")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["cache"]))
    monkeypatch.setenv("TMPDIR", str(dirs["tmp"]))
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return dirs


@pytest.fixture
def archive(tmp_path: Path, bodies) -> Path:
    epoch = tmp_path / "list" / "0"
    append(epoch, thread_messages(bodies))
    return epoch


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    return make_repo(PRE_RFC, tmp_path / "user")


def files_under(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def run(cli, env, user_repo, archive):
    """`vpcheck series` with the repo, the archive, TMPDIR and HOME proven untouched."""
    def go(*argv: str):
        before = repo_state(user_repo), files_under(archive)
        rc, out, err = cli("series", *argv, "--repo", str(user_repo))
        assert (repo_state(user_repo), files_under(archive)) == before
        assert files_under(env["tmp"]) == {} and files_under(env["home"]) == {}
        return rc, out, err
    return go


def subjects(picked: inbox.Picked) -> list[str]:
    return [h.subject for h, _ in picked.messages]


def lookup(archive: Path, msgid: str, revision: int | None = None, warns=None):
    warn = (warns.append if warns is not None else lambda m: None)
    return inbox.series_from_inbox([str(archive)], msgid, revision, warn)[0]


V2 = [f"[PATCH v2 1/3] {RFC}", f"[PATCH v2 2/3] {FIX1}", f"[PATCH v2 3/3] {FIX2}"]
V1 = [f"[RFC PATCH 1/2] {RFC}", f"[RFC PATCH 2/2] {FIX1}"]


@pytest.mark.parametrize("msgid", ["v2-0@ibm", "v2-1@ibm", "<v2-3@ibm>", "v1-2@ibm",
                                   "r1@rev", "loop-b@x", "id:v1-1@ibm",
                                   "https://lore.kernel.org/kvm-ppc/v2-2@ibm/"])
def test_any_message_of_the_thread_finds_the_newest_revision(env, archive, msgid) -> None:
    picked = lookup(archive, msgid)
    assert subjects(picked) == V2
    assert picked.meta == inbox.SeriesMeta(RFC, AUTHOR, "v2-0@ibm", 2)


def test_revision_1_gives_the_old_series(env, archive) -> None:
    picked = lookup(archive, "v2-0@ibm", revision=1)
    assert subjects(picked) == V1 and picked.meta.message_id == "v1-1@ibm"
    with pytest.raises(InputError, match=r"--revision 3: the thread has v1, v2 only"):
        lookup(archive, "v2-0@ibm", revision=3)


def test_bad_messages_are_one_warning_each(env, archive) -> None:
    warns: list[str] = []
    lookup(archive, "v2-1@ibm", warns=warns)
    assert len(warns) == 2, warns
    assert "message " in warns[0] and "no Message-ID; skipped" in warns[0]
    assert warns[1].startswith("<v2-2@ibm>: 2 messages carry this Message-ID; using the first")


def test_cli_missing_patch(cli, env, archive, user_repo) -> None:
    rc, out, err = cli("series", "--inbox", str(archive), "o-3@other", "--repo", str(user_repo))
    assert (rc, out) == (2, "")
    assert err.splitlines()[-1] == ("vpcheck: error: v1 of 'other: one': patch 2/3 never "
                                    "arrived")


def test_unknown_message_id(cli, env, archive, user_repo) -> None:
    rc, _, err = cli("series", "--inbox", str(archive), "nope@x", "--repo", str(user_repo))
    assert rc == 2 and err.endswith(f"<nope@x>: no such message in {archive}\n")


def local_mbox(tmp_path: Path, bodies, names: list[str]) -> str:
    p = tmp_path / "local.mbox"
    n = len(names)
    p.write_bytes(b"".join(
        b"From x Thu Jan  1 00:00:00 1970\n"
        + mail(None, f"[PATCH {i}/{n}] s", bodies[k], day=1) + b"\n"
        for i, k in enumerate(names, 1)))
    return str(p)


def findings(out: str) -> list[tuple]:
    return [(f["rule"], f["path"], f["line"], f["patch"]["index"], f["fingerprint"])
            for f in json.loads(out)["findings"]]


@pytest.mark.parametrize(("revision", "names"), [(None, ["rfc", "fix1", "fix2"]),
                                                 ("1", ["rfc", "fix1"])])
def test_cli_checks_the_fetched_series_like_a_local_mbox(run, tmp_path, bodies, archive,
                                                         revision, names) -> None:
    extra = ("--revision", revision) if revision else ()
    rc, out, err = run("--inbox", str(archive), "v2-2@ibm", *extra, "--format", "json", *RULE)
    assert rc == 1
    doc = json.loads(out)
    assert doc["series"] == {"subject": RFC, "author": doc["series"]["author"],
                             "message_id": "<v2-0@ibm>" if not revision else "<v1-1@ibm>",
                             "revision": int(revision or 2)}
    assert "Sam Bobroff" in doc["series"]["author"]
    rc2, local, _ = run(local_mbox(tmp_path, bodies, names), "--format", "json", *RULE)
    assert rc2 == 1 and findings(out) == findings(local)
    # the RFC leaves six raw uses; v1 converts one of them, v2 three
    assert len(findings(out)) == 6 - len(FIX1_EDIT) - (len(FIX2_EDIT) if not revision else 0)
    assert {f[3] for f in findings(out)} == {1}
    assert err.count("warning:") == 2  # the broken message and the duplicate id


def test_cover_base_commit_is_the_base(cli, env, archive, user_repo, bodies) -> None:
    """b4 writes base-commit: in the cover letter; the series applies there, not on HEAD."""
    p = user_repo / XIVE
    p.write_text(p.read_text() + "\nstatic u32 later(struct kvmppc_xive *xive, u32 s)\n"
                 "{\n\treturn xive_native_get_vp_state(xive->vp_base + s);\n}\n")
    git(user_repo, "commit", "-q", "-am", "a later commit with one more raw use")
    argv = ("series", "--inbox", str(archive), "v2-1@ibm", "--repo", str(user_repo),
            "--format", "json", "--all", *RULE)
    doc = json.loads(cli(*argv)[1])
    assert doc["target"] == f"{user_repo}@{bodies['base']}"
    assert {f["function"] for f in doc["findings"]} == {"xive_lock_and_mask",
                                                        "xive_finish_unmask",
                                                        "kvmppc_xive_clr_mapped"}
    doc = json.loads(cli(*argv, "--base", "HEAD")[1])
    assert "later" in {f["function"] for f in doc["findings"]}


def test_sarif_text_and_checkpatch(run, archive) -> None:
    rc, out, _ = run("--inbox", str(archive), "v2-2@ibm", "--format", "sarif", *RULE)
    assert json.loads(out)["runs"][0]["properties"]["series"]["message_id"] == "<v2-0@ibm>"
    rc, out, _ = run("--inbox", str(archive), "v2-2@ibm", *RULE)
    assert out.startswith(f"series: v2 '{RFC}' from Sam Bobroff")
    rc, out, err = run("--inbox", str(archive), "v2-2@ibm", "--format", "checkpatch",
                       "--terse", *RULE)
    assert rc == 1 and err == "" and all(": WARNING: " in ln for ln in out.splitlines())


def test_second_run_reads_no_old_message(env, tmp_path, bodies, monkeypatch) -> None:
    epoch = tmp_path / "grow"
    msgs = thread_messages(bodies)
    append(epoch, msgs[:4])
    reads: list[str] = []
    real = inbox._headers
    monkeypatch.setattr(inbox, "_headers", lambda raw: reads.append(raw) or real(raw))
    assert subjects(lookup(epoch, "v1-1@ibm")) == V1 and len(reads) == 4
    append(epoch, msgs[4:])
    assert subjects(lookup(epoch, "v1-1@ibm")) == V2 and len(reads) == len(msgs)
    assert len(set(reads)) == len(msgs)  # each message read once
    tip = git(epoch, "rev-parse", "HEAD")
    assert inbox.open_archive(str(epoch), lambda m: None)[1] == 0
    assert len(reads) == len(msgs) and git(epoch, "rev-parse", "HEAD") == tip


def test_deleted_message_leaves_the_index(env, tmp_path, bodies) -> None:
    epoch = tmp_path / "del"
    msgs = thread_messages(bodies)
    append(epoch, msgs)
    assert subjects(lookup(epoch, "v2-0@ibm")) == V2
    append(epoch, [("d", msgs[7])])  # v2 3/3 taken down
    with pytest.raises(InputError, match=r"v2 of '.*': patch 3/3 never arrived"):
        lookup(epoch, "v2-0@ibm")


def test_epochs(env, tmp_path, bodies) -> None:
    msgs = thread_messages(bodies)
    e0, e1 = tmp_path / "l" / "0", tmp_path / "l" / "1"
    append(e0, msgs[:4])
    append(e1, msgs[4:])
    picked, _ = inbox.series_from_inbox([str(e0), str(e1)], "v1-2@ibm", None, lambda m: None)
    assert subjects(picked) == V2


def test_unsafe_urls_and_refs_are_refused(cli, env, user_repo, tmp_path) -> None:
    runs = [("--inbox", url, "a@b", "--repo", str(user_repo))
            for url in ("ext::sh -c touch% /tmp/pwned", "-uhoh", "ftp://example.invalid/x")]
    runs += [("--remote", url, "--range", "main..HEAD")
             for url in ("ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/pwned")]
    runs += [("--remote", str(user_repo), "--range", r)
             for r in ("main..--upload-pack=touch", "main...HEAD", "main..", "-x..main")]
    for argv in runs:
        rc, out, err = cli("series", *argv)
        assert rc == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, argv
    assert files_under(env["cache"]) == {}


def test_a_repository_that_is_no_archive(cli, env, user_repo) -> None:
    rc, _, err = cli("series", "--inbox", str(user_repo), "a@b", "--repo", str(user_repo))
    assert (rc, err) == (2, f"vpcheck: error: {user_repo}: no message at all (not a "
                            "public-inbox archive?)\n")


def test_revision_of_an_unversioned_patch_is_its_covers() -> None:
    """A v3 cover whose patches forgot the v3 in their subjects (b4 infers it the same way)."""
    def h(mid: str, subject: str, day: int, irt: str | None = None) -> inbox.Header:
        return inbox.Header(mid, mid, subject, AUTHOR, day, irt, (irt,) if irt else ())

    thread = [h("c3", "[PATCH v3 0/2] s", 3), h("p1", "[PATCH 1/2] one", 3, "c3"),
              h("p2", "[PATCH 2/2] two", 3, "c3"), h("old", "[PATCH v2 1/1] old", 1)]
    raw = {m.msgid: mail(m.msgid, m.subject, f"---\ndiff --git a/{m.msgid} b/{m.msgid}\n"
                         "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", day=1) for m in thread}
    picked = inbox.pick(thread, None, lambda m: raw[m.msgid], lambda w: None)
    assert picked.meta == inbox.SeriesMeta("s", AUTHOR, "c3", 3)
    assert [m.msgid for m, _ in picked.messages] == ["p1", "p2"]


def test_usage_errors(cli, env, archive) -> None:
    for argv in (["--inbox", str(archive)], ["--remote", str(archive)],
                 ["--revision", "2", "x.mbox"], ["--remote", str(archive), "--range", "a..b",
                                                 "--base", "HEAD"], []):
        rc, out, err = cli("series", *argv)
        assert (rc, out) == (2, "") and err.startswith("vpcheck: error: series: "), argv


@pytest.mark.parametrize("subject,want", [
    ("[PATCH v3 07/12] x", (False, 3, 7, 12)),
    ("[RFC PATCH] x", (False, None, None, None)),
    ("[RFC][PATCH v2 1/2] x", (False, 2, 1, 2)),
    ("Re: [PATCH 1/2] x", (True, None, 1, 2)),
    ("AW: [PATCH 1/2] x", (True, None, 1, 2)),
    ("[PATCH 0/4] x", (False, None, 0, 4)),
])
def test_parse_subject(subject, want) -> None:
    s = inbox.parse_subject(subject)
    assert (s.reply, s.revision, s.n, s.total) == want and s.text == "x"


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe\x00", b"Message-ID: <a@b>\nReferences: " +
                                 b"<x@y> " * 10000 + b"\n\n", b"Message-ID: \n\n",
                                 b"Message-ID: <a@b>\nSubject: =?utf-8?b?////?=\n\n",
                                 b"Message-ID: <a@b>\nDate: Mon, 99 Foo 99999 99:99\n\n"])
def test_headers_of_bad_mail_never_raise(raw) -> None:
    h = inbox.parse_headers("0" * 40, raw)
    assert isinstance(h, str) or (h.msgid == "a@b" and len(h.parents) <= inbox.MAX_REFS)


def test_remote_range_equals_local_range(cli, env, tmp_path, bodies) -> None:
    work = make_repo(PRE_RFC, tmp_path / "work")
    git(work, "checkout", "-q", "-b", "topic")
    git(work, "am", "-q", str(SEED_MBOX))
    _commit(work, FIX1_EDIT, FIX1)
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    before = files_under(bare)
    rc, out, err = cli("series", "--remote", str(bare), "--range", "main..topic",
                       "--format", "json", *RULE)
    assert (rc, err) == (1, "")
    state = repo_state(work)
    rc2, local, _ = cli("series", "main..topic", "--repo", str(work), "--format", "json", *RULE)
    assert repo_state(work) == state and files_under(bare) == before
    assert findings(out) == findings(local) and len(findings(out)) == 5
    assert json.loads(out)["series"]["range"] == "main..topic"
    assert files_under(env["tmp"]) == {} and files_under(env["home"]) == {}
    rc, _, err = cli("series", "--remote", str(bare), "--range", "main..nope", *RULE)
    assert rc == 2 and "cannot fetch" in err


def b4_picks(tmp_path: Path, mbox: Path, msgid: str, revision: int | None) -> list[tuple]:
    """What `b4 am` takes from the same thread: (n, subject text) per patch, in order."""
    import email
    import email.policy
    import os
    import subprocess
    import sys

    b4 = Path(sys.executable).parent / "b4"
    if not b4.exists():
        pytest.skip("b4 is not installed (pip install -e '.[test]')")
    out = tmp_path / f"b4-{msgid}-{revision}"
    argv = [str(b4), "--offline-mode", "-q", "am", "-m", str(mbox), "-o", str(out), msgid]
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(argv + (["-v", str(revision)] if revision else []), cwd=tmp_path, env=env,
                   capture_output=True, check=True)
    (mbx,) = out.glob("*.mbx")
    got = []
    for chunk in re.split(rb"^From [^\n]*\n", mbx.read_bytes(), flags=re.M)[1:]:
        s = inbox.parse_subject(str(email.message_from_bytes(chunk, policy=email.policy.default)
                                    ["Subject"]))
        got.append((s.n, s.text))
    return got


@pytest.mark.parametrize(("msgid", "revision"), [("v2-2@ibm", None), ("r1@rev", None),
                                                 ("loop-b@x", None), ("v2-0@ibm", 1)])
def test_same_revision_and_patches_as_b4(env, tmp_path, bodies, archive, msgid,
                                         revision) -> None:
    """b4 is the reference for which revision a thread's series is (its newest by default).

    b4 is given the thread without the message that reuses v2 2/3's Message-ID: b4 keeps
    the copy it meets last and loses the patch; vpcheck keeps the first, as public-inbox
    gives a Message-ID to the first message that carries it."""
    mbox = tmp_path / "thread.mbox"
    mbox.write_bytes(inbox.as_mbox((None, m) for m in thread_messages(bodies)
                                   if b"buy now" not in m))
    ours = [(inbox.parse_subject(h.subject).n, inbox.parse_subject(h.subject).text)
            for h, _ in lookup(archive, msgid, revision).messages]
    assert ours == b4_picks(tmp_path, mbox, msgid, revision)


HEADERS = (b"Message-ID: <a@b>\nSubject: =?utf-8?q?=5BPATCH_v2_1=2F2=5D?= x\nFrom: A <a@b>\n"
           b"In-Reply-To: <c@d>\nReferences: <c@d> <e@f>\nDate: Thu, 12 Apr 2018 17:02:06 +1000\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.binary(max_size=200).map(lambda b: HEADERS[: len(b) % len(HEADERS)] + b),
                 st.text(max_size=300).map(lambda t: HEADERS + t.encode("utf-8", "replace"))))
def test_any_header_bytes_give_a_row_or_a_reason(raw: bytes) -> None:
    h = inbox.parse_headers("0" * 40, raw)
    if isinstance(h, str):
        assert "\n" not in h
        return
    assert h.msgid and h.msgid not in h.parents and len(h.parents) <= inbox.MAX_REFS
    assert not any(c in h.subject + h.author for c in "\n\r\x1b")
    inbox.parse_subject(h.subject)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_msgid_argument_is_an_id_or_refused(text: str) -> None:
    try:
        mid = inbox.msgid_argument(text)
    except InputError as e:
        assert "\n" not in str(e)
        return
    assert mid and not any(c in mid for c in " <>\n\x1b\x00")


def test_enormous_thread_is_one_error(env, archive, monkeypatch) -> None:
    monkeypatch.setattr(inbox, "MAX_THREAD", 5)
    with pytest.raises(InputError, match=r"<v2-0@ibm>: thread of more than 5 messages"):
        lookup(archive, "v2-0@ibm")


def test_undecodable_patch_is_a_warning_then_the_missing_error(cli, env, tmp_path,
                                                               user_repo) -> None:
    epoch = tmp_path / "bad"
    append(epoch, [mail("b1@x", "[PATCH 1/1] broken", b"\xff\xfe\ndiff --git a/x b/x\n",
                        day=1, extra="Content-Type: text/plain; charset=utf-8\n"
                                     "Content-Transfer-Encoding: 8bit\n")])
    rc, out, err = cli("series", "--inbox", str(epoch), "b1@x", "--repo", str(user_repo))
    assert (rc, out) == (2, "") and "Traceback" not in err
    warning, error = err.splitlines()
    assert warning.startswith("vpcheck: warning: <b1@x>: '[PATCH 1/1] broken' is not a usable "
                              "patch (")
    assert error == "vpcheck: error: <b1@x>: no patch in this thread"


def test_damaged_index_is_rebuilt(env, archive) -> None:
    assert subjects(lookup(archive, "v2-0@ibm")) == V2
    (index,) = (env["cache"] / "vpcheck" / "inbox").glob("*.sqlite3")
    index.write_bytes(b"not a database" * 100)
    warns: list[str] = []
    assert subjects(lookup(archive, "v2-0@ibm", warns=warns)) == V2
    assert warns[0] == f"{index}: damaged index, rebuilding it"


def test_a_fetch_from_a_hook_writes_only_the_cache(env, archive, user_repo, monkeypatch) -> None:
    """git hooks run with GIT_DIR set to the user's repository: the fetch into the cache
    must not follow it (every git command is pinned to the cache repository)."""
    before = repo_state(user_repo)
    with monkeypatch.context() as m:
        m.setenv("GIT_DIR", str(user_repo / ".git"))
        m.setenv("GIT_INDEX_FILE", str(user_repo / ".git" / "index"))  # as pre-commit
        assert subjects(lookup(archive, "v2-0@ibm")) == V2
    assert repo_state(user_repo) == before
    assert any(p.endswith(".git/HEAD") for p in files_under(env["cache"] / "vpcheck" / "inbox"))


def test_a_failed_first_fetch_leaves_nothing(env, tmp_path) -> None:
    empty = tmp_path / "not-an-archive"
    empty.mkdir()
    with pytest.raises(InputError, match="cannot fetch HEAD"):
        inbox.open_archive(str(empty), lambda m: None)
    assert files_under(env["cache"]) == {}
