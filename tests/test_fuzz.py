"""Bad input never escapes as a traceback: random bytes as patches, random C as sources.

Two layers: quick Hypothesis properties here, and the corpus the coverage-guided
atheris harnesses (``benchmarks/fuzz_<target>.py``) kept under
``tests/data/fuzz/``, replayed through the same targets (``tests/fuzz_targets.py``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.errors import InputError
from analyzer.sources import patches
from analyzer.sources.tree import Snapshot

from .conftest import run_cli
from .fuzz_targets import CORPUS, TARGETS

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


# --- the coverage-guided corpus (benchmarks/fuzz_<target>.py), replayed --------------

CRASHES = CORPUS / "crashes"
# Who fixes a recorded crash, by the module of its innermost analyzer frame.
# keyed by the file stem benchmarks/fuzzing.py records (the innermost frame's module)
OWNERS = {"ceval": "engine", "packing": "engine", "facts": "engine", "checks": "engine",
          "guards": "engine", "paths": "engine", "modelchecks": "engine",
          "domainchecks": "engine", "occupancy": "engine", "parse": "engine",
          "defines": "engine", "patches": "presubmit", "series": "presubmit"}


def _inputs(target: str) -> list[Path]:
    return sorted(p for p in (CORPUS / target).glob("*") if p.is_file())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_corpus_replays_cleanly(target: str) -> None:
    """Every kept input either works or is refused with one line; never anything else."""
    inputs = _inputs(target)
    assert inputs, f"empty corpus: run benchmarks/fuzz_{target}.py"
    for p in inputs:
        try:
            TARGETS[target](p.read_bytes())
        except Exception as e:
            raise AssertionError(f"{p.relative_to(CORPUS)}: {type(e).__name__}: {e}") from e


def test_tarball_corpus_through_the_command_line(tmp_path: Path) -> None:
    """The tarball corpus as `vpcheck check T.tar`: exit 0, 1 or 2 and at most one line."""
    for p in _inputs("tarball"):
        tb = tmp_path / "linux.tar"
        tb.write_bytes(p.read_bytes())
        rc, _, err = run_cli("check", str(tb), "--rule", "xive-raw-vp-base")
        assert rc in (0, 1, 2), (p.name, rc, err)
        assert err.count("\n") <= 1 and "Traceback" not in err, (p.name, err)


def _crash_cases():
    for p in sorted(CRASHES.glob("*-*-*.bin")):
        target, _, sig = p.stem.partition("-")
        module = sig.rpartition("-")[2].rpartition("_")[0]
        owner = OWNERS.get(module, module)
        yield pytest.param(target, p, id=p.stem, marks=pytest.mark.xfail(
            strict=True, reason=f"crash in {module}.py under analyzer/, fixed by {owner}"))


@pytest.mark.parametrize("target,path", list(_crash_cases()))
def test_recorded_crash(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())
