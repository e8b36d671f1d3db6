"""The Finding record: what every check produces and every report consumes."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SEVERITIES = ("info", "warning", "error")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class PatchRef:
    """The patch of a series a finding belongs to (series mode)."""

    index: int
    total: int
    subject: str


@dataclass(frozen=True)
class Note:
    """One step of the execution that leads to a finding (a call, a guard passed
    with its values, the sink), printed under it as clang and gcc -fanalyzer do."""

    path: str
    line: int
    message: str
    function: str | None = None


@dataclass(frozen=True)
class Finding:
    """One report: where, which rule, why, and what shows it (the counterexample)."""

    rule: str
    severity: str
    path: str
    line: int
    column: int
    function: str | None
    message: str
    # What identifies the finding when lines move: normalised matched text.
    key: str = ""
    counterexample: Mapping[str, Any] | None = None
    fix: str | None = None
    patch: PatchRef | None = None
    notes: tuple[Note, ...] = ()  # the path from the entry point to the sink, in order
    snippet: str = field(default="", compare=False)  # the source line, for reports
    fingerprint: str = field(default="", compare=False)

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.rule, self.message)


def without_lines(text: str) -> str:
    """``text`` without line numbers: what a fingerprint key may hold."""
    import re

    text = re.sub(r"(\.[A-Za-z]\w*):\d+\b", r"\1", text)  # path:N -> path
    return re.sub(r"\s*(?:at |)line \d+", "", text)


def _digest(*parts: object) -> str:
    h = hashlib.sha1("\x1f".join(str(p) for p in parts).encode())
    return h.hexdigest()[:20]


def fingerprinted(findings: Iterable[Finding]) -> list[Finding]:
    """Sort findings and give each a fingerprint that survives line shifts.

    The fingerprint hashes (rule, function, normalised key) plus the ordinal
    among findings sharing those, so two identical expressions in one
    function stay distinct without depending on line numbers, and a file
    that a patch renames keeps its findings.
    """
    out = []
    seen: Counter[tuple] = Counter()
    for f in sorted(findings, key=Finding.sort_key):
        base = (f.rule, f.function or "", " ".join((f.key or f.message).split()))
        out.append(replace(f, fingerprint=_digest(*base, seen[base])))
        seen[base] += 1
    return out


@dataclass(frozen=True)
class Counterexample:
    """One record for every rule's counterexample: the configuration, the ID(s)
    userspace chose, the entry point they came through, and the values computed
    on the way (packed index, block size, …). ``as_dict`` has fixed keys:
    the configuration's names, ``ids``, ``entry`` and ``values``."""

    config: Mapping[str, int]
    ids: tuple[int, ...]
    entry: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.config, "ids": list(self.ids), "entry": self.entry,
                "values": dict(self.values)}
