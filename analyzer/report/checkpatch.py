"""checkpatch.pl's layouts, for b4 and for eyes used to checkpatch.

``#N`` is the line in the patch file as sent (what checkpatch counts), the
source line is prefixed ``+`` only when the patch adds it, and nothing at
all is printed for a clean result.
"""

from __future__ import annotations

from ..findings import Finding
from .result import Result

LEVEL = {"error": "ERROR", "warning": "WARNING", "info": "CHECK"}


def terse(result: Result) -> str:
    """``checkpatch.pl --terse --showfile --no-summary --mailback``: what b4 parses.

    One line per finding, nothing at all when clean.
    """
    return "".join(f"{f.path}:{f.line}: {LEVEL[f.severity]}: {f.message} [{f.rule}]\n"
                   for f in result.findings)


def _patch_line(result: Result, f: Finding) -> int | None:
    return result.patch_lines.get((f.patch.index if f.patch else 0, f.path, f.line))


def full(result: Result) -> str:
    """checkpatch.pl's default layout: level and message, location, the line; a total."""
    if not result.findings:
        return ""
    out = []
    for f in result.findings:
        out.append(f"{LEVEL[f.severity]}:{f.rule.upper().replace('-', '_')}: {f.message}")
        n = _patch_line(result, f)
        out.append(f"{f'#{n}: ' if n else ''}FILE: {f.path}:{f.line}:")
        if f.snippet:
            # checking a tree is checkpatch -f: every line counts as added
            added = n is not None or result.mode == "check"
            out.append(("+" if added else " ") + f.snippet)
        out.append("")
    counts = {sev: sum(f.severity == sev for f in result.findings) for sev in LEVEL}
    checks = f", {counts['info']} checks" if counts["info"] else ""
    # checkpatch's own wording, "1 warnings" included: scripts match it
    out.append(f"total: {counts['error']} errors, {counts['warning']} warnings{checks}, "
               f"{result.summary.get('lines', 0)} lines checked")
    return "\n".join(out) + "\n"
