"""benchmarks/bench_check.py answers ``--help`` with its usage (it used to take the
option for the tree to check, and crash)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_check_help_is_its_usage() -> None:
    proc = subprocess.run([sys.executable, "benchmarks/bench_check.py", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: bench_check.py [-h] [--no-bytecode] [TREE_DIR]")


def test_bench_check_refuses_an_unknown_option() -> None:
    proc = subprocess.run([sys.executable, "benchmarks/bench_check.py", "--bogus"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
