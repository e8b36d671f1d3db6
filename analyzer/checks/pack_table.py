"""pack-table: the packing function, run from the tree over every layout a VMM
following ``id = core * stride + thread`` uses, collides or leaves the array."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from ..c.facts import Facts
from ..findings import Finding, Note
from ..model import packing as model
from ..model import space
from . import _pack_fault
from ._common import found_roles, record, tree
from .registry import check


@check("pack_table", params={"nr_cpus": (list, False)}, reads=("pack",))
def pack_table(rule, facts: Facts) -> Iterator[Finding]:
    name = found_roles(rule, facts).pack
    if name is None:
        return
    fn = facts.functions[name]
    t = tree(rule, facts)
    pack = t.compiled(name)
    count = rule.profile.count
    found: dict[tuple[str, bool], Finding] = {}
    memo: dict[tuple[int, int], dict[int, object]] = {}
    for cfg in _builds(rule, t):
        if all((k, cfg.qemu_like) in found for k in ("event", "range", "collision")):
            continue
        known = memo.setdefault((cfg.nr_cpus, cfg.stride), {})
        layout = model.layout(cfg.stride, cfg.threads, t.macro(count, cfg), t.id_space(cfg))
        for kind, problem, ids, packed in model.pack_problems(t, pack, cfg, layout, known):
            if (kind, cfg.qemu_like) in found:
                continue
            severity, message = rule.text(
                None if cfg.qemu_like else "outside_qemu", function=name, problem=problem,
                config=cfg.text())
            ce = record(cfg, ids, **({} if packed is None else {"packed": packed}))
            found[kind, cfg.qemu_like] = Finding(
                rule.id, severity, fn.path, fn.line, 1, name, message,
                key=f"{kind}:{cfg.qemu_like}", counterexample=ce)
    yield from _located(t, name, found.values())


def _builds(rule, t) -> list:
    """The rule file's builds when it lists them; else the profile's common builds, one
    per class of the configuration space (analyzer/model/space.py): builds whose
    constants stand alike take the same branches, so the smallest speaks for them."""
    if "nr_cpus" in rule.params:
        return t.configs(tuple(rule.params["nr_cpus"]), layouts=True)
    return space.configs(t, True, tuple(rule.profile.nr_cpus_values))


def _located(t, name: str, found) -> Iterator[Finding]:
    """The findings at the table entry, index or value computation the fix changes
    (:mod:`._pack_fault`), the packing function's first line a note."""
    found = list(found)
    s = _pack_fault.shape(t, name) if found else None
    if s is None:
        yield from found
        return
    fn = t.facts.functions[name]
    n_max = max([model.SMALL_BUILD] + [f.counterexample[t.profile.nr_cpus]
                                        for f in found])
    fault = _pack_fault.fault_line(t, s, n_max)
    for f in found:
        ids = list(f.counterexample["ids"])
        if fault is not None:
            line, why = fault
        else:
            ce = f.counterexample
            cfg = model.Config(ce[t.profile.nr_cpus], ce[t.profile.stride],
                               ce["threads_per_core"], t.profile)
            line = _pack_fault.entry_line(s, cfg, ids[-1]) or fn.line
            why = "the index computation tells apart every pair of IDs the table must " \
                f"separate: the entry ID {ids[-1]} reads is where the fix goes"
        note = Note(fn.path, fn.line, f"{name}() entered with IDs {ids}; {why}", name)
        yield replace(f, line=line, notes=(note,) if line != fn.line else ())
