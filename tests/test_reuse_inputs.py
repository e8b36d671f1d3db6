"""Series mode reuses a model verdict only while every input it depends on is unchanged.

Each case is a short series on a fixture tree whose last step changes one input a
verdict reads and nothing else: a function-like macro, the size a header declares the
table with, a generic-KVM comparison with the ID-space macro outside every call graph,
a loop over the table in a function nothing calls, the block-count field appearing in
the allocation's file. ``check`` on the last snapshot must give what the series gives.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources import tree as source

from .conftest import FIXTURES

HOST_H = "arch/powerpc/include/asm/kvm_host.h"
HV = "arch/powerpc/kvm/book3s_hv.c"
XIVE = "arch/powerpc/kvm/book3s_xive.c"
NO_PACKED_CHECK = (XIVE, b"\tif (kvmppc_pack_vcpu_id(xive->kvm, cpu) >= xive->nr_servers)\n"
                   b"\t\treturn -EINVAL;\n", b"")
SETTER = (b"static int kvmppc_xive_set_nr_servers(struct kvmppc_xive *xive, u32 n)\n{\n"
          b"\txive->nr_servers = n;\n\treturn 0;\n}\n\n")

# (tree, rule, steps): each step a list of (path, old, new) edits; old None: a new file
CASES = {
    "function-like macro body": (
        "pack-domain/early-return", "pack-domain", [
            [(HOST_H, b"#define KVM_MAX_VCORES",
              b"#define VCPU_ID_BAD(id)\t((id) >= KVM_MAX_VCPUS)\n#define KVM_MAX_VCORES"),
             (HV, b"\tif (id >= KVM_MAX_VCPUS)\n", b"\tif (VCPU_ID_BAD(id))\n")],
            [(HOST_H, b"((id) >= KVM_MAX_VCPUS)", b"((id) >= KVM_MAX_VCPU_IDS)")]]),
    "table size declared in a header": (
        "id-bound-mismatch/count-compare", "id-bound-mismatch", [
            [(HOST_H, b"#define KVM_MAX_VCORES",
              b"#define KVM_SLOTS\t\tNR_CPUS\n#define KVM_MAX_VCORES"),
             (XIVE, b"\tif (cpu >= KVM_MAX_VCPU_ID)",
              b"\tif (cpu >= KVM_SLOTS)\n\t\treturn -EINVAL;\n\tif (cpu >= KVM_MAX_VCPU_ID)")],
            [(HOST_H, b"#define KVM_MAX_VCORES", b"struct kvm_arch {\n"
              b"\tstruct kvmppc_vcore *vcores[KVM_SLOTS];\n};\n#define KVM_MAX_VCORES")]]),
    "generic comparison with the ID space": (
        "capacity/rfc-id-space", "capacity", [
            [("virt/kvm/kvm_main.c", None,
              b"int kvm_vm_ioctl_create_vcpu(struct kvm *kvm, unsigned long id)\n{\n"
              b"\tif (id >= KVM_MAX_VCPU_ID)\n\t\treturn -EINVAL;\n\treturn 0;\n}\n")]]),
    "loop over the table in an uncalled function": (
        "vcore-index/loop-bound", "vcore-index", [
            [(HV, b"i < KVM_MAX_VCORES; ++i", b"i <= KVM_MAX_VCORES; ++i")]]),
    "block-count field outside the allocating function": (
        "vp-block-bound/constant-block", "vp-block-bound", [
            [NO_PACKED_CHECK],
            [(XIVE, b"int kvmppc_xive_connect_vcpu", SETTER + b"int kvmppc_xive_connect_vcpu")]]),
}


def _edited(snap: source.Snapshot, edits, tag: str) -> source.Snapshot:
    files: dict[str, bytes] = {}
    for path, old, new in edits:
        data = files.get(path, snap.files.get(path, b""))
        assert old is None or old in data, (path, old)
        files[path] = new if old is None else data.replace(old, new, 1)
    return snap.with_files(files, snap.target + tag)


def _run(snap: source.Snapshot, rules, reuse: bool):
    return checks.run(rules, facts.extract(snap, ruleset.tokens(rules)), reuse=reuse)


def _shown(found) -> list[tuple]:
    return [(f.rule, f.severity, f.path, f.line, f.function, f.message, f.fingerprint,
             tuple((n.path, n.line, n.message) for n in f.notes)) for f in found]


def _series(snaps, rules) -> tuple[list, list, list]:
    """(reused at the last snapshot, fresh there, fresh at the one before)."""
    for snap in snaps:
        reused = _run(snap, rules, reuse=True)
    return _shown(reused), _shown(_run(snaps[-1], rules, reuse=False)), \
        _shown(_run(snaps[-2], rules, reuse=False))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_series_reports_what_check_reports_after_a_change_of_one_input(
        case, monkeypatch) -> None:
    monkeypatch.setattr(checks, "_VERDICTS", {})
    tree, rule, steps = CASES[case]
    snaps = [source.from_directory(FIXTURES / "rules" / tree)]
    for i, edits in enumerate(steps, 1):
        snaps.append(_edited(snaps[-1], edits, f"+{i}"))
    reused, fresh, before = _series(snaps, ruleset.select([rule]))
    assert fresh != before, "the last step must change what check reports"
    assert reused == fresh


def test_a_verdict_is_not_reused_under_another_profile(monkeypatch) -> None:
    """Rules bound to another profile (a test's, a user's kernel family, ``vpcheck model
    --threads-per-subcore``) in the same process: same rule ids, same tree, same
    functions reached, another host."""
    monkeypatch.setattr(checks, "_VERDICTS", {})
    snap = source.from_directory(FIXTURES / "rules" / "capacity" / "rfc-id-space")
    rules = ruleset.select(["capacity"])
    prof = rules[0].profile
    env = {**dict(prof.env), "threads_per_subcore": 8}
    other = tuple(replace(r, profile=replace(prof, env=tuple(sorted(env.items()))))
                  for r in rules)
    assert _run(snap, rules, reuse=True)
    reused, fresh = _shown(_run(snap, other, reuse=True)), _shown(_run(snap, other, False))
    assert fresh != _shown(_run(snap, rules, reuse=False))
    assert reused == fresh


def test_the_on_disk_cache_is_keyed_by_the_parser_it_was_read_with(tmp_path, monkeypatch) -> None:
    """``pip install -U tree-sitter-c`` changes every parse tree: a history cache written
    before must not be read after (the analyzer's code and rules are unchanged)."""
    from analyzer.sources import cache

    before = cache.code_version.__wrapped__()
    binaries = cache._parser_binaries()
    grammar = [p for p in binaries if "tree_sitter_c" in str(p)]
    assert grammar, "the C grammar is a compiled module"
    newer = tmp_path / grammar[0].name
    newer.write_bytes(grammar[0].read_bytes() + b"\0")
    monkeypatch.setattr(cache, "_parser_binaries",
                        lambda: [newer if p == grammar[0] else p for p in binaries])
    assert cache.code_version.__wrapped__() != before


def test_the_model_caches_keep_profiles_that_differ_only_in_their_host_apart() -> None:
    """The tree, the roles and the engine's bindings are cached by profile: a profile
    with another host (``replace(p, env=…)``, as ``vpcheck model --threads-per-subcore``
    makes it) or configuration is not served the shipped profile's."""
    from analyzer import profile
    from analyzer.model import packing, paths

    shipped = profile.load()
    env = tuple(sorted({**dict(shipped.env), "threads_per_subcore": 8}.items()))
    host, build = replace(shipped, env=env), replace(
        shipped, kconfig=shipped.kconfig - {"CONFIG_KVM_XICS"})
    assert replace(shipped) == shipped and host != shipped and build != shipped
    fx = facts.extract(source.from_directory(FIXTURES / "rules" / "capacity" / "merged"))
    for prof in (shipped, build):
        assert packing.tree(fx, prof).profile is prof
    bound = [paths._base_env((), packing.Config(8, 1, 1, p), ())["threads_per_subcore"]
             for p in (shipped, host)]
    assert bound == [dict(shipped.env)["threads_per_subcore"], 8]
