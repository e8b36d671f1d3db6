"""What every format renders: the result of one run, and how the reader wants it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import Finding


@dataclass(frozen=True)
class Result:
    """What every formatter renders: the findings of one run and its summary."""

    target: str
    findings: Sequence[Finding]
    summary: Mapping[str, Any]
    fixed: Sequence[Finding] | None = None  # not None in series mode
    # (patch index, path, line in the new file) -> line number inside the patch file
    patch_lines: Mapping[tuple[int, str, int], int] = field(default_factory=dict)
    mode: str = "check"  # "check" or "series": SARIF's automationDetails and baselineState
    # series --fixes-tag: fingerprint of a fixed finding -> the Fixes: line its fix carries
    fixes: Mapping[str, str] = field(default_factory=dict)
    # a fetched series (--inbox, --remote): what names it. Mail: subject, author,
    # message_id, revision; a remote range: remote, range, head (the others None)
    series: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Style:
    """How the reader wants it: colour (a terminal without NO_COLOR), the fix diffs."""

    color: bool = False
    fixes: bool = True
    quiet: bool = False  # nothing at all when clean (hooks: git prints what they say)


PLAIN = Style()


def counterexample(f: Finding) -> str:
    """``k=v, k=v``: the configuration and values that reach the bug."""
    if not f.counterexample:
        return ""
    return ", ".join(f"{k}={v}" for k, v in f.counterexample.items())


def series_line(series: Mapping[str, Any]) -> str:
    """The series in one line: the mail's revision, subject, author and Message-ID, or
    the range of the remote."""
    if series.get("message_id"):
        return (f"series: v{series['revision']} '{series['subject']}' from "
                f"{series['author']} {series['message_id']}")
    return f"series: {series.get('range')} of {series.get('remote')}"


def plural(n: int, word: str) -> str:
    if word == "info":  # uncountable: "1 info", "3 info"
        return f"{n} info"
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
