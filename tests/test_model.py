"""The packing model: the tree's own function, executed, and checked by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources import tree as source

from .conftest import FIXTURES

RFC_APPLIED = FIXTURES / "trees" / "rfc-applied"
PACK_H = "arch/powerpc/include/asm/kvm_book3s.h"
HV_C = "arch/powerpc/kvm/book3s_hv.c"


def reference_pack(table: list[int], n: int, stride: int, vid: int) -> int | None:
    """The packing arithmetic written out in Python, independent of the model."""
    block = (vid // n) * (8 // stride)
    if block >= 8:
        return None
    packed = vid % n + table[block]
    return packed if packed < n else None


def table_of(path: Path) -> list[int]:
    m = re.search(r"block_offsets\[MAX_SMT_THREADS\] = \{([^}]*)\}", path.read_text())
    return [int(x) for x in m.group(1).split(",")]


def run(snap: source.Snapshot, *rules: str):
    selected = ruleset.select(list(rules))
    return checks.run(selected, facts.extract(snap, ruleset.tokens(selected)))


def test_gibsons_example(cli) -> None:
    """NR_CPUS=16, stride 8, 2 threads per core, 8 vCPUs (the seed thread)."""
    rc, out, err = cli("model", "--tree", str(RFC_APPLIED), "--nr-cpus", "16", "--stride", "8",
                       "--threads", "2", "--vcpus", "8", "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert [(m["id"], m["packed"]) for m in doc["mapping"]] == list(zip(
        [0, 1, 8, 9, 16, 17, 24, 25], [0, 1, 8, 9, 4, 5, 12, 13], strict=True))
    assert doc["collisions"] == [] and doc["findings"] == []


def test_model_text_and_svg(cli, tmp_path: Path) -> None:
    svg = tmp_path / "occ.svg"
    rc, out, _ = cli("model", "--tree", str(RFC_APPLIED), "--nr-cpus", "8", "--stride", "4",
                     "--threads", "3", "--svg", str(svg))
    assert rc == 1  # 3 threads per core collide with this table
    assert "collision: slot 2 <- IDs 2, 8" in out
    assert svg.read_text().startswith("<svg") and "#e06666" in svg.read_text()


def test_model_bad_input(cli, tmp_path: Path) -> None:
    rc, out, err = cli("model", "--tree", str(RFC_APPLIED), "--stride", "2", "--threads", "4")
    assert rc == 2 and err.count("\n") == 1
    rc, out, err = cli("model", "--tree", str(FIXTURES / "trees" / "pre-rfc"))
    assert rc == 2 and "not in this tree" in err


def test_rfc_collision_crash_counterexample_by_hand() -> None:
    snap = source.from_directory(RFC_APPLIED)
    (f,) = run(snap, "collision-crash")
    assert f.path == HV_C and "BUG_ON(cpu_has_feature(CPU_FTR_ARCH_300) && vcore)" in f.snippet
    ce = f.counterexample
    a, b = ce["ids"]
    table = table_of(RFC_APPLIED / PACK_H)
    n, stride = ce["NR_CPUS"], ce["emul_smt_mode"]
    assert a != b
    assert reference_pack(table, n, stride, a) == reference_pack(table, n, stride, b) \
        == ce["values"]["packed"]


def test_rfc_capacity_by_hand() -> None:
    snap = source.from_directory(RFC_APPLIED)
    (f,) = run(snap, "capacity")
    assert f.path == "arch/powerpc/include/asm/kvm_host.h"
    assert "KVM_MAX_VCPU_ID" in f.snippet
    ce = f.counterexample
    # KVM_MAX_VCPU_ID = threads_per_subcore * NR_CPUS; layout IDs are multiples of the stride
    limit = ce["threads_per_subcore"] * ce["NR_CPUS"]
    creatable = [i for i in range(0, ce["emul_smt_mode"] * ce["NR_CPUS"], ce["emul_smt_mode"])
                 if i < limit]
    assert ce["values"]["vcpus"] == len(creatable) < ce["values"]["count"]
    assert ce["ids"][0] == limit


def test_pre_rfc_capacity_is_the_original_bug() -> None:
    snap = source.from_directory(FIXTURES / "trees" / "pre-rfc")
    (f,) = run(snap, "capacity")
    assert f.path == HV_C and "core < KVM_MAX_VCORES" in f.snippet
    ce = f.counterexample
    # IDs 0, 8, ... below NR_CPUS
    assert ce["values"]["vcpus"] == ce["NR_CPUS"] // ce["emul_smt_mode"]


def test_series_attributes_model_findings(cli, tmp_path: Path) -> None:
    from .conftest import SEED_MBOX
    from .gitutil import make_repo

    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    rc, out, _ = cli("series", str(SEED_MBOX), "--repo",
                     str(repo), "--format", "json", "--skip", "xive-raw-vp-base")
    doc = json.loads(out)
    assert {f["rule"] for f in doc["findings"]} == {"collision-crash", "capacity", "pack-domain"}
    # the pre-RFC capacity bug (core = id) is fixed; the ID-space one is new
    # and the RFC's connect check moves from KVM_MAX_VCPUS (a count) to KVM_MAX_VCPU_ID
    assert sorted(f["rule"] for f in doc["fixed"]) == ["capacity", "id-bound-mismatch"]


# --- the real tree and its mutants -------------------------------------------------


@pytest.mark.realtree
def test_real_tree_model_rules_quiet(realtree: Path) -> None:
    found = run(source.from_directory(realtree), "pack-table", "collision-crash", "capacity")
    assert [f for f in found if f.severity != "info"] == []


def _mutant(realtree: Path, path: str, old: str, new: str) -> source.Snapshot:
    snap = source.from_directory(realtree)
    data = snap.files[path].decode()
    assert data.count(old) == 1, old
    return snap.with_files({path: data.replace(old, new).encode()}, "mutant")


@pytest.mark.realtree
def test_mutant_equal_table_entries(realtree: Path) -> None:
    snap = _mutant(realtree, PACK_H, "{0, 4, 2, 6, 1, 5, 3, 7}", "{0, 4, 2, 6, 1, 5, 3, 3}")
    found = [f for f in run(snap, "pack-table") if f.severity == "warning"]
    assert found and all(f.path == PACK_H for f in found)
    ce = found[0].counterexample
    a, b = ce["ids"]
    t = [0, 4, 2, 6, 1, 5, 3, 3]
    assert reference_pack(t, ce["NR_CPUS"], ce["emul_smt_mode"], a) == \
        reference_pack(t, ce["NR_CPUS"], ce["emul_smt_mode"], b) == ce["values"]["packed"]


@pytest.mark.realtree
def test_mutant_divisor_changed(realtree: Path) -> None:
    snap = _mutant(realtree, PACK_H, "* (MAX_SMT_THREADS / stride);", "* (MAX_SMT_THREADS / 2);")
    found = [f for f in run(snap, "pack-table") if f.severity == "warning"]
    assert found
    table = [0, 4, 2, 6, 1, 5, 3, 7]
    for f in found:
        ce = f.counterexample
        n = ce["NR_CPUS"]

        def mutated(vid: int, n: int = n) -> int | None:
            block = (vid // n) * (8 // 2)
            return vid % n + table[block] if block < 8 else None  # None: the WARN fires
        if "packed" in ce["values"] and len(ce["ids"]) == 2:  # a collision
            a, b = ce["ids"]
            assert mutated(a) == mutated(b) == ce["values"]["packed"] and a != b
        else:
            (vid,) = ce["ids"]
            assert mutated(vid) is None and "WARN_ONCE" in f.message


@pytest.mark.realtree
def test_mutant_collision_bug_on(realtree: Path) -> None:
    old = "if (vcore && cpu_has_feature(CPU_FTR_ARCH_300)) {"
    new = "BUG_ON(vcore && cpu_has_feature(CPU_FTR_ARCH_300));\n\t\tif (0) {"
    snap = _mutant(realtree, HV_C, old, new)
    (f,) = run(snap, "collision-crash")
    assert f.path == HV_C and "BUG_ON(vcore" in f.snippet
    ce = f.counterexample
    a, b = ce["ids"]
    n, stride = ce["NR_CPUS"], ce["emul_smt_mode"]
    table = [0, 4, 2, 6, 1, 5, 3, 7]
    # both IDs pass the 6.12 guard (id < KVM_MAX_VCPUS * stride) and share a slot
    assert a < n * stride and b < n * stride
    assert reference_pack(table, n, stride, a) == reference_pack(table, n, stride, b)


@pytest.mark.realtree
def test_mutant_creation_guard_removed(realtree: Path) -> None:
    old = "if (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)) {"
    snap = _mutant(realtree, HV_C, old, "if (0) {")
    found = run(snap, "capacity", "pack-table", "collision-crash")
    assert [f for f in found if f.severity != "info"] == []  # layouts stay below the bound


def test_rfc_applied_all_rules() -> None:
    """What the bundled example must report: the six raw uses the reviewer saw, the
    BUG_ON reachable at creation and at XICS connect (vCPU id / server NR_CPUS with
    VSMT mode 1), the VCORE collision, and the KVM_MAX_VCPU_ID capacity cap."""
    found = run(source.from_directory(RFC_APPLIED), *[r.id for r in ruleset.load_rules()])
    got = sorted((f.rule, f.function or "") for f in found if f.severity != "info")
    assert got == sorted(
        [("xive-raw-vp-base", fn) for fn in (
            "xive_lock_and_mask", "xive_finish_unmask", "xive_target_interrupt",
            "kvmppc_xive_set_mapped", "kvmppc_xive_clr_mapped", "xive_vcpu_disable_queues")]
        + [("pack-domain", "kvmppc_core_vcpu_create_hv"),
           ("pack-domain", "kvmppc_xive_connect_vcpu"),
           ("collision-crash", "kvmppc_core_vcpu_create_hv"), ("capacity", "")])
    for f in found:
        if f.rule == "pack-domain":
            ce = f.counterexample
            table = table_of(RFC_APPLIED / PACK_H)
            # stride 1: block = (id / N) * 8 >= 8 for id >= N, below KVM_MAX_VCPU_ID = 4 * N
            (vid,) = ce["ids"]
            assert ce["emul_smt_mode"] == 1 and ce["NR_CPUS"] <= vid < 4 * ce["NR_CPUS"]
            assert reference_pack(table, ce["NR_CPUS"], 1, ce["ids"][0]) is None
