"""Shared fixtures: paths, the real tree, and a helper to run the CLI in-process."""

from __future__ import annotations

import io
import os
import tarfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEED_MBOX = FIXTURES / "seed" / "rfc-pack-vcore-ids.mbox"  # vendored public list mail
REAL_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
REAL_MEMBERS = ("arch/powerpc/", "include/linux/kvm_host.h", "virt/kvm/")


def run_cli(*argv: str) -> tuple[int, str, str]:
    from analyzer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def realtree(tmp_path_factory) -> Path:
    """Debian's linux-source-6.12, the parts vpcheck reads, extracted once per session."""
    if not REAL_TARBALL.exists():
        if os.environ.get("VPCHECK_REQUIRE_REALTREE") == "1":
            pytest.fail(f"{REAL_TARBALL} is missing (apt-get install linux-source-6.12)")
        pytest.skip(f"{REAL_TARBALL} not installed")
    dest = tmp_path_factory.mktemp("real")
    with tarfile.open(REAL_TARBALL, "r|xz") as tar:
        for m in tar:
            rel = m.name.partition("/")[2]
            if m.isfile() and rel.startswith(REAL_MEMBERS):
                m.name = rel
                tar.extract(m, dest, filter="data")
    return dest
