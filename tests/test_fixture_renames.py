"""Every rule fixture, with a function, a field or a parameter renamed everywhere,
gives the same findings (rule, place, severity): functions, tables and the VP base
are recognised by their role, not their names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources.tree import Snapshot

from .test_rule_fixtures import RULE_DIR, cases, fixture_snapshot

RENAMES = {"packing function": ("kvmppc_pack_vcpu_id", "vpc_fold"),
           "VCORE table field": ("vcores", "vc_table"),
           "VP base field": ("vp_base", "vp_first"),
           "VP helper": ("kvmppc_xive_vp", "vp_of"),
           "server parameter": ("cpu", "srv")}


def _verdict(rule_id: str, snap: Snapshot) -> list[tuple]:
    rules = ruleset.select([rule_id])
    found = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))
    return sorted((f.rule, f.path, f.line, f.severity) for f in found)


def _word(name: str) -> re.Pattern[bytes]:
    return re.compile(rb"\b%s\b" % name.encode())


def _applicable() -> list:
    """Only the (fixture, rename) pairs where the fixture has the name: a pair
    without it would test nothing."""
    out = []
    for param in cases():
        rule_id, case = param.values
        files = fixture_snapshot(case).files.values()
        out += [pytest.param(rule_id, case, r, id=f"{param.id}-{r}")
                for r, (old, _) in RENAMES.items() if any(_word(old).search(d) for d in files)]
    return out


@pytest.mark.parametrize(("rule_id", "case", "rename"), _applicable())
def test_rename_changes_no_finding(rule_id: str, case: Path, rename: str) -> None:
    old, new = RENAMES[rename]
    snap = fixture_snapshot(case)
    pat = _word(old)
    renamed = Snapshot("renamed", {p: pat.sub(new.encode(), d) for p, d in snap.files.items()})
    assert _verdict(rule_id, renamed) == _verdict(rule_id, snap)


def test_there_are_fixtures() -> None:
    assert any(RULE_DIR.iterdir())
