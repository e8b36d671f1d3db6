"""Metamorphic tests: behaviour-preserving rewrites must not change vpcheck's findings.

Each case rewrites one site of a tree (tests/metamorph/transforms.py), runs
``vpcheck check --format json`` in-process and compares the multiset of
(rule, function, severity), functions a rewrite introduced mapped back. The
cases are a seeded sample (tests/metamorph/plan.py); the exhaustive sweep is
benchmarks/metamorphic_sweep.py. Cases the current engine fails are listed in
tests/data/metamorphic/known-failures.toml and run as strict xfails: a fix
turns into an XPASS failure until the list is regenerated with
``python benchmarks/metamorphic_sweep.py --sample --write-known
tests/data/metamorphic/known-failures.toml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metamorph import plan
from tests.metamorph.oracle import Outcome, describe, load_known, run_check, signature
from tests.metamorph.transforms import TRANSFORMS, all_sites

TREES = plan.fixture_trees()
CASES = plan.test_cases(TREES)
KNOWN = load_known(plan.KNOWN)


def _expect(request: pytest.FixtureRequest, outcome: Outcome) -> None:
    symptom = KNOWN.get(outcome.case)
    if symptom is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"known: {symptom}"))
    assert outcome.ok, f"{outcome.transform} at {outcome.site}: {outcome.symptom}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}|{c[2]}|{c[3]}" for c in CASES])
def test_rewrite_keeps_findings(case: tuple[str, str, str, str], request) -> None:
    _expect(request, plan.run_one(*case))


@pytest.mark.realtree
@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_rewrite_keeps_findings_on_6_12(kind: str, realtree: Path, request) -> None:
    sites = plan.sample(plan.REALTREE, str(realtree), 1, [kind])
    if not sites:
        pytest.skip(f"{kind}: no site in the code 6.12's entry points reach")
    _expect(request, plan.run_one(plan.REALTREE, str(realtree), kind, sites[0].key))


REAL_CORPUS = [c for c in plan.corpus() if c[0] == plan.REALTREE]


@pytest.mark.realtree
@pytest.mark.parametrize("case", REAL_CORPUS, ids=[f"{c[1]}|{c[2]}" for c in REAL_CORPUS])
def test_saved_6_12_case_keeps_findings(case: tuple[str, str, str], realtree: Path,
                                        request) -> None:
    _expect(request, plan.run_one(plan.REALTREE, str(realtree), case[1], case[2]))


def test_the_sample_covers_every_kind_on_the_bundled_trees() -> None:
    kinds = {c[2] for c in CASES if c[0] in ("pre-rfc", "rfc-applied")}
    offered = {s.transform for name in ("pre-rfc", "rfc-applied")
               for s in all_sites(plan.load(name, str(TREES[name])))}
    assert kinds == offered
    assert len(offered) >= 15


def test_the_sample_covers_every_kind_offered_on_any_tree() -> None:
    """Every transformation that has a site on some fixture or shape tree is replayed
    on at least one of them (the shape trees exist for the kinds the fixtures lack)."""
    offered = {kind for name, path in TREES.items() for kind in TRANSFORMS
               if plan.sites_of(name, str(path), kind)}
    assert offered == set(TRANSFORMS)  # no transformation without a site anywhere
    assert {c[2] for c in CASES} == offered


def test_known_failures_name_cases_that_exist() -> None:
    """A stale entry (a site renamed away) would silently stop guarding anything."""
    planned = {(c[0], c[2], c[3]) for c in CASES}
    fixture_known = {k for k in KNOWN if k[0] != plan.REALTREE}
    assert fixture_known <= planned


def test_the_oracle_sees_a_change_of_behaviour() -> None:
    """A BUG_ON turned into a WARN_ON is not behaviour-preserving: the oracle says so."""
    tree = plan.load("rfc-applied", str(TREES["rfc-applied"]))
    path = next(p for p, d in tree.files.items() if b"block_offsets" in d)
    broken = {path: tree.files[path].replace(b"BUG_ON(", b"WARN_ON(")}
    assert broken[path] != tree.files[path]
    base = plan.baseline("rfc-applied", str(TREES["rfc-applied"]))
    got = signature(run_check(broken, TREES["rfc-applied"]))
    assert describe(base, got)


def test_an_index_the_engine_cannot_follow_is_undecided_not_a_counterexample() -> None:
    """The VCORE table indexed by a variable the create path never assigns (a global):
    the verdict is an info finding naming it, never "no ID gets a slot"."""
    name = "shapes/shapes"
    tree = plan.load(name, str(TREES[name]))
    path = next(p for p, d in tree.files.items() if b"vcores[core]" in d)
    data = tree.files[path].replace(b"vcores[core]", b"vcores[next_core]")
    data = data.replace(b"static int kvmppc_core",
                        b"static int next_core;\n\nstatic int kvmppc_core")
    got = run_check({path: data}, TREES[name])
    create = [f for f in got if f.get("function") == "kvmppc_core_vcpu_create_hv"
              and f["rule"] in ("capacity", "vcore-index", "collision-crash")]
    assert create and all(f["severity"] == "info" and "'next_core'" in f["message"]
                          for f in create), create
