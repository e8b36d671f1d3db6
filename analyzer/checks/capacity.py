"""capacity: for some configuration a VMM following the layout creates fewer than
the profile's count of vCPUs; reported at the check or definition that stops it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..c import parse as cparse
from ..c.facts import Facts
from ..errors import ModelLimit
from ..findings import Finding, Note, without_lines
from ..model import packing as model
from ..model import paths, space
from ._common import configs, entries, record, tree, undecided
from ._slot import bound_guard, slot_notes
from .registry import check


@check("capacity", params={"nr_cpus": (list, False)}, reads=("entries", "pack"))
def capacity(rule, facts: Facts) -> Iterator[Finding]:
    t = tree(rule, facts)
    for entry in entries(rule, facts):
        if not entry.bounded_by_id_space:
            continue
        cp = paths.create_path(t, entry)
        if cp is None:
            continue
        try:
            yield from _entry(rule, t, cp, entry, facts)
        except ModelLimit as e:  # located at the access when the construct is not a function
            yield undecided(rule, facts, e, at=(cp.function, cp.site_line))


def _entry(rule, t: model.Tree, cp: paths.CreatePath, entry, facts: Facts) -> Iterator[Finding]:
    """The entry's shortfall: common builds first, then (if clean) the other builds."""
    found: dict[tuple, Finding] = {}
    clean: set = set()  # builds a sweep found clean: the next sweep skips them
    # A shortfall in one of the profile's common builds is the rule's finding; one
    # only in other builds the Kconfig allows (when the common ones are clean) is the
    # documented 'uncommon_build' case.
    for variant, cfgs in _sweeps(rule, t):
        if found:  # the other builds only speak when the common ones are clean
            break
        for cfg in cfgs:
            if not cfg.qemu_like or cfg in clean:
                continue
            short = _shortfall(t, cp, cfg, facts)
            if short is None:
                clean.add(cfg)
                continue
            created, n, vid, why, where, notes = short
            if where in found and found[where].counterexample["values"]["vcpus"] <= created:
                continue
            severity, message = rule.text(variant, created=created, max=n,
                                          config=cfg.text(), why=why)
            found[where] = Finding(
                rule.id, severity, where[0], where[1], 1, where[2], message,
                key=without_lines(f"{where[0]}:{where[2]}:{why.split(' ', 2)[-1]}"),
                counterexample=record(cfg, (vid,), entry.function, vcpus=created, count=n),
                notes=tuple(x for x in notes if (x.path, x.line) != where[:2]))
    yield from found.values()


def _sweeps(rule, t: model.Tree):
    """(variant, configurations): the rule file's builds when it lists them; else the
    profile's common builds, then the rest of the tree's configuration space."""
    if "nr_cpus" in rule.params:
        return ((None, configs(rule, t, layouts=True)),)
    common = tuple(rule.profile.nr_cpus_values)
    return ((None, space.configs(t, True, common)),
            ("uncommon_build", space.configs(t, True)))


def _shortfall(t: model.Tree, cp: paths.CreatePath, cfg: model.Config, facts: Facts):
    """(created, count, first refused ID, why, where, notes) when the layout falls short;
    the notes are the create path the refused ID took (entry, guards, index)."""
    prof = t.profile
    n = t.macro(prof.count, cfg)
    size = t.macro(prof.table_size, cfg)
    limit = t.id_space(cfg)
    fn = facts.functions[cp.function]
    used: set[int] = set()
    for vid in model.layout(cfg.stride, cfg.threads, n):
        if limit is not None and vid >= limit:
            name = t.first_macro(prof.id_space)
            d = t.defines[name]
            return len(used), n, vid, f"ID {vid} is refused by {name} = {limit} ({d.value})", \
                (d.path, d.line, None), _id_space_notes(t, cfg, name, vid, cp.function)
        slot = cp.slot(cfg, vid)
        if slot.events:
            ev = slot.events[0]
            at = facts.functions.get(ev.function, fn)  # the function the event fired in
            return len(used), n, vid, f"ID {vid} hits {ev.macro} at {at.path}:{ev.line}", \
                (at.path, ev.line, at.name), slot_notes(t, cp, cfg, vid) + (
                    Note(at.path, ev.line, f"{ev.macro} fires for {vid}", at.name),)
        if not slot.admitted:
            why = f"ID {vid} is turned away" + (
                f" by the check at line {slot.refused_by}" if slot.refused_by else "")
            return len(used), n, vid, why, (fn.path, slot.refused_by or fn.line, fn.name), \
                slot_notes(t, cp, cfg, vid, slot.index)
        if slot.index >= size or slot.index in used:
            why = f"ID {vid} gets VCORE slot {slot.index}, " + (
                "already taken" if slot.index in used else f"beyond {prof.table_size}={size}")
            # beyond the table: the bound check it passed should have refused it
            guard = bound_guard(cp, prof.table_size) if slot.index >= size else None
            line = guard.line if guard is not None else cp.site_line
            return len(used), n, vid, why, (fn.path, line, fn.name), \
                slot_notes(t, cp, cfg, vid, slot.index) + (
                    Note(fn.path, cp.site_line, f"VCORE slot {slot.index} used for {vid}",
                         fn.name),)
        used.add(slot.index)
    return None


def _id_space_notes(t: model.Tree, cfg: model.Config, name: str, vid: int,
                    entry: str) -> tuple[Note, ...]:
    """Why ``vid`` never gets to the entry: generic KVM's comparison with the ID-space
    macro (the first ``if`` that compares with it outside the profile's entry points),
    then the macros that size it, with their values in this build."""
    out = []
    skip = {e.function for e in t.profile.entries}
    for fn_name, line, text in _comparisons_with(t.facts, name):
        if fn_name not in skip:
            out.append(Note(t.facts.functions[fn_name].path, line, f"'{text}' is true for "
                            f"{vid}: {entry}() is never called", fn_name))
            break
    for sub in dict.fromkeys(re.findall(r"\b[A-Z_][A-Z0-9_]+\b", t.defines[name].value)):
        d = t.defines.get(sub)
        if d is None:
            continue
        try:
            value = t.macro(sub, cfg)
        except paths.EVAL_ERRORS:
            continue
        out.append(Note(d.path, d.line, f"{sub} is {value} with {cfg.text()}", None))
    return tuple(out)


def _comparisons_with(facts: Facts, name: str) -> Iterator[tuple[str, int, str]]:
    """(function, line, condition) of each ``if`` whose condition compares with ``name``."""
    for fn in facts.functions.values():
        data = facts.snapshot.files[fn.path]
        if name.encode() not in data[fn.start_byte:fn.end_byte]:
            continue
        root = cparse.parse(data, facts.files[fn.path].blob).root_node
        node = root.descendant_for_byte_range(fn.start_byte, fn.end_byte)
        for cond in cparse.captures("(if_statement condition: (_) @c)", node).get("c", []):
            text = " ".join(cparse.text(cparse.strip_parens(cond)).split())
            if re.search(rf"[<>]=?\s*\(?{re.escape(name)}\b", text):
                yield fn.name, cond.start_point[0] + 1, text
