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
            where = _fix_site(rule, t, path, entry, cfg, vid) or (last.function, last.line)
            severity, message = rule.text("bug" if ev.kind == "bug" else None, what=entry.what,
                                          id=vid, chain=path.chain(), macro=ev.macro,
                                          sink=f"{sink.path}:{ev.line}", config=cfg.text())
            notes = path_notes(facts, path, vid) + (
                Note(sink.path, ev.line, f"{ev.macro} fires for {vid}", pack),)
            yield Finding(rule.id, severity, facts.functions[where[0]].path, where[1], 1,
                          where[0], message,
                          key=f"{entry.function}:{path.chain()}:{ev.macro}",
                          counterexample=record(cfg, (vid,), entry.function, event=ev.macro),
                          notes=notes)


def _ids(t, entry, cfg, path, extra, dense=None) -> list[int]:
    """IDs to try, smallest first (analyzer/model/space.py): creation is bounded by
    generic KVM's ID-space check; a server number handed to an interrupt device is any
    u32: every value up to 16 * NR_CPUS, then the boundaries of the comparisons on the
    path and the largest value that guards read as ``int`` keep."""
    limit = t.id_space(cfg) if entry.bounded_by_id_space else None
    return space.ids(limit, space.values(t, cfg.nr_cpus, cfg.stride),
                     paths.boundaries(t, path, cfg.env(**extra)),
                     dense=16 * cfg.nr_cpus if dense is None else dense)


def _extra(rule, t, cfg) -> dict:
    return {rule.profile.fields["block_count"]: t.macro(rule.profile.count, cfg)}


def _fix_site(rule, t, path, entry, cfg, vid) -> tuple[str, int] | None:
    """The check that should have refused ``vid``: the guard on the path that refuses
    the smallest larger ID the same build tries (a bound that is too loose). None when
    no guard bounds the ID from above; the fix then goes where the ID is handed on."""
    extra = _extra(rule, t, cfg)
    for bigger in (v for v in _ids(t, entry, cfg, path, extra, dense=vid + 1) if v > vid):
        out = paths.run(t, path, cfg, bigger, **extra)
        if not out.reached:
            return out.refused_at
    return None


def _first_hit(rule, t, path, entry):
    for cfg in configs(rule, t):
        extra = _extra(rule, t, cfg)
        for vid in _ids(t, entry, cfg, path, extra):
            out = paths.run(t, path, cfg, vid, **extra)
            if out.reached and out.result.events:
                ev = next((e for e in out.result.events if e.kind == "bug"),
                          out.result.events[0])
                return cfg, vid, ev
    return None
