"""vcore-index: the VCORE table indexed with an unpacked ID on the modelled host's
path, or read before its bound check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from ..c import parse as cparse
from ..c.facts import Facts
from ..errors import ModelLimit
from ..findings import Finding, Note
from ..model import paths, roles
from ._common import configs, entries, found_roles, record, table_field, tree, undecided
from ._slot import bound_guard, slot_notes
from .registry import check


@check("vcore_index", params={"nr_cpus": (list, False)}, reads=("entries", "pack"))
def vcore_index(rule, facts: Facts) -> Iterator[Finding]:
    pack = found_roles(rule, facts).pack
    t = tree(rule, facts)
    table = table_field(rule, facts)
    for entry in entries(rule, facts):
        cp = paths.create_path(t, entry)
        if cp is None:
            continue
        fn = facts.functions[entry.function]
        # before packing (no packing function) there is nothing to convert to
        for guards_, rhs, line, _node in _unpacked(t, cp, pack) if pack else ():
            severity, message = rule.text("unpacked", var=cp.index_var, rhs=rhs, table=table,
                                          function=pack)
            # the way there: the branches taken, then the table access it feeds
            notes = tuple(Note(fn.path, g.line, f"'{g.text}' is "
                               f"{'true' if g.holds else 'false'} on the way",
                               fn.name) for g in guards_) + (
                Note(fn.path, cp.site_line, f"{table}[{cp.index_var}] indexed with it",
                     fn.name),)
            yield Finding(rule.id, severity, fn.path, line, 1, fn.name, message,
                          key=f"unpacked:{rhs}", notes=notes)
        at_guard: set[int] = set()  # one finding per check that let the index through
        for site in paths.table_sites(t, entry.function):
            try:
                found = list(_site(rule, t, entry, site, fn))
            except ModelLimit as e:  # this access undecided; the others still checked
                yield undecided(rule, facts, e, at=(entry.function, site.line))
                continue
            for f in found:
                if f.line not in at_guard:
                    yield f
                if f.line != site.line:
                    at_guard.add(f.line)
    yield from _loops(rule, t, facts)


def _site(rule, t, entry, site, fn) -> Iterator[Finding]:
    """One access of the table on the entry's path: bounded for every admitted ID?"""
    cp = paths.create_path(t, entry, site)
    bad = cp and _unbounded(rule, t, cp)
    if not bad:
        return
    cfg, vid, index, host = bad
    access = "written" if site.is_write else "read"
    config = cfg.text() + "".join(f", {k} false" for k in host)
    severity, message = rule.text(
        "unbounded", var=cp.index_var, index=index, id=vid, config=config,
        table=table_field(rule, t.facts), size=rule.profile.table_size, access=access)
    # where the fix goes: the bound check the index passed, else the access itself
    guard = bound_guard(cp, rule.profile.table_size)
    line = guard.line if guard is not None else cp.site_line
    notes = slot_notes(t, cp, cfg, vid, index)
    if guard is not None:
        notes = tuple(n for n in notes if n.line != line) + (Note(
            fn.path, cp.site_line, f"{table_field(rule, t.facts)}[{cp.index_var}] {access} "
            f"with {cp.index_var}={index}", fn.name),)
    yield Finding(rule.id, severity, fn.path, line, 1, fn.name, message,
                  key=f"unbounded:{cp.index_var}:{access}",
                  counterexample=record(cfg, (vid,), entry.function, index=index,
                                        **({"host": {k: 0 for k in host}} if host else {})),
                  notes=notes)


def _loops(rule, t, facts: Facts) -> Iterator[Finding]:
    """``for (i = 0; i < BOUND; i++) … TABLE[i]`` with BOUND beyond the table's size
    in some configuration."""
    size_name = rule.profile.table_size
    for sub in facts.all("subscripts"):
        loop = paths.loop_bound(t, sub)
        if loop is None:
            continue
        for cfg in configs(rule, t):
            try:
                bound = t.expr(loop.bound)(env=cfg.env()).value
            except paths.EVAL_ERRORS:
                break
            size = t.macro(size_name, cfg)
            top = bound if loop.inclusive else bound - 1
            if top >= size:
                table = table_field(rule, facts)
                severity, message = rule.text(
                    "loop", var=loop.var, bound=loop.bound, top=top, size=size_name,
                    size_value=size, config=cfg.text(), table=table)
                yield Finding(rule.id, severity, sub.path, sub.line, sub.column, sub.function,
                              message, key=f"loop:{loop.var}:{loop.bound}",
                              counterexample=record(cfg, (), None, index=top, size=size),
                              notes=_loop_notes(facts, loop, sub, top, bound, size, table))
                break


def _loop_notes(facts: Facts, loop, sub, top: int, bound: int, size: int,
                table: str) -> tuple[Note, ...]:
    """The loop's last iteration as a path: its condition with the values, each call
    that hands the variable on, the access past the table's end."""
    op = "<=" if loop.inclusive else "<"
    notes = [Note(facts.functions[loop.function].path, loop.line,
                  f"'{loop.var} {op} {loop.bound}' is true for {loop.var}={top} "
                  f"({loop.bound} = {bound})", loop.function)]
    notes += [Note(facts.functions[fn].path, line, f"{callee}() called with {top}", fn)
              for fn, line, callee in loop.hops]
    notes.append(Note(sub.path, sub.line, f"{table}[{top}] accessed: the table has {size} "
                      "entries", sub.function))
    return tuple(notes)


def _unpacked(t, cp: paths.CreatePath, pack: str):
    """Assignments of the index that the modelled host runs and that do not pack.
    A constant (the sentinel of a refused ID) is not an index to pack."""
    cfg = t.configs()[0]
    computed = [a for a in cp.assignments if not re.fullmatch(r"\(?[A-Z_0-9]+\)?", a[1])]
    def packs_(text: str) -> bool:
        """Does ``text`` call the packing function (or a wrapper of it)?"""
        return any(name in t.facts.functions and roles.unwrap(t.facts, name) == pack
                   for name in re.findall(r"\b(\w+)\s*\(", text))

    def config_guards(a):
        return [g for g in a[0] if not cp.flow.mentions(g.cond)]

    def on_path(a):
        env = cfg.env()
        return all(paths.holds(t, g, dict(env), cp.flow, cp.function)
                   for g in config_guards(a))
    if any(packs_(_through_locals(a[3])) for a in computed):
        return [a for a in computed if config_guards(a) and on_path(a) and
                not packs_(_through_locals(a[3]))]
    return [a for a in computed if on_path(a)]


def _through_locals(rhs, depth: int = 4) -> str:
    """The text of ``rhs`` and of the assignments that reach the locals it reads, so that
    ``t = pack(…); core = t;`` counts as packing."""
    out = [cparse.text(rhs)]
    if depth:
        for ident in cparse.captures("(identifier) @i", rhs).get("i", []):
            out += [_through_locals(r, depth - 1)
                    for r in paths.reaching(ident, cparse.text(ident)) if r is not None]
    return " ".join(out)


def _unbounded(rule, t, cp: paths.CreatePath):
    """(configuration, ID, index, CPU features turned off) of an admitted ID whose
    index is outside the table. The profile's host first; then the host without its
    CPU features (a POWER8 host takes the ``else`` of ``cpu_has_feature(…)``: it does
    not pack, but its accesses must be bounded all the same). An ID whose path the
    model cannot run is skipped, not a verdict: a counterexample among the others is
    an executed one; without one, the verdict is undecided."""
    undecided: Exception | None = None  # an ID the model cannot run: raised if no other
    for host in _hosts(rule.profile):
        # a profile of its own (profiles compare by name and source: caches key on them)
        prof = replace(rule.profile, source=rule.profile.source + "".join(
            f" without {k}" for k in host), env=tuple(
            (k, 0 if k.partition(":")[2] in host else v) for k, v in rule.profile.env))
        for cfg in configs(rule, t):
            if host and cfg.stride != prof.strides[0]:
                continue  # the guest's stride is emulated on the profile's host only
            if host:  # the profile's own host: the sweep's object (caches find it by identity)
                cfg = replace(cfg, profile=prof)
            size = t.macro(rule.profile.table_size, cfg)
            for vid in range(t.id_space(cfg) or 16 * cfg.nr_cpus):
                try:
                    slot = cp.slot(cfg, vid)
                except ModelLimit as e:  # e.g. a loop in the packing, or no packing:
                    undecided = undecided or e  # IDs on another branch still run
                    continue
                if slot.admitted and slot.index is not None and not 0 <= slot.index < size:
                    return cfg, vid, slot.index, host
    if undecided is not None:
        raise undecided
    return None


def _hosts(prof) -> tuple[tuple[str, ...], ...]:
    """The modelled host, then the host where the profile's variant guard is false: the
    runtime calls it makes (``f(A)``, set in ``[config.env]`` as ``"f:A"``) return 0."""
    calls = {f"{f}:{a}" for f, a in re.findall(r"(\w+)\s*\(\s*(\w+)\s*\)",
                                              prof.variant_guard)}
    features = tuple(k.partition(":")[2] for k, v in prof.env if k in calls and v)
    return ((), features) if features else ((),)
