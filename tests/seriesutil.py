"""A 3-patch series on a small tree, committed, as b4 and send-email see it.

The base has no VP helper and no raw VP use. Patch 1 adds the helper to a
header, patch 2 adds a raw ``xive->vp_base + server`` use in the .c file,
patch 3 adds a new, clean file. Only patch 2 brings a finding; checked on
HEAD instead of its own base, patch 1 would be blamed for patch 2's use.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .conftest import FIXTURES
from .gitutil import ENV, git, make_repo

TREE = FIXTURES / "rules" / "xive-raw-vp-base" / "header-helper"
HEADER = "arch/powerpc/kvm/book3s_xive.h"
NATIVE = "arch/powerpc/kvm/book3s_xive_native.c"
NOTES = "arch/powerpc/kvm/book3s_notes.c"
SUBJECTS = ("KVM: PPC: add kvmppc_xive_vp()", "KVM: PPC: configure the queue again",
            "KVM: PPC: add a notes file")
HELPER = ("static inline u32 kvmppc_xive_vp(struct kvmppc_xive *xive, u32 server)\n{\n"
          "\treturn xive->vp_base + kvmppc_pack_vcpu_id(xive->kvm, server);\n}\n\n")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def base_repo(dest: Path) -> Path:
    """The fixture tree without its helper and raw use, committed on main."""
    repo = make_repo(TREE, dest)
    h = repo / HEADER
    h.write_text(re.sub(r"static inline u32 kvmppc_xive_vp.*?\n}\n\n", "", h.read_text(),
                        flags=re.S))
    _edit(repo / NATIVE, "\treturn xive_native_configure_queue(xive->vp_base + server, priority, "
          "0, 0); /* expect: xive-raw-vp-base */\n", "\treturn 0;\n")
    _edit(repo / NATIVE, "kvmppc_xive_vp(xive, server), /* ok: xive-raw-vp-base */",
          "server,")
    git(repo, "commit", "-q", "-am", "base without helper")
    return repo


def commit_series(repo: Path, dated: bool = True) -> None:
    """The three patches on top of HEAD (``dated=False``: with today's date, for b4)."""
    env = None if dated else {k: v for k, v in ENV.items() if not k.endswith("_DATE")}

    def commit(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), "commit", "-q", *args], env=env or ENV,
                       check=True, capture_output=True)

    _edit(repo / HEADER, "#endif", HELPER + "#endif")
    commit("-am", SUBJECTS[0])
    _edit(repo / NATIVE, "\treturn 0;\n",
          "\treturn xive_native_configure_queue(xive->vp_base + server, priority, 0, 0);\n")
    commit("-am", SUBJECTS[1])
    (repo / NOTES).write_text("// SPDX-License-Identifier: GPL-2.0\n/* notes */\n")
    git(repo, "add", NOTES)
    commit("-m", SUBJECTS[2])


def format_series(repo: Path, out: Path, *extra: str) -> list[Path]:
    """``git format-patch`` of the last three commits into ``out`` (cover letter first)."""
    git(repo, "format-patch", "-q", "-o", str(out), *extra, "HEAD~3..HEAD")
    return sorted(out.glob("*.patch"))
