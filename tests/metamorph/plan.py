"""Which trees, which sites: shared by tests/test_metamorphic.py and the sweep benchmark.

The test replays a seeded sample (``sample``), the sweep runs every site; both
name cases the same way, (tree, transform, site key), so one known-failures
file serves both.
"""

from __future__ import annotations

import functools
import random
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .csrc import ENTRY_POINTS, Tree, called_names, read_tree, text, walk
from .oracle import Outcome, Signature, judge, run_check, signature
from .transforms import TRANSFORMS, Site, all_sites

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
DATA = ROOT / "tests" / "data" / "metamorphic"
KNOWN = DATA / "known-failures.toml"
CORPUS = DATA / "corpus.toml"
REALTREE = "linux-6.12"
SEED = 9


SHAPES = DATA / "trees"  # small trees with the control-flow shapes the fixtures lack


def fixture_trees() -> dict[str, Path]:
    """The two bundled trees, every rule fixture that is a directory tree, and the
    metamorphic suite's own shape trees."""
    out = {name: FIXTURES / "trees" / name for name in ("pre-rfc", "rfc-applied")}
    for d in sorted((FIXTURES / "rules").glob("*/*")):
        if (d / "arch" / "powerpc" / "kvm").is_dir():
            out[f"rules/{d.parent.name}/{d.name}"] = d
    for d in sorted(SHAPES.glob("*")):
        out[f"shapes/{d.name}"] = d
    return out


@functools.cache
def load(name: str, path: str) -> Tree:
    return Tree(name, read_tree(path))


@functools.cache
def baseline(name: str, path: str) -> Signature:
    return signature(run_check(load(name, path).files))


@functools.cache
def sites_of(name: str, path: str, kind: str) -> dict[str, Site]:
    return {s.key: s for s in all_sites(load(name, path), [kind])}


def core_functions(tree: Tree) -> frozenset[str]:
    """Entry points and the functions through which they reach the packing function."""
    reaches: dict[str, bool] = {}

    def reach(name: str, seen: frozenset[str]) -> bool:
        if name == tree.packer:
            return True
        if name in reaches or name in seen:
            return reaches.get(name, False)
        fn = tree.by_name[name]
        hit = any(reach(c, seen | {name}) for c in called_names(tree, fn.body))
        reaches[name] = hit or any(n.type == "field_identifier" and text(n) == "vp_base"
                                   for n in walk(fn.body))
        return reaches[name]
    core = {n for n in tree.visible if reach(n, frozenset())}
    return frozenset(core | (ENTRY_POINTS & set(tree.by_name)) | {tree.packer} - {None})


@functools.cache
def hot_names(name: str, path: str) -> frozenset[str]:
    """The core functions, and the fields the packing function, the VP block, ``vcores`` or
    the core functions' conditions read (field sites are keyed ``field:NAME``)."""
    tree = load(name, path)
    core = core_functions(tree)
    where = [c.child_by_field_name("condition") for f in tree.functions if f.name in core
             for c in walk(f.body) if c.type == "if_statement"]
    if tree.packer:
        where.append(tree.by_name[tree.packer].body)
    fields = {text(n) for w in where for n in walk(w) if n.type == "field_identifier"}
    return core | frozenset(f"field:{x}" for x in fields | {"vp_base", "vcores"})


def on_core(site: Site, hot: frozenset[str]) -> bool:
    parts = site.key.split(":")
    return site.key in hot or (len(parts) > 2 and parts[1] in hot)


def sample(name: str, path: str, per_kind: int, kinds: Iterable[str] | None = None) -> \
        list[Site]:
    """Up to ``per_kind`` sites of each kind, seeded; sites on the entry paths first."""
    core = hot_names(name, path)
    out: list[Site] = []
    for kind in kinds or TRANSFORMS:
        sites = sorted(sites_of(name, path, kind).values(), key=lambda s: s.key)
        rng = random.Random(f"{SEED}:{name}:{kind}")
        hot = [s for s in sites if on_core(s, core)]
        cold = [s for s in sites if not on_core(s, core)]
        pick = rng.sample(hot, min(len(hot), per_kind))
        pick += rng.sample(cold, min(len(cold), per_kind - len(pick)))
        out += sorted(pick, key=lambda s: s.key)
    return out


def run_one(name: str, path: str, kind: str, key: str) -> Outcome:
    site = sites_of(name, path, kind).get(key)
    if site is None:
        return Outcome(name, kind, key, False, "site no longer exists in this tree")
    return judge(name, site, baseline(name, path), Path(path))


def rule_dir_plan(trees: dict[str, Path]) -> list[tuple[str, str]]:
    """(rule fixture tree, kind): each kind on two rule fixtures, round-robin."""
    dirs = [n for n in trees if n.startswith("rules/")]
    if not dirs:
        return []
    return [(dirs[(2 * i + j) % len(dirs)], kind)
            for i, kind in enumerate(TRANSFORMS) for j in range(2)]


def test_cases(trees: dict[str, Path]) -> list[tuple[str, str, str, str]]:
    """What tests/test_metamorphic.py replays: (tree, path, kind, site key), fixtures only.

    Two sites of each kind on each bundled tree, one of each kind on each shape tree
    and on two rule fixtures, and the saved corpus. The 6.12 sample (one per kind) is
    drawn in the test itself, where the tree is available.
    """
    cases = []
    for name in ("pre-rfc", "rfc-applied"):
        if name in trees:
            cases += [(name, str(trees[name]), s.transform, s.key)
                      for s in sample(name, str(trees[name]), 2)]
    for name in (n for n in trees if n.startswith("shapes/")):
        cases += [(name, str(trees[name]), s.transform, s.key)
                  for s in sample(name, str(trees[name]), 1)]
    for name, kind in rule_dir_plan(trees):
        cases += [(name, str(trees[name]), s.transform, s.key)
                  for s in sample(name, str(trees[name]), 1, [kind])]
    for c in corpus():
        if c[0] in trees and (c[0], str(trees[c[0]]), c[1], c[2]) not in cases:
            cases.append((c[0], str(trees[c[0]]), c[1], c[2]))
    return cases


def corpus() -> list[tuple[str, str, str]]:
    """Saved (tree, transform, site) cases under tests/data/metamorphic/corpus.toml."""
    import tomllib

    if not CORPUS.exists():
        return []
    return [(c["tree"], c["transform"], c["site"])
            for c in tomllib.loads(CORPUS.read_text()).get("case", [])]


@functools.cache
def base_findings(name: str, path: str) -> tuple:
    return tuple(run_check(load(name, path).files))


@functools.cache
def mutants_of(name: str, path: str) -> dict:
    from .mutations import all_mutants

    return {f"{m.operator}|{m.key}": m for m in all_mutants(load(name, path))}


def run_mutant(name: str, path: str, mkey: str) -> Outcome:
    from .oracle import judge_mutant

    m = mutants_of(name, path).get(mkey)
    if m is None:
        op, _, key = mkey.partition("|")
        return Outcome(name, op, key, False, "mutant no longer exists in this tree")
    return judge_mutant(name, m, list(base_findings(name, path)), Path(path))


MUTATION_KNOWN = ROOT / "tests" / "data" / "mutation" / "known-failures.toml"


def mutant_sample(name: str, path: str, per_operator: int) -> list[str]:
    """Up to ``per_operator`` mutant keys of each operator, seeded."""
    by_op: dict[str, list[str]] = {}
    for k in sorted(mutants_of(name, path)):
        by_op.setdefault(k.partition("|")[0], []).append(k)
    out: list[str] = []
    for op, keys in by_op.items():
        out += sorted(random.Random(f"{SEED}:{name}:{op}").sample(keys,
                                                                   min(per_operator, len(keys))))
    return out


MUTATION_CORPUS = ROOT / "tests" / "data" / "mutation" / "corpus.toml"


def mutation_corpus() -> list[tuple[str, str]]:
    """Saved (tree, operator|site) mutants under tests/data/mutation/corpus.toml."""
    import tomllib

    if not MUTATION_CORPUS.exists():
        return []
    return [(c["tree"], f"{c['operator']}|{c['site']}")
            for c in tomllib.loads(MUTATION_CORPUS.read_text()).get("case", [])]


def mutation_test_cases(trees: dict[str, Path]) -> list[tuple[str, str, str]]:
    """What tests/test_mutation.py replays: two mutants per operator on the bundled trees,
    and the saved corpus (one per cause a full sweep found)."""
    cases = [(name, str(trees[name]), k) for name in ("pre-rfc", "rfc-applied")
             if name in trees for k in mutant_sample(name, str(trees[name]), 2)]
    return cases + [(name, str(trees[name]), k) for name, k in mutation_corpus()
                    if name in trees and (name, str(trees[name]), k) not in cases]


TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")


def linux_tree(arg: str | None) -> Path | None:
    """Debian 6.12 for the benchmarks: ``arg``, /work/linux-6.12, or the installed tarball."""
    for cand in (arg, "/work/linux-6.12"):
        if cand and Path(cand, "arch/powerpc/kvm").is_dir():
            return Path(cand)
    if not TARBALL.exists():
        return None
    dest = Path(tempfile.mkdtemp(prefix="vpm-linux-"))
    with tarfile.open(TARBALL, "r|xz") as tar:
        for m in tar:
            rel = m.name.partition("/")[2]
            if m.isfile() and rel.startswith(("arch/powerpc/", "include/linux/kvm_host.h",
                                              "virt/kvm/")):
                m.name = rel
                tar.extract(m, dest, filter="data")
    return dest
