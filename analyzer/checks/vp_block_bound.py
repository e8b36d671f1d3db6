"""vp-block-bound: an admitted server number gets a VP index at or beyond the size
the VP block was allocated with, for some value of nr_servers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..c import guards as guards_mod
from ..c import parse as cparse
from ..c.facts import Facts
from ..findings import Finding, Note
from ..model import paths, space
from ..model import roles as roles_mod
from ._common import configs, entries, found_roles, path_notes, record, run_signature, tree
from .registry import check


@dataclass(frozen=True)
class Sink:
    """Where the VP number is computed from the ID, and how to run an ID there: a call
    of the VP helper (``path``) or ``P->vp_base + ID`` written in the entry (``raw``)."""

    chain: str
    path: str
    line: int
    function: str
    guards: tuple  # (function, path, guard) on the way, in order
    run: object  # (cfg, extra) -> (vid -> (admitted, index | None))
    score: object  # (cfg, ids, extra) -> [index | None per ID], the computation alone
    notes: object  # vid -> tuple[Note, ...]
    signature: tuple | None = None  # _common.run_signature of the path (None: raw)


@check("vp_block_bound", params={"nr_cpus": (list, False)},
       reads=("entries", "pack", "vp_helpers", "allocation"))
def vp_block_bound(rule, facts: Facts) -> Iterator[Finding]:
    roles = found_roles(rule, facts)
    alloc = roles.allocation
    if alloc is None:
        return
    t = tree(rule, facts)
    reported: set[tuple] = set()
    swept: dict[tuple, list] = {}  # sinks whose runs read the same share a sweep

    def count_of(cfg, nr: int) -> int:
        return _count(rule, t, alloc, cfg, nr)[1]

    for entry in entries(rule, facts):
        for sink in _sinks(rule, t, entry, roles):
            if (entry.function, sink.chain) in reported:
                continue
            if sink.signature is None:
                hits = _overflow(rule, t, sink, alloc.size_text, count_of)
            else:  # paths whose guarded hops and final call agree share one sweep
                if sink.signature not in swept:
                    swept[sink.signature] = _overflow(rule, t, sink, alloc.size_text, count_of)
                hits = swept[sink.signature]
            if hits:
                reported.add((entry.function, sink.chain))
            for n, (small, (cfg, vid, nr, index, size)) in enumerate(hits):
                count_name, count = _count(rule, t, alloc, cfg, nr)
                severity, message = rule.text(
                    what=entry.what, id=vid, chain=sink.chain, index=index, size=size,
                    size_text=alloc.size_text, alloc=f"{alloc.path}:{alloc.line}",
                    config=cfg.text(), count_name=count_name, count=count)
                where = _where_the_fix_goes(rule, t, sink, alloc, small)
                notes = sink.notes(vid) + (
                    Note(alloc.path, alloc.line, f"the VP block holds {alloc.size_text} = "
                         f"{size} VPs", alloc.function),)
                key = f"{entry.function}:{sink.chain}:{alloc.size_text}"
                yield Finding(rule.id, severity, where[0], where[1], 1, where[2], message,
                              key=key + (f":{'block' if small else 'admitted'}" if n else ""),
                              counterexample=record(cfg, (vid,), entry.function,
                                                    vp_index=index, block_size=size,
                                                    **{count_name: count}),
                              notes=tuple(x for x in notes if (x.path, x.line) != where[:2]))


def _count(rule, t, alloc, cfg, nr: int) -> tuple[str, int]:
    """What the block is meant to hold: ``nr_servers`` where the tree has that field
    (the value swept), else the profile's vCPU count (a tree from before it)."""
    field = rule.profile.fields["block_count"]
    if t._once(("block-count-field", alloc), lambda: alloc.counted(t.facts.snapshot.files,
                                                                   rule.profile)):
        return field, nr
    return rule.profile.count, t.macro(rule.profile.count, cfg)


def _where_the_fix_goes(rule, t, sink: Sink, alloc, small: bool) -> tuple:
    """(path, line, function) of the finding. The allocation, when its block is
    smaller than the servers it is meant to hold and the index is one of them
    (``small``); otherwise the last check on the way that compares the ID with
    ``nr_servers`` and admitted the value (written in the entry or in a predicate
    helper); else the VP computation."""
    count_field = rule.profile.fields["block_count"]
    if small:
        return alloc.path, alloc.line, alloc.function
    for function, path, g in reversed(sink.guards):
        if count_field in g.text:
            return path, g.line, function
        inner = _predicate_comparison(t, g.cond, count_field)
        if inner is not None:
            return inner
    return sink.path, sink.line, sink.function


def _predicate_comparison(t, cond, count_field: str):
    """(path, line, function) of the comparison with ``count_field`` inside a tree
    helper the guard calls (``if (!kvmppc_xive_vcpu_id_valid(xive, cpu))``)."""
    for call in cparse.captures("(call_expression function: (identifier) @f)", cond).get(
            "f", []):
        name = cparse.text(call)
        fact = t.facts.functions.get(name)
        node = t.facts.node(name) if fact is not None else None
        if node is None:
            continue
        for cmp in cparse.captures("(binary_expression) @b", node).get("b", []):
            if cmp.child_by_field_name("operator").type in ("<", "<=", ">", ">=") and \
                    count_field in cparse.text(cmp):
                return fact.path, cmp.start_point.row + 1, name
    return None


def _sinks(rule, t, entry, roles) -> Iterator[Sink]:
    facts = t.facts
    for path in space.find(t, entry, set(roles.vp_helpers)):
        last = path.primary()
        gs = tuple((h.function, facts.functions[h.function].path, g)
                   for h in path.hops for g in h.guards)
        yield Sink(path.chain(), last.path, last.line, last.function, gs,
                   _path_runner(t, path), _helper_score(t, path.hops[-1]),
                   lambda vid, p=path: path_notes(facts, p, vid), run_signature(path))
    if not roles.vp_helpers:
        yield from _raw_sinks(rule, t, entry)


def _path_runner(t, path):
    def runs(cfg, extra):
        one = paths.runner(t, path, cfg, **extra)

        def run(vid):
            out = one(vid)
            if not out.reached or out.result.crashed or out.result.events:
                return False, None  # refused, or a crash or warning (pack-domain's business)
            return True, out.result.value
        return run
    return runs


def _raw_sinks(rule, t, entry) -> Iterator[Sink]:
    """``P->vp_base + E`` written in the entry function, E computed from the ID (a tree
    from before the VP helper): the index is E, under the guards that dominate it."""
    info = t.program.functions.get(entry.function)
    if info is None:
        return
    fn, _ = info
    fact = t.facts.functions[entry.function]
    vp = roles_mod.vp_field(t.facts, rule.profile)
    names = paths.entry_names_of(t, entry)
    flow = paths.id_flow(fn, names, entry.id_field,
                         paths.lookup_calls(t, rule.profile.sanitizers), rule.profile.succeed)
    pointers = paths._pointers(fn)
    for add in cparse.captures('(binary_expression operator: "+") @a', fn).get("a", []):
        sides = [cparse.strip_parens(add.child_by_field_name(k)) for k in ("left", "right")]
        base = [s for s in sides if s.type == "field_expression" and cparse.text(
            s.child_by_field_name("field")) == vp]
        other = [s for s in sides if s not in base]
        if len(base) != 1 or not other or not flow.carries(other[0]):
            continue
        gs = paths.relevant(guards_mod.dominating_guards(add), flow, t)
        line = add.start_point.row + 1
        yield Sink(f"{entry.function}() → {cparse.text(add)}", fact.path, line,
                   entry.function, tuple((entry.function, fact.path, g) for g in gs),
                   _per_config(_raw_runner(t, entry.function, names, flow, pointers, gs,
                                           other[0], line)),
                   _scores(_raw_runner(t, entry.function, names, flow, pointers, (),
                                       other[0], line, score=True)),
                   lambda vid, gs=gs, line=line: tuple(
                       Note(fact.path, g.line, f"'{g.text}' is "
                            f"{'true' if g.holds else 'false'} for {vid}", entry.function)
                       for g in gs) + (Note(fact.path, line, f"the VP of {vid} is computed "
                                            "here", entry.function),))


def _raw_runner(t, function, names, flow, pointers, gs, index_node, line, score=False):
    """Run an ID to ``P->vp_base + E`` (``score``: E alone, no guard applied)."""
    text = " ".join(cparse.text(index_node).split())

    def run(cfg, vid, extra):
        env = cfg.env(**{p: 0 for p in pointers}, **extra)
        env.update({n: vid for n in names})
        if flow.field:
            env[flow.field] = vid
        if not all(paths.holds(t, g, dict(env), flow, function) for g in gs):
            return False, None
        r = paths.value(t, index_node, text, dict(env), function, line)
        if r.crashed or r.events:
            return None if score else (False, None)
        return r.value if score else (True, r.value)
    return run


def nr_candidates(low: int, high: int, extra=()) -> list[int]:
    """The values of nr_servers tried, smallest first (analyzer/model/space.py)."""
    return space.block_counts(low, high, extra)


def _overflow(rule, t, sink: Sink, size_text, holds) -> list[tuple[bool, tuple]]:
    """The first (configuration, ID, nr_servers, index, size) whose VP index the path
    admits beyond the block, of each of the two defects, as (small, hit): a block
    smaller than the ``holds(cfg, nr)`` servers it is meant to hold, with an index
    below that (``small``: the allocation's fault), and an index at or beyond it (the
    check's). A tree can have both, and each is fixed in its own place. Only IDs whose
    index could be beyond the block are run through the path: the VP computation is
    evaluated alone once per configuration, highest index first."""
    found: dict[bool, tuple] = {}
    prof = rule.profile
    nr_field, vp = prof.fields["block_count"], roles_mod.vp_field(t.facts, prof)
    for cfg in configs(rule, t):
        high = t.macro(prof.block_count_max, cfg)
        id_space = t.id_space(cfg)
        ids = range(id_space or 16 * cfg.nr_cpus)
        scored = _indices(t, sink, cfg, ids, {nr_field: high, vp: 0})
        # a block whose size does not follow nr_servers is too small from size + 1 on
        fixed = t.expr(size_text)(env=cfg.env(**{nr_field: high, vp: 0})).value
        for nr in nr_candidates(prof.block_count_min, high, (fixed, fixed + 1)):
            extra = {nr_field: nr, vp: 0}
            size = t.expr(size_text)(env=cfg.env(**extra)).value
            hits: dict[bool, list] = {}
            count = holds(cfg, nr)
            run = sink.run(cfg, extra)
            for index, vid in scored:
                if index < size:
                    break
                admitted, value = run(vid)
                if admitted and value is not None and value >= size:
                    hits.setdefault(size < count and value < count, []).append((vid, value))
            for small, got in sorted(hits.items(), key=lambda kv: min(kv[1])):
                vid, index = min(got)  # the smallest ID that shows it
                found.setdefault(small, (cfg, vid, nr, index, size))
            if len(found) == 2:
                return list(found.items())
    return list(found.items())  # in the order found: the first keeps the plain key


def _indices(t, sink: Sink, cfg, ids, extra) -> list[tuple[int, int]]:
    """(VP index, ID) for every ID, highest first, as the VP computation alone gives it
    (no guard applied): only IDs at or beyond the block need the whole path."""
    out = [(v, vid) for vid, v in zip(ids, sink.score(cfg, ids, extra), strict=True)
           if v is not None]
    out.sort(key=lambda p: (-p[0], p[1]))
    return out


def _helper_score(t, hop):
    target = t.compiled(hop.callee)
    n = len(t.facts.functions[hop.callee].params)

    def score(cfg, ids, extra):  # every ID in one call of the compiled helper
        return [None if r.crashed or r.events else r.value
                for r in target.over([0] * n, hop.arg_index, ids, cfg.env(**extra))]
    return score


def _per_config(one):
    """A per-ID run as a run of one configuration."""
    return lambda cfg, extra: lambda vid: one(cfg, vid, extra)


def _scores(one):
    """A per-ID score run over a list of IDs."""
    return lambda cfg, ids, extra: [one(cfg, vid, extra) for vid in ids]
