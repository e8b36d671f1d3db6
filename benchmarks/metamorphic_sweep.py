"""Every behaviour-preserving rewrite at every site, on every tree: does vpcheck agree?

Usage:
  python benchmarks/metamorphic_sweep.py [--jobs 2] [--tree NAME ...] [--transform KIND ...]
         [--linux DIR] [--sample] [--core-only] [--failures FILE] [--write-known FILE]

Prints the number of (transformation, site) pairs run per tree, how many keep
the multiset of (rule, function, severity), and the failures grouped by
transformation with one example diff each; writes every failing case to
--failures. ``--sample`` runs exactly the cases tests/test_metamorphic.py
replays, so

  python benchmarks/metamorphic_sweep.py --sample \
      --write-known tests/data/metamorphic/known-failures.toml

regenerates the test's known-failures list in about a minute.
"""

from __future__ import annotations

import argparse
import difflib
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.metamorph import plan  # noqa: E402
from tests.metamorph.oracle import Outcome, write_known  # noqa: E402
from tests.metamorph.transforms import TRANSFORMS, InvalidRewrite  # noqa: E402

KNOWN_HEADER = """\
Metamorphic cases that fail on the current engine (strict xfail in
tests/test_metamorphic.py). Regenerate after an engine change with:
  python benchmarks/metamorphic_sweep.py --sample --write-known \
tests/data/metamorphic/known-failures.toml
"""


def plan_cases(trees: dict[str, Path], kinds: list[str], sample: bool,
               core_only: bool = False) -> list[tuple]:
    if sample:  # exactly what tests/test_metamorphic.py replays
        cases = [c for c in plan.test_cases(trees) if c[2] in kinds]
        if plan.REALTREE in trees:
            path = str(trees[plan.REALTREE])
            cases += [(plan.REALTREE, path, s.transform, s.key)
                      for s in plan.sample(plan.REALTREE, path, 1, kinds)]
            cases += [(plan.REALTREE, path, kind, key) for tree, kind, key in plan.corpus()
                      if tree == plan.REALTREE and kind in kinds
                      and (plan.REALTREE, path, kind, key) not in cases]
        return cases
    cases = []
    for name, path in trees.items():
        core = plan.hot_names(name, str(path)) if core_only else None
        cases += [(name, str(path), kind, key) for kind in kinds
                  for key, site in plan.sites_of(name, str(path), kind).items()
                  if core is None or plan.on_core(site, core)]
    return cases


def _work(case: tuple) -> Outcome:
    return plan.run_one(*case)


def run(cases: list[tuple], jobs: int) -> list[Outcome]:
    if jobs <= 1:
        return [_work(c) for c in cases]
    # Sorted by tree so each worker parses each tree once (chunks stay within a tree).
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(_work, cases, chunksize=8)


def example_diff(trees: dict[str, Path], o: Outcome, limit: int = 40) -> str:
    site = plan.sites_of(o.tree, str(trees[o.tree]), o.transform).get(o.site)
    if site is None:
        return ""
    try:
        variant = site.make()
    except InvalidRewrite as e:
        return str(e)
    tree = plan.load(o.tree, str(trees[o.tree]))
    out: list[str] = []
    for path, data in variant.files.items():
        out += difflib.unified_diff(tree.files[path].decode().splitlines(),
                                    data.decode().splitlines(), f"a/{path}", f"b/{path}",
                                    n=1, lineterm="")
    return "\n".join(out[:limit]) + ("\n    …" if len(out) > limit else "")


def report(trees: dict[str, Path], outcomes: list[Outcome]) -> None:
    per_tree: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        per_tree[o.tree]["run"] += 1
        per_tree[o.tree]["pass" if o.ok else "fail"] += 1
    print(f"{'tree':44} {'pairs':>6} {'pass':>6} {'fail':>6}")
    for name, c in per_tree.items():
        print(f"{name:44} {c['run']:6} {c['pass']:6} {c['fail']:6}")
    total = Counter(o.ok for o in outcomes)
    print(f"{'TOTAL':44} {len(outcomes):6} {total[True]:6} {total[False]:6}\n")
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.transform].append(o)
    print(f"{'transformation':24} {'pairs':>6} {'fail':>6}")
    for kind in TRANSFORMS:
        os_ = by_kind.get(kind, [])
        print(f"{kind:24} {len(os_):6} {sum(not o.ok for o in os_):6}")
    for kind in TRANSFORMS:
        bad = [o for o in by_kind.get(kind, []) if not o.ok]
        if not bad:
            continue
        symptoms = Counter(o.symptom.split(";")[0].split(",")[0] for o in bad)
        print(f"\n== {kind}: {len(bad)} failures; commonest: "
              + "; ".join(f"{s} ({n})" for s, n in symptoms.most_common(3)))
        ex = bad[0]
        print(f"   e.g. {ex.tree} {ex.site}: {ex.symptom}")
        print("\n".join("    " + line for line in example_diff(trees, ex).splitlines()))


def save_corpus(path: Path, outcomes: list[Outcome]) -> int:
    """Keep one failing case per (6.12 or fixture, transformation), merged into ``path``."""
    import tomllib

    old = tomllib.loads(path.read_text()).get("case", []) if path.exists() else []
    have = {(c["tree"] == plan.REALTREE, c["transform"]) for c in old}
    keep = [Outcome(c["tree"], c["transform"], c["site"], False, c.get("symptom", ""))
            for c in old]
    for o in sorted(outcomes, key=lambda o: o.case):
        group = (o.tree == plan.REALTREE, o.transform)
        if not o.ok and group not in have:
            have.add(group)
            keep.append(o)
    header = ("Saved metamorphic cases, replayed by tests/test_metamorphic.py besides the\n"
              "seeded sample: one failing case per transformation (6.12, fixtures) from a\n"
              "full sweep (benchmarks/metamorphic_sweep.py --save-corpus).")
    return write_known(path, keep, header)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tree", action="append", help="tree name (default: all)")
    ap.add_argument("--transform", action="append", choices=list(TRANSFORMS))
    ap.add_argument("--linux", help="an extracted Debian 6.12 tree")
    ap.add_argument("--no-linux", action="store_true", help="fixture trees only")
    ap.add_argument("--sample", action="store_true",
                    help="only the seeded sample tests/test_metamorphic.py replays")
    ap.add_argument("--core-only", action="store_true",
                    help="only sites in the functions through which the entries reach the "
                    "packing function (the 6.12 sweep in minutes rather than an hour)")
    ap.add_argument("--failures", default=os.path.join(tempfile.gettempdir(),
                                                       "metamorphic-failures.toml"))
    ap.add_argument("--save-corpus", help="add one failing case per transformation to FILE")
    ap.add_argument("--write-known", help="also write the failures as the known-failures list")
    args = ap.parse_args()
    trees = plan.fixture_trees()
    linux = None if args.no_linux else plan.linux_tree(args.linux)
    if linux is not None:
        trees[plan.REALTREE] = linux
    if args.tree:
        trees = {k: v for k, v in trees.items() if k in args.tree}
    kinds = args.transform or list(TRANSFORMS)
    t0 = time.perf_counter()
    cases = plan_cases(trees, kinds, args.sample, args.core_only)
    print(f"{len(cases)} (transformation, site) pairs on {len(trees)} trees; "
          f"planned in {time.perf_counter() - t0:.1f} s", flush=True)
    for name, n in Counter(c[0] for c in cases).items():
        print(f"  {name:44} {n:6} pairs")
    outcomes = run(cases, args.jobs)
    print(f"ran in {time.perf_counter() - t0:.1f} s with --jobs {args.jobs}\n")
    report(trees, outcomes)
    n = write_known(Path(args.failures), outcomes, "Failing metamorphic cases of one sweep.")
    print(f"\n{n} failing cases written to {args.failures}")
    if args.save_corpus:
        n = save_corpus(Path(args.save_corpus), outcomes)
        print(f"{n} cases saved to the corpus {args.save_corpus}")
    if args.write_known:
        n = write_known(Path(args.write_known), outcomes, KNOWN_HEADER)
        print(f"{n} known failures written to {args.write_known}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
