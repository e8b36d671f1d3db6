"""Read the few members vpcheck needs from a multi-block ``.tar.xz`` without
decompressing the rest.

An ``.xz`` stream ends with an index of its blocks (compressed and
uncompressed sizes), and each block decompresses on its own. Kernel
tarballs store members sorted by path, so the members under one directory
are one contiguous run: peek at the first tar header of every block, pick
the blocks whose first members bracket each run, decompress those (and the
following ones while a run or a member continues), and parse the tar
headers there. Debian's 6.12 tarball has 62 blocks of 24 MiB; the relevant
members lie in 3 of them.

The result is checked, not assumed: each run must be seen to start after a
member outside it (or at the archive's start) and to end before one (or at
the archive's end), with no member of a closed run showing up again. When
anything does not hold (one block, several streams, block-first members out
of order, a run not bracketed) :func:`read_members` returns None and the
caller streams the whole archive instead.

Member safety is the streaming reader's: names are normalised with
``posixpath.normpath``; absolute names and names that leave the archive are
refused; only regular files are read, each at most ``MAX_MEMBER`` bytes.
"""

from __future__ import annotations

import bisect
import functools
import lzma
import os
import posixpath
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

from ..errors import InputError

MAX_MEMBER = 64 * 1024 * 1024
BLOCK = 512
_MAGIC, _FOOTER_MAGIC = b"\xfd7zXZ\x00", b"YZ"
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_EXTENSIONS = (tarfile.GNUTYPE_LONGLINK, tarfile.XGLTYPE)  # skipped: link names, globals


class Unsuitable(Exception):
    """The fast path does not apply: stream the archive instead."""


@dataclass(frozen=True)
class Block:
    offset: int  # of the block header in the file
    size: int  # compressed bytes including header, padding and check
    ustart: int  # offset of its first byte in the uncompressed stream
    usize: int


# --- the .xz container -------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(9):
        b = buf[pos + i]
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos + i + 1
    raise Unsuitable("bad varint")


def read_index(fh: BinaryIO) -> tuple[bytes, list[Block]]:
    """(stream header, blocks) of a single-stream .xz file, from its footer and index."""
    fh.seek(0, 2)
    end = fh.tell()
    fh.seek(0)
    header = fh.read(12)
    if len(header) < 12 or not header.startswith(_MAGIC):
        raise Unsuitable("not xz")
    while end >= 24:  # stream padding: zero bytes after the footer
        fh.seek(end - 4)
        if fh.read(4) != b"\0\0\0\0":
            break
        end -= 4
    fh.seek(end - 12)
    footer = fh.read(12)
    if footer[10:] != _FOOTER_MAGIC or footer[8:10] != header[6:8]:
        raise Unsuitable("bad footer")
    index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
    index_at = end - 12 - index_size
    fh.seek(index_at)
    index = fh.read(index_size)
    if index[:1] != b"\0" or zlib.crc32(index[:-4]) != struct.unpack("<I", index[-4:])[0]:
        raise Unsuitable("bad index")
    count, pos = _varint(index, 1)
    blocks, offset, ustart = [], 12, 0
    for _ in range(count):
        unpadded, pos = _varint(index, pos)
        usize, pos = _varint(index, pos)
        size = (unpadded + 3) & ~3
        blocks.append(Block(offset, size, ustart, usize))
        offset, ustart = offset + size, ustart + usize
    if offset != index_at:  # several streams, or an index that does not add up
        raise Unsuitable("not a single stream")
    return header, blocks


def _decompressor(header: bytes) -> lzma.LZMADecompressor:
    """A decompressor positioned at a block: the stream header, then the block's bytes."""
    d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    d.decompress(header)
    return d


# --- tar headers ---------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str  # normalised, as in the archive (top directory included)
    kind: bytes
    size: int
    data_at: int  # uncompressed offset of its data
    next_at: int  # of the next header


def _nts(b: bytes) -> str:
    end = b.find(b"\0")
    return (b if end < 0 else b[:end]).decode("utf-8", "surrogateescape")


def _number(b: bytes) -> int:
    if b[:1] in (b"\x80", b"\xff"):  # GNU base-256
        n = int.from_bytes(b[1:], "big")
        return n - (1 << (8 * len(b) - 8)) if b[:1] == b"\xff" else n
    return int(_nts(b).strip() or "0", 8)


def _parse(buf: bytes) -> tuple[str, bytes, int] | None:
    """(name, type, size) of a tar header, as tarfile.TarInfo.frombuf reads it; None
    for anything that is not a header with a valid checksum (or the end marker)."""
    if len(buf) < BLOCK or buf.count(0) == BLOCK:
        return None
    try:
        chksum = _number(buf[148:156])
    except ValueError:
        return None
    unsigned = sum(buf[:148]) + 256 + sum(buf[156:])
    if chksum != unsigned and chksum != unsigned - 2 * (  # old tars summed signed bytes
            sum(b for b in buf[:148] if b > 127) + sum(b for b in buf[156:] if b > 127)):
        return None
    kind, name = buf[156:157], _nts(buf[0:100])
    size = _number(buf[124:136])
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        kind = tarfile.DIRTYPE
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    prefix = _nts(buf[345:500])
    if prefix and kind not in tarfile.GNU_TYPES:
        name = prefix + "/" + name
    return name, kind, size


def _pax_path(data: bytes) -> str | None:
    path = None
    while data:
        length, _, rest = data.partition(b" ")
        if not length.isdigit() or int(length) <= 0:
            break
        record, data = data[:int(length)], data[int(length):]
        key, _, value = record[len(length) + 1:].rstrip(b"\n").partition(b"=")
        if key == b"path":
            path = value.decode("utf-8", "surrogateescape")
    return path


def members(read: Callable[[int, int], bytes], at: int) -> Iterator[Member]:
    """Members from the header at ``at`` on; GNU long names and pax paths applied.
    Stops at the end-of-archive marker or at a block that is not a header."""
    long_name = None
    while True:
        info = _parse(read(at, BLOCK))
        if info is None:
            return
        name, kind, size = info
        data_at = at + BLOCK
        next_at = data_at + -(-size // BLOCK) * BLOCK
        if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE):
            if size > 1 << 20:
                raise Unsuitable("oversized extended header")
            raw = read(data_at, size)
            long_name = (raw.rstrip(b"\0").decode("utf-8", "surrogateescape")
                         if kind == tarfile.GNUTYPE_LONGNAME else _pax_path(raw))
        elif kind not in _EXTENSIONS:
            yield Member(posixpath.normpath(long_name or name), kind, size, data_at, next_at)
            long_name = None
        at = next_at


def first_member(fh: BinaryIO, header: bytes, block: Block, limit: int = 1 << 20
                 ) -> Member | None:
    """The first member whose header starts in ``block``, decompressing only up to it
    (at most ``limit`` bytes: a block inside one large member gives None)."""
    fh.seek(block.offset)
    d = _decompressor(header)
    buf = bytearray()
    remaining, chunk, search = block.size, 4096, 0
    while remaining > 0 and len(buf) < limit:
        data = fh.read(min(chunk, remaining))
        remaining, chunk = remaining - len(data), chunk * 2
        buf += d.decompress(data)
        while (i := buf.find(b"ustar", search)) >= 0:
            pos = i - 257  # the magic sits at offset 257 of a header
            if pos >= 0 and (block.ustart + pos) % BLOCK == 0:
                if pos + BLOCK > len(buf):
                    break  # read more
                info = _parse(bytes(buf[pos:pos + BLOCK]))
                if info is not None and info[1] not in _EXTENSIONS + (
                        tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE):
                    return Member(posixpath.normpath(info[0]), info[1], info[2],
                                  block.ustart + pos + BLOCK, 0)
            search = i + 1
        else:
            search = max(search, len(buf) - 4)
    return None


# --- choosing blocks ---------------------------------------------------------------


def _bytewise(name: str) -> str:
    return name


def _by_component(name: str) -> tuple[str, ...]:
    return tuple(name.split("/"))


ORDERS = (_bytewise, _by_component)  # git archive's order; GNU tar --sort=name's


def _in_run(name: str, run: str) -> bool:
    return name.startswith(run)


def _choose(firsts: Sequence[str], runs: Sequence[str]) -> set[int]:
    """Blocks whose first member is at or before a run's start, up to the last block
    that starts inside it, under every order the block-first names agree with."""
    chosen: set[int] = set()
    usable = [k for k in ORDERS if all(k(a) <= k(b) for a, b in pairwise(firsts))]
    if not usable:
        raise Unsuitable("block-first members are not sorted")
    for key in usable:
        for run in runs:
            start = max((i for i, f in enumerate(firsts) if key(f) < key(run)), default=0)
            last = max((i for i, f in enumerate(firsts)
                        if key(f) < key(run) or _in_run(f, run)), default=0)
            chosen.update(range(start, last + 1))
    return chosen


# --- reading -----------------------------------------------------------------------------


class _Window:
    """The uncompressed stream, read by offset. Blocks are decompressed on demand and
    only as far as read: the tail of a block after the last member needed is skipped."""

    def __init__(self, fh: BinaryIO, header: bytes, blocks: Sequence[Block]) -> None:
        self.fh, self.header, self.blocks = fh, header, blocks
        self.open: dict[int, tuple[lzma.LZMADecompressor, list[int], bytearray]] = {}
        self.decompressed = 0  # bytes

    def _block(self, u: int) -> int:
        return bisect.bisect_right(self.starts, u) - 1

    @functools.cached_property
    def starts(self) -> list[int]:
        return [b.ustart for b in self.blocks]

    def _fill(self, i: int, upto: int, chunk: int = 1 << 16) -> bytearray:
        b = self.blocks[i]
        if i not in self.open:
            self.open[i] = (_decompressor(self.header), [b.offset], bytearray())
        d, at, out = self.open[i]
        while len(out) < upto and at[0] < b.offset + b.size:
            self.fh.seek(at[0])
            data = self.fh.read(min(chunk, b.offset + b.size - at[0]))
            if not data:
                raise Unsuitable("truncated file")
            at[0] += len(data)
            piece = d.decompress(data)
            self.decompressed += len(piece)
            out += piece
        return out

    def read(self, at: int, n: int) -> bytes:
        pieces = []
        while n > 0:
            i = self._block(at)
            b = self.blocks[i]
            if at >= b.ustart + b.usize:
                break  # past the end of the archive
            off = at - b.ustart
            out = self._fill(i, min(off + n, b.usize))
            piece = bytes(out[off:off + n])
            if not piece:
                raise Unsuitable("block shorter than its index says")
            pieces.append(piece)
            at, n = at + len(piece), n - len(piece)
        return b"".join(pieces)

    def forget_before(self, u: int) -> None:
        for i in [i for i in self.open if self.blocks[i].ustart + self.blocks[i].usize <= u]:
            del self.open[i]


def safe_name(name: str, kind: bytes) -> bool:
    """Is the member a regular file that stays inside the archive?"""
    return kind in _REGULAR and not (name.startswith("/") or name == ".."
                                     or name.startswith("../"))


def _top(first: str, firsts: Sequence[str]) -> str:
    """The archive's top directory ("linux-6.12/"), or "" when members have none."""
    top = first.split("/", 1)[0] + "/"
    return top if "/" in first or all(f.startswith(top) for f in firsts[1:]) else ""


def read_members(path: str, select: Callable[[str], str | None], runs: Sequence[str],
                 stats: dict | None = None) -> dict[str, bytes] | None:
    """{select(name): data} for the members ``select`` keeps, or None: stream instead.

    ``select`` maps an archive member's (normalised) name to the snapshot path,
    or None for members that are not wanted; ``runs`` are the path prefixes (below the
    archive's top directory) that cover every wanted member. ``stats`` receives how many bytes
    were decompressed and how many blocks the archive has.
    """
    try:
        with open(path, "rb") as fh:
            return _read(path, fh, select, runs, stats if stats is not None else {})
    except (Unsuitable, lzma.LZMAError, EOFError, IndexError, struct.error, ValueError):
        return None


def _read(path: str, fh: BinaryIO, select: Callable[[str], str | None], runs: Sequence[str],
          stats: dict) -> dict[str, bytes]:
    header, blocks = read_index(fh)
    if len(blocks) < 2:
        raise Unsuitable("single block")
    peeked = [first_member(fh, header, b) for b in blocks]
    if peeked[0] is None:
        raise Unsuitable("no header in the first block")
    names, last = [], peeked[0].name
    for m in peeked:  # a block inside one large member continues its predecessor's run
        last = m.name if m is not None else last
        names.append(last)
    top = _top(peeked[0].name, [m.name for m in peeked if m is not None])
    full_runs = tuple(top + r for r in runs)
    # the last block too: members appended out of order (tar -r) would be there
    chosen = sorted(_choose(names, full_runs) | {len(blocks) - 1})
    jobs = [(0 if a == 0 else peeked[a].data_at - BLOCK, blocks[b].ustart + blocks[b].usize,
             a == 0) for a, b in _stretches(chosen, peeked)]

    def scan(job: tuple[int, int, bool]) -> tuple[list, dict[str, bytes], int]:
        with open(path, "rb") as own:  # one file position per thread
            window = _Window(own, header, blocks)
            return (*_scan(window, *job, full_runs, select), window.decompressed)

    # lzma releases the GIL: stretches decompress in parallel
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        done = list(pool.map(scan, jobs))
    _check_contiguous([hits for seen, _, _ in done for hits in seen], full_runs)
    files: dict[str, bytes] = {}
    for _, found, _ in done:
        files.update(found)
    stats.update(blocks=len(blocks), decompressed=sum(n for _, _, n in done),
                 size=sum(b.usize for b in blocks))
    return files


def _stretches(chosen: list[int], peeked: Sequence[Member | None]) -> list[tuple[int, int]]:
    """(first, last) block of each run of consecutive chosen blocks, the first moved
    back to a block that has a header."""
    out: list[tuple[int, int]] = []
    for i in chosen:
        start = i
        while start > 0 and peeked[start] is None:
            start -= 1
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((start, i))
    return out


def _scan(window: _Window, at: int, until: int, from_start: bool, runs: Sequence[str],
          select: Callable[[str], str | None]) -> tuple[list[frozenset], dict[str, bytes]]:
    """Members from ``at`` until the stretch's blocks are behind and no run is open:
    the runs each member belongs to, in order, and the data of the members wanted."""
    seen: list[frozenset] = []
    files: dict[str, bytes] = {}
    for m in members(window.read, at):
        hit = frozenset(r for r in runs if _in_run(m.name, r))
        if not seen and hit and not from_start:
            raise Unsuitable("a run starts before the chosen blocks")
        seen.append(hit)
        rel = select(m.name) if safe_name(m.name, m.kind) else None
        if rel is not None:
            if m.size > MAX_MEMBER:
                raise InputError(f"{m.name}: member of {m.size} bytes exceeds the "
                                 f"{MAX_MEMBER}-byte limit")
            data = window.read(m.data_at, m.size)
            if len(data) != m.size:
                raise Unsuitable("truncated member")
            files[rel] = data
        window.forget_before(m.data_at)
        if m.next_at >= until and not hit:
            break  # the next header is past the stretch and no run is open
    return seen, files  # (or the archive ended: that closes every run)


def _check_contiguous(seen: Sequence[frozenset], runs: Sequence[str]) -> None:
    """Each run's members must be one contiguous stretch of the members read."""
    state = dict.fromkeys(runs, "before")  # before -> inside -> after
    for hit in seen:
        for r in runs:
            if r in hit:
                if state[r] == "after":
                    raise Unsuitable(f"members of {r} are not contiguous")
                state[r] = "inside"
            elif state[r] == "inside":
                state[r] = "after"
