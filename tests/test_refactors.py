"""Behaviour-preserving edits of the real 6.12 code change no finding: a guard in a
local, a function-like macro, a static helper in the .c or in a header, unlikely(),
a switch, renamed functions, locals, parameters and fields. Each finding is compared
as (rule, severity, entry point), so a renamed function is not a difference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources import tree as source

pytestmark = pytest.mark.realtree

HV = "arch/powerpc/kvm/book3s_hv.c"
XC = "arch/powerpc/kvm/book3s_xive.c"
PACK_H = "arch/powerpc/include/asm/kvm_book3s.h"
GUARD = "if (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)) {"


def _edit(snap, path: str, old: str, new: str, prefix: str = ""):
    data = snap.files[path].decode()
    assert data.count(old) == 1, old
    return snap.with_files({path: (prefix + data.replace(old, new)).encode()}, "edited")


def _rename(snap, old: str, new: str, only: str | None = None):
    pat = re.compile(rb"\b%s\b" % re.escape(old.encode()))
    files = {p: pat.sub(new.encode(), d) for p, d in snap.files.items()
             if (only is None or p == only) and pat.search(d)}
    assert files, old
    return snap.with_files(files, "renamed")


def _header_helper(snap):
    snap = _edit(snap, HV, GUARD, "if (vpc_id_too_big(kvm, id)) {")
    helper = ("static inline bool vpc_id_too_big(struct kvm *k, u32 i)\n{\n"
              "\treturn i >= KVM_MAX_VCPUS * k->arch.emul_smt_mode;\n}\n\n")
    return _edit(snap, PACK_H, "static inline u32 kvmppc_pack_vcpu_id(",
                 helper + "static inline u32 kvmppc_pack_vcpu_id(")


SWITCHED = """switch (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)) {
		case 1:
			pr_devel("KVM: VCPU ID too high\\n");
			core = KVM_MAX_VCORES;
			break;
		default:
			BUG_ON(kvm->arch.smt_mode != 1);
			core = kvmppc_pack_vcpu_id(kvm, id);
		}"""
IF_ELSE = """if (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)) {
			pr_devel("KVM: VCPU ID too high\\n");
			core = KVM_MAX_VCORES;
		} else {
			BUG_ON(kvm->arch.smt_mode != 1);
			core = kvmppc_pack_vcpu_id(kvm, id);
		}"""

EDITS = {
    "guard in a local": lambda s: _edit(
        s, HV, GUARD, "unsigned int lim = KVM_MAX_VCPUS * kvm->arch.emul_smt_mode;\n\n"
        "\t\tif (id >= lim) {"),
    "guard in a function-like macro": lambda s: _edit(
        s, HV, GUARD, "if (VPC_TOO_BIG(kvm, id)) {",
        "#define VPC_TOO_BIG(k, i) ((i) >= (KVM_MAX_VCPUS * (k)->arch.emul_smt_mode))\n"),
    "guard in a static helper": lambda s: _edit(
        s, HV, GUARD, "if (vpc_id_too_big(kvm, id)) {",
        "static inline bool vpc_id_too_big(struct kvm *k, u32 i)\n{\n"
        "\treturn i >= KVM_MAX_VCPUS * k->arch.emul_smt_mode;\n}\n"),
    "guard in a header helper": _header_helper,
    "guard in unlikely()": lambda s: _edit(
        s, HV, GUARD, "if (unlikely(id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode))) {"),
    "if/else as a switch": lambda s: _edit(s, HV, IF_ELSE, SWITCHED),
    "guard under #ifdef CONFIG_ the build sets": lambda s: _edit(
        s, HV, GUARD, "\n#ifdef CONFIG_KVM_BOOK3S_HV_POSSIBLE\n\t\t" + GUARD +
        "\n#else\n\t\tif (id >= 0) {\n#endif\n"),
    "alternative under #if 0": lambda s: _edit(
        s, HV, GUARD, "\n#if 0\n\t\tif (id >= 0) {\n#else\n\t\t" + GUARD + "\n#endif\n"),
    "packing call split into a helper reading vcpu->vcpu_id": lambda s: _edit(
        s, HV, "\t\t\tcore = kvmppc_pack_vcpu_id(kvm, id);", "\t\t\tcore = vpc_core(vcpu);",
        "static inline u32 vpc_core(struct kvm_vcpu *v)\n{\n"
        "\treturn kvmppc_pack_vcpu_id(v->kvm, v->vcpu_id);\n}\n"),
    "packing function renamed": lambda s: _rename(s, "kvmppc_pack_vcpu_id", "vpc_fold"),
    "local id renamed": lambda s: _rename(s, "id", "vid", only=HV),
    "parameter cpu renamed": lambda s: _rename(s, "cpu", "srv", only=XC),
    "vp_base field renamed": lambda s: _rename(s, "vp_base", "vp_first"),
    "validity helper renamed": lambda s: _rename(s, "kvmppc_xive_vcpu_id_valid", "srv_ok"),
}


def _verdict(snap) -> list[tuple]:
    rules = ruleset.load_rules()
    found = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))
    return sorted((f.rule, f.severity, (f.counterexample or {}).get("entry"), f.message
                   if f.severity == "info" and f.message.startswith("undecided") else "")
                  for f in found)


@pytest.fixture(scope="module")
def base(realtree: Path):
    snap = source.from_directory(realtree)
    return snap, _verdict(snap)


@pytest.mark.parametrize("name", list(EDITS))
def test_refactor_changes_no_finding(base, name: str) -> None:
    snap, want = base
    assert [v for v in want if v[1] == "warning"], "the base must have findings to keep"
    assert _verdict(EDITS[name](snap)) == want
