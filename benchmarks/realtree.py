"""The parts of Debian's 6.12 source that vpcheck reads, for the benchmarks."""

from __future__ import annotations

import tarfile
from pathlib import Path

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
EXTRACTED = Path("/work/linux-6.12")  # a copy left by an earlier run, if there is one
MEMBERS = ("arch/powerpc/", "include/linux/kvm_host.h", "virt/kvm/")


def extract(tarball: str | Path, dest: str | Path) -> Path:
    """Stream ``tarball`` and write the members vpcheck reads under ``dest``."""
    with tarfile.open(tarball, "r|xz") as tar:
        for m in tar:
            rel = m.name.partition("/")[2]
            if m.isfile() and rel.startswith(MEMBERS):
                m.name = rel
                tar.extract(m, dest, filter="data")
    return Path(dest)


def tree(arg: str | None, tmp: Path) -> Path:
    """``arg``, else the extracted copy, else a fresh extraction under ``tmp``."""
    if arg:
        return Path(arg)
    if (EXTRACTED / "arch").is_dir():
        return EXTRACTED
    return extract(TARBALL, tmp / "src")
