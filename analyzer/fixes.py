"""Suggested fixes, rendered as unified diffs that ``git apply`` accepts."""

from __future__ import annotations


def replacement_diff(path: str, data: bytes, start: int, end: int, new: str) -> str:
    """A diff of ``path`` with bytes ``[start, end)`` replaced by ``new`` (difflib is
    imported here: only a finding with a fix needs it, not every check's start-up)."""
    import difflib

    after = data[:start] + new.encode() + data[end:]
    a = data.decode("utf-8").splitlines(keepends=True)
    b = after.decode("utf-8").splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, f"a/{path}", f"b/{path}", n=3))
    out = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return f"diff --git a/{path} b/{path}\n" + "".join(out)
