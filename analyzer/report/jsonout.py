"""The JSON document: keys are stable (added to, never renamed)."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..findings import Finding
from .result import Result


def finding_dict(f: Finding) -> dict[str, Any]:
    d: dict[str, Any] = {
        "rule": f.rule, "severity": f.severity, "path": f.path, "line": f.line,
        "column": f.column, "function": f.function, "message": f.message,
    }
    if f.patch is not None:
        d["patch"] = {"index": f.patch.index, "subject": f.patch.subject}
    d["counterexample"] = dict(f.counterexample) if f.counterexample else None
    d["notes"] = [{"path": n.path, "line": n.line, "function": n.function,
                   "message": n.message} for n in f.notes]
    d["fix"] = f.fix
    d["fingerprint"] = f.fingerprint
    return d


def as_json(result: Result) -> str:
    doc: dict[str, Any] = {
        "tool": "vpcheck", "version": __version__, "target": result.target,
    }
    if result.series is not None:
        doc["series"] = dict(result.series)
    doc["findings"] = [finding_dict(f) for f in result.findings]
    if result.fixed is not None:
        doc["fixed"] = [{**finding_dict(f), "fixes_tag": result.fixes.get(f.fingerprint)}
                        if result.fixes else finding_dict(f) for f in result.fixed]
    doc["summary"] = dict(result.summary)
    return json.dumps(doc, indent=2) + "\n"
