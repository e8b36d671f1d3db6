"""Resource limits on untrusted input, each overridable from the environment.

Trees, tarballs and patch series come from anywhere. Every amount of work
that grows with the input is bounded here, so a hostile or broken input is
refused with one line naming the limit and how to raise it, instead of
running for minutes or eating the machine's memory. The defaults leave
headroom over Linux 6.12: largest file read 176 KB ``book3s_hv.c``; the
source tarball about 90k members, 1,486 MiB uncompressed, xz ratio 10.3.

Set ``VPCHECK_MAX_<NAME>`` (an integer; ``K``/``M``/``G`` suffixes are
binary multiples) to change one; docs/robustness.md lists them all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import LimitExceeded


@dataclass(frozen=True)
class Limit:
    """A resource bound on untrusted input, overridable from the environment."""

    name: str  # key used by callers
    default: int
    unit: str  # printed after the number: "bytes", "members", ...
    what: str  # what is counted, for the message and the docs

    @property
    def env(self) -> str:
        return f"VPCHECK_MAX_{self.name.upper()}"


LIMITS = {lim.name: lim for lim in (
    Limit("file_bytes", 4 << 20, "bytes", "the size of one source file"),
    Limit("tar_members", 1_000_000, "members", "the number of members in one tarball"),
    Limit("tar_bytes", 4 << 30, "bytes", "the uncompressed size of one tarball"),
    Limit("tar_ratio", 100, "times", "the expansion (uncompressed/compressed) of a tarball "
          "past 64 MiB"),
    Limit("patches", 1000, "patches", "the number of patches in one series"),
    Limit("series_bytes", 64 << 20, "bytes", "the size of one patch or mbox input"),
    Limit("model_ids", 16384, "IDs", "the number of vCPU IDs or slots in one 'vpcheck model' "
          "table"),
)}

_NUMBER = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)\s*$")
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def get(name: str) -> int:
    """The limit in force: the environment override, else the default."""
    lim = LIMITS[name]
    raw = os.environ.get(lim.env)
    if raw is None or raw == "":
        return lim.default
    m = _NUMBER.match(raw)
    value = int(m.group(1)) * _SCALE[m.group(2).lower()] if m else 0
    if value <= 0:
        raise LimitExceeded(f"{lim.env}={raw!r}: not a positive integer (default "
                            f"{lim.default})", name)
    return value


def check(name: str, value: int, subject: str) -> None:
    """Refuse ``value`` if it exceeds limit ``name``; ``subject`` names the input."""
    limit = get(name)
    if value > limit:
        raise exceeded(name, subject, value, limit)


def exceeded(name: str, subject: str, value: int | None = None,
             limit: int | None = None) -> LimitExceeded:
    """The one-line refusal: what, how much, the limit, and how to raise it."""
    lim = LIMITS[name]
    limit = get(name) if limit is None else limit
    got = "more than " if value is None else f"{value:,} > "
    return LimitExceeded(f"{subject}: {lim.what} exceeds the limit ({got}{limit:,} {lim.unit}; "
                         f"set {lim.env} to raise it)", name)


def check_patches(count: int, subject: str) -> None:
    """For series readers: refuse a series with more patches than the limit."""
    check("patches", count, subject)


def read_capped(stream, name: str, subject: str) -> bytes:
    """Read a binary stream (stdin) up to limit ``name``; refuse it past the limit."""
    cap = get(name)
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise exceeded(name, subject, None, cap)
    return data
