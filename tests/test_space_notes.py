"""collision-crash and id-bound-mismatch carry the path from the entry as notes, and
id-bound-mismatch recognises a count by what the code does with it."""

from __future__ import annotations

import json
import re

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources.tree import Snapshot

from .conftest import FIXTURES
from .test_rule_fixtures import fixture_snapshot

RFC = FIXTURES / "trees" / "rfc-applied"
IDB = FIXTURES / "rules" / "id-bound-mismatch"


def _run(snap: Snapshot, rule: str):
    rules = ruleset.select([rule])
    return checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))


def _line(snap: Snapshot, path: str, line: int) -> str:
    return snap.files[path].decode().splitlines()[line - 1]


def test_collision_crash_notes_walk_both_creations_to_the_bug_on() -> None:
    snap = fixture_snapshot(RFC)
    (f,) = _run(snap, "collision-crash")
    a, b = f.counterexample["ids"]
    slot = f.counterexample["values"]["packed"]
    msgs = [n.message for n in f.notes]
    assert msgs[-1].startswith("'BUG_ON") and msgs[-1].endswith(f"fires for {b}")
    assert (f.notes[-1].path, f.notes[-1].line) == (f.path, f.line)
    # the index is computed for each ID, with the value the sink sees
    computed = [m for m in msgs if re.search(rf" is {slot} for ({a}|{b})$", m)]
    assert len(computed) == 2
    _quoted_on_its_line(snap, f)
    (taken,) = [n for n in f.notes if "already taken" in n.message]
    assert "vcores[" in _line(snap, taken.path, taken.line)


def test_id_bound_mismatch_notes_follow_the_id_into_the_helper() -> None:
    snap = fixture_snapshot(IDB / "count-compare-helper")
    found = {f.function: f for f in _run(snap, "id-bound-mismatch")}
    helper = found["server_out_of_range"]
    call, cmp = helper.notes
    assert call.function == "kvmppc_xive_connect_vcpu"
    assert "server_out_of_range(" in _line(snap, call.path, call.line)
    assert (cmp.path, cmp.line) == (helper.path, helper.line)
    assert "a count" in cmp.message
    direct = found["kvmppc_xive_connect_vcpu"]
    assert len(direct.notes) == 1 and "sizes the VP block" in direct.notes[0].message


def test_a_disagreement_shows_the_accepting_path_and_the_refusing_guard() -> None:
    snap = fixture_snapshot(IDB / "disagree")
    (f,) = [f for f in _run(snap, "id-bound-mismatch") if "accepted" in f.message]
    vid = f.counterexample["ids"][0]
    first, last = f.notes[0], f.notes[-1]
    assert first.function == f.counterexample["values"]["accepted_by"]
    assert (last.path, last.line) == (f.path, f.line) and last.message.endswith(
        f"refuses {vid}")
    assert any("gets a VCORE" in n.message for n in f.notes)


def test_notes_reach_json_and_sarif_code_flows(cli) -> None:
    rc, out, _ = cli("check", str(RFC), "--format", "json", "--rule", "collision-crash",
                     "--rule", "id-bound-mismatch", "--severity", "info")
    data = json.loads(out)
    assert all(f["notes"] for f in data["findings"] if f["rule"] == "collision-crash")
    rc, out, _ = cli("check", str(IDB / "count-compare"), "--format", "sarif",
                     "--rule", "id-bound-mismatch")
    results = json.loads(out)["runs"][0]["results"]
    assert results and all(r["codeFlows"][0]["threadFlows"][0]["locations"]
                           for r in results)


def _renamed(snap: Snapshot, pairs: dict[str, str]) -> Snapshot:
    files = {}
    for path, data in snap.files.items():
        text = data.decode()
        for old, new in pairs.items():
            text = re.sub(rf"\b{old}\b", new, text)
        files[path] = text.encode()
    return Snapshot(snap.target, files)


def test_a_count_is_recognised_by_its_role_not_its_name() -> None:
    """The block-count field renamed everywhere is still the count that sizes the VP
    block; a macro of its own name for the count that bounds the packed index is that
    count. Neither name is known to the rule."""
    snap = fixture_snapshot(IDB / "count-compare")
    before = [(f.path, f.line) for f in _run(snap, "id-bound-mismatch")]
    assert len(before) == 2
    renamed = _renamed(snap, {"nr_servers": "n_srv"})
    path = "arch/powerpc/kvm/book3s_xive.c"
    text = renamed.files[path].decode().replace("if (cpu >= KVM_MAX_VCPUS)",
                                                "if (cpu >= XIVE_MAX_SERVERS)")
    files = dict(renamed.files, **{path: b"#define XIVE_MAX_SERVERS (KVM_MAX_VCPUS)\n" +
                                   text.encode()})
    after = _run(Snapshot(snap.target, files), "id-bound-mismatch")
    assert [(f.path, f.line - 1) for f in after] == before  # one line added above
    assert [f.message.split(":")[1].split()[0] for f in after] == [
        "XIVE_MAX_SERVERS", "xive->n_srv"]
    assert "= KVM_MAX_VCPUS" in after[0].notes[-1].message


def test_a_bound_with_no_count_role_is_not_a_count() -> None:
    """The same comparison against a macro that neither sizes the block nor bounds the
    packed index (nor the table) is no finding, whatever it is called."""
    snap = fixture_snapshot(IDB / "count-compare")
    text = snap.files["arch/powerpc/kvm/book3s_xive.c"].decode()
    text = text.replace("if (cpu >= KVM_MAX_VCPUS)", "if (cpu >= KVM_MAX_VCPUS_UNRELATED)")
    text = "#define KVM_MAX_VCPUS_UNRELATED (NR_CPUS * 8)\n" + text
    files = dict(snap.files, **{"arch/powerpc/kvm/book3s_xive.c": text.encode()})
    found = _run(Snapshot(snap.target, files), "id-bound-mismatch")
    assert [f.message.split(":")[1].split()[0] for f in found] == ["xive->nr_servers"]


def _quoted_on_its_line(snap: Snapshot, f) -> None:
    for n in f.notes:  # a quoted condition is on the line the note names
        quoted = re.match(r"'([^']*)'", n.message)
        if quoted:
            assert quoted.group(1) in " ".join(_line(snap, n.path, n.line).split()), n


def test_vcore_loop_notes_show_the_last_iteration() -> None:
    snap = fixture_snapshot(FIXTURES / "rules" / "vcore-index" / "loop-bound")
    (f,) = [f for f in _run(snap, "vcore-index") if f.key.startswith("loop:")]
    top, size = f.counterexample["values"]["index"], f.counterexample["values"]["size"]
    cond, access = f.notes
    assert cond.message.startswith("'i < ") and f"i={top}" in cond.message
    assert "for (" in _line(snap, cond.path, cond.line)
    assert (access.path, access.line) == (f.path, f.line)
    assert f"[{top}]" in access.message and f"{size} entries" in access.message
    _quoted_on_its_line(snap, f)


def test_vcore_loop_notes_follow_the_index_into_a_helper() -> None:
    """The access moved into a helper called once from the loop: the call is a note."""
    snap = fixture_snapshot(FIXTURES / "rules" / "vcore-index" / "loop-bound")
    path = "arch/powerpc/kvm/book3s_hv.c"
    src = snap.files[path].decode()
    old = ("\t\tif (kvm->arch.vcores[i]) /* expect: vcore-index */\n"
           "\t\t\tpr_info(\"vcore %d\\n\", i);\n")
    assert old in src
    helper = ("static void dump_one(struct kvm *kvm, int k)\n{\n"
              "\tif (kvm->arch.vcores[k])\n\t\tpr_info(\"vcore %d\\n\", k);\n}\n\n")
    src = src.replace(old, "\t\tdump_one(kvm, i);\n")
    src = src.replace("static void kvmppc_dump_vcores", helper + "static void kvmppc_dump_vcores")
    snap = snap.with_files({path: src.encode()}, "helper")
    (f,) = [f for f in _run(snap, "vcore-index") if f.key.startswith("loop:")]
    assert f.function == "dump_one"
    cond, call, access = f.notes
    assert cond.function == call.function == "kvmppc_dump_vcores"
    assert "dump_one(kvm, i)" in _line(snap, call.path, call.line)
    assert access.function == "dump_one" and (access.path, access.line) == (f.path, f.line)
    _quoted_on_its_line(snap, f)


def _rfc_pack(n: int, stride: int, vid: int) -> int | None:
    """The RFC's kvmppc_pack_vcpu_id by hand (KVM_MAX_VCPUS = NR_CPUS); None: BUG_ON."""
    block = (vid // n) * (8 // stride)
    if block >= 8:
        return None
    packed = vid % n + [0, 4, 2, 6, 1, 5, 3, 7][block]
    return packed if packed < n else None


def test_raw_vp_base_counterexample_is_a_server_the_helper_packs_elsewhere() -> None:
    snap = fixture_snapshot(RFC)
    found = _run(snap, "xive-raw-vp-base")
    assert found
    for f in found:
        ce = f.counterexample
        n, stride, (server,) = ce["NR_CPUS"], ce["emul_smt_mode"], ce["ids"]
        offset = ce["values"]["vp_offset"]
        assert _rfc_pack(n, stride, server) == offset != server and offset < n
        # the smallest such server in the smallest such build
        assert all(_rfc_pack(n, stride, s) in (None, s) for s in range(server))
        assert all(_rfc_pack(m, st, s) in (None, s) for m in range(2, n)
                   for st in (1, 2, 4, 8) for s in range(16 * m))
        (note,) = f.notes
        assert "return xive->vp_base + kvmppc_pack_vcpu_id(" in _line(snap, note.path, note.line)
        assert f"server {server} is VP base + {offset}" in f.message


def test_capacity_id_space_notes_show_generic_kvm_refusing_the_id() -> None:
    snap = fixture_snapshot(RFC)
    (f,) = [f for f in _run(snap, "capacity") if "refused by" in f.message]
    ce = f.counterexample
    (vid,) = ce["ids"]
    check, sizes = f.notes
    assert check.function == "kvm_vm_ioctl_create_vcpu" and f"true for {vid}" in check.message
    _quoted_on_its_line(snap, f)
    assert _line(snap, sizes.path, sizes.line).startswith("#define KVM_MAX_VCORES")
    vcores = int(re.search(r" is (\d+) with", sizes.message).group(1))
    # KVM_MAX_VCPU_ID = threads_per_subcore * KVM_MAX_VCORES, and the ID is at its end
    assert "(threads_per_subcore * KVM_MAX_VCORES)" in _line(snap, f.path, f.line)
    assert vid == ce["threads_per_subcore"] * vcores


def test_capacity_names_the_early_return_that_turns_the_id_away() -> None:
    """An early return before every assignment of the VCORE index is the refusing check."""
    snap = fixture_snapshot(FIXTURES / "rules" / "pack-domain" / "early-return")
    (f,) = _run(snap, "capacity")
    (vid,) = f.counterexample["ids"]
    text = _line(snap, f.path, f.line)
    assert text.strip() == "if (id >= KVM_MAX_VCPUS)"
    assert f"by the check at line {f.line}" in f.message
    assert vid >= f.counterexample["NR_CPUS"]  # KVM_MAX_VCPUS = NR_CPUS refuses it


def test_raw_vp_base_claims_the_raw_sum_only_when_it_adds_the_server_as_is() -> None:
    """``vp_base + (server-1)`` is not ``base + server``: the message must not say so."""
    snap = fixture_snapshot(RFC)
    path = "arch/powerpc/kvm/book3s_xive.c"
    plain = b"xive->vp_base + state->act_server, MASKED"
    assert plain in snap.files[path]
    edited = snap.files[path].replace(plain, b"xive->vp_base + (state->act_server-1), MASKED")
    snap = Snapshot(snap.target, {**snap.files, path: edited})
    found = {f.key: f for f in _run(snap, "xive-raw-vp-base")}
    shifted = found["xive->vp_base + (state->act_server-1)"]
    assert "is VP base +" in shifted.message and "not base +" not in shifted.message
    others = [f for k, f in found.items() if k != "xive->vp_base + (state->act_server-1)"]
    assert others and all("not base +" in f.message for f in others)
