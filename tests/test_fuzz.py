"""Bad input never escapes as a traceback: random bytes as patches, random C as sources."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import checks, facts, patches, ruleset
from analyzer.errors import InputError
from analyzer.source import Snapshot

MAIL = (b"From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 1/1] x\n\n---\n"
        b"diff --git a/arch/powerpc/kvm/a.c b/arch/powerpc/kvm/a.c\n--- a/arch/powerpc/kvm/a.c\n"
        b"+++ b/arch/powerpc/kvm/a.c\n@@ -1 +1 @@\n-a\n+b\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.binary(max_size=200).map(lambda b: MAIL[: len(b) % len(MAIL)] + b),
                 st.text(max_size=300).map(lambda t: ("From x Mon Jan  1 00:00:00 2001\n"
                                                      + t).encode())))
def test_series_input_is_parsed_or_refused(data: bytes) -> None:
    try:
        got = patches.read_series(["-"], data)
    except InputError as e:
        assert "\n" not in str(e)
        return
    for p in got:
        patches.changes(p.diff)
        with contextlib.suppress(InputError):  # a refused path is a clean refusal
            patches.check_paths(p)


C_BITS = st.sampled_from([
    "int", "u32", "xive->vp_base", "+", "-", "*", "/", "(", ")", "{", "}", ";", "if", "else",
    "return", "kvmppc_pack_vcpu_id", "(kvm, id)", "vcores[", "]", "BUG_ON(", "#define X ",
    "KVM_MAX_VCPUS", "\n", "static inline u32 f(struct kvm *kvm, u32 id)", "=", "0", "8",
    "for (;;)", "goto out;", "out:", "/*", "*/", "\"", "'",
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(C_BITS, max_size=60).map(" ".join))
def test_random_c_never_crashes_the_rules(src: str) -> None:
    snap = Snapshot("fuzz", {"arch/powerpc/kvm/book3s_xive.c": src.encode(),
                             "arch/powerpc/include/asm/kvm_book3s.h": src.encode()})
    rules = ruleset.load_rules()
    for f in checks.run(rules, facts.extract(snap, ruleset.tokens(rules))):
        assert f.rule in {r.id for r in rules}
