"""Kernel profiles: a second profile works without Python changes; bad files are one
clear error naming the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from analyzer import checks, profile, ruleset
from analyzer.c import facts
from analyzer.sources.tree import Snapshot

from .conftest import FIXTURES

CASE = FIXTURES / "rules" / "pack-domain" / "connect-unchecked"
RENAMES = {b"kvmppc_xive_connect_vcpu": b"other_attach", b"vp_base": b"blk_base",
           b"kvmppc_pack_vcpu_id": b"fold_id", b"kvmppc_xive_vp": b"vp_of"}


def _renamed_tree() -> Snapshot:
    files = {}
    for p in sorted(CASE.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            for old, new in RENAMES.items():
                data = data.replace(old, new)
            files[p.relative_to(CASE).as_posix()] = data
    return Snapshot("renamed", files)


def _second_profile(tmp_path) -> profile.Profile:
    src = (profile.shipped() / "profiles" /
           "powerpc-kvm-hv.toml").read_text()
    src = src.replace('name = "powerpc-kvm-hv"', 'name = "synthetic"')
    src = src.replace('"kvmppc_xive_connect_vcpu"', '"other_attach"')
    src = src.replace('block_base = "vp_base"', 'block_base = "blk_base"')
    assert 'blk_base' in src
    path = tmp_path / "synthetic.toml"
    path.write_text(src)
    return profile.load_file(path)


def test_second_profile_finds_the_same_bug_under_other_names(tmp_path) -> None:
    prof = _second_profile(tmp_path)
    rules = tuple(dataclasses.replace(r, profile=prof) for r in ruleset.select(["pack-domain"]))
    snap = _renamed_tree()
    found = checks.run(rules, facts.extract(snap, ruleset.tokens(rules), profile=prof))
    assert [(f.rule, f.counterexample["entry"]) for f in found] == [
        ("pack-domain", "other_attach")]
    # the shipped profile does not know the renamed entry point: nothing to report
    default = ruleset.select(["pack-domain"])
    assert not checks.run(default, facts.extract(snap, ruleset.tokens(default)))


@pytest.mark.parametrize(("edit", "message"), [
    (('name = "powerpc-kvm-hv"', 'name = "x"\ncolour = "red"'), "unknown key 'colour'"),
    (('count = "KVM_MAX_VCPUS"\n', ""), "missing 'count' in [ids]"),
    (("id_param = 2\n", 'id_param = "two"\n'), "id_param must be a int"),
])
def test_bad_profile_is_one_error_naming_the_file(tmp_path, edit, message) -> None:
    src = (profile.shipped() / "profiles" /
           "powerpc-kvm-hv.toml").read_text().replace(*edit, 1)
    path = tmp_path / "bad.toml"
    path.write_text(src)
    with pytest.raises(profile.ProfileError, match=str(path)) as e:
        profile.load_file(path)
    assert message in str(e.value)


def test_unknown_rule_param_is_one_error_naming_the_file() -> None:
    data = (profile.shipped() / "pack-domain.toml"
            ).read_bytes()
    data = data.replace(b"[params]\n", b"[params]\nbogus = 1\n")
    with pytest.raises(ruleset.RuleFileError, match="pack-domain.toml: unknown param 'bogus'"):
        ruleset.parse_rule("pack-domain.toml", data)


def test_shipped_data_is_where_importlib_resources_finds_it() -> None:
    """The path beside ``analyzer.rules``' ``__init__.py`` is the directory that
    ``importlib.resources`` reads the shipped rules and profiles from."""
    import importlib.resources

    here = profile.shipped()
    there = importlib.resources.files("analyzer.rules")
    assert here == Path(str(there))
    assert sorted(p.name for p in here.iterdir()) == sorted(p.name for p in there.iterdir())
    assert (here / "profiles" / f"{profile.DEFAULT}.toml").is_file()
