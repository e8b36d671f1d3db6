"""SARIF 2.1.0 for code-scanning services (GitHub, GitLab, Azure DevOps).

``partialFingerprints["vpcheckFingerprint/v1"]`` is the finding's
fingerprint: sha1 over (rule id, enclosing function, whitespace-normalised
matched text, ordinal among equal ones), 20 hex digits. It has no line
number and no path, so it survives line moves and renames, and it is the
key ``series`` uses to tell new from old findings. ``codeFlows`` and
``relatedLocations`` come from the finding's notes (the execution path),
``fixes`` from its suggested diff; in series mode every result carries
``baselineState`` (``new``: brought by the series, ``unchanged``: already at
its base, ``absent``: removed by it) and the patch in ``properties``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..findings import Finding
from ..ruleset import Rule
from .result import Result, counterexample

LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


def _location(path: str, line: int, column: int | None = None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": max(line, 1)}
    if column:
        region["startColumn"] = column
    return {"physicalLocation": {"artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
                                 "region": region}}


def _replacements(diff: str) -> dict[str, list[dict[str, Any]]]:
    """A unified diff as SARIF replacements: whole old lines swapped for new text."""
    out: dict[str, list[dict[str, Any]]] = {}
    path, old = None, 0
    block: list[str] = []
    start = 0
    deleted = 0

    def flush() -> None:
        if path is not None and (deleted or block):
            out.setdefault(path, []).append({
                "deletedRegion": {"startLine": start, "startColumn": 1,
                                  "endLine": start + deleted, "endColumn": 1},
                "insertedContent": {"text": "".join(b + "\n" for b in block)}})

    for line in diff.split("\n"):
        if line.startswith("+++ "):
            path = line[4:].strip().removeprefix("b/")
        elif line.startswith("--- "):
            continue
        elif m := _HUNK.match(line):
            old = int(m.group(1))
            block, deleted, start = [], 0, old
        elif line.startswith("-"):
            if not deleted and not block:
                start = old
            deleted += 1
            old += 1
        elif line.startswith("+"):
            if not deleted and not block:
                start = old
            block.append(line[1:])
        elif line.startswith(" "):
            flush()
            block, deleted = [], 0
            old += 1
    flush()
    return out


def _fix(f: Finding) -> list[dict[str, Any]]:
    if not f.fix:
        return []
    changes = [{"artifactLocation": {"uri": p, "uriBaseId": "%SRCROOT%"}, "replacements": r}
               for p, r in _replacements(f.fix).items()]
    return [{"description": {"text": f"suggested by vpcheck rule {f.rule}"},
             "artifactChanges": changes}] if changes else []


def _result(f: Finding, index: dict[str, int], result: Result, state: str | None
            ) -> dict[str, Any]:
    msg = f.message + (f"; counterexample: {counterexample(f)}" if f.counterexample else "")
    res: dict[str, Any] = {
        "ruleId": f.rule,
        "level": LEVEL[f.severity],
        "message": {"text": msg},
        "locations": [_location(f.path, f.line, f.column)],
        "partialFingerprints": {"vpcheckFingerprint/v1": f.fingerprint},
    }
    if f.rule in index:
        res["ruleIndex"] = index[f.rule]
    if f.notes:
        related = []
        for i, n in enumerate(f.notes, 1):
            loc = _location(n.path, n.line)
            loc["id"] = i
            loc["message"] = {"text": n.message}
            related.append(loc)
        res["relatedLocations"] = related
        steps = [{"location": {**_location(n.path, n.line), "message": {"text": n.message}},
                  "nestingLevel": 0, "executionOrder": i} for i, n in enumerate(f.notes, 1)]
        res["codeFlows"] = [{"threadFlows": [{"locations": steps}]}]
    if fixes := _fix(f):
        res["fixes"] = fixes
    if state is not None:
        res["baselineState"] = state
    props: dict[str, Any] = {}
    if f.counterexample:
        props["counterexample"] = dict(f.counterexample)
    if f.patch is not None:
        props["patch"] = {"index": f.patch.index, "total": f.patch.total,
                          "subject": f.patch.subject}
    if props:
        res["properties"] = props
    return res


def _rule(r: Rule) -> dict[str, Any]:
    text = " ".join(r.rationale.split())
    return {
        "id": r.id,
        "name": "".join(w.capitalize() for w in r.id.split("-")),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": text},
        "help": {"text": text},
        "defaultConfiguration": {"level": LEVEL[r.severity]},
        "properties": {"precision": {"high": "high", "medium": "medium"}.get(
            r.confidence, "low"), "tags": ["correctness", "kvm", "powerpc"]},
    }


def sarif(result: Result, rules: Sequence[Rule]) -> str:
    index = {r.id: i for i, r in enumerate(rules)}
    driver = {"name": "vpcheck", "version": __version__,
              "informationUri": "https://example.invalid/vpcheck",
              "rules": [_rule(r) for r in rules]}
    series = result.mode == "series"
    results = [_result(f, index, result,
                       ("new" if f.patch is not None else "unchanged") if series else None)
               for f in result.findings]
    results += [_result(f, index, result, "absent") for f in result.fixed or ()]
    run: dict[str, Any] = {"tool": {"driver": driver},
           "automationDetails": {"id": f"vpcheck/{result.mode}/"},
           "results": results}
    if result.series is not None:
        run["properties"] = {"series": dict(result.series)}
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [run]}
    return json.dumps(doc, indent=2) + "\n"
