"""Series mode reuses a model verdict while what the check reads is unchanged, and
moves its findings to the lines their functions moved to."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.checks import registry
from analyzer.sources import tree as source

from .conftest import FIXTURES

TREE = FIXTURES / "rules" / "vp-block-bound" / "raw-check"
XIVE = "arch/powerpc/kvm/book3s_xive.c"


@pytest.fixture
def sweeps(monkeypatch) -> dict[str, int]:
    """How often each model-backed check really ran (not served from the verdict cache)."""
    count: dict[str, int] = {}
    monkeypatch.setattr(checks, "_VERDICTS", {})
    for name, spec in list(registry.discover().items()):
        if not spec.reads:
            continue

        def counted(rule, fx, _fn=spec.fn, _name=name):
            count[_name] = count.get(_name, 0) + 1
            return _fn(rule, fx)

        monkeypatch.setitem(registry.CHECKS, name, replace(spec, fn=counted))
    return count


def _edited(snap: source.Snapshot, old: bytes, new: bytes) -> source.Snapshot:
    data = snap.files[XIVE]
    assert old in data
    return snap.with_files({XIVE: data.replace(old, new, 1)}, snap.target + "+1")


def _run(snap: source.Snapshot, reuse: bool = True):
    rules = ruleset.select(["vp-block-bound"])
    return checks.run(rules, facts.extract(snap, ruleset.tokens(rules)), reuse=reuse)


def _lines(found) -> list[tuple[int, tuple[int, ...]]]:
    return [(f.line, tuple(n.line for n in f.notes)) for f in found]


def test_a_comment_above_moves_findings_without_a_new_sweep(sweeps) -> None:
    base = source.from_directory(TREE)
    shifted = _edited(base, b"#include", b"/* a comment */\n#include")
    first = _run(base)
    assert first and sweeps == {"vp_block_bound": 1}
    moved = _run(shifted)
    assert sweeps == {"vp_block_bound": 1}, "a line shift must not sweep the model again"
    assert _lines(moved) == [(f.line + 1, tuple(n.line + 1 for n in f.notes)) for f in first]
    fresh = _run(shifted, reuse=False)
    assert sweeps == {"vp_block_bound": 2}
    assert moved == fresh
    assert [(f.snippet, f.fingerprint) for f in moved] == [(f.snippet, f.fingerprint)
                                                          for f in fresh]


def test_a_changed_function_sweeps_again(sweeps) -> None:
    base = source.from_directory(TREE)
    _run(base)
    _run(_edited(base, b"vp_id = kvmppc_xive_vp(xive, cpu);",
                 b"vp_id = kvmppc_xive_vp(xive, cpu); (void)0;"))
    assert sweeps == {"vp_block_bound": 2}


def test_a_line_outside_any_function_of_a_changed_file_is_not_guessed() -> None:
    from analyzer import relocate
    from analyzer.findings import Finding

    base = source.from_directory(TREE)
    shifted = _edited(base, b"#include", b"/* a comment */\n#include")
    old, new = facts.extract(base), facts.extract(shifted)
    fn = old.functions["kvmppc_xive_connect_vcpu"]
    inside = Finding("r", "warning", XIVE, fn.line + 1, 1, fn.name, f"see line {fn.line}")
    outside = replace(inside, line=1, message="at the top")
    was = relocate.origin(old, [inside, outside])
    assert relocate.move([inside], was, new) == [
        replace(inside, line=fn.line + 2, message=f"see line {fn.line + 1}")]
    assert relocate.move([inside, outside], was, new) is None
    assert relocate.move([inside, outside], was, old) == [inside, outside]
