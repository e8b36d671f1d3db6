"""Proof that a run left a repository exactly as it was: bytes, modes and mtimes.

``git`` freshens (touches) objects it would write, so hashing contents alone
cannot see it; every file and directory under the given roots is recorded
with its hash, mode, size and nanosecond mtime.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_state(*roots: Path) -> dict[str, tuple]:
    state: dict[str, tuple] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in [*dirnames, *sorted(filenames)]:
                p = Path(dirpath, name)
                st = p.lstat()
                digest = ""
                if p.is_symlink():
                    digest = os.readlink(p)
                elif p.is_file():
                    digest = hashlib.sha1(p.read_bytes()).hexdigest()
                state[str(p)] = (digest, st.st_mode, st.st_size, st.st_mtime_ns)
    return state


def leftovers(tmp: Path, before: set[str]) -> set[str]:
    """vpcheck's scratch directories that are still there."""
    return {p.name for p in tmp.iterdir() if p.name.startswith("vpcheck-")} - before
