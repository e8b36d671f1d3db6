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

import re
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


def _mutant(tree: str, key: str):
    return plan.mutants_of(tree, str(TREES[tree]))[key]


def _findings(tree: str, m) -> list[dict]:
    from tests.metamorph.oracle import run_check

    return run_check(m.files, TREES[tree])


def test_a_faulty_entry_besides_a_faulty_index_is_a_second_site() -> None:
    """divisor-changed's index computation is at fault (ID 16 warns whatever the table
    holds); a table entry changed besides is a second bug and gets its own finding at the
    entry. Re-derived: the reported ID fails with the mutated table, and packs in range
    without a BUG/WARN once every entry is 0 (so the entry, not the index, sends it out)."""
    name = "rules/pack-table/divisor-changed"
    m = _mutant(name, "table-entry|arch/powerpc/include/asm/kvm_book3s.h:7:entry0")
    got = [f for f in _findings(name, m) if f["rule"] == "pack-table"
           and f["severity"] == "warning"]
    at_entry = [f for f in got if f["line"] == m.line]
    assert at_entry and any(f["line"] == 9 for f in got), got
    (f,) = at_entry
    assert m.verify(f) is None
    ce = f["counterexample"]
    tree = plan.load(name, str(TREES[name])).patched(m.files)
    path = next(p for p, d in tree.files.items() if b"block_offsets" in d)
    zero = tree.patched({path: re.sub(rb"\{[0-9, ]+\}", b"{0, 0, 0, 0, 0, 0, 0, 0}",
                                      tree.files[path])})
    value, event = derive.pack(zero, {k: v for k, v in ce.items() if isinstance(v, int)},
                               ce["ids"][0])
    assert event is None and value < ce["NR_CPUS"]


@pytest.mark.parametrize("tree, key", [
    ("rules/vp-block-bound/small-block", "vp-block-cap16|arch/powerpc/kvm/book3s_xive.c:18:alloc"),
    ("rules/pack-table/divisor-changed", "guard-weaken|arch/powerpc/kvm/book3s_hv.c:15:id>=")])
def test_a_bug_injected_at_a_reported_site_keeps_one_finding_there(tree: str, key: str) -> None:
    """The mutated line was reported before the mutation; the mutated tree keeps a finding
    there whose counterexample holds on the mutated code (re-derived), and the claim can
    fail: a counterexample that shows no fault is refused."""
    m = _mutant(tree, key)
    out = plan.run_mutant(tree, str(TREES[tree]), key)
    assert out.ok and out.symptom.startswith("same-site:"), out.symptom
    bogus = {"rule": m.rules[0], "counterexample": {
        "NR_CPUS": 8, "emul_smt_mode": 1, "nr_servers": 8, "ids": [0], "values": {}}}
    assert m.verify_site(bogus) is not None


@pytest.mark.parametrize("tree, key", [
    ("rules/pack-table/no-pack-function", "collision-bug-on|arch/powerpc/kvm/book3s_hv.c:27:if"),
    ("rules/pack-table/no-pack-function", "drop-stride|arch/powerpc/kvm/book3s_hv.c:15:stride"),
    ("rules/pack-table/unsupported-loop", "guard-weaken|arch/powerpc/kvm/book3s_hv.c:15:id>=")])
def test_a_bug_behind_a_packing_function_the_model_cannot_run_is_undecided(
        tree: str, key: str) -> None:
    """The engine reports the path undecided for the mutant's rule, naming the construct
    it cannot run: the loop of the packing function (at the loop's line), or the packing
    function the tree does not define. Without that info the mutant is a miss."""
    from tests.metamorph.oracle import _undecided

    m = _mutant(tree, key)
    got = _findings(tree, m)
    assert _undecided(m, got)
    info = [f for f in got if f["rule"] in m.rules and f["message"].startswith("undecided:")]
    t = plan.load(tree, str(TREES[tree]))
    if t.packer is not None:  # the loop, at its line in the packing function
        fn = t.by_name[t.packer]
        assert any(f["function"] == t.packer and t.files[fn.path].split(b"\n")[
            f["line"] - 1].strip().startswith(b"for") for f in info), info
    else:  # a call of the mutated function that the tree does not define, named
        missing = {c for c in m.calls if c not in t.by_name}
        assert any(any(c in f["message"] for c in missing) for f in info), info
    assert not _undecided(m, [f for f in got if f not in info])


def test_a_lookup_that_never_first_succeeds_leaves_the_vp_block_unreachable() -> None:
    """trusted-after-lookup computes the VP only after kvmppc_xive_find_server() found
    the server, and stores a server number only after that same lookup: no server is
    found first, so a smaller block adds no reachable bug (equivalent). With the store
    moved before the lookup, a base case exists and the mutant must be found."""
    from tests.metamorph.mutations import _vp_dead_after_lookup

    name = "rules/pack-domain/trusted-after-lookup"
    t = plan.load(name, str(TREES[name]))
    assert _vp_dead_after_lookup(t)
    assert _mutant(name, "vp-block-minus-one|arch/powerpc/kvm/book3s_xive.c:16:alloc").equivalent
    path = "arch/powerpc/kvm/book3s_xive.c"
    src = t.files[path].replace(b"\txc->server_num = cpu;\n", b"")
    src = src.replace(b"\t/* only a server", b"\tvcpu->arch.xive_vcpu->server_num = cpu;\n"
                      b"\t/* only a server")
    assert not _vp_dead_after_lookup(t.patched({path: src}))
    assert not _vp_dead_after_lookup(plan.load("rfc-applied", str(TREES["rfc-applied"])))
