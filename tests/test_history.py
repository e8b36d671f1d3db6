"""vpcheck history: introducing and fixing commits, regressions, Fixes: lines, caching.

The repository is built the way a kernel branch grows: the pre-RFC tree, the
seed RFC applied with ``git am``, unrelated work in between, a fix on the
main line, another on a side branch that is merged, a rename of the file, and
a later commit that brings one raw ``vp_base`` use back (a regression).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import FIXTURES, SEED_MBOX
from .gitutil import ENV, git, make_repo, repo_state

PRE_RFC = FIXTURES / "trees" / "pre-rfc"
XIVE = "arch/powerpc/kvm/book3s_xive.c"
XIVE_NEW = "arch/powerpc/kvm/book3s_xive_main.c"
RFC_SUBJECT = "KVM: PPC: Book3S HV: pack VCORE IDs to access full VCPU ID space"
TARGET_RAW = b"xive->vp_base + server, prio"
TARGET_FIXED = b"xive_vp(xive, server), prio"
QUEUE_RAW = b"xc->xive->vp_base + xc->server_num"
QUEUE_FIXED = b"xive_vp(xc->xive, xc->server_num)"

_clock = iter(range(10**6))


def _commit(repo: Path, message: str, *args: str) -> str:
    """Commit with a date of its own, so dates in the report are checkable."""
    n = next(_clock)
    env = {**ENV, "GIT_AUTHOR_DATE": f"2018-05-{1 + n % 28:02d}T12:00:00+00:00",
           "GIT_COMMITTER_DATE": f"2018-05-{1 + n % 28:02d}T12:00:00+00:00"}
    subprocess.run(["git", "-C", str(repo), "commit", "-q", *args, "-m", message], env=env,
                   check=True, capture_output=True)
    return git(repo, "rev-parse", "HEAD").strip()


def _edit(repo: Path, path: str, old: bytes, new: bytes) -> None:
    p = repo / path
    data = p.read_bytes()
    assert data.count(old) == 1, (path, old)
    p.write_bytes(data.replace(old, new))


def _touch(repo: Path, path: str, text: str) -> None:
    p = repo / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    git(repo, "add", path)


def build_history(dest: Path) -> dict[str, str]:
    """The repository; returns the commit of each step by name."""
    repo = make_repo(PRE_RFC, dest, "KVM: PPC: the tree before the RFC")
    c = {"base": git(repo, "rev-parse", "HEAD").strip()}
    _touch(repo, "Documentation/virt/kvm/ppc-ids.rst", "VCPU IDs on POWER\n")
    c["doc"] = _commit(repo, "Documentation: KVM: describe VCPU IDs on POWER")
    git(repo, "am", "-q", str(SEED_MBOX))
    c["rfc"] = git(repo, "rev-parse", "HEAD").strip()
    _touch(repo, "arch/powerpc/kvm/Makefile", "obj-y += book3s_xive.o\n")  # not read
    c["makefile"] = _commit(repo, "KVM: PPC: add a Makefile")
    git(repo, "checkout", "-q", "-b", "xive-fixes")
    _edit(repo, XIVE, QUEUE_RAW, QUEUE_FIXED)
    c["side"] = _commit(repo, "KVM: PPC: Book3S HV: XIVE: use xive_vp() to disable queues", "-a")
    git(repo, "checkout", "-q", "main")
    _edit(repo, XIVE, TARGET_RAW, TARGET_FIXED)
    c["fix"] = _commit(repo, "KVM: PPC: Book3S HV: XIVE: use xive_vp() to target interrupts",
                       "-a")
    _touch(repo, "tools/testing/selftests/kvm/ppc.c", "int main(void) { return 0; }\n")
    c["tools"] = _commit(repo, "KVM: selftests: a POWER placeholder")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'xive-fixes'", "xive-fixes")
    c["merge"] = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "mv", XIVE, XIVE_NEW)
    c["rename"] = _commit(repo, "KVM: PPC: Book3S HV: XIVE: rename book3s_xive.c")
    _edit(repo, XIVE_NEW, TARGET_FIXED, TARGET_RAW)
    c["regression"] = _commit(repo, "KVM: PPC: Book3S HV: XIVE: compute the VP inline", "-a")
    _touch(repo, "MAINTAINERS", "KVM PPC\n")
    c["tail"] = _commit(repo, "MAINTAINERS: KVM PPC")
    return c


@pytest.fixture(scope="module")
def hist(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("hist") / "repo"
    return repo, build_history(repo)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _history(cli, repo: Path, *args: str) -> tuple[int, dict]:
    rc, out, err = cli("history", "--repo", str(repo), "--format", "json", *args)
    assert err == "", err
    return rc, json.loads(out)


def _by(doc: dict, function: str, rule: str = "xive-raw-vp-base") -> list[dict]:
    return [f for f in doc["findings"] if f["function"] == function and f["rule"] == rule]


def _spans(entry: dict) -> list[tuple[str, str | None]]:
    return [(iv["introduced"]["commit"], iv["fixed"] and iv["fixed"]["commit"])
            for iv in entry["intervals"]]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_introduced_and_fixed(hist, cli, jobs: str) -> None:
    repo, c = hist
    before = repo_state(repo)
    rc, doc = _history(cli, repo, "--jobs", jobs)
    assert repo_state(repo) == before
    assert rc == 1
    (target,) = _by(doc, "xive_target_interrupt")
    assert _spans(target) == [(c["rfc"], c["fix"]), (c["regression"], None)]
    assert target["regression"] is True and target["fixed"] is None
    assert target["introduced"] == {
        "commit": c["regression"], "subject": "KVM: PPC: Book3S HV: XIVE: compute the VP inline",
        "date": git(repo, "log", "-1", "--format=%aI", c["regression"]).strip()}
    assert target["path"] == XIVE_NEW  # where it stands now, after the rename
    (queues,) = _by(doc, "xive_vcpu_disable_queues")
    assert _spans(queues) == [(c["rfc"], c["merge"])]  # first parent: the merge fixed it
    assert queues["fixed"]["subject"] == "Merge branch 'xive-fixes'"
    others = [f for f in doc["findings"] if f["rule"] == "xive-raw-vp-base"
              and f["function"] not in ("xive_target_interrupt", "xive_vcpu_disable_queues")]
    assert len(others) == 4
    assert all(_spans(f) == [(c["rfc"], None)] for f in others)
    assert all(f["introduced"]["subject"] == RFC_SUBJECT for f in others)
    # nothing is attributed to commits that change no file vpcheck reads, or to the rename
    quiet = {c[k] for k in ("doc", "makefile", "tools", "rename", "tail", "side")}
    assert not {s for f in doc["findings"] for span in _spans(f) for s in span} & quiet


def test_agrees_with_check_at_every_commit(hist, cli) -> None:
    """Independent oracle: `check --rev` on every first-parent commit."""
    repo, _ = hist
    rc, doc = _history(cli, repo)
    order = git(repo, "rev-list", "--first-parent", "--reverse", "HEAD").split()
    pos = {sha: i for i, sha in enumerate(order)}
    for sha in order:
        _, out, _ = cli("check", str(repo), "--rev", sha, "--format", "json")
        now = {f["fingerprint"] for f in json.loads(out)["findings"]}
        said = {f["fingerprint"] for f in doc["findings"] for iv in f["intervals"]
                if pos[iv["introduced"]["commit"]] <= pos[sha]
                < (pos[iv["fixed"]["commit"]] if iv["fixed"] else len(order))}
        assert said == now, sha


def test_fixes_tags(hist, cli) -> None:
    repo, c = hist
    rc, out, err = cli("history", "--repo", str(repo), "--fixes-tag")
    assert (rc, err) == (1, "")
    lines = out.splitlines()
    assert f'Fixes: {c["rfc"][:12]} ("{RFC_SUBJECT}")' in lines
    assert (f'Fixes: {c["regression"][:12]} ("KVM: PPC: Book3S HV: XIVE: compute the VP '
            f'inline")') in lines
    assert all(len(line.split()[1]) == 12 for line in lines)
    assert len(lines) == len(set(lines))
    # the kernel's own format, checked with git itself
    pretty = git(repo, "log", "-1", "--abbrev=12", "--format=Fixes: %h (\"%s\")", c["rfc"])
    assert pretty.strip() in lines


def test_fixes_line_for_series(hist) -> None:
    from analyzer import history, ruleset

    repo, c = hist
    rules = ruleset.select(["xive-raw-vp-base"])
    h = history.run(str(repo), None, rules)
    (target,) = [e for e in h.entries if e.finding.function == "xive_target_interrupt"]
    fp = target.finding.fingerprint
    assert history.fixes_line(str(repo), "HEAD", fp, rules) == (
        f'Fixes: {c["regression"][:12]} ("KVM: PPC: Book3S HV: XIVE: compute the VP inline")')
    assert history.fixes_line(str(repo), c["rename"], fp, rules) is None  # fixed there
    assert history.fixes_line(str(repo), c["merge"], fp, rules) is None


def test_range_marks_findings_at_base(hist, cli) -> None:
    repo, c = hist
    rc, doc = _history(cli, repo, f"{c['makefile']}..HEAD")
    (target,) = _by(doc, "xive_target_interrupt")
    assert target["intervals"][0]["introduced"]["at_base"] is True
    assert target["intervals"][0]["introduced"]["commit"] == c["makefile"]
    rc, out, err = cli("history", "--repo", str(repo), f"{c['makefile']}..HEAD", "--fixes-tag")
    assert f'{c["rfc"][:12]}' not in out  # outside the range: no tag names the base
    assert "already present at the range's base" in err
    assert f'{c["regression"][:12]}' in out
    rc, doc = _history(cli, repo, f"{c['regression']}..HEAD")  # only MAINTAINERS changes
    assert rc == 1 and doc["summary"]["commits"] == 0
    assert all(f["introduced"]["at_base"] and f["fixed"] is None for f in doc["findings"])


def test_clean_end_exits_0(hist, cli) -> None:
    repo, c = hist
    rc, doc = _history(cli, repo, c["merge"], "--rule", "xive-raw-vp-base")
    assert {f["function"] for f in doc["findings"] if f["fixed"] is None} == {
        "xive_lock_and_mask", "xive_finish_unmask", "kvmppc_xive_set_mapped",
        "kvmppc_xive_clr_mapped"}
    assert rc == 1
    rc, doc = _history(cli, repo, c["doc"], "--rule", "xive-raw-vp-base")
    assert rc == 0 and doc["findings"] == []


def test_second_run_parses_nothing(hist, cli, monkeypatch) -> None:
    from analyzer.c import facts
    from analyzer.c import parse as cparse

    repo, _ = hist
    calls = {"extract": 0}
    real_extract = facts.extract

    def counting_extract(*a, **k):
        calls["extract"] += 1
        return real_extract(*a, **k)

    monkeypatch.setattr(facts, "extract", counting_extract)
    cparse._parse_cached.cache_clear()
    rc1, first = _history(cli, repo)
    assert calls["extract"] == first["summary"]["analysed"] > 0
    # distinct snapshot keys only: the commits that change nothing read are free
    assert first["summary"]["snapshots"] < first["summary"]["commits"] + 1
    calls["extract"] = 0
    cparse._parse_cached.cache_clear()
    rc2, second = _history(cli, repo)
    assert calls["extract"] == 0 and cparse._parse_cached.cache_info().misses == 0
    assert second["summary"]["analysed"] == 0
    assert second["summary"]["cached"] == first["summary"]["snapshots"]
    assert (rc1, first["findings"]) == (rc2, second["findings"])


def test_cache_survives_corruption_and_stays_bounded(hist, cli, own_cache, monkeypatch) -> None:
    repo, _ = hist
    rc, first = _history(cli, repo)
    entries = sorted((own_cache / "vpcheck" / "history").glob("*/*.json"))
    assert len(entries) == first["summary"]["analysed"]
    entries[0].write_bytes(b"{not json")
    entries[1].write_bytes(b'[{"rule": 1}]')
    rc, second = _history(cli, repo)
    assert second["summary"]["analysed"] == 2 and second["findings"] == first["findings"]
    assert not list((own_cache / "vpcheck" / "history").glob("*/.tmp-*"))
    monkeypatch.setenv("VPCHECK_CACHE_MB", "0")
    rc, third = _history(cli, repo, "--rule", "capacity")
    assert third["findings"] and not list((own_cache / "vpcheck" / "history").glob("*/*.json"))


def test_concurrent_writers_never_leave_a_torn_entry(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from analyzer.sources import cache

    value = [{"x": "y" * 100_000}]

    def write(i: int) -> object:
        cache.store("t", "ab" + "0" * 62, value)
        return cache.load("t", "ab" + "0" * 62)

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(write, range(32)))
    assert all(v in (None, value) for v in seen) and value in seen
    assert cache.load("t", "ab" + "0" * 62) == value


def test_sarif_and_text(hist, cli) -> None:
    repo, c = hist
    rc, out, _ = cli("history", "--repo", str(repo), "--format", "sarif")
    doc = json.loads(out)
    results = doc["runs"][0]["results"]
    states = {r["baselineState"] for r in results}
    assert states == {"unchanged", "absent"}
    rc, out, _ = cli("history", "--repo", str(repo), "--rule", "xive-raw-vp-base")
    assert "regression: present over 2 intervals" in out
    assert f"fixed      {c['fix'][:12]}" in out


def test_bad_input(tmp_path: Path, hist, cli) -> None:
    repo, _ = hist
    rc, out, err = cli("history", "--repo", str(repo), "nosuchrev..HEAD")
    assert rc == 2 and err.count("\n") == 1 and "nosuchrev" in err
    rc, out, err = cli("history", "--repo", str(tmp_path))
    assert rc == 2 and "not a git repository" in err
    rc, out, err = cli("history", "--repo", str(repo), "--", "--output=/tmp/x")
    assert rc == 2 and not os.path.exists("/tmp/x")


def test_a_snapshot_that_cannot_be_checked_is_skipped_and_said(hist, cli, monkeypatch) -> None:
    """Old history may hold files vpcheck cannot read; the walk goes on around them."""
    from analyzer.c import facts

    repo, c = hist
    real = facts.extract
    bad = git(repo, "rev-parse", f"{c['fix']}:{XIVE}").strip()

    def extract(snap, *a, **k):
        if cparse_blob(snap.files.get(XIVE, b"")) == bad:
            raise ValueError("cannot evaluate this")
        return real(snap, *a, **k)

    monkeypatch.setattr(facts, "extract", extract)
    rc, out, err = cli("history", "--repo", str(repo), "--format", "json", "--rule",
                       "xive-raw-vp-base")
    doc = json.loads(out)
    assert rc == 1 and f"{c['fix'][:12]} not checked: internal error" in err
    assert doc["summary"]["skipped"][0]["commit"] == c["fix"]
    (target,) = _by(doc, "xive_target_interrupt")
    # the fix is not seen, so the finding runs on until the next snapshot that is checked
    assert _spans(target)[0] == (c["rfc"], c["merge"])


def cparse_blob(data: bytes) -> str:
    from analyzer.c.parse import blob_id

    return blob_id(data)


def test_prune_drops_the_oldest_entries_first(tmp_path: Path) -> None:
    from analyzer.sources import cache

    keys = [f"{i:02d}" + "0" * 62 for i in range(4)]
    for i, k in enumerate(keys):
        cache.store("p", k, ["x" * 1000])
        p = cache._path("p", k)
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    size = cache._path("p", keys[0]).stat().st_size
    freed = cache.prune("p", 2 * size)
    assert freed == 2 * size
    assert [cache.load("p", k) is not None for k in keys] == [False, False, True, True]


def test_series_fixes_tag_names_the_commit_that_introduced_each_fixed_finding(
        cli, tmp_path: Path) -> None:
    """A series that removes findings prints, under each `fixed:` one, the Fixes: line
    of the base-history commit that brought it in (the RFC here)."""
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    git(repo, "am", "-q", str(FIXTURES / "series" / "rfc-plus-fix.mbox"))
    before = repo_state(repo)
    want = git(repo, "log", "-1", "--abbrev=12", "--format=Fixes: %h (\"%s\")", "HEAD~1").strip()
    rc, out, err = cli("series", "HEAD~1..HEAD", "--repo", str(repo), "--fixes-tag",
                       "--format", "json")
    fixed = json.loads(out)["fixed"]
    assert (rc, err, len(fixed)) == (0, "", 6)
    assert {f["fixes_tag"] for f in fixed} == {want}
    rc, out, _ = cli("series", "HEAD~1..HEAD", "--repo", str(repo), "--fixes-tag")
    blocks = ("\n" + out).split("\nfixed: ")[1:]  # each fixed finding with its indented lines
    assert len(blocks) == 6 and all(f"\n    {want}\n" in b + "\n" for b in blocks)
    rc, out, _ = cli("series", "HEAD~1..HEAD", "--repo", str(repo), "--format", "json")
    assert all("fixes_tag" not in f for f in json.loads(out)["fixed"])
    assert repo_state(repo) == before


@pytest.mark.parametrize("changed", ["profiles/powerpc-kvm-hv.toml", "pack-table.toml"])
def test_a_changed_profile_or_rule_file_invalidates_cached_verdicts(hist, cli, tmp_path,
                                                                     monkeypatch,
                                                                     changed: str) -> None:
    """The verdict key covers the rule files and the profiles, not only the code."""
    import importlib.resources
    import shutil

    from analyzer import history

    data = tmp_path / "rules"
    shutil.copytree(Path(str(importlib.resources.files("analyzer.rules"))), data)
    monkeypatch.setattr(history, "_rule_data", lambda: data)
    repo, _ = hist
    _, first = _history(cli, repo)
    _, again = _history(cli, repo)
    assert first["summary"]["analysed"] > 0 and again["summary"]["analysed"] == 0
    with (data / changed).open("a") as f:
        f.write("# a change a cached verdict must not survive\n")
    _, after = _history(cli, repo)
    assert after["summary"]["cached"] == 0
    assert after["summary"]["analysed"] == first["summary"]["analysed"]


def test_a_header_only_read_for_its_macros_is_part_of_the_snapshot(tmp_path: Path, cli) -> None:
    """A commit that changes only a header holding none of the rules' tokens but defining
    a macro the checked code uses (``MAX_SMT_THREADS``) changes the findings: its state
    must not be taken for the one before it (the same cache key)."""
    repo = make_repo(FIXTURES / "trees" / "rfc-applied", tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD").strip()
    _edit(repo, "arch/powerpc/include/asm/kvm_book3s_asm.h",
          b"#define MAX_SMT_THREADS\t\t8", b"#define MAX_SMT_THREADS\t\t4")
    head = _commit(repo, "KVM: PPC: Book3S: four threads at most", "-a")
    _, doc = _history(cli, repo)
    found = {}
    for sha in (base, head):
        _, out, _ = cli("check", str(repo), "--rev", sha, "--format", "json")
        found[sha] = {f["fingerprint"] for f in json.loads(out)["findings"]}
    assert found[base] - found[head]  # the edit fixes some: the test can tell
    spans = {(f["fingerprint"], *s) for f in doc["findings"] for s in _spans(f)}
    assert spans == {(fp, base, head) for fp in found[base] - found[head]} | {
        (fp, base, None) for fp in found[base] & found[head]}
