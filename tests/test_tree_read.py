"""A directory's files are read beside one descriptor of the directory when no link
stands on the way: the same bytes as the careful per-file path, which still handles
every link (see test_robustness.py for links out of the tree, FIFOs and directories)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from analyzer.sources import tree as source

TREE = Path(__file__).resolve().parent.parent / "fixtures" / "trees" / "rfc-applied"


def test_plain_reads_are_the_careful_reads(tmp_path: Path) -> None:
    top = tmp_path / "t"
    shutil.copytree(TREE, top)
    real_top = os.path.realpath(top)
    seen = 0
    for d in source.RELEVANT_DIRS:
        if not (top / d).is_dir():
            continue
        dfd = source._plain_directory(real_top, d)
        assert dfd is not None
        try:
            for name in sorted(os.listdir(top / d)):
                rel = f"{d}/{name}"
                careful = source._read_inside(real_top, rel, rel)
                assert source._read_plain(dfd, real_top, rel, rel) == careful
                seen += careful is not None
        finally:
            os.close(dfd)
    assert seen > 3


def test_a_linked_directory_is_read_the_careful_way(tmp_path: Path) -> None:
    top = tmp_path / "t"
    shutil.copytree(TREE, top)
    kvm = top / "arch/powerpc/kvm"
    kvm.rename(top / "kvm-real")
    kvm.symlink_to("../../kvm-real")
    assert source._plain_directory(os.path.realpath(top), "arch/powerpc/kvm") is None
    snap = source.from_directory(top)
    assert snap.files == source.from_directory(TREE).files


def test_a_linked_file_in_a_plain_directory_is_followed_inside(tmp_path: Path) -> None:
    top = tmp_path / "t"
    shutil.copytree(TREE, top)
    link = top / "arch/powerpc/kvm/book3s_xive.h"
    (top / "elsewhere.h").write_bytes(link.read_bytes())
    link.unlink()
    link.symlink_to("../../../elsewhere.h")
    assert source.from_directory(top).files == source.from_directory(TREE).files
