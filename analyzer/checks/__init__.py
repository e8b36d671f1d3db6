"""The check runner. Each rule file names a check (``check = "NAME"``); the check
modules of this package register themselves in :mod:`.registry` with the
schema of their params and the inputs they read, and the runner knows no
rule by name.

A check takes the rule (its data and profile) and the facts of one snapshot
and yields Findings. Checks never print and never read files: everything comes
from Facts, so the same check runs on a directory, a git revision or a patch.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..c.facts import Facts
from ..errors import ModelLimit
from ..findings import Finding, fingerprinted
from .registry import Spec, discover, validate_params

if TYPE_CHECKING:
    from .. import relocate


def in_scope(rule, path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, pat) for pat in rule.scope)


def validate(source: str, rule) -> str | None:
    """What is wrong with the rule's check or params, naming ``source`` (None: fine)."""
    spec = discover().get(rule.check)
    if spec is None:
        return f"{source}: no check named {rule.check!r}"
    return validate_params(source, spec, rule.params)


def run(rules: Iterable, facts: Facts, reuse: bool = False) -> list[Finding]:
    """Findings of ``rules`` on one snapshot. ``reuse``: keep model verdicts for the
    next snapshot of a series (costs a digest per rule, pays off from the second)."""
    specs = discover()
    found: list[Finding] = []
    for rule in rules:
        spec = specs[rule.check]
        found.extend(f for f in _run_one(rule, spec, facts, reuse) if in_scope(rule, f.path))
    return fingerprinted(replace(f, snippet=_line_text(facts, f.path, f.line)) for f in found)


_VERDICTS: dict[tuple, tuple[list[Finding], relocate.Origin]] = {}


def _run_one(rule, spec: Spec, facts: Facts, reuse: bool) -> list[Finding]:
    """Run one check; a verdict is reused while nothing its declared inputs read
    changes, at the lines its functions moved to."""
    key = _key(rule, spec, facts) if reuse and spec.reads else None
    if key is not None:
        from .. import relocate  # a series only: a plain check never imports it

        if key in _VERDICTS and (moved := relocate.move(*_VERDICTS[key], facts)) is not None:
            return moved
    try:
        out = list(spec.fn(rule, facts))
    except ModelLimit as e:
        out = [_model_limit(rule, facts, e)]
    if key is not None:
        if len(_VERDICTS) > 256:
            _VERDICTS.clear()
        _VERDICTS[key] = out, relocate.origin(facts, out)
    return out


def _key(rule, spec: Spec, facts: Facts) -> tuple:
    """What the verdict depends on: the profile, the field names the facts were read
    with, the functions reachable from the declared roles (and from the profile's
    entry points and sanitizers), from every function that indexes the table (the
    loops vcore-index checks anywhere, the votes that find the packing function) and
    from the VP helpers, the roles found, the macros, and the builds swept."""
    from ..model import packing as model
    from ..model import roles, space

    prof = rule.profile
    found = roles.find(facts, prof)
    roots = {n for role in spec.reads for n in found.functions(role)}
    roots |= {s.function for s in facts.all("subscripts") if s.function}
    roots |= set(found.vp_helpers)
    mentioned: set[str] = set()
    if "entries" in spec.reads:
        roots |= {e.function for e in prof.entries}
        mentioned |= set(prof.sanitizers)
    alloc = found.allocation
    if "allocation" in spec.reads and alloc is not None:
        roots.add(alloc.function or "")
    # vp-block-bound sweeps nr_servers only where the allocation's file has that field
    counted = alloc is not None and alloc.counted(facts.snapshot.files, prof)
    return (rule.id, repr(sorted(rule.params.items())), prof, facts.fields,
            found.pack, alloc and (alloc.size_text, alloc.path, alloc.function), counted,
            model.signature(facts, prof, roots, mentioned),
            space.kconfig_range(facts.snapshot.files, prof))  # the builds swept


def _model_limit(rule, facts: Facts, e: ModelLimit) -> Finding:
    """The model could not decide; a construct outside every tree function (a call of
    one the tree lacks) is placed at the first entry point, never out of every scope."""
    from ._common import undecided  # the model's modules load only when a model runs

    entry = next((x.function for x in rule.profile.entries if x.function in facts.functions),
                 None)
    return undecided(rule, facts, e, at=(entry, 0) if entry else None)


def _line_text(facts: Facts, path: str, line: int) -> str:
    data = facts.snapshot.files.get(path, b"")
    lines = data.split(b"\n")
    return lines[line - 1].decode("utf-8", "replace") if 0 < line <= len(lines) else ""
