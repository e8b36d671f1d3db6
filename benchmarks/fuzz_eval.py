#!/usr/bin/env python3
"""Fuzz the evaluator: `vpcheck model` and the model rules on generated packing functions.

The input's first byte picks verbatim C (odd) or a program of the small C
grammar in tests/fuzz_targets.py (even); see benchmarks/fuzzing.py.
"""

import sys

from fuzzing import ROOT, run


def seeds() -> dict[str, bytes]:
    text = (ROOT / "fixtures/trees/rfc-applied/arch/powerpc/include/asm/kvm_book3s.h").read_bytes()
    head = text.index(b"kvmppc_pack_vcpu_id(struct kvm")
    body = text[text.index(b"{", head) + 1: text.index(b"\n}\n", head)]
    return {"verbatim": b"\x01" + body, "zero": b"\x00" * 8,
            "mixed": bytes(range(0, 256, 3))}


if __name__ == "__main__":
    sys.exit(run("eval", seeds, max_len=512))
