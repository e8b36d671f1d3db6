"""Model-backed checks: pack-table, collision-crash, capacity.

Each runs the tree's own packing function and create path (see model.py)
over the configuration sweep and reports the first counterexample it finds
for each kind of failure, with the configuration and the IDs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import model
from .checks import check
from .facts import Facts
from .findings import Finding
from .ruleset import Rule


def _tree(facts: Facts) -> model.Tree:
    return model.tree(facts)


def _sweep(rule: Rule) -> list[model.Config]:
    p = rule.params
    return list(model.configs(tuple(p.get("nr_cpus", model.NR_CPUS_SWEEP)),
                              tuple(p.get("strides", model.STRIDES)),
                              tuple(p.get("nr_cpus_real", (model.NR_CPUS_REAL,)))))


def _cfg_text(cfg: model.Config) -> str:
    return (f"NR_CPUS={cfg.nr_cpus}, emul_smt_mode={cfg.stride}, {cfg.threads} thread"
            f"{'s' if cfg.threads > 1 else ''} per core")


def _event_text(ev) -> str:
    return f"{ev.macro} at line {ev.line}"


@check("pack_table")
def pack_table(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    fn = facts.functions.get(p["function"])
    if fn is None:
        return
    t = _tree(facts)
    pack = t.compiled(fn.name)
    id_space = t.first_macro(p["id_space"])
    found: dict[tuple[str, bool], Finding] = {}
    for cfg in _sweep(rule):
        if all((k, cfg.qemu_like) in found for k in ("event", "range", "collision")):
            continue
        env = cfg.env()
        n = t.macro(p["count"], cfg)
        size = t.macro(p["array_size"], cfg)
        limit = t.macro(id_space, cfg) if id_space else None
        seen: dict[int, int] = {}
        for vid in model.layout(cfg.stride, cfg.threads, n, limit):
            r = pack(0, vid, env=env)
            kind, msg, ids = None, "", [vid]
            if r.events:
                kind = "event"
                msg = f"ID {vid} hits {_event_text(r.events[0])}"
            elif r.value >= size:
                kind = "range"
                msg = f"ID {vid} packs to {r.value}, beyond {p['array_size']}={size}"
            elif r.value in seen:
                kind, ids = "collision", [seen[r.value], vid]
                msg = f"IDs {seen[r.value]} and {vid} both pack to {r.value}"
            else:
                seen[r.value] = vid
                continue
            key = (kind, cfg.qemu_like)
            if key in found:
                continue
            extra = "" if cfg.qemu_like else " (a layout outside QEMU's constraints)"
            ce = {**cfg.as_dict(), "ids": ids}
            if kind != "event":
                ce["packed"] = r.value
            found[key] = Finding(
                rule.id, rule.severity if cfg.qemu_like else "info", fn.path, fn.line, 1,
                fn.name, rule.message.format(function=fn.name, problem=msg,
                                             config=_cfg_text(cfg)) + extra,
                key=f"{kind}:{cfg.qemu_like}", counterexample=ce)
    yield from found.values()


def _crash_on_collision(facts: Facts, create, t: model.Tree) -> tuple[int, str] | None:
    """(line, text) of a BUG_ON/BUG in the create function that fires when the
    vcores[] slot is already taken."""
    from . import cparse

    fn_node, data = t.program.functions[create.function]
    body = cparse.text(fn_node).splitlines()
    var = None
    for ln in body:
        m = re.search(r"(\w+)\s*=\s*[\w>.-]*vcores\[", ln)
        if m:
            var = m.group(1)
            break
    if var is None:
        return None
    start = fn_node.start_point.row + 1
    for i, ln in enumerate(body):
        if start + i <= create.site_line:
            continue
        if re.search(rf"\b(?:BUG_ON|BUG|panic)\s*\(.*\b{re.escape(var)}\b", ln):
            return start + i, re.sub(r"\s*/\*.*?\*/", "", ln).strip()
    return None


@check("collision_crash")
def collision_crash(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    if p["function"] not in facts.functions or p["create_function"] not in facts.functions:
        return
    t = _tree(facts)
    path = model.create_path(t, p["create_function"], tuple(p["entry_names"]))
    if path is None:
        return
    crash = _crash_on_collision(facts, path, t)
    if crash is None:
        return
    line, text = crash
    id_space = t.first_macro(p["id_space"])
    for cfg in _sweep(rule):
        if cfg.threads != 1:
            continue  # any ID will do here: the layout does not matter
        limit = t.macro(id_space, cfg) if id_space else 8 * cfg.nr_cpus
        seen: dict[int, int] = {}
        for vid in range(limit):
            slot = path.slot(cfg, vid)
            if not slot.admitted or slot.events:
                continue
            if slot.index in seen:
                fn = facts.functions[p["create_function"]]
                ce = {"NR_CPUS": cfg.nr_cpus, "threads_per_subcore": cfg.threads_per_subcore,
                      "emul_smt_mode": cfg.stride, "ids": [seen[slot.index], vid],
                      "packed": slot.index}
                yield Finding(rule.id, rule.severity, fn.path, line, 1, fn.name,
                              rule.message.format(a=seen[slot.index], b=vid, slot=slot.index,
                                                  config=f"NR_CPUS={cfg.nr_cpus}, "
                                                         f"emul_smt_mode={cfg.stride}",
                                                  crash=text),
                              key=text, counterexample=ce)
                return
            seen[slot.index] = vid


@check("capacity")
def capacity(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    if p["create_function"] not in facts.functions:
        return
    t = _tree(facts)
    path = model.create_path(t, p["create_function"], tuple(p["entry_names"]))
    if path is None:
        return
    id_space = t.first_macro(p["id_space"])
    size_macro = p["array_size"]
    fn = facts.functions[p["create_function"]]
    found: dict[tuple, Finding] = {}
    for cfg in _sweep(rule):
        if not cfg.qemu_like:
            continue
        n = t.macro(p["count"], cfg)
        size = t.macro(size_macro, cfg)
        limit = t.macro(id_space, cfg) if id_space else None
        used: set[int] = set()
        created, why, where = 0, None, None
        for vid in model.layout(cfg.stride, cfg.threads, n):
            if limit is not None and vid >= limit:
                d = t.defines[id_space]
                why = f"ID {vid} is refused by {id_space} = {limit} ({d.value})"
                where = (d.path, d.line, None)
                break
            slot = path.slot(cfg, vid)
            if slot.events:
                why = f"ID {vid} hits {_event_text(slot.events[0])}"
                where = (fn.path, slot.events[0].line, fn.name)
                break
            if not slot.admitted:
                why = f"ID {vid} is turned away" + (
                    f" by the check at line {slot.refused_by}" if slot.refused_by else "")
                where = (fn.path, slot.refused_by or fn.line, fn.name)
                break
            if slot.index >= size or slot.index in used:
                why = f"ID {vid} gets VCORE slot {slot.index}, " + (
                    "already taken" if slot.index in used else f"beyond {size_macro}={size}")
                where = (fn.path, path.site_line, fn.name)
                break
            used.add(slot.index)
            created += 1
        if created >= n or where is None:
            continue
        key = where
        if key in found and found[key].counterexample["vcpus"] <= created:
            continue
        ce = {**cfg.as_dict(), "vcpus": created, "KVM_MAX_VCPUS": n, "first_refused": vid}
        found[key] = Finding(
            rule.id, rule.severity, where[0], where[1], 1, where[2],
            rule.message.format(created=created, max=n, config=_cfg_text(cfg), why=why),
            key=f"{where[0]}:{why.split(' ', 2)[-1]}", counterexample=ce)
    yield from found.values()
