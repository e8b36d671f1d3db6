"""id-bound-mismatch: an ID compared with a count as if it were the ID space, and
entry points that disagree on which IDs they accept."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..c import parse as cparse
from ..c.facts import Facts
from ..findings import Finding, Note
from ..model import paths, space
from ..model import roles as roles_mod
from . import _common
from ._common import configs, create_notes, entries, found_roles, record, refused_notes, tree
from .registry import check


@check("id_bound_mismatch", params={"nr_cpus": (list, False)},
       reads=("entries", "pack", "vp_helpers", "allocation"))
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
    swept: dict[tuple, tuple | None] = {}  # entries whose routes read the same share a sweep
    for entry in entries(rule, facts):
        if entry is create:
            continue
        # the same paths every rule follows (the profile's lookups trusted)
        routes = list(space.find(t, entry, set(roles.vp_helpers)))
        key = tuple(_common.run_signature(r) for r in routes)
        if key not in swept:  # (configuration, ID, which route, where it is refused)
            got = routes and _first_refused(rule, t, cp, routes)
            swept[key] = got and (got[0], got[1], [r is got[2] for r in routes].index(True),
                                  got[3])
        if not swept[key]:
            continue
        cfg, vid, which, (fn_name, line) = swept[key]
        route = routes[which]
        fact = facts.functions[fn_name]
        severity, message = rule.text("disagree", create=create.what, create_fn=create.function,
                                      what=entry.what, id=vid, config=cfg.text())
        made = facts.functions[cp.function]
        notes = (*create_notes(t, cp, cfg, vid),
                 Note(made.path, cp.site_line, f"{create.what} {vid} gets a VCORE in "
                      f"{cp.function}()", cp.function),
                 *refused_notes(facts, route, vid, (fn_name, line)))
        yield Finding(rule.id, severity, fact.path, line, 1, fact.name, message,
                      key=f"disagree:{entry.function}:{fn_name}",
                      counterexample=record(cfg, (vid,), entry.function,
                                            accepted_by=create.function, refused_by=fn_name),
                      notes=notes)


def _first_refused(rule, t, cp, routes):
    prof = rule.profile
    for cfg in configs(rule, t):
        extra = {prof.fields["block_count"]: t.macro(prof.count, cfg),
                 roles_mod.vp_field(t.facts, prof): 0}
        runs = [paths.runner(t, r, cfg, **extra) for r in routes]
        for vid in space.ids(t.id_space(cfg), space.values(t, cfg.nr_cpus, cfg.stride)):
            slot = cp.slot(cfg, vid)
            if not slot.admitted or slot.events:
                continue
            outs = [run(vid) for run in runs]
            if any(o.reached for o in outs):
                continue
            route, out = next((r, o) for r, o in zip(routes, outs, strict=True)
                              if o.refused_at)
            return cfg, vid, route, out.refused_at
    return None


def _count_comparisons(rule, facts: Facts) -> Iterator[Finding]:
    """Comparisons of the ID with a count, in the entry point or in a tree helper it
    hands the ID to (``static bool too_big(u32 id)``): where the check is written does
    not change what it compares. The path from the entry follows as notes."""
    t = tree(rule, facts)
    counts = count_roles(t, found_roles(rule, facts))
    seen: set[tuple] = set()
    for entry in entries(rule, facts):
        for fname, cmp, other, chain in (
                c for start, names in paths.id_holders(t, entry)
                for c in _id_comparisons(t, start, names, ())):
            fact = facts.functions.get(fname)
            last = other.split("->")[-1].split(".")[-1]
            role = counts.get(other) or counts.get(last)
            where = (fname, cmp.start_byte)
            if fact is None or where in seen or role is None:
                continue
            seen.add(where)
            text = " ".join(cparse.text(cmp).split())
            severity, message = rule.text(what=entry.what, cmp=text, count=other)
            notes = tuple(Note(facts.functions[caller].path, line,
                               f"{callee}() called with the {entry.what}", caller)
                          for caller, line, callee in chain) + (
                Note(fact.path, cmp.start_point.row + 1, f"'{text}' compares the "
                     f"{entry.what} with {other}, a count: {role}", fname),)
            yield Finding(rule.id, severity, fact.path, cmp.start_point.row + 1,
                          cmp.start_point.column + 1, fact.name, message, key=text,
                          notes=notes)


def count_roles(t, found) -> dict[str, str]:
    """The counts of this tree, by what the code does with them (name -> why): the size
    the VP block is allocated with, the bound the packing function keeps its result
    below, the size the VCORE table is declared with. The profile's ID-space macros
    are never counts."""
    out: dict[str, str] = {}
    alloc = found.allocation
    if alloc is not None:
        out[_last_name(alloc.size_text)] = f"it sizes the VP block ({alloc.path}:{alloc.line})"
    if found.pack is not None and found.pack in t.program.functions:
        for bound in _result_bounds(t, found.pack):
            out.setdefault(_last_name(bound), f"{found.pack}() keeps the packed index below it")
    table = t.facts.fields.table if t.facts.fields is not None else t.profile.fields["table"]
    for path, size in roles_mod.table_sizes(t.facts, t.profile):
        out.setdefault(size, f"it sizes {table}[] ({path})")
    for d in t.defines.values():  # another name for a count is that count
        base = _last_name(d.value)
        if base in out and d.name not in out:
            out[d.name] = f"= {base}: {out[base]}"
    for name in t.profile.id_space:
        out.pop(name, None)
    return out


def _last_name(text: str) -> str:
    """``xive->nr_servers`` -> ``nr_servers``; ``(KVM_MAX_VCPUS)`` -> ``KVM_MAX_VCPUS``."""
    return text.strip("() ").split("->")[-1].split(".")[-1].strip()


def _result_bounds(t, name: str, depth: int = 3, returned: set | None = None) -> list[str]:
    """What a function checks its returned value against: the other side of each
    ordering comparison of a value it returns (``packed >= KVM_MAX_VCPUS``), when the
    configuration alone decides that side. Through the tree's functions: the one whose
    result it returns (``return tail(packed);``, a function split in two; the value
    handed to it counts as returned) and a predicate it asks about the value
    (``if (too_big(packed))``)."""
    fn, _ = t.program.functions[name]
    results = [cparse.strip_parens(r.named_children[0])
               for r in cparse.captures("(return_statement) @r", fn).get("r", [])
               if r.named_children]
    calls = [r for r in results if r.type == "call_expression"
             and cparse.text(r.child_by_field_name("function")) in t.program.functions]
    if returned is None:
        returned = {cparse.text(r) for r in results} | {
            cparse.text(cparse.strip_parens(a)) for c in calls
            for a in c.child_by_field_name("arguments").named_children}
    out = []
    for cmp in cparse.captures("(binary_expression) @b", fn).get("b", []):
        if cmp.child_by_field_name("operator").type not in ("<", "<=", ">", ">="):
            continue
        sides = [cparse.strip_parens(cmp.child_by_field_name(s)) for s in ("left", "right")]
        for mine, other in (sides, sides[::-1]):
            if cparse.text(mine) in returned and cparse.text(other) not in returned:
                text = " ".join(cparse.text(other).split())
                if space.config_decided(t, text):
                    out.append(text)
    if depth:
        out += _bounds_in_callees(t, name, fn, depth, returned, calls)
    return out


def _bounds_in_callees(t, name: str, fn, depth: int, returned: set, calls: list) -> list[str]:
    out = []
    for call in cparse.captures("(call_expression) @c", fn).get("c", []):
        callee = cparse.text(call.child_by_field_name("function"))
        if callee == name or callee not in t.program.functions:
            continue
        params = t.facts.functions[callee].params if callee in t.facts.functions else ()
        args = [cparse.text(cparse.strip_parens(a))
                for a in call.child_by_field_name("arguments").named_children]
        handed = {params[i] for i, a in enumerate(args) if a in returned and i < len(params)}
        if call in calls:
            out += _result_bounds(t, callee, depth - 1)
        elif handed:
            out += _result_bounds(t, callee, depth - 1, handed)
    return out


def _bound_text(node, depth: int = 3) -> str:
    """What a comparison's bound is: its text, or through a local with one reaching
    assignment (``max = KVM_MAX_VCPUS; … id >= max``) that assignment's."""
    if node.type == "identifier" and depth:
        rhss = paths.reaching(node, cparse.text(node))
        if len(rhss) == 1 and rhss[0] is not None:
            return _bound_text(rhss[0], depth - 1)
    return cparse.text(node)


def _id_comparisons(t, fname: str, names: tuple[str, ...], chain: tuple, args=None):
    """(function, ``<``/``>`` comparison, the other side's text, the calls from the entry
    as (caller, line, callee)) for each ordering comparison of a name holding the ID,
    following the ID into tree functions. ``args``: the caller's argument node for each
    parameter, so that a bound handed in (``helper(id, limit)``) reads as the caller's."""
    info = t.program.functions.get(fname)
    if info is None or not names or len(chain) > 3:
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
            other = next(n for n in nodes if n not in ids)
            passed_in = (args or {}).get(cparse.text(other)) if other.type == "identifier" \
                else None
            bound = _bound_text(passed_in if passed_in is not None else other)
            # ``id > C - 1`` (``C - 1 < id``) compares with C as ``id >= C`` does
            op = cmp.child_by_field_name("operator").type
            if (op in (">", "<=")) == (ids[0] is nodes[0]):
                bound = re.sub(r"^\((.*)\)\s*-\s*1$|^(\w+)\s*-\s*1$", r"\1\2", bound)
            yield fname, cmp, bound, chain
    for call in cparse.captures("(call_expression function: (identifier) @f) @c", fn_node
                                ).get("c", []):
        callee = cparse.text(call.child_by_field_name("function"))
        if callee == fname or callee not in t.facts.functions:
            continue
        params = t.facts.functions[callee].params
        nodes = [cparse.strip_parens(a) for a in
                 call.child_by_field_name("arguments").named_children if a.type != "comment"]
        passed = tuple(params[i] for i, a in enumerate(nodes)
                       if cparse.text(a) in names and i < len(params))
        yield from _id_comparisons(t, callee, passed,
                                   (*chain, (fname, call.start_point.row + 1, callee)),
                                   dict(zip(params, nodes, strict=False)))
