"""What people read: ``text`` (wrapped, with notes and fixes) and ``gcc`` (one line each).

``text``: one ``path:line: severity: message [rule]`` line per finding, kept
near 120 columns, then indented lines: the source line, where (function,
patch), the execution path as ``path:line: note:`` lines (every reference
names its file), the counterexample, and the suggested fix as a diff.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

from ..findings import Finding
from .result import PLAIN, Result, Style, counterexample, plural, series_line

WIDTH = 120
INDENT = "    "
GCC_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SEVERITY_WORD = {"error": "error", "warning": "warning", "info": "info"}
_COLOURS = {"error": "1;31", "warning": "1;35", "info": "1;36", "note": "1;36", "path": "1",
            "+": "32", "-": "31", "@": "36"}


def _paint(style: Style, what: str, s: str) -> str:
    return f"\x1b[{_COLOURS[what]}m{s}\x1b[0m" if style.color else s


def _wrap(text: str, first: str, style: Style, prefix_len: int | None = None) -> list[str]:
    """Wrap ``text`` after ``first`` (which may carry colour codes) to WIDTH columns."""
    plain = len(first) if prefix_len is None else prefix_len
    lines = textwrap.wrap(text, width=WIDTH, initial_indent="x" * plain,
                          subsequent_indent=INDENT, break_long_words=False,
                          break_on_hyphens=False) or ["x" * plain]
    return [first + lines[0][plain:], *lines[1:]]


def _head(f: Finding, style: Style) -> list[str]:
    loc = f"{f.path}:{f.line}:"
    word = SEVERITY_WORD[f.severity]
    first = f"{_paint(style, 'path', loc)} {_paint(style, f.severity, word + ':')} "
    return _wrap(f"{f.message} [{f.rule}]", first, style, len(loc) + len(word) + 3)


def _details(f: Finding, style: Style) -> Iterator[str]:
    if f.snippet.strip():
        src = f"{INDENT}{f.line:5d} | {f.snippet.strip()}"
        yield src if len(src) <= WIDTH else src[:WIDTH - 1] + "…"
    where = [f"in {f.function}()"] if f.function else []
    if f.patch is not None:
        subject = f.patch.subject if len(f.patch.subject) <= 60 else f.patch.subject[:59] + "…"
        where.append(f"introduced by patch {f.patch.index}/{f.patch.total} \"{subject}\"")
    if where:
        yield from _wrap(", ".join(where), INDENT, style)
    for n in f.notes:
        loc = f"{n.path}:{n.line}:"
        fn = f"in {n.function}(): " if n.function else ""
        first = f"{INDENT}{_paint(style, 'path', loc)} {_paint(style, 'note', 'note:')} "
        yield from _wrap(fn + n.message, first, style, len(INDENT) + len(loc) + 7)
    if f.counterexample:
        yield from _wrap("counterexample: " + counterexample(f), INDENT, style)
    if style.fixes and f.fix:
        yield f"{INDENT}suggested fix:"
        for line in f.fix.rstrip("\n").split("\n"):
            mark = line[:1] if line[:1] in "+-@" and not line.startswith(("+++", "---")) else ""
            yield INDENT + "  " + (_paint(style, mark, line) if mark else line)


def text(result: Result, style: Style = PLAIN) -> str:
    """The report; a fetched series is named on a first ``series:`` line (even with
    ``-q``: it says what was checked)."""
    head = [series_line(result.series)] if result.series is not None else []
    if style.quiet and not result.findings and not result.fixed:
        return "".join(line + "\n" for line in head)
    out: list[str] = head
    for f in result.findings:
        out += _head(f, style)
        out += _details(f, style)
    for f in result.fixed or ():
        out += _wrap(f"{f.message} [{f.rule}]", f"fixed: {f.path}:{f.line}: ", style)
        if f.fingerprint in result.fixes:
            out.append(INDENT + result.fixes[f.fingerprint])
    s = result.summary
    counts = {sev: sum(f.severity == sev for f in result.findings) for sev in SEVERITY_WORD}
    fixed = f", {len(result.fixed)} fixed" if result.fixed else ""
    out.append(f"total: {plural(counts['error'], 'error')}, "
               f"{plural(counts['warning'], 'warning')}, {plural(counts['info'], 'info')}"
               f"{fixed}; {plural(s.get('files', 0), 'file')}, {s.get('seconds', 0):.2f} s")
    return "\n".join(out) + "\n"


def gcc(result: Result) -> str:
    """gcc's diagnostics: editors and ``make`` jump to them; notes as ``note:`` lines."""
    out = []
    for f in result.findings:
        out.append(f"{f.path}:{f.line}:{f.column}: {GCC_LEVEL[f.severity]}: {f.message} "
                   f"[{f.rule}]")
        for n in f.notes:
            fn = f"in {n.function}(): " if n.function else ""
            out.append(f"{n.path}:{n.line}:1: note: {fn}{n.message}")
        if f.counterexample:
            out.append(f"{f.path}:{f.line}:{f.column}: note: counterexample: "
                       f"{counterexample(f)}")
    return "".join(line + "\n" for line in out)
