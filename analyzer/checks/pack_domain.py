"""pack-domain: an ID from userspace passes every check on its path and reaches the
packing function's BUG_ON (error) or WARN (warning)."""

from __future__ import annotations

from collections.abc import Iterator

from ..c.facts import Facts
from ..findings import Finding, Note
from ..model import paths, space
from ._common import configs, entries, found_roles, path_notes, record, tree
from .registry import check


@check("pack_domain", params={"nr_cpus": (list, False)}, reads=("entries", "pack"))
def pack_domain(rule, facts: Facts) -> Iterator[Finding]:
    pack = found_roles(rule, facts).pack
    if pack is None:
        return
    t = tree(rule, facts)
    seen: set[tuple] = set()
    for entry in entries(rule, facts):
        for path in space.find(t, entry, {pack}):
            last = path.primary()
            hit = _first_hit(rule, t, path, entry)
            if hit is None:
                continue
            cfg, vid, ev = hit
            if (entry.function, ev.macro, ev.line) in seen:
                continue  # the same ID reaches the same sink another way: one finding
            seen.add((entry.function, ev.macro, ev.line))
            sink = facts.functions[pack]
            severity, message = rule.text("bug" if ev.kind == "bug" else None, what=entry.what,
                                          id=vid, chain=path.chain(), macro=ev.macro,
                                          sink=f"{sink.path}:{ev.line}", config=cfg.text())
            notes = path_notes(facts, path, vid) + (
                Note(sink.path, ev.line, f"{ev.macro} fires for {vid}", pack),)
            yield Finding(rule.id, severity, last.path, last.line, 1, last.function, message,
                          key=f"{entry.function}:{path.chain()}:{ev.macro}",
                          counterexample=record(cfg, (vid,), entry.function, event=ev.macro),
                          notes=notes)


def _ids(t, entry, cfg, path, extra) -> list[int]:
    """IDs to try, smallest first (analyzer/model/space.py): creation is bounded by
    generic KVM's ID-space check; a server number handed to an interrupt device is any
    u32: every value up to 16 * NR_CPUS, then the boundaries of the comparisons on the
    path and the largest value that guards read as ``int`` keep."""
    limit = t.id_space(cfg) if entry.bounded_by_id_space else None
    return space.ids(limit, space.values(t, cfg.nr_cpus, cfg.stride),
                     paths.boundaries(t, path, cfg.env(**extra)), dense=16 * cfg.nr_cpus)


def _first_hit(rule, t, path, entry):
    for cfg in configs(rule, t):
        extra = {rule.profile.fields["block_count"]: t.macro(rule.profile.count, cfg)}
        for vid in _ids(t, entry, cfg, path, extra):
            out = paths.run(t, path, cfg, vid, **extra)
            if out.reached and out.result.events:
                ev = next((e for e in out.result.events if e.kind == "bug"),
                          out.result.events[0])
                return cfg, vid, ev
    return None
