"""Formatting only: no analysis happens here.

Every formatter takes a :class:`Result` and returns the text to print on
stdout. ``checkpatch`` prints finding lines only (nothing when clean) because
``b4 prep --check`` counts every line it sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .findings import Finding
from .ruleset import Rule

FORMATS = ("text", "json", "gcc", "checkpatch", "sarif")
CHECKPATCH_LEVEL = {"error": "ERROR", "warning": "WARNING", "info": "CHECK"}
SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


@dataclass(frozen=True)
class Result:
    target: str
    findings: Sequence[Finding]
    summary: Mapping[str, Any]
    fixed: Sequence[Finding] | None = None
    # (patch index, path, line in the new file) -> line number inside the patch text
    patch_lines: Mapping[tuple[int, str, int], int] = field(default_factory=dict)


def render(fmt: str, result: Result, rules: Sequence[Rule], terse: bool = False) -> str:
    if fmt == "checkpatch":
        return checkpatch_terse(result) if terse else checkpatch(result)
    return {"text": text, "json": as_json, "gcc": gcc, "sarif": sarif}[fmt](result, rules)


def _source_line(result: Result, f: Finding) -> str | None:
    return f.snippet or None


def _where(f: Finding) -> str:
    if f.patch is not None:
        return f" [patch {f.patch.index}/{f.patch.total}: {f.patch.subject}]"
    return ""


def _counterexample(f: Finding) -> str:
    if not f.counterexample:
        return ""
    return "; counterexample: " + ", ".join(f"{k}={v}" for k, v in f.counterexample.items())


def text(result: Result, rules: Sequence[Rule]) -> str:
    out = []
    for f in result.findings:
        fn = f" in {f.function}()" if f.function else ""
        out.append(f"{f.path}:{f.line}:{f.column}: {CHECKPATCH_LEVEL[f.severity]}: {f.message}"
                   f"{_counterexample(f)} [{f.rule}]{fn}{_where(f)}")
        src = _source_line(result, f)
        if src is not None:
            out.append(f"  {f.line:5d} | {src.strip()}")
    for f in result.fixed or ():
        out.append(f"fixed: {f.path}:{f.line}: {f.message} [{f.rule}]")
    s = result.summary
    counts = {sev: sum(f.severity == sev for f in result.findings) for sev in CHECKPATCH_LEVEL}
    out.append(f"total: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} "
               f"infos; {s.get('files', 0)} files, {s.get('seconds', 0):.2f} s")
    return "\n".join(out) + "\n"


def gcc(result: Result, rules: Sequence[Rule]) -> str:
    sev = {"error": "error", "warning": "warning", "info": "note"}
    return "".join(f"{f.path}:{f.line}:{f.column}: {sev[f.severity]}: {f.message}"
                   f"{_counterexample(f)} [{f.rule}]\n" for f in result.findings)


def checkpatch_terse(result: Result) -> str:
    """``checkpatch.pl --terse --showfile --no-summary --mailback``: what b4 parses.

    One line per finding, nothing at all when clean.
    """
    return "".join(f"{f.path}:{f.line}: {CHECKPATCH_LEVEL[f.severity]}: {f.message}"
                   f"{_counterexample(f)} [{f.rule}]\n" for f in result.findings)


def checkpatch(result: Result) -> str:
    """checkpatch.pl's default layout: level and message, location, the line; a total.

    ``#N`` is the line in the patch when the finding is on a line the patch
    adds (``patch_lines`` maps (path, line) to it); nothing is printed when clean.
    """
    if not result.findings:
        return ""
    out = []
    for f in result.findings:
        out.append(f"{CHECKPATCH_LEVEL[f.severity]}:{f.rule.upper().replace('-', '_')}: "
                   f"{f.message}{_counterexample(f)}")
        n = result.patch_lines.get((f.patch.index if f.patch else 0, f.path, f.line))
        out.append(f"{f'#{n}: ' if n else ''}FILE: {f.path}:{f.line}:")
        src = _source_line(result, f)
        if src is not None:
            out.append(f"+{src}")
        out.append("")
    counts = {sev: sum(f.severity == sev for f in result.findings) for sev in CHECKPATCH_LEVEL}
    checks = f", {counts['info']} checks" if counts["info"] else ""
    out.append(f"total: {counts['error']} errors, {counts['warning']} warnings{checks}, "
               f"{result.summary.get('lines', 0)} lines checked")
    return "\n".join(out) + "\n"


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


def as_json(result: Result, rules: Sequence[Rule]) -> str:
    doc: dict[str, Any] = {
        "tool": "vpcheck", "version": __version__, "target": result.target,
        "findings": [finding_dict(f) for f in result.findings],
    }
    if result.fixed is not None:
        doc["fixed"] = [finding_dict(f) for f in result.fixed]
    doc["summary"] = dict(result.summary)
    return json.dumps(doc, indent=2) + "\n"


def sarif(result: Result, rules: Sequence[Rule]) -> str:
    index = {r.id: i for i, r in enumerate(rules)}
    driver = {
        "name": "vpcheck", "version": __version__,
        "informationUri": "https://example.invalid/vpcheck",
        "rules": [{
            "id": r.id,
            "name": "".join(w.capitalize() for w in r.id.split("-")),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": " ".join(r.rationale.split())},
            "help": {"text": " ".join(r.rationale.split())},
            "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
            "properties": {"precision": {"high": "high", "medium": "medium"}.get(
                r.confidence, "low"), "tags": ["correctness", "kvm", "powerpc"]},
        } for r in rules],
    }
    results = []
    for f in result.findings:
        res: dict[str, Any] = {
            "ruleId": f.rule,
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f.message + _counterexample(f)},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": f.line, "startColumn": f.column}}}],
            "partialFingerprints": {"vpcheckFingerprint/v1": f.fingerprint},
        }
        if f.rule in index:
            res["ruleIndex"] = index[f.rule]
        if f.counterexample:
            res["properties"] = {"counterexample": dict(f.counterexample)}
        results.append(res)
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(doc, indent=2) + "\n"
