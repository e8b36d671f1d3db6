"""Formatting of ``vpcheck history``: text, JSON, SARIF and ``Fixes:`` lines. No analysis.

JSON entries are the usual finding records (:func:`report.finding_dict`) plus
``introduced`` and ``fixed`` (``{"commit", "subject", "date"}``, ``fixed``
null while present) for the current interval, every interval in
``intervals``, and the ``Fixes:`` line of a finding still present. SARIF
marks fixed findings with ``baselineState: "absent"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..history import Commit, Entry, History, Interval, fixes_tag
from ..ruleset import Rule
from . import render
from .checkpatch import LEVEL as CHECKPATCH_LEVEL
from .jsonout import finding_dict
from .result import Result

FORMATS = ("text", "json", "sarif")


def _commit(c: Commit | None, at_base: bool = False) -> dict[str, Any] | None:
    if c is None:
        return None
    d: dict[str, Any] = {"commit": c.sha, "subject": c.subject, "date": c.date}
    if at_base:
        d["at_base"] = True  # present at the range's base: introduced at or before it
    return d


def _interval(iv: Interval) -> dict[str, Any]:
    return {"introduced": _commit(iv.introduced, iv.at_base), "fixed": _commit(iv.fixed)}


def tag(e: Entry) -> str | None:
    """The ``Fixes:`` line for a finding still present whose origin is in the range."""
    return fixes_tag(e.current.introduced) if e.present and not e.current.at_base else None


def summary(h: History, shown: Sequence[Entry], seconds: float) -> dict[str, Any]:
    s = h.stats
    return {"commits": s.commits, "snapshots": s.snapshots, "analysed": s.analysed,
            "cached": s.cached, "skipped": [{"commit": c, "reason": r} for c, r in s.skipped],
            "findings": len(shown), "present": sum(e.present for e in shown),
            "regressions": sum(e.regression for e in shown), "seconds": round(seconds, 3)}


def as_json(h: History, shown: Sequence[Entry], seconds: float) -> str:
    from .. import __version__

    items = []
    for e in shown:
        d = finding_dict(e.finding)
        d.update(_interval(e.current))
        d["intervals"] = [_interval(iv) for iv in e.intervals]
        d["regression"] = e.regression
        d["fixes_tag"] = tag(e)
        items.append(d)
    doc = {"tool": "vpcheck", "version": __version__, "target": h.target, "findings": items,
           "summary": summary(h, shown, seconds)}
    return json.dumps(doc, indent=2) + "\n"


def _line(what: str, c: Commit) -> str:
    return f"  {what:10s} {c.sha[:12]} {c.date[:10]} (\"{c.subject}\")"


def text(h: History, shown: Sequence[Entry], seconds: float) -> str:
    out = []
    for e in shown:
        f = e.finding
        fn = f" in {f.function}()" if f.function else ""
        state = "" if e.present else " (fixed)"
        out.append(f"{f.path}:{f.line}:{f.column}: {CHECKPATCH_LEVEL[f.severity]}: {f.message}"
                   f" [{f.rule}]{fn}{state}")
        if e.regression:
            out.append(f"  regression: present over {len(e.intervals)} intervals")
        for iv in e.intervals:
            what = "at base" if iv.at_base else "introduced"
            out.append(_line(what, iv.introduced))
            out.append(_line("fixed", iv.fixed) if iv.fixed else "  still present")
    s = summary(h, shown, seconds)
    out.append(f"total: {s['findings']} findings, {s['present']} still present, "
               f"{s['regressions']} regressions; {s['commits']} commits, {s['analysed']} "
               f"analysed, {s['cached']} cached, {s['seconds']:.2f} s")
    return "\n".join(out) + "\n"


def sarif(h: History, shown: Sequence[Entry], rules: Sequence[Rule], seconds: float) -> str:
    """The project's SARIF, each result carrying its intervals; fixed ones are 'absent'."""
    doc = json.loads(render("sarif", Result(h.target, [e.finding for e in shown], {}), rules))
    for res, e in zip(doc["runs"][0]["results"], shown, strict=True):
        res["baselineState"] = "unchanged" if e.present else "absent"
        props = res.setdefault("properties", {})
        props["intervals"] = [_interval(iv) for iv in e.intervals]
        if (t := tag(e)) is not None:
            props["fixesTag"] = t
    return json.dumps(doc, indent=2) + "\n"


def fixes_lines(shown: Sequence[Entry]) -> str:
    """One ``Fixes:`` line per commit that introduced a finding still present."""
    seen: dict[str, None] = {}
    for e in shown:
        if (t := tag(e)) is not None:
            seen.setdefault(t)
    return "".join(f"{t}\n" for t in seen)


def render_history(fmt: str, h: History, shown: Sequence[Entry], rules: Sequence[Rule],
                   seconds: float) -> str:
    if fmt == "json":
        return as_json(h, shown, seconds)
    if fmt == "sarif":
        return sarif(h, shown, rules, seconds)
    return text(h, shown, seconds)
