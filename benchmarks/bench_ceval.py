"""Speed of analyzer.model.ceval on the RFC's kvmppc_pack_vcpu_id.

Evaluates the packing function, compiled from the bundled RFC tree (or the
tree given as argument), for every ID 0 .. stride*NR_CPUS-1 and every stride
1, 2, 4, 8, for NR_CPUS = 16, 32, ..., 2048, and prints evaluations/second.

Usage: python benchmarks/bench_ceval.py [TREE]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.c import parse as cparse  # noqa: E402
from analyzer.model import ceval  # noqa: E402

HEADER = "arch/powerpc/include/asm/kvm_book3s.h"
DEFINES = {"KVM_MAX_VCPUS": "NR_CPUS", "MAX_SMT_THREADS": "8"}


def load(tree: Path) -> ceval.Program:
    data = (tree / HEADER).read_bytes()
    fns = {}
    root = cparse.parse(data).root_node
    for node in cparse.captures("(function_definition) @f", root).get("f", []):
        fns[cparse.function_name(node)] = (node, data)
    return ceval.Program(fns, DEFINES)


def main() -> None:
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures/trees/rfc-applied"
    t0 = time.perf_counter()
    pack = ceval.compile_function(load(tree), "kvmppc_pack_vcpu_id")
    print(f"compiled kvmppc_pack_vcpu_id from {tree / HEADER} in "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")
    total, total_s = 0, 0.0
    nr = 16
    while nr <= 2048:
        n, crashed = 0, 0
        t0 = time.perf_counter()
        for stride in (1, 2, 4, 8):
            env = {"NR_CPUS": nr, "emul_smt_mode": stride, "smt_mode": 1}
            for vid in range(stride * nr):
                crashed += pack(0, vid, env=env).crashed
            n += stride * nr
        dt = time.perf_counter() - t0
        total, total_s = total + n, total_s + dt
        print(f"NR_CPUS={nr:5d}: {n:6d} evaluations ({crashed} BUG_ON) in {dt:.3f} s: "
              f"{n / dt:,.0f}/s")
        nr *= 2
    print(f"all: {total} evaluations in {total_s:.3f} s: {total / total_s:,.0f} evaluations/s")


if __name__ == "__main__":
    main()
