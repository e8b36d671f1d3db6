"""Every rule against every annotated fixture: exact agreement, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources.tree import Snapshot

from .annotations import annotations, compare
from .conftest import FIXTURES

RULE_DIR = FIXTURES / "rules"


def fixture_snapshot(case: Path) -> Snapshot:
    """A single .c is placed in arch/powerpc/kvm/; a directory is a small tree."""
    if case.is_file():
        return Snapshot(str(case), {f"arch/powerpc/kvm/{case.name}": case.read_bytes()})
    files = {p.relative_to(case).as_posix(): p.read_bytes()
             for p in sorted(case.rglob("*")) if p.is_file()}
    return Snapshot(str(case), files)


def cases():
    for rule_dir in sorted(RULE_DIR.iterdir()):
        for case in sorted(rule_dir.iterdir()):
            if case.suffix in (".c", ".h") or case.is_dir():
                yield pytest.param(rule_dir.name, case, id=f"{rule_dir.name}/{case.name}")


@pytest.mark.parametrize(("rule_id", "case"), list(cases()))
def test_fixture(rule_id: str, case: Path) -> None:
    snap = fixture_snapshot(case)
    marks = annotations(snap.files)
    expected = marks.get(f"expect:{rule_id}", set())
    assert expected or marks.get(f"ok:{rule_id}"), f"{case} carries no annotation for {rule_id}"
    rules = ruleset.select([rule_id])
    found = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))
    noisy, missing = compare(expected, ((f.path, f.line) for f in found))
    assert not noisy and not missing, f"noisy (false positives): {sorted(noisy)}; " \
                                      f"missing (false negatives): {sorted(missing)}"
    for path, line in marks.get(f"ok:{rule_id}", set()):
        assert (path, line) not in expected, f"{path}:{line} is both expect and ok"


def test_every_rule_has_fixtures() -> None:
    have = {p.name for p in RULE_DIR.iterdir() if any(p.iterdir())}
    missing = {r.id for r in ruleset.load_rules()} - have
    assert not missing, f"rules without fixtures: {sorted(missing)}"


def test_fixture_dirs_name_known_rules() -> None:
    known = {r.id for r in ruleset.load_rules()}
    unknown = {p.name for p in RULE_DIR.iterdir()} - known
    assert not unknown, f"fixture directories for unknown rules: {sorted(unknown)}"


def test_annotations_name_known_rules() -> None:
    known = {r.id for r in ruleset.load_rules()}
    for p in FIXTURES.rglob("*.[ch]"):
        for key in annotations({p.name: p.read_bytes()}):
            assert key.split(":", 1)[1] in known, f"{p}: unknown rule in annotation {key}"
