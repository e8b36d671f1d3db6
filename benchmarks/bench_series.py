"""Wall time of `vpcheck series`: the seed RFC on the pre-RFC fixture tree, and a
generated 20-patch series. Usage: python benchmarks/bench_series.py

Each figure is the best of 3 runs of the CLI in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gitutil import git, make_repo  # noqa: E402

SEED = ROOT / "fixtures" / "seed" / "rfc-pack-vcore-ids.mbox"
PRE_RFC = ROOT / "fixtures" / "trees" / "pre-rfc"


def best(argv: list[str], repeat: int = 3) -> float:
    t_best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "analyzer.cli", *argv], capture_output=True)
        t_best = min(t_best, time.perf_counter() - t)
        if r.returncode not in (0, 1):
            raise SystemExit(f"vpcheck failed: {r.stderr.decode()}")
    return t_best


def generated_series(repo: Path, n: int) -> str:
    """n patches, each touching book3s_xive.c: odd ones add a raw VP use, even ones convert it."""
    path = repo / "arch/powerpc/kvm/book3s_xive.c"
    base = git(repo, "rev-parse", "HEAD").strip()
    for i in range(1, n + 1):
        text = path.read_text()
        if i % 2:
            text += (f"\nstatic u32 bench_{i}(struct kvmppc_xive *xive, u32 s)\n{{\n"
                     f"\treturn xive_native_get_vp_state(xive->vp_base + s + {i});\n}}\n")
        else:
            text = text.replace(f"xive->vp_base + s + {i - 1}", f"xive_vp(xive, s + {i - 1})")
        path.write_text(text)
        git(repo, "commit", "-q", "-am", f"bench patch {i}")
    mbox = git(repo, "format-patch", "--stdout", f"{base}..HEAD")
    git(repo, "reset", "-q", "--hard", base)
    return mbox


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(PRE_RFC, Path(tmp) / "repo")
        t = best(["series", str(SEED), "--repo", str(repo)])
        print(f"seed RFC (1 patch) on fixtures/trees/pre-rfc: {t:.3f} s wall (target < 0.5 s)")
        git(repo, "am", "-q", str(SEED))
        mbox = Path(tmp) / "gen.mbox"
        mbox.write_text(generated_series(repo, 20))
        t = best(["series", str(mbox), "--repo", str(repo)])
        print(f"generated 20-patch series:                 {t:.3f} s wall (target < 2 s)")


if __name__ == "__main__":
    main()
