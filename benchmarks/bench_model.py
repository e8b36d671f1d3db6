"""Time of the model sweep (pack-table, collision-crash, capacity), of the path rules
(pack-domain, vp-block-bound, vcore-index, id-bound-mismatch) with the number of
path executions per second, and the evaluator's speed, on a kernel tree.
Usage: python benchmarks/bench_model.py [TREE] [REPEAT]

Default tree: the bundled RFC example; pass Debian's 6.12 tree to measure that.
Each figure is the best of REPEAT runs (default 5; the first compiles, the others
reuse the compiled code, as the rules of one check do).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer import checks, profile, ruleset  # noqa: E402
from analyzer.c import facts  # noqa: E402
from analyzer.model import packing as model  # noqa: E402
from analyzer.model import paths, roles  # noqa: E402
from analyzer.sources import tree as source  # noqa: E402


def best(repeat: int, fn) -> tuple[float, object]:
    """(best wall time, result) of ``repeat`` runs of ``fn``."""
    out, dt = None, float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = min(dt, time.perf_counter() - t0)
    return dt, out


def main() -> None:
    tree = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "fixtures/trees/rfc-applied")
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    snap = source.from_directory(tree)
    rules = ruleset.select(["pack-table", "collision-crash", "capacity"])
    fx = facts.extract(snap, ruleset.tokens(rules))
    sweep, found = best(repeat, lambda: checks.run(rules, fx))
    prof = profile.load()
    print(f"{tree}: model sweep (3 rules, {len(list(model.sweep(prof)))} configurations): "
          f"{sweep:.3f} s, {len(found)} findings")

    path_rules = ruleset.select(["pack-domain", "vp-block-bound", "vcore-index",
                                 "id-bound-mismatch"])
    fx = facts.extract(snap, ruleset.tokens(path_rules))
    runs = _count_runs()
    dt, found = best(repeat, lambda: checks.run(path_rules, fx))
    per_run = runs[0] // repeat
    print(f"path rules: {dt:.3f} s, {per_run:,} path executions "
          f"({per_run / dt:,.0f}/s), {len(found)} findings")

    t = model.tree(fx)
    name = roles.find(fx, prof).pack
    pack = t.compiled(name)
    env = model.Config(2048, 8, 1, prof).env()
    ids = range(0, 8 * 2048)
    dt, _ = best(repeat, lambda: [pack(0, vid, env=env) for vid in ids])
    print(f"{name} evaluated {len(ids)} times (NR_CPUS=2048, every ID), one call each: "
          f"{dt:.3f} s, {len(ids) / dt:,.0f} evaluations/s")
    if hasattr(pack, "over"):
        dt, _ = best(repeat, lambda: pack.over((0, 0), 1, ids, env))
        print(f"{name} swept over the same IDs (Compiled.over, as pack-table does): "
              f"{dt:.3f} s, {len(ids) / dt:,.0f} evaluations/s")


def _count_runs() -> list[int]:
    """Count executions of a path (an ID run by a paths.runner, which paths.run uses,
    and CreatePath.slot) from here on."""
    count = [0]
    real_slot, real_runner = paths.CreatePath.slot, paths.runner

    def slot(*a, **k):
        count[0] += 1
        return real_slot(*a, **k)

    def runner(*a, **k):
        one = real_runner(*a, **k)

        def run_one(vid):
            count[0] += 1
            return one(vid)
        return run_one
    paths.CreatePath.slot, paths.runner = slot, runner
    return count


if __name__ == "__main__":
    main()
