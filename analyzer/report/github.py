"""GitHub Actions workflow commands: ``::warning file=…,line=…::message``.

The runner turns each line into an annotation on the pull request's diff.
"""

from __future__ import annotations

from .result import Result, counterexample

LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s: str) -> str:
    return _data(s).replace(":", "%3A").replace(",", "%2C")


def annotations(result: Result) -> str:
    out = []
    for f in result.findings:
        body = [f.message]
        body += [f"{n.path}:{n.line}: {n.message}" for n in f.notes]
        if f.counterexample:
            body.append("counterexample: " + counterexample(f))
        if f.patch is not None:
            body.append(f"introduced by patch {f.patch.index}/{f.patch.total}: {f.patch.subject}")
        props = (f"file={_prop(f.path)},line={f.line},col={f.column},"
                 f"title={_prop('vpcheck ' + f.rule)}")
        out.append(f"::{LEVEL[f.severity]} {props}::{_data(chr(10).join(body))}\n")
    return "".join(out)
