"""vp-block-bound: an admitted server number gets a VP index at or beyond the size
the VP block was allocated with, for some value of nr_servers."""

from __future__ import annotations

from collections.abc import Iterator

from ..c.facts import Facts
from ..findings import Finding, Note
from ..model import paths, space
from ..model import roles as roles_mod
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
    prof = rule.profile
    reported: set[tuple] = set()
    for entry in entries(rule, facts):
        for path in space.find(t, entry, set(roles.vp_helpers)):
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
                config=cfg.text(), count_name=prof.fields["block_count"], count=nr)
            notes = path_notes(facts, path, vid) + (
                Note(alloc.path, alloc.line, f"the VP block holds {alloc.size_text} = {size} "
                     f"VPs", alloc.function),)
            yield Finding(rule.id, severity, last.path, last.line, 1, last.function, message,
                          key=f"{entry.function}:{path.chain()}:{alloc.size_text}",
                          counterexample=record(cfg, (vid,), entry.function, vp_index=index,
                                                block_size=size,
                                                **{prof.fields["block_count"]: nr}),
                          notes=notes)


def nr_candidates(low: int, high: int, extra=()) -> list[int]:
    """The values of nr_servers tried, smallest first (analyzer/model/space.py)."""
    return space.block_counts(low, high, extra)


def _overflow(rule, t, path, size_text):
    """The first (configuration, ID, nr_servers) whose VP index the path admits beyond
    the block. Only IDs whose index could be beyond it are run through the path: the
    VP computation is evaluated alone once per configuration, highest index first."""
    prof = rule.profile
    nr_field, vp = prof.fields["block_count"], roles_mod.vp_field(t.facts, prof)
    for cfg in configs(rule, t):
        high = t.macro(prof.block_count_max, cfg)
        id_space = t.id_space(cfg)
        scored = _indices(t, path, cfg, range(id_space or 16 * cfg.nr_cpus),
                          {nr_field: high, vp: 0})
        # a block whose size does not follow nr_servers is too small from size + 1 on
        fixed = t.expr(size_text)(env=cfg.env(**{nr_field: high, vp: 0})).value
        for nr in nr_candidates(prof.block_count_min, high, (fixed, fixed + 1)):
            extra = {nr_field: nr, vp: 0}
            size = t.expr(size_text)(env=cfg.env(**extra)).value
            hits = []
            for index, vid in scored:
                if index < size:
                    break
                out = paths.run(t, path, cfg, vid, **extra)
                if not out.reached or out.result.crashed or out.result.events:
                    continue  # refused, or a crash or warning (pack-domain's business)
                if out.result.value >= size:
                    hits.append((vid, out.result.value))
            if hits:
                vid, index = min(hits)  # the smallest ID that shows it
                return cfg, vid, nr, index, size
    return None


def _indices(t, path, cfg, ids, extra) -> list[tuple[int, int]]:
    """(VP index, ID) for every ID, as the path's last call computes it, highest first."""
    last = path.hops[-1]
    target = t.compiled(last.callee)
    args = [0] * len(t.facts.functions[last.callee].params)
    env = cfg.env(**extra)
    out = []
    for vid in ids:
        args[last.arg_index] = vid
        r = target(*args, env=env)
        if not r.crashed and not r.events and r.value is not None:
            out.append((r.value, vid))
    out.sort(key=lambda p: (-p[0], p[1]))
    return out
