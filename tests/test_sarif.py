"""SARIF against the OASIS 2.1.0 schema (tests/data), with what code scanning uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import FIXTURES, SEED_MBOX
from .gitutil import make_repo

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
RFC_APPLIED = FIXTURES / "trees" / "rfc-applied"


def valid(text: str) -> dict:
    doc = json.loads(text)
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    return doc


def apply_replacements(text: str, replacements: list[dict]) -> str:
    """What a SARIF consumer does with a fix: swap each deleted region for the new text."""
    lines = text.splitlines(keepends=True)
    for r in sorted(replacements, key=lambda r: -r["deletedRegion"]["startLine"]):
        d = r["deletedRegion"]
        assert (d["startColumn"], d["endColumn"]) == (1, 1)
        lines[d["startLine"] - 1:d["endLine"] - 1] = [r["insertedContent"]["text"]]
    return "".join(lines)


def test_check_on_the_bundled_example(cli) -> None:
    rc, out, _ = cli("check", str(RFC_APPLIED), "--format", "sarif")
    doc = valid(out)
    (run,) = doc["runs"]
    assert run["automationDetails"]["id"] == "vpcheck/check/"
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for res in run["results"]:
        assert rules[res["ruleIndex"]] == res["ruleId"]
        assert len(res["partialFingerprints"]["vpcheckFingerprint/v1"]) == 20
        assert "baselineState" not in res
    fixed = [r for r in run["results"] if "fixes" in r]
    assert fixed, "xive-raw-vp-base findings carry a suggested fix"
    for res in fixed:
        (change,) = res["fixes"][0]["artifactChanges"]
        path = RFC_APPLIED / change["artifactLocation"]["uri"]
        before = path.read_text()
        after = apply_replacements(before, change["replacements"])
        line = res["locations"][0]["physicalLocation"]["region"]["startLine"]
        assert "vp_base" in before.splitlines()[line - 1]
        assert "xive_vp(" in after.splitlines()[line - 1]
        assert len(after.splitlines()) == len(before.splitlines())


def test_series_baseline_state_and_patch(cli, tmp_path: Path) -> None:
    repo = make_repo(FIXTURES / "trees" / "pre-rfc", tmp_path / "repo")
    rc, out, _ = cli("series", str(SEED_MBOX), "--repo", str(repo), "--format", "sarif",
                     "--all")
    doc = valid(out)
    (run,) = doc["runs"]
    assert run["automationDetails"]["id"] == "vpcheck/series/"
    states = {r["baselineState"] for r in run["results"]}
    assert states == {"new", "absent"}
    for res in run["results"]:
        if res["baselineState"] == "new":
            assert res["properties"]["patch"]["index"] == 1
            assert res["properties"]["patch"]["subject"].startswith("KVM: PPC: Book3S HV: pack")


def test_code_flows_from_notes() -> None:
    from analyzer.findings import Finding, Note
    from analyzer.report import Result, render
    from analyzer.ruleset import select

    notes = (Note("arch/powerpc/kvm/book3s_hv.c", 100, "id 8 passes 'id >= KVM_MAX_VCPU_ID'",
                  "kvmppc_core_vcpu_create_hv"),
             Note("arch/powerpc/kvm/book3s_hv.c", 122, "BUG_ON(core >= KVM_MAX_VCORES)",
                  "kvmppc_pack_vcpu_id"))
    f = Finding("pack-domain", "error", "arch/powerpc/kvm/book3s_hv.c", 121, 1,
                "kvmppc_core_vcpu_create_hv", "vCPU id 8 hits a BUG_ON", notes=notes,
                fingerprint="0" * 20)
    doc = valid(render("sarif", Result("t", [f], {}), select(["pack-domain"])))
    (res,) = doc["runs"][0]["results"]
    steps = res["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [(s["location"]["physicalLocation"]["region"]["startLine"],
             s["location"]["message"]["text"]) for s in steps] == [
        (100, notes[0].message), (122, notes[1].message)]
    assert [r["id"] for r in res["relatedLocations"]] == [1, 2]


def test_real_path_findings_have_code_flows(cli) -> None:
    rc, out, _ = cli("check", str(RFC_APPLIED), "--format", "sarif")
    paths = [r for r in valid(out)["runs"][0]["results"] if r["ruleId"] == "pack-domain"]
    assert paths and all(r["codeFlows"][0]["threadFlows"][0]["locations"] for r in paths)
