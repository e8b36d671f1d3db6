"""The configuration space (analyzer/model/space.py): the builds come from the tree's
Kconfig and the constants its code compares against, and a bug that needs a build
above a constant is found at the smallest build that shows it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.model import packing, space
from analyzer.profile import load
from analyzer.sources.tree import Snapshot

from .annotations import annotations, compare
from .conftest import FIXTURES
from .test_rule_fixtures import fixture_snapshot

TREE = FIXTURES / "trees" / "vp-block-16"
KCONFIG = "arch/powerpc/platforms/Kconfig.cputype"


def _run(snap: Snapshot, rule_ids=None, nr_cpus=None):
    rules = ruleset.select(rule_ids) if rule_ids else ruleset.load_rules()
    if nr_cpus is not None:
        rules = [replace(r, params={**r.params, "nr_cpus": list(nr_cpus)}) for r in rules]
    return checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))


def _with_kconfig(snap: Snapshot, text: str | None) -> Snapshot:
    files = dict(snap.files)
    files.pop(KCONFIG)
    if text is not None:
        files[KCONFIG] = text.encode()
    return Snapshot(snap.target, files)


def test_the_tree_reports_what_its_marks_say() -> None:
    snap = fixture_snapshot(TREE)
    marks = annotations(snap.files)
    found = _run(snap)
    for rule in ruleset.load_rules():
        expected = marks.get(f"expect:{rule.id}", set())
        got = [(f.path, f.line) for f in found if f.rule == rule.id]
        noisy, missing = compare(expected, got)
        assert not noisy and not missing, (rule.id, noisy, missing)


def _reference_vp_overflow(nr_cpus: int) -> bool:
    """Plain arithmetic, independent of the engine: does some nr_servers in [1, NR_CPUS]
    admit a server (pack(s) < nr_servers) whose VP index pack(s) is >= the fixture's
    constant block of 16? IDs below NR_CPUS pack to themselves, and the connect path
    admits no packed value >= nr_servers, so the largest admitted index is NR_CPUS - 1."""
    block = 16
    return any(packed >= block for nr in range(1, nr_cpus + 1) for packed in range(nr))


def test_a_bug_only_above_16_cpus_is_found_at_the_smallest_build() -> None:
    snap = fixture_snapshot(TREE)
    (f,) = [f for f in _run(snap, ["vp-block-bound"])]
    ce = f.counterexample
    assert (ce["NR_CPUS"], ce["ids"], ce["values"]["nr_servers"]) == (17, [16], 17)
    assert ce["values"]["vp_index"] == 16 and ce["values"]["block_size"] == 16
    smallest = next(n for n in range(2, 64) if _reference_vp_overflow(n))
    assert ce["NR_CPUS"] == smallest
    # the engine agrees build by build: nothing at any NR_CPUS below it
    assert not _run(snap, ["vp-block-bound"], nr_cpus=range(2, smallest))
    assert _run(snap, ["vp-block-bound"], nr_cpus=[smallest])


def test_the_builds_come_from_the_trees_kconfig() -> None:
    snap = fixture_snapshot(TREE)
    narrow = _with_kconfig(snap, snap.files[KCONFIG].decode().replace(
        "range 2 8192 if SMP", "range 2 16 if SMP"))
    assert not _run(narrow, ["vp-block-bound"]), "a Kconfig that stops at 16 CPUs is safe"
    wider = _with_kconfig(snap, snap.files[KCONFIG].decode().replace(
        "range 2 8192 if SMP", "range 4 24 if SMP"))
    (f,) = _run(wider, ["vp-block-bound"])
    assert f.counterexample["NR_CPUS"] == 17
    t = packing.tree(facts.extract(wider, ruleset.tokens(ruleset.load_rules())))
    assert min(space.builds(t)) == 4 and max(space.builds(t)) == 24


def test_without_a_kconfig_the_profiles_range_holds() -> None:
    snap = _with_kconfig(fixture_snapshot(TREE), None)
    prof = load()
    rng = space.kconfig_range(snap.files, prof)
    assert (rng.low, rng.high, rng.default) == (*prof.nr_cpus_range, None)
    (f,) = _run(snap, ["vp-block-bound"])
    assert f.counterexample["NR_CPUS"] == 17


@pytest.mark.parametrize(("text", "want"), [
    ("config NR_CPUS\n\tint \"x\"\n\trange 2 8192 if SMP\n\tdefault \"1\" if !SMP\n"
     "\tdefault \"32\" if PPC64\n\tdefault \"4\"\n", (2, 8192, 32)),
    ("config NR_CPUS\n\trange 1 1 if !SMP\n\trange 2 64 if SMP && (PPC64 || PPC32)\n"
     "\tdefault 8\n", (2, 64, 8)),
    ("config NR_CPUS\n\trange 2 64 if FOO = y\n\trange 4 32\nconfig OTHER\n\trange 1 2\n",
     (4, 32, None)),
    ("config OTHER\n\trange 2 64\n", None),
    ("config NR_CPUS  # comment\n\trange 2 64 # why\n\thelp\n\t  range 1 9\n",
     (2, 64, None)),
])
def test_kconfig_range_and_default_follow_the_builds_conditions(text, want) -> None:
    enabled = frozenset({"CONFIG_SMP", "CONFIG_PPC64"})
    assert space.parse_kconfig(text, "NR_CPUS", enabled) == want


def test_one_build_per_class_smallest_first() -> None:
    """Builds whose constants stand in the same order are one class: the smallest runs.
    The fixture compares against MAX_SMT_THREADS (8) and allocates 16 VPs: the builds
    around both are candidates, and 17 opens the class of builds above the block; the
    remainders by 8 and 16 split classes too (32 is a multiple, 17 is not)."""
    t = packing.tree(facts.extract(fixture_snapshot(TREE),
                                   ruleset.tokens(ruleset.load_rules())))
    assert {7, 8, 9, 15, 16, 17, 2048, 8192} <= set(space.builds(t))
    cfgs = space.configs(t)
    chosen = sorted({c.nr_cpus for c in cfgs})
    assert chosen == sorted(chosen) and 17 in chosen and 8 in chosen
    # above 17 only the first build that all the constants divide opens a class
    assert {n for n in chosen if n > 17} == {32}, "every other larger build repeats one"
    assert all(c.threads == 1 for c in cfgs)
    assert [(c.nr_cpus, c.stride) for c in cfgs] == sorted((c.nr_cpus, c.stride) for c in cfgs)


def test_nr_servers_are_every_value_the_setter_accepts_when_few() -> None:
    assert space.block_counts(1, 17) == list(range(1, 18))
    many = space.block_counts(1, 2048, (100, 101))
    assert {1, 2, 2047, 2048, 100, 101, 1024} <= set(many) and len(many) < 30


def test_ids_whole_when_small_else_the_boundaries() -> None:
    dense = space.EXHAUSTIVE_IDS
    assert space.ids(dense) == list(range(dense))
    big = space.ids(1 << 16, [2048, 16384], {40000})
    assert big[:dense] == list(range(dense))
    assert {dense - 1, 6143, 6144, 6145, 40000, 65535} <= set(big)
    assert len(big) < dense + 300
    far = space.ids(None, (), {1 << 20}, dense=128)
    assert far[:128] == list(range(128)) and far[-2:] == [1 << 20, (1 << 31) - 1]


def test_the_tree_space_sweeps_every_stride_and_layout_of_its_builds() -> None:
    prof = load()
    assert list(packing.sweep(prof, (8,), layouts=False)) == [
        packing.Config(8, s, 1, prof) for s in prof.strides]
    assert {c.threads for c in packing.sweep(prof, (8,))} == set(range(1, max(prof.strides) + 1))


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TREE, tmp_path / "tree"))


def test_the_cli_reads_the_kconfig_of_a_directory(tree_copy: Path, cli) -> None:
    rc, out, _ = cli("check", str(tree_copy), "--format", "json", "--rule", "vp-block-bound")
    assert rc == 1 and '"NR_CPUS": 17' in out
    k = tree_copy / KCONFIG
    k.write_text(k.read_text().replace("range 2 8192 if SMP", "range 2 16 if SMP"))
    rc, out, _ = cli("check", str(tree_copy), "--format", "json", "--rule", "vp-block-bound")
    assert rc == 0, out


def test_a_reused_verdict_follows_the_kconfig() -> None:
    """Series mode reuses a verdict while nothing it reads changes: the range of builds
    is something it reads."""
    snap = fixture_snapshot(TREE)
    rules = ruleset.select(["vp-block-bound"])
    narrow = _with_kconfig(snap, snap.files[KCONFIG].decode().replace(
        "range 2 8192 if SMP", "range 2 16 if SMP"))
    first = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)), reuse=True)
    second = checks.run(rules, facts.extract(narrow, ruleset.tokens(rules)), reuse=True)
    assert len(first) == 1 and not second


def _pack(nr_cpus: int, stride: int, vid: int) -> int | None:
    """6.12's kvmppc_pack_vcpu_id() by hand (None: a WARN_ONCE fires)."""
    offsets = (0, 4, 2, 6, 1, 5, 3, 7)
    block = (vid // nr_cpus) * (8 // stride)
    if block >= 8:
        return None
    packed = vid % nr_cpus + offsets[block]
    return packed if packed < nr_cpus else None


def _qemu_short(nr_cpus: int, stride: int) -> bool:
    """Does a one-thread-per-core layout (IDs 0, stride, 2*stride ...) of NR_CPUS vCPUs
    pack some ID out of range or onto a taken slot?"""
    packed = [_pack(nr_cpus, stride, core * stride) for core in range(nr_cpus)]
    return None in packed or len(set(packed)) < len(packed)


def test_capacity_in_builds_outside_the_common_ones_is_info_and_derived() -> None:
    """The merged fixture (6.12's packing) is clean in every common build; the builds
    Kconfig also allows where the layout falls short are reported as info, at the
    smallest such build, which the hand-written packing above confirms."""
    snap = fixture_snapshot(FIXTURES / "rules" / "capacity" / "merged")
    found = [f for f in _run(snap, ["capacity"]) if f.rule == "capacity"]
    assert found and all(f.severity == "info" and "outside the profile's common" in f.message
                         for f in found)
    prof = load()
    assert not any(_qemu_short(n, s) for n in prof.nr_cpus_values for s in prof.strides)
    for f in found:
        cx = f.counterexample
        n, s = cx["NR_CPUS"], cx["emul_smt_mode"]
        assert _qemu_short(n, s) and not any(_qemu_short(m, s) for m in range(2, n))


def test_capacity_in_a_common_build_stays_the_rules_severity() -> None:
    snap = fixture_snapshot(FIXTURES / "rules" / "capacity" / "rfc-id-space")
    found = [f for f in _run(snap, ["capacity"]) if f.rule == "capacity"]
    assert found and all(f.severity == "warning" for f in found)


def test_model_takes_the_builds_from_the_trees_kconfig(cli, tmp_path) -> None:
    """``vpcheck model --nr-cpus`` accepts what the tree's own Kconfig allows."""
    snap = fixture_snapshot(TREE)
    for path, data in snap.files.items():
        if path == KCONFIG:
            data = data.decode().replace("range 2 8192 if SMP", "range 4 16 if SMP").encode()
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    rc, out, err = cli("model", "--tree", str(tmp_path), "--nr-cpus", "32")
    assert rc == 2 and out == "" and err == (
        f"vpcheck: error: model: --nr-cpus 32 is outside what the kernel's configuration "
        f"allows (4..16, {KCONFIG})\n")
    rc, out, _ = cli("model", "--tree", str(tmp_path), "--nr-cpus", "16")
    assert rc in (0, 1) and out
