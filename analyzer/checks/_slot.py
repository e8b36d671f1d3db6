"""The create path as notes: what the model ran for one ID on its way to the VCORE
table (``paths.CreatePath`` is a slice of one function, not a chain of calls, so
``_common.path_notes`` does not apply)."""

from __future__ import annotations

import re

from ..findings import Note
from ..model import paths


def slot_notes(t, cp: paths.CreatePath, cfg, vid: int, index: int | None = None) -> tuple:
    """Entry, each guard passed with its truth for the ID, the assignment of the index
    that ran and its value, then the guards of the access (when ``index`` is known)."""
    fact = t.facts.functions[cp.function]
    env = dict(cfg.env(**{p: 0 for p in cp.pointers}))
    env.update({n: vid for n in cp.entry_names})
    if cp.flow.field:
        env[cp.flow.field] = vid

    def said(g, value) -> Note:
        truth = "true" if g.holds else "false"
        tail = f" for {value}" if cp.flow.mentions(g.cond) else ""
        return Note(fact.path, g.line, f"'{g.text}' is {truth}{tail}", cp.function)

    out = [Note(fact.path, fact.line, f"{cp.function}() entered with ID {vid}", cp.function)]
    for gs, rhs, line, _node in cp.assignments:
        if all(_holds(t, g, env, cp) for g in gs):
            out += [said(g, vid) for g in gs]
            out.append(Note(fact.path, line, f"{cp.index_var} = {rhs}" + (
                f" gives {index} for {vid}" if index is not None else f" runs for {vid}"),
                cp.function))
            break
    if index is not None:
        env[cp.index_var] = index
        out += [said(g, f"{cp.index_var}={index}") for g in cp.site_guards]
    return tuple(out)


def _holds(t, g, env, cp) -> bool:
    try:
        return paths.holds(t, g, dict(env), cp.flow, cp.function)
    except paths.Undecided:
        return False


def bound_guard(cp: paths.CreatePath, size: str):
    """The check on the way to the access that compares its index with the table's
    size (``core < KVM_MAX_VCORES``): when an index beyond the table passes it, that
    check should have refused it, and the fix goes there."""
    for g in reversed(cp.site_guards):
        if re.search(rf"\b{re.escape(cp.index_var)}\b", g.text) and \
                re.search(rf"\b{re.escape(size)}\b", g.text):
            return g
    return None
