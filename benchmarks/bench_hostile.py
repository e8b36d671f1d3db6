"""Time and peak memory of refusing hostile input (issue 11), each in a fresh interpreter.

Usage: python benchmarks/bench_hostile.py
Builds, in a temporary directory: the 229 KB .tar.xz holding a 1.5 GB member
(once with an irrelevant name, once as a source vpcheck would read), a 50 MB
C file with a rule token, and runs `vpcheck model --nr-cpus 100000000`.
Before the limits these took 16 s / 3.1 GB, >300 s / 2.9 GB and >10 min / 16 GB.
"""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
         "r = subprocess.run([sys.executable, '-m', 'analyzer.cli', *sys.argv[1:]], "
         "stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
         "print(r.returncode, round(time.perf_counter() - t, 2), "
         "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
         "print(r.stderr.strip())")


def measure(label: str, *argv: str) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True,
                         text=True).stdout.splitlines()
    rc, wall, rss = out[0].split()
    print(f"{label}: exit {rc}, {wall} s wall, peak RSS {rss} MiB\n    {out[1]}")


def xz_bomb(path: str, name: str, size: int = 1536 << 20) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    comp = lzma.LZMACompressor(preset=0)
    with open(path, "wb") as fh:
        fh.write(comp.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            fh.write(comp.compress(chunk))
        fh.write(comp.compress(bytes(1024)))  # end-of-archive blocks
        fh.write(comp.flush())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for label, name in (("irrelevant", "linux-6.12/Documentation/big.bin"),
                            ("relevant", "linux-6.12/arch/powerpc/kvm/book3s_xive.c")):
            bomb = os.path.join(tmp, f"{label}.tar.xz")
            xz_bomb(bomb, name)
            print(f"{label} bomb: {os.path.getsize(bomb) / 1024:.0f} KB compressed, 1.5 GB "
                  f"member (built in {time.perf_counter() - t:.0f} s)")
            measure(f"check {label} bomb", "check", bomb)
        tree = os.path.join(tmp, "tree", "arch", "powerpc", "kvm")
        os.makedirs(tree)
        line = b"u32 f(struct kvmppc_xive *xive, u32 s) { return xive->vp_base + s; }\n"
        with open(os.path.join(tree, "book3s_xive.c"), "wb") as fh:
            fh.write(line * (50 * 2**20 // len(line)))
        measure("check 50 MB C file", "check", os.path.join(tmp, "tree"))
        measure("model --nr-cpus 100000000", "model", "--nr-cpus", "100000000")


if __name__ == "__main__":
    main()
