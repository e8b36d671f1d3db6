"""Wall time and peak memory of `vpcheck check` on Debian's 6.12 tree, and the
physical floor measured in the same run: a fresh Python that imports tree-sitter
and parses the nine files the analysis needs. Prints their ratio (target <= 3x).

Usage: python benchmarks/bench_check.py [--no-bytecode] [TREE_DIR] [TARBALL]
Each measurement is a fresh interpreter running the CLI, as a user would, so
start-up and imports are included. Peak memory is the child's max RSS. The check
and the floor run in turn, round after round, and each figure is the best round;
the CPU time (user + system of the child) is printed too: on a machine shared with
other work it moves much less than the wall time.

Both the check and the floor run with Python's bytecode cache, as an installed
package has it (pip compiles it at install time): a development environment
with PYTHONDONTWRITEBYTECODE set would otherwise recompile every module of the
tool, but not tree-sitter's, on every run. The cache is written to a temporary
PYTHONPYCACHEPREFIX by one untimed run, never into the source tree.
``--no-bytecode`` measures without it (the environment as it is).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from realtree import TARBALL, extract  # noqa: E402

NINE = ("arch/powerpc/include/asm/kvm_book3s.h", "arch/powerpc/include/asm/kvm_host.h",
        "include/linux/kvm_host.h", "arch/powerpc/kvm/book3s_hv.c",
        "arch/powerpc/kvm/book3s_xive.c", "arch/powerpc/kvm/book3s_xive_native.c",
        "arch/powerpc/kvm/book3s_xive.h", "arch/powerpc/kvm/powerpc.c", "virt/kvm/kvm_main.c")
FLOOR = """
import sys, tree_sitter_c
from tree_sitter import Language, Parser
parser = Parser(Language(tree_sitter_c.language()))
for path in sys.argv[1:]:
    with open(path, "rb") as fh:
        parser.parse(fh.read())
"""


ENV = dict(os.environ)
REPEAT = 7  # rounds; each runs the three processes in turn


def _cmd(argv: list[str], floor: bool) -> list[str]:
    return [sys.executable, "-c", FLOOR, *argv] if floor else \
        [sys.executable, "-m", "analyzer.cli", *argv]


def _run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s of the child, its peak RSS MiB) of one fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=ENV)
    _, _, ru = os.wait4(proc.pid, 0)
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def measure(*jobs: tuple[list[str], bool], repeat: int = 5) -> list[tuple[float, float, float]]:
    """Best wall and CPU time (and peak RSS) of each job, the jobs run in turn ``repeat``
    times: on a shared machine the check and the floor then see the same load."""
    cmds = [_cmd(argv, floor) for argv, floor in jobs]
    for cmd in cmds:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, env=ENV)  # fills the bytecode cache
    best = [(float("inf"), float("inf"), 0.0) for _ in cmds]
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            wall, cpu, rss = _run(cmd)
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu), max(best[i][2], rss))
    return best


PHASES = """
import sys, time
t0 = time.process_time()
from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.sources import tree as source
t1 = time.process_time()
rules = ruleset.select(None, None)
snap = source.load(sys.argv[1])
t2 = time.process_time()
fx = facts.extract(snap, ruleset.tokens(rules))
t3 = time.process_time()
per = []
for rule in rules:
    t = time.process_time()
    checks.run([rule], fx)
    per.append((rule.id, time.process_time() - t))
t4 = time.process_time()
print(f"imports and rule files {t1 - t0 + t2 - t1:.3f} s, facts (parsing {fx.parsed_files} files) "
      f"{t3 - t2:.3f} s, rules {t4 - t3:.3f} s: " +
      ", ".join(f"{r} {s:.3f}" for r, s in sorted(per, key=lambda p: -p[1]) if s >= 0.001))
"""


def phases(tree: str) -> None:
    """Where the CPU time of one check goes, measured inside one fresh process (the first
    rule to need the model pays for building it)."""
    out = subprocess.run([sys.executable, "-c", PHASES, tree], capture_output=True, text=True,
                         env=ENV).stdout.strip()
    print(f"where the CPU time goes (one run): {out}")


STREAMING = ("import sys; from analyzer import cli; from analyzer.sources import xztar; "
             "xztar.read_members = lambda *a, **k: None; sys.exit(cli.main(sys.argv[1:]))")


def tarball_figure(tarball: str) -> None:
    """Whole-tarball `check`: through the xz block index, and streamed, in the same run."""
    from analyzer.sources import tree as source
    from analyzer.sources import xztar

    stats: dict = {}
    t = time.process_time()
    xztar.read_members(tarball, lambda n: r if (r := source.member_path(n, tarball)) and
                       source.is_relevant(r) else None, source.TAR_RUNS, stats=stats)
    reader = time.process_time() - t
    print(f"tarball: {stats.get('blocks', 1)} xz blocks, {stats.get('decompressed', 0) / 2**20:.0f}"
          f" of {stats.get('size', 0) / 2**20:.0f} MiB decompressed, reader {reader:.2f} s CPU")
    [(fast, _, rss)] = measure((["check", tarball], False), repeat=3)
    print(f"check tarball, all rules (block index):  best of 3 {fast:.3f} s wall, "
          f"peak RSS {rss:.0f} MiB")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", STREAMING, "check", tarball], stdout=subprocess.DEVNULL,
                   env=ENV)
    slow = time.perf_counter() - t
    print(f"check tarball, all rules (streamed):     {slow:.3f} s wall; "
          f"block index / streamed = {fast / slow:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", nargs="?", metavar="TREE_DIR",
                    help="kernel tree to check (default: TARBALL extracted to a temporary "
                    "directory)")
    ap.add_argument("tarball", nargs="?", default=TARBALL, metavar="TARBALL",
                    help=f"Debian's kernel source tarball (default: {TARBALL}); its "
                    "whole-tarball check is measured too when it exists")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="measure without a bytecode cache (the environment as it is)")
    args = ap.parse_args()
    bytecode, tarball = not args.no_bytecode, args.tarball
    with tempfile.TemporaryDirectory() as tmp:
        if bytecode:
            ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        print("bytecode cache: " + ("on (temporary PYTHONPYCACHEPREFIX)" if bytecode else
                                    "as the environment has it"))
        tree = args.tree or extract(tarball, tmp)
        nine = [os.path.join(tree, p) for p in NINE]
        one, check, floor = measure((["check", tree, "--rule", "xive-raw-vp-base"], False),
                                    (["check", tree], False), (nine, True), repeat=REPEAT)
        print(f"check directory, xive-raw-vp-base only: best of {REPEAT} {one[0]:.3f} s wall, "
              f"{one[1]:.3f} s CPU, peak RSS {one[2]:.0f} MiB")
        print(f"check directory, all rules:             best of {REPEAT} {check[0]:.3f} s wall, "
              f"{check[1]:.3f} s CPU, peak RSS {check[2]:.0f} MiB")
        print(f"floor (import tree-sitter, parse 9 files): best of {REPEAT} {floor[0]:.3f} s "
              f"wall, {floor[1]:.3f} s CPU")
        print(f"ratio check / floor: {check[0] / floor[0]:.1f}x wall, "
              f"{check[1] / floor[1]:.1f}x CPU (target <= 3x)")
        phases(tree)
        if os.path.exists(tarball):
            tarball_figure(tarball)


if __name__ == "__main__":
    main()
