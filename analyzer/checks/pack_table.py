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
    yield from _located(rule, t, name, found.values())


def _builds(rule, t) -> list:
    """The rule file's builds when it lists them; else the profile's common builds, one
    per class of the configuration space (analyzer/model/space.py): builds whose
    constants stand alike take the same branches, so the smallest speaks for them."""
    if "nr_cpus" in rule.params:
        return t.configs(tuple(rule.params["nr_cpus"]), layouts=True)
    return space.configs(t, True, tuple(rule.profile.nr_cpus_values))


def _located(rule, t, name: str, found) -> Iterator[Finding]:
    """The findings at the table entry, index or value computation the fix changes
    (:mod:`._pack_fault`), the packing function's first line a note. When the index is
    at fault, a finding whose one ID only its table entry sends out of range goes to that
    entry, and the first such ID of any layout is reported there if no finding is."""
    found = list(found)
    s = _pack_fault.shape(t, name) if found else None
    if s is None:
        yield from found
        return
    fn = t.facts.functions[name]
    n_max = max([model.SMALL_BUILD] + [f.counterexample[t.profile.nr_cpus]
                                        for f in found])
    fault = _pack_fault.fault_line(t, s, n_max)
    pack = t.compiled(name) if fault is not None else None
    entries: set[int] = set()
    for f in found:
        ids = list(f.counterexample["ids"])
        ce = f.counterexample
        cfg = t.config(ce[t.profile.nr_cpus], ce[t.profile.stride], ce["threads_per_core"])
        e = _pack_fault.entry_fault_of(t, s, pack, cfg, ids[0]) \
            if fault is not None and len(ids) == 1 else None
        if e is not None:
            entries.add(e.line)
            yield replace(f, line=e.line, notes=(_entry_note(fn, name, e.vid),))
            continue
        if fault is not None:
            line, why = fault
        else:
            line = _pack_fault.entry_line(s, cfg, ids[-1]) or fn.line
            why = "the index computation tells apart every pair of IDs the table must " \
                f"separate: the entry ID {ids[-1]} reads is where the fix goes"
        note = Note(fn.path, fn.line, f"{name}() entered with IDs {ids}; {why}", name)
        yield replace(f, line=line, notes=(note,) if line != fn.line else ())
    e = _pack_fault.entry_fault(t, s, pack, n_max) if fault is not None else None
    if e is not None and e.line not in entries:  # a faulty entry besides: a second site
        severity, message = rule.text(None, function=name, problem=e.problem,
                                      config=e.cfg.text())
        yield Finding(rule.id, severity, fn.path, e.line, 1, name, message, key="entry",
                      counterexample=record(e.cfg, (e.vid,), **(
                          {} if e.packed is None else {"packed": e.packed})),
                      notes=(_entry_note(fn, name, e.vid),))


def _entry_note(fn, name: str, vid: int) -> Note:
    return Note(fn.path, fn.line, f"{name}() entered with ID {vid}; with every table entry 0 "
                "it packs in range: the entry it reads is where the fix goes", name)
