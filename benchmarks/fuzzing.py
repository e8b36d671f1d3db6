"""Shared runner of the coverage-guided fuzz harnesses (``fuzz_<target>.py``).

atheris (libFuzzer for Python) drives a target of ``tests/fuzz_targets.py``
with coverage feedback from the instrumented ``analyzer`` package (and the
standard-library parser the target leans on). Inputs that add coverage go to
``tests/data/fuzz/<target>/``, which ``tests/test_fuzz.py`` replays;
``--minimise`` then keeps only the inputs the corpus needs (libFuzzer's
``-merge``). A crash (any exception but a one-line InputError) is saved once
per (type, innermost analyzer frame) under ``tests/data/fuzz/crashes/`` and
fuzzing goes on; a hang (``-timeout``) or memory blow-up stops the run, with
the input saved there by libFuzzer.

    nice -n 10 benchmarks/fuzz_patches.py --seconds 600 [--minimise]

The parent process only prepares seeds, runs the fuzzer as a child (libFuzzer
ends the process when time is up) and cleans up after it.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "tests" / "data" / "fuzz"
CRASHES = CORPUS / "crashes"


def signature(e: BaseException) -> str:
    """Type and innermost frame inside analyzer/ (or tests/): one file per distinct fault."""
    where = "unknown"
    for fr in traceback.extract_tb(e.__traceback__):
        if "/analyzer/" in fr.filename or "/tests/" in fr.filename:
            where = f"{Path(fr.filename).stem}_{fr.lineno}"
    return f"{type(e).__name__}-{where}"


def guarded(name: str, target: Callable[[bytes], None]) -> Callable[[bytes], None]:
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except Exception as e:  # noqa: BLE001 - every non-InputError is a finding
            sig = signature(e)
            if sig not in seen:
                seen.add(sig)
                out = CRASHES / f"{name}-{sig}.bin"
                if not out.exists():
                    out.write_bytes(data)
                print(f"\n=== {name}: crash {sig}: {str(e)[:200]!r} -> {out}", flush=True)
    return one_input


def run(name: str, seeds: Callable[[], dict[str, bytes]], max_len: int,
        tokens: tuple[bytes, ...] = (), instrument: tuple[str, ...] = ()) -> int:
    ap = argparse.ArgumentParser(description=f"fuzz the {name} target (atheris)")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--minimise", action="store_true",
                    help="after fuzzing, keep only the corpus inputs that add coverage")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child is not None:
        return _child(name, opts.child, instrument)
    corpus = CORPUS / name
    corpus.mkdir(parents=True, exist_ok=True)
    CRASHES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"vpfuzz-{name}-") as tmp:
        work = Path(tmp)
        seed_dir = work / "seeds"
        seed_dir.mkdir()
        for data in seeds().values():
            (seed_dir / hashlib.sha1(data).hexdigest()).write_bytes(data)
        # libFuzzer re-executes argv[0] for -merge: make that a command that works
        relaunch = work / "relaunch"
        relaunch.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(sys.argv[0]).resolve()}" '
                            '--child "$0" "$@"\n')
        relaunch.chmod(0o755)
        (work / "tokens.dict").write_text("".join(f'"{_escape(t)}"\n' for t in tokens))
        common = [str(relaunch), f"-max_len={max_len}", "-timeout=20", "-rss_limit_mb=2048",
                  f"-artifact_prefix={CRASHES}/{name}-", "-print_final_stats=1"]
        if tokens:
            common.append(f"-dict={work / 'tokens.dict'}")
        before = len(list(corpus.iterdir()))
        rc = 0
        if opts.seconds > 0:
            log = work / "log"
            rc = _spawn(common + [f"-max_total_time={opts.seconds}", str(corpus), str(seed_dir)],
                        log)
            _summary(name, log)
        if opts.minimise:
            fresh = work / "min"
            fresh.mkdir()
            _spawn(common + ["-merge=1", str(fresh), str(corpus)], work / "merge.log")
            merged = [ln for ln in (work / "merge.log").read_text(errors="replace").splitlines()
                      if "MERGE-OUTER" in ln]
            print("\n".join(merged[-2:]))
            if any(fresh.iterdir()):
                for f in corpus.iterdir():
                    f.unlink()
                for f in fresh.iterdir():
                    shutil.copy(f, corpus / f.name)
        files = list(corpus.iterdir())
        print(f"{name}: corpus {before} -> {len(files)} inputs, "
              f"{sum(f.stat().st_size for f in files)} bytes; crashes: "
              f"{sorted(p.name for p in CRASHES.glob(name + '-*'))}")
        return rc


def _spawn(args: list[str], log: Path) -> int:
    """Run the fuzzer child: ``args[0]`` is the relaunch script, the rest libFuzzer's flags."""
    with open(log, "wb") as fh:
        return subprocess.run(args, stdout=fh, stderr=subprocess.STDOUT).returncode


def _summary(name: str, log: Path) -> None:
    """libFuzzer's last status line (executions, coverage), crash notes and final stats."""
    lines = log.read_text(errors="replace").splitlines()
    status = [ln for ln in lines if ln.startswith("#") and " cov: " in ln]
    keep = [ln for ln in lines if ln.startswith(("===", "stat::", "Done ", "==", "SUMMARY"))]
    print(f"{name}: {status[-1] if status else 'no status line'}")
    print("\n".join(keep))


def _child(name: str, args: list[str], instrument: tuple[str, ...]) -> int:
    import atheris

    with atheris.instrument_imports(include=["analyzer", "tests", *instrument]):
        import tests.fuzz_targets as targets

        for mod in instrument:
            __import__(mod)
    atheris.Setup([args[0], *args[1:]], guarded(name, targets.TARGETS[name]))
    atheris.Fuzz()
    return 0


def _escape(token: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}"
                   for b in token)


def fixture_files(*globs: str) -> dict[str, bytes]:
    out = {}
    for g in globs:
        for p in sorted(ROOT.glob(g)):
            if p.is_file():
                out[str(p)] = p.read_bytes()
    return out
