"""id-bound-mismatch: an ID compared with a count as if it were the ID space, and
entry points that disagree on which IDs they accept."""

from __future__ import annotations

from collections.abc import Iterator

from ..c import parse as cparse
from ..c.facts import Facts
from ..findings import Finding
from ..model import paths
from ..model import roles as roles_mod
from ._common import configs, entries, found_roles, record, tree
from .registry import check


@check("id_bound_mismatch", params={"counts": (list, True), "nr_cpus": (list, False)},
       reads=("entries", "pack", "vp_helpers"))
def id_bound_mismatch(rule, facts: Facts) -> Iterator[Finding]:
    found = list(_count_comparisons(rule, facts))
    yield from found
    lines = {(f.path, f.line) for f in found}
    yield from (f for f in _disagreements(rule, facts) if (f.path, f.line) not in lines)


def _disagreements(rule, facts: Facts) -> Iterator[Finding]:
    """An ID vCPU creation accepts but an interrupt-device connect refuses."""
    roles = found_roles(rule, facts)
    create = next((e for e in entries(rule, facts) if e.bounded_by_id_space), None)
    if create is None or not roles.vp_helpers or roles.pack is None:
        return
    t = tree(rule, facts)
    cp = paths.create_path(t, create)
    if cp is None or t.first_macro(rule.profile.id_space) is None:
        return
    for entry in entries(rule, facts):
        if entry is create:
            continue
        routes = paths.find(t, entry.function, paths.entry_names_of(t, entry),
                            set(roles.vp_helpers), id_field=entry.id_field)
        hit = routes and _first_refused(rule, t, cp, routes)
        if not hit:
            continue
        cfg, vid, fn_name, line = hit
        fact = facts.functions[fn_name]
        severity, message = rule.text("disagree", create=create.what, create_fn=create.function,
                                      what=entry.what, id=vid, config=cfg.text())
        yield Finding(rule.id, severity, fact.path, line, 1, fact.name, message,
                      key=f"disagree:{entry.function}:{fn_name}",
                      counterexample=record(cfg, (vid,), entry.function,
                                            accepted_by=create.function, refused_by=fn_name))


def _first_refused(rule, t, cp, routes):
    prof = rule.profile
    for cfg in configs(rule, t):
        extra = {prof.fields["block_count"]: t.macro(prof.count, cfg),
                 roles_mod.vp_field(t.facts, prof): 0}
        for vid in range(t.id_space(cfg)):
            slot = cp.slot(cfg, vid)
            if not slot.admitted or slot.events:
                continue
            outs = [paths.run(t, r, cfg, vid, **extra) for r in routes]
            if any(o.reached for o in outs):
                continue
            fn_name, line = next(o.refused_at for o in outs if o.refused_at)
            return cfg, vid, fn_name, line
    return None


def _count_comparisons(rule, facts: Facts) -> Iterator[Finding]:
    """Comparisons of the ID with a count, in the entry point or in a tree helper it
    hands the ID to (``static bool too_big(u32 id)``): where the check is written does
    not change what it compares."""
    counts = {rule.profile.resolve(c) for c in rule.params["counts"]}
    t = tree(rule, facts)
    seen: set[tuple] = set()
    for entry in entries(rule, facts):
        for fname, cmp, other in (c for start, names in paths.id_holders(t, entry)
                                  for c in _id_comparisons(t, start, names, 0)):
            fact = facts.functions.get(fname)
            last = other.split("->")[-1].split(".")[-1]
            where = (fname, cmp.start_byte)
            if fact is None or where in seen or not (other in counts or last in counts):
                continue
            seen.add(where)
            text = " ".join(cparse.text(cmp).split())
            severity, message = rule.text(what=entry.what, cmp=text, count=other)
            yield Finding(rule.id, severity, fact.path, cmp.start_point.row + 1,
                          cmp.start_point.column + 1, fact.name, message, key=text)


def _bound_text(node, depth: int = 3) -> str:
    """What a comparison's bound is: its text, or through a local with one reaching
    assignment (``max = KVM_MAX_VCPUS; … id >= max``) that assignment's."""
    if node.type == "identifier" and depth:
        rhss = paths.reaching(node, cparse.text(node))
        if len(rhss) == 1 and rhss[0] is not None:
            return _bound_text(rhss[0], depth - 1)
    return cparse.text(node)


def _id_comparisons(t, fname: str, names: tuple[str, ...], depth: int):
    """(function, ``<``/``>`` comparison, the other side's text) for each ordering
    comparison of a name holding the ID, following the ID into tree functions."""
    info = t.program.functions.get(fname)
    if info is None or not names or depth > 3:
        return
    fn_node, _ = info
    flow = paths.id_flow(fn_node, names)
    names = names + tuple(n for n, rhs in flow.derived if rhs in names)
    for cmp in cparse.captures("(binary_expression) @b", fn_node).get("b", []):
        if cmp.child_by_field_name("operator").type not in ("<", "<=", ">", ">="):
            continue
        nodes = [cparse.strip_parens(cmp.child_by_field_name(s)) for s in ("left", "right")]
        ids = [n for n in nodes if cparse.text(n) in names]
        if ids and len(ids) < 2:
            yield fname, cmp, _bound_text(next(n for n in nodes if n not in ids))
    for call in cparse.captures("(call_expression function: (identifier) @f) @c", fn_node
                                ).get("c", []):
        callee = cparse.text(call.child_by_field_name("function"))
        if callee == fname or callee not in t.facts.functions:
            continue
        params = t.facts.functions[callee].params
        args = [cparse.text(cparse.strip_parens(a)) for a in
                call.child_by_field_name("arguments").named_children if a.type != "comment"]
        passed = tuple(params[i] for i, a in enumerate(args) if a in names and i < len(params))
        yield from _id_comparisons(t, callee, passed, depth + 1)
