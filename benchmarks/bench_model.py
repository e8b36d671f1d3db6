"""Time of the full model sweep (pack-table, collision-crash, capacity) and the
evaluator's speed, on a kernel tree. Usage: python benchmarks/bench_model.py [TREE]

Default tree: the bundled RFC example; pass Debian's 6.12 tree to measure that.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer import checks, facts, model, ruleset, source  # noqa: E402


def main() -> None:
    tree = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "fixtures/trees/rfc-applied")
    snap = source.from_directory(tree)
    rules = ruleset.select(["pack-table", "collision-crash", "capacity"])
    fx = facts.extract(snap, ruleset.tokens(rules))
    t0 = time.perf_counter()
    found = checks.run(rules, fx)
    sweep = time.perf_counter() - t0
    print(f"{tree}: model sweep (3 rules, {len(list(model.configs()))} configurations): "
          f"{sweep:.3f} s, {len(found)} findings")

    t = model.tree(fx)
    pack = t.compiled("kvmppc_pack_vcpu_id")
    env = model.Config(2048, 8, 1).env()
    n = 0
    t0 = time.perf_counter()
    for vid in range(0, 8 * 2048):
        pack(0, vid, env=env)
        n += 1
    dt = time.perf_counter() - t0
    print(f"kvmppc_pack_vcpu_id evaluated {n} times (NR_CPUS=2048, every ID): "
          f"{dt:.3f} s, {n / dt:,.0f} evaluations/s")


if __name__ == "__main__":
    main()
