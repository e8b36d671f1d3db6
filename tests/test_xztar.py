"""The block-index reader of .tar.xz kernel tarballs gives the streaming reader's bytes.

Archives are built here: the bundled example tree under a top directory,
among filler members of incompressible bytes (so the archive spans many xz
blocks), compressed by the ``xz`` tool itself with ``--block-size``.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from analyzer.sources import tree as source
from analyzer.sources import xztar

from .conftest import FIXTURES, REAL_TARBALL

TREE = FIXTURES / "trees" / "rfc-applied"
pytestmark = pytest.mark.skipif(shutil.which("xz") is None, reason="xz not installed")


def _select(name: str) -> str | None:
    rel = source.member_path(name, "T")
    return rel if rel and source.is_relevant(rel) else None


def _tree_members() -> dict[str, bytes]:
    return {p.relative_to(TREE).as_posix(): p.read_bytes()
            for p in TREE.rglob("*") if p.is_file()}


def _filler(seed: int = 1) -> dict[str, bytes]:
    rnd = random.Random(seed)
    out = {}
    for top in ("Documentation", "arch/arm", "arch/powerpc/boot", "arch/x86", "drivers/gpu",
                "fs", "include/linux/mfd", "include/uapi", "sound", "tools", "virt/lib"):
        for i in range(4):
            out[f"{top}/f{i}.c"] = rnd.randbytes(rnd.randrange(20_000, 90_000))
    out["drivers/" + "long-directory-name/" * 6 + "deep.c"] = rnd.randbytes(30_000)
    out["include/linux/kvm_host.h.orig"] = b"not read\n"
    out["arch/powerpc/kvm/Makefile"] = b"obj-y += x.o\n"
    return out


def make_tarball(dest: Path, members: dict[str, bytes], order=sorted, fmt=tarfile.GNU_FORMAT,
                 block_size: str = "64KiB", extra=(), after: str | None = None) -> Path:
    """``extra`` (TarInfo, data) entries go at the end, or right after member ``after``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        dirs = sorted({"linux-t/" + "/".join(p.split("/")[:i])
                       for p in members for i in range(1, p.count("/") + 1)})
        for d in ["linux-t"] + dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for path in order(members):
            info = tarfile.TarInfo(f"linux-t/{path}")
            info.size = len(members[path])
            tar.addfile(info, io.BytesIO(members[path]))
            if path == after:
                _add(tar, extra)
        if after is None:
            _add(tar, extra)
    raw = dest.with_suffix("")
    raw.write_bytes(buf.getvalue())
    subprocess.run(["xz", "-z", "-0", "-f", "-k", "-T1", f"--block-size={block_size}", str(raw)],
                   check=True)
    return dest


def _add(tar: tarfile.TarFile, extra) -> None:
    for info, data in extra:
        tar.addfile(info, io.BytesIO(data) if data is not None else None)


def streamed(path: Path, monkeypatch) -> dict[str, bytes]:
    """The streaming reader's result (the fast path switched off)."""
    with monkeypatch.context() as m:
        m.setattr(xztar, "read_members", lambda *a, **k: None)
        return dict(source.from_tarball(path).files)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_same_bytes_as_streaming_reading_few_blocks(tmp_path: Path, monkeypatch, fmt) -> None:
    members = {**_tree_members(), **_filler()}
    tb = make_tarball(tmp_path / "t.tar.xz", members, fmt=fmt)
    stats: dict = {}
    fast = xztar.read_members(str(tb), _select, source.TAR_RUNS, stats=stats)
    assert fast is not None and stats["blocks"] > 20
    assert fast == streamed(tb, monkeypatch)
    assert set(fast) == {p for p in members if source.is_relevant(p)}
    assert stats["decompressed"] < stats["size"] / 2
    assert dict(source.from_tarball(tb).files) == fast  # the call site in sources/tree.py


def test_runs_cover_what_source_reads() -> None:
    for path in _tree_members():
        if source.is_relevant(path):
            assert path.startswith(source.TAR_RUNS), path


@pytest.mark.parametrize("seed", range(3))
def test_unsorted_members_still_give_the_same_bytes(tmp_path: Path, monkeypatch, seed) -> None:
    members = {**_tree_members(), **_filler(seed)}

    def shuffled(ms):
        names = sorted(ms)
        random.Random(seed).shuffle(names)
        return names

    tb = make_tarball(tmp_path / "t.tar.xz", members, order=shuffled)
    fast = xztar.read_members(str(tb), _select, source.TAR_RUNS)
    assert fast in (None, streamed(tb, monkeypatch))
    assert dict(source.from_tarball(tb).files) == streamed(tb, monkeypatch)


def test_member_appended_out_of_order_is_not_missed(tmp_path: Path, monkeypatch) -> None:
    members = {**_tree_members(), **_filler()}
    late = tarfile.TarInfo("linux-t/arch/powerpc/kvm/appended.c")
    late.size = 6
    tb = make_tarball(tmp_path / "t.tar.xz", members, extra=[(late, b"int x;")])
    fast = xztar.read_members(str(tb), _select, source.TAR_RUNS)
    assert fast in (None, streamed(tb, monkeypatch))
    assert "arch/powerpc/kvm/appended.c" in source.from_tarball(tb).files


def test_single_block_multi_stream_and_other_formats_fall_back(tmp_path: Path) -> None:
    members = {**_tree_members(), **_filler()}
    one = make_tarball(tmp_path / "one.tar.xz", members, block_size="1GiB")
    assert xztar.read_members(str(one), _select, source.TAR_RUNS) is None
    two = tmp_path / "two.tar.xz"
    two.write_bytes(one.read_bytes() + one.read_bytes())
    assert xztar.read_members(str(two), _select, source.TAR_RUNS) is None
    gz = tmp_path / "t.tar.gz"
    gz.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    assert xztar.read_members(str(gz), _select, source.TAR_RUNS) is None


def test_unsafe_members_are_not_read(tmp_path: Path) -> None:
    members = {**_tree_members(), **_filler()}
    link = tarfile.TarInfo("linux-t/arch/powerpc/kvm/zz_link.c")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    escape = tarfile.TarInfo("linux-t/../../arch/powerpc/kvm/zz_escape.c")
    escape.size = 3
    absolute = tarfile.TarInfo("/arch/powerpc/kvm/zz_abs.c")
    absolute.size = 3
    tb = make_tarball(tmp_path / "t.tar.xz", members,
                      extra=[(link, None), (escape, b"x;\n"), (absolute, b"x;\n")],
                      after="arch/powerpc/kvm/powerpc.c")
    got = xztar.read_members(str(tb), lambda n: n, source.TAR_RUNS)
    assert got is not None
    assert not [n for n in got if "zz_" in n]
    assert not [n for n in got if n.startswith(("/", "..")) or "/../" in n]


def test_member_size_cap(tmp_path: Path, monkeypatch) -> None:
    members = {**_tree_members(), **_filler()}
    tb = make_tarball(tmp_path / "t.tar.xz", members)
    monkeypatch.setattr(xztar, "MAX_MEMBER", 1000)
    from analyzer.errors import InputError

    with pytest.raises(InputError, match="exceeds"):
        xztar.read_members(str(tb), _select, source.TAR_RUNS)


@pytest.mark.realtree
def test_debian_tarball_reads_three_blocks(realtree: Path) -> None:
    stats: dict = {}
    fast = xztar.read_members(str(REAL_TARBALL), _select, source.TAR_RUNS, stats=stats)
    assert fast is not None
    expected = {p.relative_to(realtree).as_posix(): p.read_bytes()
                for p in realtree.rglob("*") if p.is_file()}
    assert fast == {p: d for p, d in expected.items() if source.is_relevant(p)}
    assert stats["blocks"] == 62
    assert stats["decompressed"] <= 4 * 24 * 1024 * 1024
