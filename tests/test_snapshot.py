"""Every fixture's full findings, checked in: a change to any finding (rule, place,
severity, message, counterexample, path notes) shows up in review as a diff of
``tests/data/findings_snapshot.json``.

Regenerate after an intended change with
``VPCHECK_UPDATE_SNAPSHOT=1 python -m pytest tests/test_snapshot.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from analyzer import checks, ruleset
from analyzer.c import facts

from .conftest import FIXTURES
from .test_rule_fixtures import fixture_snapshot

SNAPSHOT = Path(__file__).parent / "data" / "findings_snapshot.json"


def _cases() -> list[Path]:
    out = []
    for group in ("rules", "trees"):
        for parent in sorted((FIXTURES / group).iterdir()):
            kids = sorted(parent.iterdir()) if group == "rules" else [parent]
            out.extend(k for k in kids if k.is_dir() or k.suffix in (".c", ".h"))
    return out


def _record(f) -> dict:
    return {"rule": f.rule, "severity": f.severity, "path": f.path, "line": f.line,
            "function": f.function, "message": f.message,
            "counterexample": f.counterexample and dict(f.counterexample),
            "notes": [[n.path, n.line, n.message] for n in f.notes],
            "fingerprint": f.fingerprint}


def current() -> dict[str, list[dict]]:
    rules = ruleset.load_rules()
    out = {}
    for case in _cases():
        snap = fixture_snapshot(case)
        found = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))
        out[case.relative_to(FIXTURES).as_posix()] = [_record(f) for f in found]
    return json.loads(json.dumps(out))


def test_findings_match_the_checked_in_snapshot() -> None:
    now = current()
    if os.environ.get("VPCHECK_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(now, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    want = json.loads(SNAPSHOT.read_text())
    assert sorted(now) == sorted(want), "fixture set changed"
    for case in sorted(want):
        assert now[case] == want[case], f"{case}: findings differ from the snapshot"


def test_fingerprints_survive_a_line_inserted_above() -> None:
    """No rule puts a line number into its fingerprint: a patch that adds lines above
    a finding must not turn it into a 'new' finding in series mode."""
    rules = ruleset.load_rules()
    checked = 0
    for case in _cases():
        snap = fixture_snapshot(case)
        before = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))
        if not before:
            continue
        shifted = type(snap)(snap.target, {p: b"/* a comment */\n\n" + d
                                           for p, d in snap.files.items()})
        after = checks.run(rules, facts.extract(shifted, ruleset.tokens(rules)))
        assert sorted(f.fingerprint for f in after) == sorted(f.fingerprint for f in before), \
            case
        assert {f.line for f in after} == {f.line + 2 for f in before if f.line}
        checked += len(before)
    assert checked > 50
