"""Formatting only: no analysis happens here.

Every formatter takes a :class:`Result` and returns the text to print on
stdout, one module per format. ``checkpatch`` prints finding lines only
(nothing when clean) because ``b4 prep --check`` counts every line it sees.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ruleset import Rule
from .result import PLAIN, Result, Style, counterexample, plural

FORMATS = ("text", "json", "gcc", "checkpatch", "sarif", "github")


def render(fmt: str, result: Result, rules: Sequence[Rule], terse: bool = False,
           style: Style = PLAIN) -> str:
    # only the formatter asked for is imported (json, sarif and textwrap cost start-up)
    if fmt == "checkpatch":
        from . import checkpatch

        return checkpatch.terse(result) if terse else checkpatch.full(result)
    if fmt in ("text", "gcc"):
        from . import text

        return text.text(result, style) if fmt == "text" else text.gcc(result)
    if fmt == "github":
        from . import github

        return github.annotations(result)
    if fmt == "sarif":
        from . import sarif

        return sarif.sarif(result, rules)
    from . import jsonout

    return jsonout.as_json(result)


__all__ = ["FORMATS", "PLAIN", "Result", "Style", "counterexample", "plural", "render"]
