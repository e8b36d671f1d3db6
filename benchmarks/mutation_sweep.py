"""Every mutation operator at every site, on every tree: is each injected bug found?

Usage:
  python benchmarks/mutation_sweep.py [--jobs 2] [--tree NAME ...] [--linux DIR]
         [--no-linux] [--sample] [--failures FILE] [--write-known FILE]

Prints, per tree and per operator, the mutants run and how many were found at
the right line with a counterexample that re-derives, same-site (the line was
already reported, and that finding's counterexample holds on the mutated code),
undecided (the engine reports the path undecided, naming the construct),
missed, found at a wrong line, or found with a counterexample that does not
hold; equivalent mutants are counted apart (unchanged, or changed = a false
alarm), never as misses. ``--sample`` runs exactly what tests/test_mutation.py replays, so

  python benchmarks/mutation_sweep.py --sample \
      --write-known tests/data/mutation/known-failures.toml

regenerates the test's known-failures list.
"""

from __future__ import annotations

import argparse
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

KNOWN_HEADER = """\
Mutants the current engine does not find at the right line with a counterexample
that re-derives (strict xfail in tests/test_mutation.py). Regenerate with:
  python benchmarks/mutation_sweep.py --sample --write-known \
tests/data/mutation/known-failures.toml
"""
CLASSES = ("found", "same-site", "undecided", "missed", "wrong-line", "bad-counterexample",
           "equivalent", "equivalent-changed", "error")


def status(o: Outcome) -> str:
    return o.symptom.split(":")[0] if o.symptom else "?"


def plan_cases(trees: dict[str, Path], sample: bool) -> list[tuple[str, str, str]]:
    if sample:
        cases = plan.mutation_test_cases(trees)
        if plan.REALTREE in trees:
            path = str(trees[plan.REALTREE])
            cases += [(plan.REALTREE, path, k) for k in plan.mutant_sample(plan.REALTREE, path, 1)]
        return cases
    return [(name, str(path), k) for name, path in trees.items()
            for k in plan.mutants_of(name, str(path))]


def _work(case: tuple[str, str, str]) -> Outcome:
    return plan.run_mutant(*case)


def report(outcomes: list[Outcome]) -> None:
    cols = " ".join(f"{c.replace('equivalent', 'equiv')[:12]:>12}" for c in CLASSES)
    for title, key in (("tree", lambda o: o.tree), ("operator", lambda o: o.transform)):
        groups: dict[str, Counter] = defaultdict(Counter)
        for o in outcomes:
            groups[key(o)][status(o)] += 1
        print(f"{title:40} {'run':>4} {cols}")
        for name, c in groups.items():
            print(f"{name:40} {sum(c.values()):4} " + " ".join(f"{c[k]:12}" for k in CLASSES))
        print()
    total = Counter(status(o) for o in outcomes)
    print("TOTAL " + ", ".join(f"{k} {total[k]}" for k in CLASSES))
    seen: set[tuple[str, str]] = set()
    print("\nOne example per (operator, class) that is not a pass:")
    for o in outcomes:
        if not o.ok and (o.transform, status(o)) not in seen:
            seen.add((o.transform, status(o)))
            print(f"  {o.transform:20} {o.tree} {o.site}\n      {o.symptom}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tree", action="append")
    ap.add_argument("--linux")
    ap.add_argument("--no-linux", action="store_true")
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--failures", default=os.path.join(tempfile.gettempdir(),
                                                       "mutation-failures.toml"))
    ap.add_argument("--write-known")
    args = ap.parse_args()
    trees = plan.fixture_trees()
    linux = None if args.no_linux else plan.linux_tree(args.linux)
    if linux is not None:
        trees[plan.REALTREE] = linux
    if args.tree:
        trees = {k: v for k, v in trees.items() if k in args.tree}
    t0 = time.perf_counter()
    cases = plan_cases(trees, args.sample)
    print(f"{len(cases)} mutants on {len(trees)} trees", flush=True)
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            outcomes = pool.map(_work, cases, chunksize=4)
    else:
        outcomes = [_work(c) for c in cases]
    print(f"ran in {time.perf_counter() - t0:.1f} s with --jobs {args.jobs}\n")
    report(outcomes)
    n = write_known(Path(args.failures), outcomes, "Failing mutants of one sweep.", "operator")
    print(f"\n{n} failing mutants written to {args.failures}")
    if args.write_known:
        n = write_known(Path(args.write_known), outcomes, KNOWN_HEADER, "operator")
        print(f"{n} known failures written to {args.write_known}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
