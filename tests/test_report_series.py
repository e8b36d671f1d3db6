"""A fetched series is named by every format that has room for it, from the Result
itself: JSON's top-level ``series`` (right after ``target``), SARIF's
``runs[0].properties.series``, a first ``series:`` line of text; the line formats
(gcc, checkpatch, github) stay finding lines only."""

from __future__ import annotations

import json

import pytest

from analyzer import ruleset
from analyzer.findings import Finding
from analyzer.report import FORMATS, PLAIN, Result, Style, render

MAIL = {"subject": "KVM: PPC: pack VCPU IDs", "author": "A U Thor <a@example.org>",
        "message_id": "<v2-0@example.org>", "revision": 2}
RANGE = {"subject": None, "author": None, "message_id": None, "revision": None,
         "remote": "https://example.org/linux.git", "range": "main..topic", "head": "f" * 40}


def finding() -> Finding:
    return Finding(rule="pack-table", severity="warning", path="arch/x.c", line=3, column=1,
                   message="m", snippet="x", function="f")


def result(series, findings=()) -> Result:
    return Result("t", list(findings), {"files": 1, "seconds": 0.0}, fixed=[], mode="series",
                  series=series)


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_series_nothing_is_added(fmt: str) -> None:
    out = render(fmt, result(None, [finding()]), ruleset.load_rules())
    assert "series:" not in out and '"series"' not in out


def test_json_puts_series_after_target() -> None:
    doc = json.loads(render("json", result(MAIL, [finding()]), ruleset.load_rules()))
    assert list(doc)[:4] == ["tool", "version", "target", "series"]
    assert doc["series"] == MAIL and len(doc["findings"]) == 1


def test_sarif_run_properties() -> None:
    doc = json.loads(render("sarif", result(RANGE), ruleset.load_rules()))
    assert doc["runs"][0]["properties"] == {"series": RANGE}


def test_text_first_line() -> None:
    rules = ruleset.load_rules()
    out = render("text", result(MAIL, [finding()]), rules)
    assert out.splitlines()[0] == ("series: v2 'KVM: PPC: pack VCPU IDs' from "
                                   "A U Thor <a@example.org> <v2-0@example.org>")
    assert out.splitlines()[1].startswith("arch/x.c:3: warning: m")
    quiet = render("text", result(RANGE), rules, style=Style(quiet=True))
    assert quiet == "series: main..topic of https://example.org/linux.git\n"
    assert render("text", result(RANGE), rules, style=PLAIN).startswith("series: main..topic")


@pytest.mark.parametrize("fmt", ["gcc", "checkpatch", "github"])
def test_line_formats_stay_finding_lines(fmt: str) -> None:
    rules = ruleset.load_rules()
    assert render(fmt, result(MAIL, [finding()]), rules) == \
        render(fmt, result(None, [finding()]), rules)
