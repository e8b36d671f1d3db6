#!/usr/bin/env python3
"""Fuzz the mbox/patch reader (analyzer.sources.patches) with atheris: see benchmarks/fuzzing.py."""

import sys

from fuzzing import fixture_files, run

TOKENS = (b"From 1234 Mon Sep 17 00:00:00 2001\n", b"Subject: [PATCH 1/2] ", b"[PATCH 0/3]",
          b"diff --git a/arch/powerpc/kvm/a.c b/arch/powerpc/kvm/a.c\n", b"--- a/", b"+++ b/",
          b"--- /dev/null", b"@@ -1,3 +1,4 @@", b"index 0123456..89abcde 100644\n",
          b"new file mode 100644\n", b"deleted file mode", b"rename from ", b"rename to ",
          b"base-commit: ", b"Content-Transfer-Encoding: base64\n",
          b"Content-Transfer-Encoding: quoted-printable\n", b"Content-Type: multipart/mixed; "
          b"boundary=\"b\"\n", b"--b\n", b"charset=iso-8859-1", b">From ", b"-- \n2.16.1\n",
          b"Binary files ", b"GIT binary patch", b"Index: ", b"../", b"\\")

if __name__ == "__main__":
    sys.exit(run("patches", lambda: fixture_files("fixtures/seed/*.mbox",
                                                  "fixtures/series/*.mbox"),
                 max_len=32768, tokens=TOKENS, instrument=("email",)))
