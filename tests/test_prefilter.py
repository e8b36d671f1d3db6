"""Which files are parsed: a file is parsed when it holds one of the profile's names as a
whole word (or, for a header, defines a macro a parsed file uses); a name that is only
part of a longer one (``vcores`` in ``online_vcores``) does not make a file worth parsing.
The text searches that decide it find what the regular expressions ``\\bW\\b`` find."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.c import facts
from analyzer.sources import tree as source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORDS = [b"vcores", b"KVM_MAX_VCPUS", b"x", b"_", b"vp_base"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda b: b.translate(bytes(
    b"vcores_KVMAX1 ->[](\n"[i % 20] for i in range(256)))), st.sampled_from(WORDS))
def test_word_search_is_the_regular_expression(data: bytes, word: bytes) -> None:
    starts = [m.start() for m in re.finditer(rb"\b" + re.escape(word) + rb"\b", data)]
    assert list(facts._word_starts(data, word)) == starts
    assert facts._has_word(data, word) == bool(starts)


def test_word_search_edges() -> None:
    assert list(facts._word_starts(b"vcores online_vcores vcores_x vcores", b"vcores")) == [0, 30]
    assert not facts._has_word(b"kvm->arch.online_vcores", b"vcores")
    assert facts._has_word(b"kvm->arch.vcores[i]", b"vcores")


@given(st.lists(st.binary(min_size=1, max_size=12), max_size=12, unique=True))
def test_token_groups_cover_every_token_once(tokens: list[bytes]) -> None:
    groups = facts._token_groups(tuple(tokens))
    members = [t for _, g in groups for t in g]
    assert sorted(members) == sorted(tokens)
    assert all(t.startswith(head) for head, g in groups for t in g)


def _parsed(files: dict[str, bytes]) -> set[str]:
    fx = facts.extract(source.Snapshot("t", files))
    return {p for p, ff in fx.files.items() if ff.parsed}


def test_a_name_inside_a_longer_name_is_not_a_reason_to_parse() -> None:
    base = {p.relative_to(FIXTURES / "trees" / "rfc-applied").as_posix(): p.read_bytes()
            for p in (FIXTURES / "trees" / "rfc-applied").rglob("*") if p.is_file()}
    base = {p: d for p, d in base.items() if source.is_relevant(p)}
    rm = "arch/powerpc/kvm/book3s_hv_rm_extra.c"
    only_part = b"int f(struct kvm *kvm) { return kvm->arch.online_vcores == 1; }\n"
    whole = b"int f(struct kvm *kvm, int i) { return kvm->arch.vcores[i] != 0; }\n"
    assert rm not in _parsed({**base, rm: only_part})
    assert rm in _parsed({**base, rm: whole})
