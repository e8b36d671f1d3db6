"""Which ``#define`` of a macro applies: the powerpc, KVM-HV branch of the headers.

A macro may be defined several times under different ``#if``s (the 6.12
``KVM_MAX_VCPU_IDS`` has three). The model needs the one a POWER9 KVM-HV host
kernel is built with. The choice is made from the tree's own conditions:

- ``CONFIG_*`` symbols are enabled iff the profile's ``kconfig`` lists them
  (what a powernv/pseries KVM-HV kernel enables); every other ``CONFIG_*`` is off;
- ``#ifndef NAME`` around ``#define NAME`` (the generic fallback idiom) holds
  iff no other definition of NAME applies;
- any other ``defined(X)`` is an include guard or an arch symbol: include
  guards are taken as not yet defined, and the profile's ``arch_defined``
  symbols as defined;
- arch/powerpc definitions are preferred to generic ones (paths sort so);
- an ``#if`` expression that cannot be evaluated counts as true.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Define:
    """One ``#define NAME VALUE`` and the preprocessor conditions it sits under."""

    name: str
    value: str
    path: str
    line: int
    # The #if/#ifdef conditions it sits under, outermost first: (condition, must_hold).
    # ``#ifdef X`` is ("defined(X)", True); an #else branch flips the polarity.
    conds: tuple[tuple[str, bool], ...] = ()


_DEFINED = re.compile(r"\b(?:defined|IS_ENABLED|IS_BUILTIN|IS_REACHABLE)\s*\(?\s*(\w+)\s*\)?")


def _truth(name: str, own: str, others_apply: bool, kconfig: frozenset[str],
           arch: frozenset[str]) -> bool:
    if name.startswith("CONFIG_"):
        return name in kconfig
    if name == own:
        return others_apply
    return name in arch


_CONFIG = re.compile(r"\bCONFIG_\w+\b")
_NOT = re.compile(r"!(?!=)")
_EVALUABLE = re.compile(r"[\d\s()<>=!]*(?:(?:and|or|not)[\d\s()<>=!]*)*")


def holds(cond: str, own: str, others_apply: bool, kconfig: frozenset[str],
          arch: frozenset[str] = frozenset()) -> bool:
    """Does the ``#if`` condition ``cond`` hold in the configuration?"""
    expr = _DEFINED.sub(
        lambda m: "1" if _truth(m.group(1), own, others_apply, kconfig, arch) else "0", cond)
    expr = _CONFIG.sub(lambda m: "1" if m.group(0) in kconfig else "0", expr)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    return _evaluate(_NOT.sub(" not ", expr))


@functools.lru_cache(maxsize=1024)  # most conditions come down to a few expressions
def _evaluate(expr: str) -> bool:
    if not _EVALUABLE.fullmatch(expr):
        return True  # not evaluable here: assume the branch is taken
    try:
        return bool(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and and/or/not
    except (SyntaxError, TypeError, ValueError, ZeroDivisionError):
        return True


def _applies(d: Define, others_apply: bool, kconfig: frozenset[str],
             arch: frozenset[str]) -> bool:
    return all(holds(c, d.name, others_apply, kconfig, arch) == want for c, want in d.conds)


def select(defines: Iterable[Define], kconfig: frozenset[str],
           arch: frozenset[str] = frozenset()) -> dict[str, Define]:
    """name -> the definition the profile's build uses."""
    by_name: dict[str, list[Define]] = {}
    for d in sorted(defines, key=lambda d: (not d.path.startswith("arch/"), d.path, d.line)):
        by_name.setdefault(d.name, []).append(d)
    out: dict[str, Define] = {}
    for name, cands in by_name.items():
        for i, d in enumerate(cands):
            others = any(_applies(o, False, kconfig, arch)
                         for j, o in enumerate(cands) if j != i)
            if _applies(d, others, kconfig, arch):
                out[name] = d
                break
    return out


def values(defines: Mapping[str, Define]) -> dict[str, str]:
    return {name: d.value for name, d in defines.items()}


def active(conds, kconfig: frozenset[str], arch: frozenset[str] = frozenset()) -> bool:
    """Is code under these ``#if`` conditions compiled in the profile's build?
    (``#if 0`` never is; an expression that cannot be evaluated counts as true.)"""
    return all(holds(c, "", False, kconfig, arch) == want for c, want in conds)
