"""Guard analysis on the real 6.12 tree: the findings it makes are real (each
counterexample is re-traced here with independent arithmetic), and mutants
of the real code make the right rule fire."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources import tree as source

pytestmark = pytest.mark.realtree

PACK_H = "arch/powerpc/include/asm/kvm_book3s.h"
HV_C = "arch/powerpc/kvm/book3s_hv.c"
XIVE_C = "arch/powerpc/kvm/book3s_xive.c"
NATIVE_C = "arch/powerpc/kvm/book3s_xive_native.c"
TABLE = [0, 4, 2, 6, 1, 5, 3, 7]
GUARD_RULES = ("pack-domain", "vp-block-bound", "vcore-index", "id-bound-mismatch")


def run(snap, *rules):
    selected = ruleset.select(list(rules or GUARD_RULES))
    return checks.run(selected, facts.extract(snap, ruleset.tokens(selected)))


def pack_612(n: int, stride: int, vid: int) -> tuple[int, str | None]:
    """6.12's kvmppc_pack_vcpu_id, by hand: (value, which WARN_ONCE fired)."""
    block = (vid // n) * (8 // stride)
    if block >= 8:
        return 0, "VCPU ID too large to pack"
    packed = vid % n + TABLE[block]
    if packed >= n:
        return 0, "VCPU ID packing failed"
    return packed, None


def mutant(realtree: Path, path: str, old: str, new: str) -> source.Snapshot:
    snap = source.from_directory(realtree)
    data = snap.files[path].decode()
    assert data.count(old) == 1, old
    return snap.with_files({path: data.replace(old, new).encode()}, "mutant")


def test_real_findings_are_the_three_reachable_warns(realtree: Path) -> None:
    found = [f for f in run(source.from_directory(realtree)) if f.severity != "info"]
    # located at the check that should refuse the ID: the create path's bound on the ID,
    # and kvmppc_xive_vcpu_id_valid()'s comparison for both interrupt-device connects
    assert sorted((f.rule, f.path, f.function, f.counterexample["entry"]) for f in found) == [
        ("pack-domain", HV_C, "kvmppc_core_vcpu_create_hv", "kvmppc_core_vcpu_create_hv"),
        ("pack-domain", XIVE_C, "kvmppc_xive_vcpu_id_valid", "kvmppc_xive_connect_vcpu"),
        ("pack-domain", XIVE_C, "kvmppc_xive_vcpu_id_valid",
         "kvmppc_xive_native_connect_vcpu"),
    ]
    lines = {p: (realtree / p).read_text().splitlines() for p in (HV_C, XIVE_C)}
    for f in found:
        ce = f.counterexample
        n, stride, (vid,) = ce["NR_CPUS"], ce["emul_smt_mode"], ce["ids"]
        value, warn = pack_612(n, stride, vid)
        assert warn is not None and value == 0, f
        text = lines[f.path][f.line - 1]
        assert ("if (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode))" in text
                if f.path == HV_C else "< xive->nr_servers" in text), text
        # the call that hands the ID on stays on the path, as a note
        assert any("kvmppc_pack_vcpu_id() called with" in n.message for n in f.notes)
        assert f.notes[0].function == ce["entry"] and f.notes[-1].message.startswith("WARN")
        if f.function == "kvmppc_core_vcpu_create_hv":
            # generic KVM: id < KVM_MAX_VCPU_IDS = 8 * NR_CPUS; book3s_hv: id < NR_CPUS * stride
            assert vid < 8 * n and vid < n * stride
            assert warn == "VCPU ID packing failed"
        else:
            # no check on the server number before kvmppc_xive_vcpu_id_valid() packs it
            assert warn == "VCPU ID too large to pack"


def test_mutant_creation_guard_removed(realtree: Path) -> None:
    snap = mutant(realtree, HV_C, "if (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)) {",
                  "if (0) {")
    (f,) = [f for f in run(snap, "pack-domain") if f.path == HV_C]
    ce = f.counterexample
    (vid,) = ce["ids"]
    value, warn = pack_612(ce["NR_CPUS"], ce["emul_smt_mode"], vid)
    assert warn is not None and vid < 8 * ce["NR_CPUS"]


def test_mutant_vp_block_too_small(realtree: Path) -> None:
    snap = mutant(realtree, XIVE_C, "xive_native_alloc_vp_block(xive->nr_servers);",
                  "xive_native_alloc_vp_block(xive->nr_servers - 1);")
    found = run(snap, "vp-block-bound")
    # at the VP computation, one per entry point
    assert {(f.function, f.counterexample["entry"]) for f in found} == {
        ("kvmppc_xive_compute_vp_id", "kvmppc_xive_connect_vcpu"),
        ("kvmppc_xive_compute_vp_id", "kvmppc_xive_native_connect_vcpu")}
    for f in found:
        ce, v = f.counterexample, f.counterexample["values"]
        value, warn = pack_612(ce["NR_CPUS"], ce["emul_smt_mode"], ce["ids"][0])
        assert warn is None and value == v["vp_index"] < v["nr_servers"]  # passes the check
        assert value >= v["nr_servers"] - 1 == v["block_size"]  # but not the block


def test_mutant_raw_validity_check(realtree: Path) -> None:
    snap = mutant(realtree, XIVE_C,
                  "return kvmppc_pack_vcpu_id(xive->kvm, cpu) < xive->nr_servers;",
                  "return cpu < xive->nr_servers * xive->kvm->arch.emul_smt_mode;")
    found = run(snap, "vp-block-bound")
    assert found
    for f in found:
        ce, v = f.counterexample, f.counterexample["values"]
        (vid,) = ce["ids"]
        assert vid < v["nr_servers"] * ce["emul_smt_mode"]  # the raw check admits it
        value, warn = pack_612(ce["NR_CPUS"], ce["emul_smt_mode"], vid)
        assert warn is None and value == v["vp_index"] >= v["nr_servers"] == v["block_size"]


def test_mutant_connect_compares_with_count(realtree: Path) -> None:
    old = "\tr = kvmppc_xive_compute_vp_id(xive, cpu, &vp_id);"
    snap = mutant(realtree, XIVE_C, old,
                  "\tif (cpu >= KVM_MAX_VCPUS)\n\t\treturn -EINVAL;\n" + old)
    (f,) = run(snap, "id-bound-mismatch")
    assert f.function == "kvmppc_xive_connect_vcpu" and "cpu >= KVM_MAX_VCPUS" in f.message


def test_mutant_vcores_access_before_bound(realtree: Path) -> None:
    old = "\tif (core < KVM_MAX_VCORES) {\n\t\tvcore = kvm->arch.vcores[core];\n"
    new = "\tvcore = kvm->arch.vcores[core];\n\tif (core < KVM_MAX_VCORES) {\n"
    snap = mutant(realtree, HV_C, old, new)
    (f,) = run(snap, "vcore-index")
    ce = f.counterexample
    # the refused ID's sentinel core = KVM_MAX_VCORES now reaches the access
    assert ce["values"]["index"] == ce["NR_CPUS"]
    assert ce["ids"][0] >= ce["NR_CPUS"] * ce["emul_smt_mode"]


# --- the sink kinds the first version missed, injected into 6.12 -------------------

STORE_OLD = """	if (core < KVM_MAX_VCORES) {
		vcore = kvm->arch.vcores[core];
		if (vcore && cpu_has_feature(CPU_FTR_ARCH_300)) {
			pr_devel("KVM: collision on id %u", id);
			vcore = NULL;
		} else if (!vcore) {"""
STORE_NEW = """	if (core < KVM_MAX_VCORES)
		vcore = kvm->arch.vcores[core];
	{
		if (vcore && cpu_has_feature(CPU_FTR_ARCH_300)) {
			pr_devel("KVM: collision on id %u", id);
			vcore = NULL;
		} else if (!vcore) {"""


def test_mutant_vcores_store_outside_the_bound(realtree: Path) -> None:
    """The store into vcores[] moved out of the bound check: a refused ID's sentinel
    core = KVM_MAX_VCORES is written one past the table."""
    snap = mutant(realtree, HV_C, STORE_OLD, STORE_NEW)
    (f,) = run(snap, "vcore-index")
    lines = snap.files[HV_C].decode().splitlines()
    assert "kvm->arch.vcores[core] = vcore;" in lines[f.line - 1] and "written" in f.message
    ce = f.counterexample
    (vid,) = ce["ids"]
    # by hand: the create path refuses vid >= NR_CPUS * stride and sets core = KVM_MAX_VCORES
    assert vid >= ce["NR_CPUS"] * ce["emul_smt_mode"]
    assert ce["values"]["index"] == ce["NR_CPUS"]  # KVM_MAX_VCORES = NR_CPUS in 6.12


def test_mutant_vcores_loop_past_the_table(realtree: Path) -> None:
    snap = mutant(realtree, HV_C, "\tfor (i = 0; i < KVM_MAX_VCORES; ++i)\n\t\tkfree(",
                  "\tfor (i = 0; i <= KVM_MAX_VCORES; ++i)\n\t\tkfree(")
    (f,) = run(snap, "vcore-index")
    lines = snap.files[HV_C].decode().splitlines()
    assert "kfree(kvm->arch.vcores[i]);" in lines[f.line - 1]
    ce = f.counterexample
    assert ce["values"]["index"] == ce["values"]["size"] == ce["NR_CPUS"]  # i reaches NR_CPUS


def test_mutant_constant_vp_block_too_small_above_16_cpus(realtree: Path) -> None:
    snap = mutant(realtree, XIVE_C, "xive_native_alloc_vp_block(xive->nr_servers);",
                  "xive_native_alloc_vp_block(16);")
    found = run(snap, "vp-block-bound")
    assert {f.counterexample["entry"] for f in found} == {
        "kvmppc_xive_connect_vcpu", "kvmppc_xive_native_connect_vcpu"}
    for f in found:
        ce, v = f.counterexample, f.counterexample["values"]
        # the smallest build that shows it: NR_CPUS = 17 (16 VPs suffice up to 16 CPUs)
        assert ce["NR_CPUS"] == 17 and v["block_size"] == 16
        value, warn = pack_612(17, ce["emul_smt_mode"], ce["ids"][0])
        assert warn is None and value == v["vp_index"] >= 16
        assert value < v["nr_servers"] <= 17  # it passes kvmppc_xive_vcpu_id_valid()
