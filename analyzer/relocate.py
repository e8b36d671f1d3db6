"""Moving a reused verdict to the lines of a later snapshot.

Series mode reuses a check's verdict while the text of everything it reads is
unchanged, even when a patch moved those functions (a comment inserted above
them). The findings then point at the old lines. Rather than sweep the model
again, each line they mention (the finding's, its notes', ``line N`` and
``path:N`` in its text) is mapped through the function that held it: that
function, with the same text in the new snapshot, moved by a known number of
lines. A line that cannot be mapped with certainty (outside any function of a
changed file, in a function whose text changed, or ambiguous between files)
makes the verdict unusable, and the check runs again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .c.facts import Facts
from .findings import Finding

_NUMBERS = re.compile(r"\bline (\d+)|([\w./+-]+\.[chS]):(\d+)")

Span = tuple[str, int, str] | None  # (function, its first line, digest of its text)


class Unmovable(Exception):
    """A line of a verdict has no certain place in the new snapshot."""


@dataclass(frozen=True)
class Origin:
    """Where a verdict's lines pointed when it was computed: what relocating needs,
    without keeping that snapshot's facts (or its parse trees) alive."""

    blobs: Mapping[str, str]  # path -> blob id, for every path a line may belong to
    spans: Mapping[tuple[str, int], Span]  # (path, line) -> the function holding it


def origin(facts: Facts, findings: Iterable[Finding]) -> Origin:
    refs = {ref for f in findings for ref in _refs(f)}
    paths = {p for p, _ in refs}
    blobs = {p: facts.files[p].blob for p in paths if p in facts.files}
    return Origin(blobs, {(p, n): _span(facts, p, n) for p, n in refs})


def move(findings: list[Finding], was: Origin, facts: Facts) -> list[Finding] | None:
    """``findings`` at the lines of ``facts``' snapshot; None when a line cannot move."""
    if all(facts.files.get(p) is not None and facts.files[p].blob == b
           for p, b in was.blobs.items()):
        return findings
    try:
        return [_move_one(f, was, facts) for f in findings]
    except Unmovable:
        return None


def _paths(f: Finding) -> tuple[str, ...]:
    return tuple(dict.fromkeys([f.path, *(n.path for n in f.notes)]))


def _texts(f: Finding) -> list[str]:
    out = [f.message, f.key, *(n.message for n in f.notes)]
    if f.counterexample is not None:
        out.extend(_strings(f.counterexample))
    return out


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _refs(f: Finding) -> set[tuple[str, int]]:
    """Every (path, line) the finding may mean."""
    refs = {(f.path, f.line), *((n.path, n.line) for n in f.notes)}
    for text in _texts(f):
        for m in _NUMBERS.finditer(text):
            if m.group(1):
                refs |= {(p, int(m.group(1))) for p in _paths(f)}
            else:
                refs.add((m.group(2), int(m.group(3))))
    return refs


def _span(facts: Facts, path: str, line: int) -> Span:
    ff = facts.files.get(path)
    for fn in ff.functions if ff is not None else ():
        if fn.line <= line <= fn.end_line:
            return fn.name, fn.line, _digest(facts, fn)
    return None


def _digest(facts: Facts, fn) -> str:
    data = facts.snapshot.files[fn.path][fn.start_byte:fn.end_byte]
    return hashlib.sha1(data).hexdigest()


def _line(was: Origin, facts: Facts, path: str, line: int) -> int | None:
    """The new line of ``path:line``, or None if it has no certain one."""
    ff = facts.files.get(path)
    if ff is not None and was.blobs.get(path) == ff.blob:
        return line
    span = was.spans.get((path, line))
    if span is None:
        return None
    name, first, digest = span
    fn = facts.functions.get(name)
    if fn is None or fn.path != path or _digest(facts, fn) != digest:
        return None
    return line + fn.line - first


def _certain(was: Origin, facts: Facts, path: str, line: int) -> int:
    got = _line(was, facts, path, line)
    if got is None:
        raise Unmovable(f"{path}:{line}")
    return got


def _bare(was: Origin, facts: Facts, f: Finding, line: int) -> int:
    """``line N`` without a path: the place of the finding or a note at that line,
    else it must mean one place among the finding's files."""
    at = {n.path for n in f.notes if n.line == line} | ({f.path} if f.line == line else set())
    inside = {p for p in _paths(f) if was.spans.get((p, line)) is not None}
    found = {_line(was, facts, p, line) for p in (at or inside or _paths(f))}
    if len(found) != 1 or None in found:
        raise Unmovable(f"line {line}")
    return found.pop()


def _text(was: Origin, facts: Facts, f: Finding, text: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1):
            return f"line {_bare(was, facts, f, int(m.group(1)))}"
        return f"{m.group(2)}:{_certain(was, facts, m.group(2), int(m.group(3)))}"

    return _NUMBERS.sub(sub, text)


def _value(was: Origin, facts: Facts, f: Finding, value: Any) -> Any:
    if isinstance(value, str):
        return _text(was, facts, f, value)
    if isinstance(value, Mapping):
        return {k: _value(was, facts, f, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_value(was, facts, f, v) for v in value)
    return value


def _move_one(f: Finding, was: Origin, facts: Facts) -> Finding:
    if f.fix is not None:
        raise Unmovable("a fix is a diff of the old text")
    notes = tuple(replace(n, line=_certain(was, facts, n.path, n.line),
                          message=_text(was, facts, f, n.message)) for n in f.notes)
    cx = None if f.counterexample is None else _value(was, facts, f, f.counterexample)
    return replace(f, line=_certain(was, facts, f.path, f.line), notes=notes,
                   message=_text(was, facts, f, f.message), key=_text(was, facts, f, f.key),
                   counterexample=cx)
