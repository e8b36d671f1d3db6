#!/usr/bin/env python3
"""Fuzz the C front end (tree-sitter facts and the query rules): see benchmarks/fuzzing.py."""

import sys

from fuzzing import fixture_files, run

TOKENS = (b"xive->vp_base + ", b"kvm->arch.vcores[", b"kvmppc_pack_vcpu_id(kvm, ",
          b"static inline u32 ", b"#define KVM_MAX_VCPUS ", b"#ifdef ", b"#else\n", b"#endif\n",
          b"#if ", b"BUG_ON(", b"WARN_ON(", b"if (", b"return ", b"goto out;", b"nr_servers",
          b"KVM_MAX_VCORES", b"MAX_SMT_THREADS", b"NR_CPUS", b"smt_mode", b"__user", b"/*",
          b"*/", b"\\\n", b"struct kvm *kvm", b"u32 server", b"kvmppc_xive_vp(xive, ")

if __name__ == "__main__":
    sys.exit(run("cfront", lambda: fixture_files("fixtures/rules/**/*.c",
                                                 "fixtures/rules/**/*.h"),
                 max_len=16384, tokens=TOKENS))
