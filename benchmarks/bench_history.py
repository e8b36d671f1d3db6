"""Cold and warm time of `vpcheck history` over a 300-commit history of the 6.12 tree.

Usage: python benchmarks/bench_history.py [TREE_DIR] [--commits N] [--jobs N]

The repository is built in a temporary directory with `git fast-import`: the
tree as the first commit, then N commits. About two in three change a file
vpcheck reads (a comment, a shifted line, or a raw `xive->vp_base + s` use
added to or removed from book3s_xive.c, so findings come and go); the rest
change files it does not read. Cold: an empty cache, `--jobs` processes.
Warm: the same command again. Each run is a fresh interpreter, as a user's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TREE = "/work/linux-6.12"
XIVE = "arch/powerpc/kvm/book3s_xive.c"
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
       "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], input=data, env=ENV, check=True,
                          capture_output=True).stdout.decode()


def relevant(tree: Path) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from analyzer.sources.tree import is_relevant

    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")
                  if p.is_file() and is_relevant(p.relative_to(tree).as_posix()))


def edits(tree: Path, n: int, seed: int = 12):
    """(subject, {path: new bytes}) for each commit."""
    rnd = random.Random(seed)
    files = relevant(tree)
    content = {p: (tree / p).read_bytes() for p in files}
    raw: list[bytes] = []
    removed: list[bytes] = []
    for i in range(n):
        kind = rnd.random()
        if kind < 0.33:
            path = f"arch/powerpc/kernel/bench_{i % 17}.c"
            yield f"powerpc: unrelated change {i}", {path: f"/* {i} */\n".encode()}
            continue
        if kind < 0.45:
            if raw and rnd.random() < 0.5:
                removed.append(raw.pop(rnd.randrange(len(raw))))
                content[XIVE] = content[XIVE].replace(removed[-1], b"")
                yield f"KVM: PPC: Book3S HV: XIVE: use the VP helper ({i})", {
                    XIVE: content[XIVE]}
                continue
            if removed and rnd.random() < 0.3:  # a regression: the same use comes back
                raw.append(removed.pop())
                content[XIVE] += raw[-1]
                yield f"KVM: PPC: Book3S HV: XIVE: inline a VP id ({i})", {XIVE: content[XIVE]}
                continue
            fn = (f"\nstatic u32 bench_vp_{i}(struct kvmppc_xive *xive, u32 s)\n"
                  f"{{\n\tu32 vp = xive->vp_base + s;\n\n\treturn vp;\n}}\n").encode()
            raw.append(fn)
            content[XIVE] += fn
            yield f"KVM: PPC: Book3S HV: XIVE: compute a VP id ({i})", {XIVE: content[XIVE]}
            continue
        path = rnd.choice(files)
        data = content[path]
        if rnd.random() < 0.5:
            data += f"/* bench {i} */\n".encode()
        else:
            cut = data.find(b"\n", rnd.randrange(max(1, len(data)))) + 1
            data = data[:cut] + b"\n" + data[cut:]
        content[path] = data
        yield f"KVM: PPC: touch {path.rsplit('/', 1)[-1]} ({i})", {path: data}


def build(tree: Path, repo: Path, n: int) -> None:
    subprocess.run(["cp", "-r", f"{tree}/.", str(repo)], check=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Linux 6.12 (the parts vpcheck reads)")
    stream = []
    t = 1_700_000_000
    for i, (subject, changed) in enumerate(edits(tree, n)):
        msg = subject.encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"committer Bench <bench@example.invalid> {t + i * 60} +0000\n".encode())
        stream.append(b"data %d\n%s\n" % (len(msg), msg))
        if i == 0:
            stream.append(b"from refs/heads/main^0\n")
        for path, data in changed.items():
            stream.append(f"M 100644 inline {path}\n".encode())
            stream.append(b"data %d\n%s\n" % (len(data), data))
    git(repo, "fast-import", "--quiet", "--force", data=b"".join(stream))
    git(repo, "reset", "-q", "--hard", "main")


def run(repo: Path, cache: Path, jobs: int) -> tuple[float, dict]:
    """Wall time and summary; summary["cpu"] is the CPU time of the run and its workers
    (the machine may be shared: wall time alone overstates the cost)."""
    env = {**ENV, "XDG_CACHE_HOME": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "analyzer.cli", "history", "--repo", str(repo),
                        "--jobs", str(jobs), "--format", "json", "-q"], env=env,
                       capture_output=True, cwd=Path(__file__).resolve().parent.parent)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode not in (0, 1):
        sys.exit(r.stderr.decode())
    summary = json.loads(r.stdout)["summary"]
    summary["cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", nargs="?", default=TREE)
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo, cache = Path(tmp) / "repo", Path(tmp) / "cache"
        repo.mkdir()
        t = time.perf_counter()
        build(Path(args.tree), repo, args.commits)
        print(f"built {args.commits + 1} commits in {time.perf_counter() - t:.1f} s")
        cold, s = run(repo, cache, args.jobs)
        print(f"history cold, --jobs {args.jobs}: {cold:.2f} s wall, {s['cpu']:.1f} s CPU "
              f"({s['commits']} commits touch relevant paths, {s['snapshots']} distinct "
              f"snapshots, {s['analysed']} analysed, {s['findings']} findings, "
              f"{s['regressions']} regressions)")
        warm, s = run(repo, cache, args.jobs)
        print(f"history warm, --jobs {args.jobs}: {warm:.2f} s wall, {s['cpu']:.1f} s CPU "
              f"({s['analysed']} analysed, {s['cached']} from the cache)")
        cold1, s = run(repo, Path(tmp) / "cache1", 1)
        print(f"history cold, --jobs 1: {cold1:.2f} s wall, {s['cpu']:.1f} s CPU; "
              f"cold --jobs {args.jobs} / --jobs 1 = {cold / cold1:.2f} (wall)")
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
