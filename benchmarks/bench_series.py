"""Cost of `vpcheck series` per patch: generated series of small edits on a 6.12 tree.

Usage: python benchmarks/bench_series.py [--tree DIR] [--sizes 1,20,100,300]

DIR holds arch/, include/ and virt/ of Linux 6.12 (default: /work/linux-6.12, else
extracted from /usr/src/linux-source-6.12.tar.xz). It is committed to a scratch
repository; each generated patch alternately adds a helper with a raw VP use to
book3s_xive.c, adds a comment to book3s_hv.c (lines move, nothing else changes),
and converts an earlier raw use. Each size runs the CLI once in a fresh
interpreter (patches committed, HEAD at the tip, as b4 and send-email see
them), in the default mode and with --per-patch (every snapshot analysed);
printed: wall time, time per patch, and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtree import tree  # noqa: E402

from tests.gitutil import git  # noqa: E402

XIVE = "arch/powerpc/kvm/book3s_xive.c"
HV = "arch/powerpc/kvm/book3s_hv.c"


def make_repo(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "linux 6.12")
    return dest


def generate(repo: Path, n: int) -> None:
    """n small commits on top of HEAD."""
    for i in range(1, n + 1):
        kind = i % 3
        path = repo / (HV if kind == 2 else XIVE)
        text = path.read_text()
        if kind == 1:
            text += (f"\nstatic int bench_{i}(struct kvmppc_xive *xive, u32 s)\n{{\n"
                     f"\treturn xive_native_get_vp_state(xive->vp_base + s + {i}, NULL);\n}}\n")
        elif kind == 2:
            text = f"/* bench comment {i} */\n" + text
        else:
            text = text.replace(f"xive->vp_base + s + {i - 2},",
                                f"kvmppc_xive_vp(xive, s + {i - 2}),")
        path.write_text(text)
        git(repo, "commit", "-q", "-am", f"bench patch {i}")


def measure(argv: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit status) of one CLI run in a fresh interpreter."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "analyzer.cli", *argv], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    if rc not in (0, 1):
        raise SystemExit(f"vpcheck failed ({rc}): {err}")
    return seconds, usage.ru_maxrss / 1024, rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree")
    ap.add_argument("--sizes", default="1,20,100,300")
    ap.add_argument("--modes", default="default,per-patch",
                    help="default: new findings (base, result, then back as far as needed); "
                    "per-patch: every snapshot is analysed")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(tree(args.tree, Path(tmp)), Path(tmp) / "repo")
        generate(repo, max(sizes))
        tip = git(repo, "rev-parse", "HEAD").strip()
        t1, rss1, _ = measure(["check", str(repo)])
        print(f"{'check (whole tree, reference)':36s} {t1:7.2f} s{'':16s}{rss1:6.0f} MiB",
              flush=True)
        for mode in args.modes.split(","):
            extra = ["--per-patch"] if mode == "per-patch" else []
            for n in sizes:
                mbox = Path(tmp) / f"s{n}.mbox"
                mbox.write_text(git(repo, "format-patch", "--stdout", f"{tip}~{n}..{tip}"))
                t, rss, rc = measure(["series", str(mbox), "--repo", str(repo), "-q", *extra])
                print(f"series {mode:9s} {n:3d} patches{'':7s} {t:7.2f} s  "
                      f"{t / n * 1000:6.0f} ms/patch  {rss:6.0f} MiB peak  (exit {rc})",
                      flush=True)


if __name__ == "__main__":
    main()
