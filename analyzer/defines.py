"""Which ``#define`` of a macro applies: the powerpc, KVM-HV branch of the headers.

A macro may be defined several times under different ``#if``s (the 6.12
``KVM_MAX_VCPU_IDS`` has three). The model needs the one a POWER9 KVM-HV host
kernel is built with. The choice is made from the tree's own conditions:

- ``CONFIG_*`` symbols are enabled iff they are in :data:`POWERPC_HV` (what a
  powernv/pseries KVM-HV kernel enables); every other ``CONFIG_*`` is off;
- ``#ifndef NAME`` around ``#define NAME`` (the generic fallback idiom) holds
  iff no other definition of NAME applies;
- any other ``defined(X)`` is an include guard or an arch symbol: include
  guards are taken as not yet defined, and ``__KERNEL__``/``__powerpc64__``
  as defined;
- arch/powerpc definitions are preferred to generic ones (paths sort so);
- an ``#if`` expression that cannot be evaluated counts as true.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .facts import Define

POWERPC_HV = frozenset({
    "CONFIG_PPC", "CONFIG_PPC64", "CONFIG_PPC_BOOK3S", "CONFIG_PPC_BOOK3S_64",
    "CONFIG_PPC_POWERNV", "CONFIG_PPC_PSERIES", "CONFIG_SMP", "CONFIG_KVM",
    "CONFIG_KVM_BOOK3S_64", "CONFIG_KVM_BOOK3S_64_HANDLER", "CONFIG_KVM_BOOK3S_HV_POSSIBLE",
    "CONFIG_KVM_BOOK3S_64_HV", "CONFIG_KVM_XICS", "CONFIG_KVM_XIVE", "CONFIG_PPC_XIVE",
    "CONFIG_PPC_XIVE_NATIVE", "CONFIG_PPC_RADIX_MMU", "CONFIG_PPC_TRANSACTIONAL_MEM",
})
ARCH_DEFINED = frozenset({"__KERNEL__", "__powerpc__", "__powerpc64__", "__BIG_ENDIAN__"})

_DEFINED = re.compile(r"\b(?:defined|IS_ENABLED|IS_BUILTIN|IS_REACHABLE)\s*\(?\s*(\w+)\s*\)?")


def _truth(name: str, own: str, others_apply: bool, kconfig: frozenset[str]) -> bool:
    if name.startswith("CONFIG_"):
        return name in kconfig
    if name == own:
        return others_apply
    return name in ARCH_DEFINED


def _holds(cond: str, own: str, others_apply: bool, kconfig: frozenset[str]) -> bool:
    expr = _DEFINED.sub(lambda m: "1" if _truth(m.group(1), own, others_apply, kconfig) else "0",
                        cond)
    expr = re.sub(r"\bCONFIG_\w+\b", lambda m: "1" if m.group(0) in kconfig else "0", expr)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    if not re.fullmatch(r"[\d\s()<>=!]*(?:(?:and|or|not)[\d\s()<>=!]*)*", expr):
        return True  # not evaluable here: assume the branch is taken
    try:
        return bool(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and and/or/not
    except (SyntaxError, TypeError, ValueError, ZeroDivisionError):
        return True


def _applies(d: Define, others_apply: bool, kconfig: frozenset[str]) -> bool:
    return all(_holds(c, d.name, others_apply, kconfig) == want for c, want in d.conds)


def select(defines: Iterable[Define], kconfig: frozenset[str] = POWERPC_HV) -> dict[str, Define]:
    """name -> the definition a powerpc KVM-HV build uses."""
    by_name: dict[str, list[Define]] = {}
    for d in sorted(defines, key=lambda d: (not d.path.startswith("arch/"), d.path, d.line)):
        by_name.setdefault(d.name, []).append(d)
    out: dict[str, Define] = {}
    for name, cands in by_name.items():
        for i, d in enumerate(cands):
            others = any(_applies(o, False, kconfig) for j, o in enumerate(cands) if j != i)
            if _applies(d, others, kconfig):
                out[name] = d
                break
    return out


def values(defines: Mapping[str, Define]) -> dict[str, str]:
    return {name: d.value for name, d in defines.items()}
