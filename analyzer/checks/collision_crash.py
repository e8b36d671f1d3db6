"""collision-crash: two IDs the create path admits get the same VCORE slot, and
the second creation reaches a BUG_ON.

A tree whose packing function the model cannot find is checked all the same: a
BUG_ON on a taken slot whose index comes from a call the tree does not define is
an undecided path (an info), not a silent one."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..c import parse as cparse
from ..c.facts import Facts
from ..findings import Finding, Note
from ..model import paths, space
from ._common import configs, create_notes, entries, record, table_field, tree
from .registry import check


@check("collision_crash", params={"nr_cpus": (list, False)}, reads=("entries", "pack"))
def collision_crash(rule, facts: Facts) -> Iterator[Finding]:
    t = tree(rule, facts)
    for entry in entries(rule, facts):
        cp = paths.create_path(t, entry)
        crash = cp and _crash_on_collision(t, cp, table_field(rule, facts))
        if not crash:
            continue
        hit = _first_collision(rule, t, cp)
        if hit is None:
            continue
        cfg, a, b, slot = hit
        line, text = crash
        fn = facts.functions[cp.function]
        severity, message = rule.text(a=a, b=b, slot=slot, config=cfg.text(), crash=text)
        table = f"{table_field(rule, facts)}[{slot}]"
        notes = (*create_notes(t, cp, cfg, a),
                 Note(fn.path, cp.site_line, f"vCPU {a} takes {table}", fn.name),
                 *create_notes(t, cp, cfg, b),
                 Note(fn.path, cp.site_line, f"{table} is already taken by vCPU {a} when "
                      f"vCPU {b} is created", fn.name),
                 Note(fn.path, line, f"'{text}' fires for {b}", fn.name))
        yield Finding(rule.id, severity, fn.path, line, 1, fn.name, message, key=text,
                      counterexample=record(cfg, (a, b), entry.function, packed=slot),
                      notes=notes)


def _first_collision(rule, t, cp):
    for cfg in configs(rule, t):
        limit = t.id_space(cfg) or 8 * cfg.nr_cpus
        seen: dict[int, int] = {}
        for vid in space.ids(limit, space.values(t, cfg.nr_cpus, cfg.stride)):
            slot = cp.slot(cfg, vid)
            if not slot.admitted or slot.events:
                continue
            if slot.index in seen:
                return cfg, seen[slot.index], vid, slot.index
            seen[slot.index] = vid
    return None


def _crash_on_collision(t, cp, table: str) -> tuple[int, str] | None:
    """(line, text) of a BUG_ON/BUG in the create function that fires when the
    slot of the VCORE table is already taken."""
    fn_node, _ = t.program.functions[cp.function]
    body = cparse.text(fn_node).splitlines()
    var = None
    for ln in body:
        m = re.search(rf"(\w+)\s*=\s*[\w>.-]*\b{re.escape(table)}\[", ln)
        if m:
            var = m.group(1)
            break
    if var is None:
        return None
    start = fn_node.start_point.row + 1
    for i, ln in enumerate(body):
        if start + i <= cp.site_line:
            continue
        if re.search(rf"\b(?:BUG_ON|BUG|panic)\s*\(.*\b{re.escape(var)}\b", ln):
            return start + i, re.sub(r"\s*/\*.*?\*/", "", ln).strip()
    return None
