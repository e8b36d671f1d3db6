"""Debian's linux-source-6.12: silence on the real code, and the right finding
on copies where one VP-helper call is turned back into raw arithmetic."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources import tree as source

pytestmark = pytest.mark.realtree

XIVE_FILES = ("arch/powerpc/kvm/book3s_xive.c", "arch/powerpc/kvm/book3s_xive_native.c")
HELPER_CALL = re.compile(rb"kvmppc_xive_vp\(\s*(\w+)\s*,\s*([\w>.-]+)\s*\)")


def run(snap: source.Snapshot, rule: str = "xive-raw-vp-base"):
    return checks.run(ruleset.select([rule]), facts.extract(snap))


def test_real_tree_has_no_raw_vp_base(realtree: Path, cli) -> None:
    rc, out, err = cli("check", str(realtree), "--rule", "xive-raw-vp-base")
    assert (rc, err) == (0, ""), out
    assert "0 warnings" in out


def helper_calls(snap: source.Snapshot):
    for path in XIVE_FILES:
        data = snap.files[path]
        for m in HELPER_CALL.finditer(data):
            yield path, data, m


def test_each_helper_call_reverted_gives_one_finding(realtree: Path, tmp_path: Path) -> None:
    snap = source.from_directory(realtree)
    calls = list(helper_calls(snap))
    assert len(calls) >= 5, "expected the five kvmppc_xive_vp() calls of 6.12"
    for path, data, m in calls:
        raw = m.group(1) + b"->vp_base + " + m.group(2)
        mutated = data[: m.start()] + raw + data[m.end():]
        line = data.count(b"\n", 0, m.start()) + 1
        found = run(snap.with_files({path: mutated}, "mutant"))
        assert [(f.path, f.line) for f in found] == [(path, line)], (path, line)
        (finding,) = found
        # the function named is the one that holds the line
        fn = [f for f in facts.extract(snap).files[path].functions if f.line <= line <= f.end_line]
        assert finding.function == fn[-1].name

        # the fix applies with git apply and restores the original bytes
        work = tmp_path / f"apply-{line}"
        target = work / path
        target.parent.mkdir(parents=True)
        target.write_bytes(mutated)
        subprocess.run(["git", "apply", "-"], cwd=work, input=finding.fix.encode(), check=True)
        assert target.read_bytes() == data
        assert run(snap.with_files({path: target.read_bytes()}, "fixed")) == []


def test_tarball_and_directory_agree(realtree: Path, cli) -> None:
    rc_dir, out_dir, _ = cli("check", str(realtree), "--format", "json")
    rc_tar, out_tar, _ = cli("check", "/usr/src/linux-source-6.12.tar.xz", "--format", "json")
    assert rc_dir == rc_tar
    a, b = json.loads(out_dir), json.loads(out_tar)
    assert a["findings"] == b["findings"]
    assert a["summary"]["files"] == b["summary"]["files"]
