"""Formatting only: no analysis happens here.

Every formatter takes a :class:`Result` and returns the text to print on
stdout, one module per format. ``checkpatch`` prints finding lines only
(nothing when clean) because ``b4 prep --check`` counts every line it sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import Finding
from ..ruleset import Rule

FORMATS = ("text", "json", "gcc", "checkpatch", "sarif", "github")


@dataclass(frozen=True)
class Result:
    target: str
    findings: Sequence[Finding]
    summary: Mapping[str, Any]
    fixed: Sequence[Finding] | None = None  # not None in series mode
    # (patch index, path, line in the new file) -> line number inside the patch file
    patch_lines: Mapping[tuple[int, str, int], int] = field(default_factory=dict)
    mode: str = "check"  # "check" or "series": SARIF's automationDetails and baselineState


@dataclass(frozen=True)
class Style:
    """How the reader wants it: colour (a terminal without NO_COLOR), the fix diffs."""

    color: bool = False
    fixes: bool = True
    quiet: bool = False  # nothing at all when clean (hooks: git prints what they say)


PLAIN = Style()


def render(fmt: str, result: Result, rules: Sequence[Rule], terse: bool = False,
           style: Style = PLAIN) -> str:
    from . import checkpatch, github, jsonout, sarif, text

    if fmt == "checkpatch":
        return checkpatch.terse(result) if terse else checkpatch.full(result)
    if fmt == "text":
        return text.text(result, style)
    if fmt == "gcc":
        return text.gcc(result)
    if fmt == "github":
        return github.annotations(result)
    if fmt == "sarif":
        return sarif.sarif(result, rules)
    return jsonout.as_json(result)


def counterexample(f: Finding) -> str:
    """``k=v, k=v``: the configuration and values that reach the bug."""
    if not f.counterexample:
        return ""
    return ", ".join(f"{k}={v}" for k, v in f.counterexample.items())


def plural(n: int, word: str) -> str:
    if word == "info":  # uncountable: "1 info", "3 info"
        return f"{n} info"
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# names other modules import from ``analyzer.report`` (kept when it became a package)
from .checkpatch import LEVEL as CHECKPATCH_LEVEL  # noqa: E402
from .jsonout import finding_dict  # noqa: E402
from .sarif import LEVEL as SARIF_LEVEL  # noqa: E402

__all__ = ["CHECKPATCH_LEVEL", "FORMATS", "PLAIN", "SARIF_LEVEL", "Result", "Style",
           "counterexample", "finding_dict", "plural", "render"]
