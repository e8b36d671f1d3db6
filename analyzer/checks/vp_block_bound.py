"""vp-block-bound: an admitted server number gets a VP index at or beyond the size
the VP block was allocated with, for some value of nr_servers."""

from __future__ import annotations

from collections.abc import Iterator

from .. import paths
from .. import roles as roles_mod
from ..facts import Facts
from ..findings import Finding, Note
from ._common import configs, entries, found_roles, path_notes, record, tree
from .registry import check


@check("vp_block_bound", params={"nr_cpus": (list, False)},
       reads=("entries", "pack", "vp_helpers", "allocation"))
def vp_block_bound(rule, facts: Facts) -> Iterator[Finding]:
    roles = found_roles(rule, facts)
    alloc = roles.allocation
    if not roles.vp_helpers or alloc is None:
        return
    t = tree(rule, facts)
    reported: set[tuple] = set()
    for entry in entries(rule, facts):
        for path in paths.find(t, entry.function, paths.entry_names_of(t, entry),
                               set(roles.vp_helpers), sanitizers=rule.profile.sanitizers,
                               id_field=entry.id_field):
            if (entry.function, path.chain()) in reported:
                continue
            hit = _overflow(rule, t, path, alloc.size_text)
            if hit is None:
                continue
            reported.add((entry.function, path.chain()))
            cfg, vid, nr, index, size = hit
            last = path.primary()
            severity, message = rule.text(
                what=entry.what, id=vid, chain=path.chain(), index=index, size=size,
                size_text=alloc.size_text, alloc=f"{alloc.path}:{alloc.line}",
                config=cfg.text(), nr_servers=nr)
            notes = path_notes(facts, path, vid) + (
                Note(alloc.path, alloc.line, f"the VP block holds {alloc.size_text} = {size} "
                     f"VPs", alloc.function),)
            yield Finding(rule.id, severity, last.path, last.line, 1, last.function, message,
                          key=f"{entry.function}:{path.chain()}:{alloc.size_text}",
                          counterexample=record(cfg, (vid,), entry.function, nr_servers=nr,
                                                vp_index=index, block_size=size),
                          notes=notes)


def _overflow(rule, t, path, size_text):
    prof = rule.profile
    nr_field = prof.fields["nr_servers"]
    for cfg in configs(rule, t):
        high = t.macro(prof.nr_servers_max, cfg)
        id_space = t.id_space(cfg)
        for nr in range(prof.nr_servers_min, high + 1):
            extra = {nr_field: nr, roles_mod.vp_field(t.facts, prof): 0}
            size = t.expr(size_text)(env=cfg.env(**extra)).value
            # past the ID space the packing function warns (pack-domain's business)
            for vid in range(id_space if id_space is not None else 16 * cfg.nr_cpus):
                out = paths.run(t, path, cfg, vid, **extra)
                if not out.reached or out.result.crashed or out.result.events:
                    continue
                if out.result.value >= size:
                    return cfg, vid, nr, out.result.value, size
    return None
