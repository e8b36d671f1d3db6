#!/usr/bin/env python3
"""Fuzz the tarball reader (analyzer.sources.tree.tar_members): see benchmarks/fuzzing.py.

Seeds are small tarballs of the bundled example, plain and compressed, plus
hostile ones (member names that climb out, absolute names, links, devices,
a member given twice).
"""

import sys

from fuzzing import ROOT, run

# tarfile and the decompressors are imported inside the functions: imported
# here, before atheris instruments imports, they would give no coverage.

TREE = ROOT / "fixtures/trees/rfc-applied"


def _tar(members: list[tuple[str, int, bytes]]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def seeds() -> dict[str, bytes]:
    import bz2
    import gzip
    import lzma
    import tarfile

    kvm = "arch/powerpc/kvm/book3s_xive.c"
    small = (TREE / kvm).read_bytes()[:400]
    plain = _tar([("linux-6.12/", tarfile.DIRTYPE, b""), (f"linux-6.12/{kvm}", tarfile.REGTYPE,
                                                           small)])
    hostile = _tar([(f"../{kvm}", tarfile.REGTYPE, b"x"), (f"/abs/{kvm}", tarfile.REGTYPE, b"y"),
                    (f"l/{kvm}", tarfile.SYMTYPE, b""), (f"l/{kvm}", tarfile.LNKTYPE, b""),
                    ("l/arch/powerpc/kvm/dev.c", tarfile.CHRTYPE, b""),
                    (f"a/{kvm}", tarfile.REGTYPE, b"1"), (f"./a/{kvm}", tarfile.REGTYPE, b"2")])
    return {"plain": plain, "xz": lzma.compress(plain), "gz": gzip.compress(plain),
            "bz2": bz2.compress(plain), "hostile": hostile}


if __name__ == "__main__":
    sys.exit(run("tarball", seeds, max_len=65536, instrument=("tarfile",)))
