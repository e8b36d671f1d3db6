"""Golden output of every text format on the bundled example, so a layout change is
reviewed as a diff. Regenerate: VPCHECK_UPDATE_GOLDEN=1 python -m pytest tests/test_report_golden.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import FIXTURES, SEED_MBOX
from .gitutil import make_repo

GOLDEN = Path(__file__).parent / "data" / "golden"
FORMATS = {
    "text": ("--format", "text"),
    "text-no-fix": ("--format", "text", "--no-fix"),
    "gcc": ("--format", "gcc"),
    "checkpatch": ("--format", "checkpatch"),
    "checkpatch-terse": ("--format", "checkpatch", "--terse"),
    "github": ("--format", "github"),
}


def normalised(out: str) -> str:
    return re.sub(r"\b\d+\.\d\d s\b", "T s", out)


def compare(name: str, out: str) -> None:
    path = GOLDEN / name
    if os.environ.get("VPCHECK_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(normalised(out))
    assert normalised(out) == path.read_text(), f"{name}: output changed (see module doc)"


@pytest.fixture(scope="module")
def pre_rfc(tmp_path_factory) -> Path:
    return make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path_factory.mktemp("g") / "repo")


@pytest.mark.parametrize("fmt", FORMATS)
def test_series_seed(cli, pre_rfc: Path, fmt: str) -> None:
    rc, out, err = cli("series", str(SEED_MBOX), "--repo", str(pre_rfc), *FORMATS[fmt])
    assert (rc, err) == (1, "")
    compare(f"series-seed.{fmt}", out)


@pytest.mark.parametrize("fmt", ["text", "gcc", "checkpatch", "github"])
def test_check_bundled_example(cli, fmt: str) -> None:
    rc, out, err = cli("check", str(FIXTURES / "trees" / "rfc-applied"), *FORMATS[fmt])
    assert (rc, err) == (1, "")
    compare(f"check-rfc-applied.{fmt}", out)


def test_text_layout_rules() -> None:
    """What the golden files must keep: short head lines, details indented, plurals."""
    text = (GOLDEN / "series-seed.text").read_text()
    heads = [ln for ln in text.splitlines() if ln and not ln.startswith(" ")]
    assert re.match(r"^total: \d+ errors, \d+ warnings, \d+ info, \d+ fixed; ", heads[-1])
    assert all(len(ln) <= 120 for ln in heads), [ln for ln in heads if len(ln) > 120]
    found = [ln for ln in heads[:-1] if not ln.startswith("fixed: ")]
    assert found and all(re.match(r"^\S+:\d+: (error|warning|info): ", ln) for ln in found)
    # checkpatch: "#N: " and "+" only for lines the patch adds; the seed's raw uses were
    # there before (the helper it adds makes them findings): context lines, " "
    cp = (GOLDEN / "series-seed.checkpatch").read_text().split("\n\n")
    kinds = set()
    for report in cp[:-1]:
        level, where, line = report.strip("\n").split("\n")
        added = re.match(r"^#\d+: FILE: ", where) is not None
        assert line.startswith("+" if added else " ") and where.startswith(("#", "FILE: "))
        kinds.add(added)
    assert kinds == {True, False}


def test_plurals_and_colour() -> None:
    from analyzer.findings import Finding
    from analyzer.report import Result, Style, render

    one = Finding("xive-raw-vp-base", "warning", "a.c", 3, 1, "f", "raw use", snippet="x;")
    out = render("text", Result("t", [one], {"files": 1, "seconds": 0}), [])
    assert out.endswith("total: 0 errors, 1 warning, 0 info; 1 file, 0.00 s\n")
    assert "\x1b[" not in out
    coloured = render("text", Result("t", [one], {}), [], style=Style(color=True))
    assert "\x1b[1;35mwarning:\x1b[0m" in coloured
    assert render("text", Result("t", [], {}), [], style=Style(quiet=True)) == ""
