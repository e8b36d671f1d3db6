"""`vpcheck model`: the ID → packed-slot table of one configuration.

``mapping`` computes it by running the tree's packing function; the
``render_*`` functions only format it (terminal grid, JSON, SVG).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from . import packing as model

ROW = 8  # slots per row in the grid: MAX_SMT_THREADS, one hardware core


@dataclass(frozen=True)
class Entry:
    id: int
    packed: int | None
    events: tuple[str, ...]


@dataclass(frozen=True)
class Mapping:
    config: model.Config
    vcpus: int
    size: int  # number of slots (KVM_MAX_VCPUS of this configuration)
    function: str
    path: str
    entries: tuple[Entry, ...]

    def collisions(self) -> list[dict]:
        by_slot: dict[int, list[int]] = {}
        for e in self.entries:
            if e.packed is not None:
                by_slot.setdefault(e.packed, []).append(e.id)
        return [{"packed": s, "ids": ids} for s, ids in sorted(by_slot.items()) if len(ids) > 1]

    findings: tuple[dict, ...] = ()  # what pack-table reports for this configuration

    def problems(self) -> list[dict]:
        return list(self.findings)


def mapping(t: model.Tree, function: str, config: model.Config, vcpus: int,
            rule=None) -> Mapping:
    """The table of one configuration; with ``rule`` (pack-table), what that rule
    reports for it, found by the same code as ``vpcheck check``."""
    fn = t.function(function)
    if fn is None:
        from ..errors import InputError

        raise InputError(f"{function}() is not in this tree (a tree before packing?)")
    pack = t.compiled(function)
    size = t.macro(t.profile.count, config)
    entries = []
    for vid in model.layout(config.stride, config.threads, vcpus):
        r = pack(0, vid, env=config.env())
        events = tuple(f"{ev.macro} at line {ev.line}" for ev in r.events)
        entries.append(Entry(vid, None if r.crashed else r.value, events))
    findings = ()
    if rule is not None:
        ids = [e.id for e in entries]
        findings = tuple(_finding(rule, config, function, *p)
                         for p in model.pack_problems(t, pack, config, ids))
    return Mapping(config, vcpus, size, function, fn.path, tuple(entries), findings)


def _finding(rule, config: model.Config, function: str, kind, problem, ids, packed) -> dict:
    from ..findings import Counterexample

    severity, message = rule.text(None if config.qemu_like else "outside_qemu",
                                  function=function, problem=problem, config=config.text())
    values = {} if packed is None else {"packed": packed}
    return {"rule": rule.id, "severity": severity, "message": message,
            "counterexample": Counterexample(config.as_dict(), tuple(ids), None,
                                             values).as_dict()}


def render_text(m: Mapping) -> str:
    c = m.config
    p = c.profile
    out = [f"{m.function}() from {m.path}",
           f"config: {p.nr_cpus}={c.nr_cpus} ({p.count}={m.size}), {p.stride}={c.stride}, "
           f"{c.threads} thread{'s' if c.threads > 1 else ''} per core, {m.vcpus} vCPUs", "",
           "     id  packed"]
    for e in m.entries:
        packed = "-" if e.packed is None else str(e.packed)
        out.append(f"  {e.id:5d}  {packed:>6}  {'; '.join(e.events)}".rstrip())
    cells: dict[int, list[int]] = {}
    for e in m.entries:
        if e.packed is not None:
            cells.setdefault(e.packed, []).append(e.id)
    width = max(4, len(str(max((e.id for e in m.entries), default=0))) + 2)
    out += ["", f"occupancy of slots 0..{m.size - 1} (* = collision, ! = outside the block):"]
    top = max([m.size - 1] + list(cells))
    for row in range(0, top + 1, ROW):
        line = [f"  {row:5d} |"]
        for s in range(row, min(row + ROW, top + 1)):
            ids = cells.get(s, [])
            mark = "." if not ids else (str(ids[0]) if len(ids) == 1 else f"*{ids[0]}")
            if s >= m.size and ids:
                mark = "!" + mark
            line.append(mark.rjust(width))
        out.append("".join(line))
    for c_ in m.collisions():
        out.append(f"collision: slot {c_['packed']} <- IDs {', '.join(map(str, c_['ids']))}")
    return "\n".join(out) + "\n"


def render_json(m: Mapping) -> str:
    doc = {"config": {**m.config.as_dict(), "vcpus": m.vcpus, m.config.profile.count: m.size},
           "function": m.function, "path": m.path,
           "mapping": [{"id": e.id, "packed": e.packed, "events": list(e.events)}
                       for e in m.entries],
           "collisions": m.collisions(), "findings": m.problems()}
    return json.dumps(doc, indent=2) + "\n"


def render_svg(m: Mapping) -> str:
    cell, pad = 44, 24
    cells: dict[int, list[int]] = {}
    for e in m.entries:
        if e.packed is not None:
            cells.setdefault(e.packed, []).append(e.id)
    top = max([m.size - 1] + list(cells))
    rows = top // ROW + 1
    w, h = pad * 2 + ROW * cell, pad * 3 + rows * cell
    c = m.config
    title = (f"{m.function}: {c.profile.nr_cpus}={c.nr_cpus}, stride {c.stride}, "
             f"{c.threads} threads/core, "
             f"{m.vcpus} vCPUs")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="monospace" font-size="12">',
           f'<text x="{pad}" y="{pad - 6}">{html.escape(title)}</text>']
    for s in range(top + 1):
        x, y = pad + (s % ROW) * cell, pad + (s // ROW) * cell
        ids = cells.get(s, [])
        fill = "#eeeeee" if not ids else "#8fd18f" if len(ids) == 1 else "#e06666"
        if s >= m.size:
            fill = "#f4b183" if ids else "#ffffff"
        out.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                   f'fill="{fill}" stroke="#999"><title>slot {s}: '
                   f'{", ".join(map(str, ids)) or "free"}</title></rect>')
        out.append(f'<text x="{x + 3}" y="{y + 12}" fill="#666" font-size="9">{s}</text>')
        if ids:
            out.append(f'<text x="{x + 4}" y="{y + 30}">{",".join(map(str, ids))}</text>')
    out.append(f'<text x="{pad}" y="{h - 8}">green: one ID, red: collision, '
               f'orange: outside the block, grey: free</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
