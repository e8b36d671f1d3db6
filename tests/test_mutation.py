"""Mutation tests: injected bugs of every sink kind must be found, at the right line.

Mutants come from operators over the real code (tests/metamorph/mutations.py):
the VP helper turned back into raw ``vp_base +`` (also through a macro, and
with the field renamed), a
table entry or divisor of the packing function changed, a collision's
handling turned into ``BUG_ON``, a VP block allocated too small (``- 1``, or
capped at 16), a store into ``vcores[]`` before its bound check, a
``vcores[]`` loop bound one past ``KVM_MAX_VCORES``, a guard weakened at its
boundary or its stride dropped. Each must be reported by the right rule at
the documented line, with a counterexample that ``derive`` re-derives from
the mutated source with the C arithmetic of tests/creference.py (independent of
``analyzer``). Equivalent mutants (``derive``
shows them harmless, or ``id >= B`` rewritten as ``id > B - 1``) must change
nothing. Besides the seeded sample, the saved corpus
(tests/data/mutation/corpus.toml: one mutant per cause a full sweep found) is
replayed. Cases today's engine fails are strict xfails listed in
tests/data/mutation/known-failures.toml; regenerate with
``python benchmarks/mutation_sweep.py --sample --write-known
tests/data/mutation/known-failures.toml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metamorph import derive, plan
from tests.metamorph.mutations import OPERATORS
from tests.metamorph.oracle import Outcome, load_known

TREES = plan.fixture_trees()
CASES = plan.mutation_test_cases(TREES)
KNOWN = load_known(plan.MUTATION_KNOWN, "operator")


def _expect(request: pytest.FixtureRequest, outcome: Outcome) -> None:
    symptom = KNOWN.get(outcome.case)
    if symptom is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"known: {symptom}"))
    assert outcome.ok, f"{outcome.transform} at {outcome.site}: {outcome.symptom}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}|{c[2]}" for c in CASES])
def test_mutant_is_found_where_the_bug_is(case: tuple[str, str, str], request) -> None:
    _expect(request, plan.run_mutant(*case))


@pytest.mark.realtree
@pytest.mark.parametrize("operator", sorted({
    "raw-vp-helper", "raw-vp-macro", "raw-vp-renamed-field", "table-entry", "table-swap",
    "divisor", "collision-bug-on", "vp-block-minus-one", "vp-block-cap16", "vcores-store",
    "vcores-loop-bound", "guard-weaken", "guard-equivalent", "drop-stride"}))
def test_mutant_is_found_on_6_12(operator: str, realtree: Path, request) -> None:
    keys = [k for k in plan.mutant_sample(plan.REALTREE, str(realtree), 1)
            if k.startswith(operator + "|")]
    if not keys:
        pytest.skip(f"{operator}: no site in 6.12")
    _expect(request, plan.run_mutant(plan.REALTREE, str(realtree), keys[0]))


def test_every_operator_has_sites_on_the_bundled_trees() -> None:
    ops = {k.partition("|")[0] for name in ("pre-rfc", "rfc-applied")
           for k in plan.mutants_of(name, str(TREES[name]))}
    assert ops >= {"raw-vp-helper", "raw-vp-macro", "raw-vp-renamed-field", "table-entry",
                   "table-swap", "divisor", "vp-block-minus-one", "vp-block-cap16",
                   "vcores-store", "vcores-loop-bound", "guard-weaken", "guard-equivalent"}
    assert len(OPERATORS) == 9  # generators; each yields one or more operator kinds


def test_derive_reproduces_the_rfc_reviewer_example() -> None:
    """IDs 0,1,8,9,16,17,24,25 -> 0,1,8,9,4,5,12,13 with NR_CPUS 16, stride 8 (seed thread)."""
    tree = plan.load("rfc-applied", str(TREES["rfc-applied"]))
    got = [derive.pack(tree, {"NR_CPUS": 16, "emul_smt_mode": 8}, i)[0]
           for i in (0, 1, 8, 9, 16, 17, 24, 25)]
    assert got == [0, 1, 8, 9, 4, 5, 12, 13]
    assert derive.pack(tree, {"NR_CPUS": 8, "emul_smt_mode": 1}, 8)[1].startswith("BUG_ON")


def test_derive_sees_a_changed_table() -> None:
    tree = plan.load("rfc-applied", str(TREES["rfc-applied"]))
    path = next(p for p, d in tree.files.items() if b"block_offsets" in d)
    def changed(table: bytes):
        return tree.patched({path: tree.files[path].replace(b"{0, 4, 2, 6, 1, 5, 3, 7}", table)})
    assert not derive.qemu_layout_defects(tree)
    # block 6 (stride 4, ID 6 * NR_CPUS / 4 = 24 at NR_CPUS 8) now lands on ID 1's slot
    assert derive.qemu_layout_defects(changed(b"{0, 4, 2, 6, 1, 5, 1, 7}"))[0][:5] == \
        (8, 4, 1, 24, 1)
    # block 7 only serves IDs from 7 * NR_CPUS on, beyond the ID space (4 * NR_CPUS):
    # no VMM creates them, so the change is harmless in this tree
    assert not derive.qemu_layout_defects(changed(b"{0, 4, 2, 6, 1, 5, 3, 3}"))


def test_known_failures_name_mutants_that_exist() -> None:
    planned = {(c[0], *c[2].split("|", 1)) for c in CASES}
    assert {k for k in KNOWN if k[0] != plan.REALTREE} <= planned


def test_the_store_counterexample_is_rederived_not_trusted() -> None:
    """The index a vcores-store mutant reports is re-derived from the mutated create
    function (its ifs and the index's assignments): a wrong index or an index inside
    the table is refused."""
    m = next(m for k, m in plan.mutants_of("pre-rfc", str(TREES["pre-rfc"])).items()
             if k.startswith("vcores-store|"))

    def finding(vid: int, index: int) -> dict:
        return {"rule": "vcore-index", "counterexample": {
            "NR_CPUS": 8, "emul_smt_mode": 1, "ids": [vid], "values": {"index": index}}}
    assert m.verify(finding(8, 8)) is None  # core = id / smt_mode = 8: one past 8 VCOREs
    assert "not 9" in m.verify(finding(8, 9))
    assert "< 8 VCOREs" in m.verify(finding(3, 3))


@pytest.mark.parametrize("fixture, rule", [
    ("rules/vcore-index/store-unbounded", "vcore-index"),
    ("rules/capacity/pre-rfc", "capacity")])
def test_capacity_and_vcore_index_carry_the_path(fixture: str, rule: str) -> None:
    """The create path (entry, guards with their truth, the index computed) reaches JSON
    as notes and SARIF as a code flow, none of it at the finding's own line."""
    import json

    from tests.conftest import run_cli
    from tests.test_sarif import valid

    root = str(plan.FIXTURES / fixture)
    _rc, out, _ = run_cli("check", root, "--rule", rule, "--format", "json")
    (f,) = json.loads(out)["findings"]
    assert f["notes"] and all(set(n) == {"path", "line", "function", "message"}
                              for n in f["notes"])
    assert f["notes"][0]["message"].endswith(f"entered with ID {f['counterexample']['ids'][0]}")
    assert all((n["path"], n["line"]) != (f["path"], f["line"]) for n in f["notes"])
    _rc, out, _ = run_cli("check", root, "--rule", rule, "--format", "sarif")
    (res,) = valid(out)["runs"][0]["results"]
    steps = res["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [s["location"]["message"]["text"] for s in steps] == [
        n["message"] for n in f["notes"]]


def test_the_corpus_names_mutants_that_exist() -> None:
    """A saved case whose mutant no longer exists would replay nothing."""
    for name, key in plan.mutation_corpus():
        assert key in plan.mutants_of(name, str(TREES[name])), (name, key)
