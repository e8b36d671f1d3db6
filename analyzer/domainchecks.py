"""Guard analysis: pack-domain, vp-block-bound, vcore-index, id-bound-mismatch.

The entry points and what their IDs mean are rule data (``[[params.entries]]``);
paths.py follows each entry's ID to the packing function or the VP helper,
and the model decides, per configuration and ID, whether the guards on the
way let it through and what happens next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import cparse, model, paths
from .checks import check
from .facts import Facts
from .findings import Finding
from .ruleset import Rule


def _ids(t: model.Tree, entry: dict, cfg: model.Config, id_space: str | None) -> range:
    """IDs to try: creation is bounded by generic KVM's ID-space check; a server
    number handed to an interrupt device is any u32 (a range past every bound)."""
    if entry.get("bounded_by_id_space") and id_space:
        return range(t.macro(id_space, cfg))
    return range(16 * cfg.nr_cpus)


def _entries(rule: Rule, facts: Facts):
    for e in rule.params["entries"]:
        if e["function"] in facts.functions:
            yield e


def _configs(rule: Rule) -> list[model.Config]:
    return [model.Config(n, s, 1) for n in rule.params.get("nr_cpus", (8, 16))
            for s in model.STRIDES]


@check("pack_domain")
def pack_domain(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    pack = p["function"]
    if pack not in facts.functions:
        return
    t = model.tree(facts)
    id_space = t.first_macro(p["id_space"])
    seen: set[tuple] = set()
    for entry in _entries(rule, facts):
        for path in paths.find(t, entry["function"], tuple(entry["names"]), {pack},
                               sanitizers=frozenset(p.get("sanitizers", ()))):
            first = path.hops[0]
            key = (entry["function"], first.line)
            if key in seen:
                continue
            hit = _first_hit(t, path, rule, entry, id_space)
            if hit is None:
                continue
            seen.add(key)
            cfg, vid, ev = hit
            alias = ""
            if ev.kind == "warn":
                alias = " (its error return then aliases a valid packed index)"
            fn = facts.functions[entry["function"]]
            yield Finding(
                rule.id, "error" if ev.kind == "bug" else rule.severity, fn.path, first.line,
                1, fn.name,
                rule.message.format(what=entry["what"], id=vid, chain=path.chain(),
                                    macro=ev.macro, line=ev.line, config=_cfg(cfg)) + alias,
                key=f"{path.chain()}:{ev.macro}",
                counterexample={"NR_CPUS": cfg.nr_cpus, "emul_smt_mode": cfg.stride,
                                "threads_per_subcore": cfg.threads_per_subcore,
                                "id": vid, "entry": entry["function"], "path": path.chain(),
                                "event": f"{ev.macro} at line {ev.line}"})


def _cfg(cfg: model.Config) -> str:
    return f"NR_CPUS={cfg.nr_cpus}, emul_smt_mode={cfg.stride}"


def _first_hit(t, path, rule, entry, id_space):
    for cfg in _configs(rule):
        extra = {"nr_servers": t.macro(rule.params["count"], cfg)}
        for vid in _ids(t, entry, cfg, id_space):
            out = paths.run(t, path, cfg, vid, **extra)
            if out.reached and out.result.events:
                ev = next((e for e in out.result.events if e.kind == "bug"),
                          out.result.events[0])
                return cfg, vid, ev
    return None


@check("vp_block_bound")
def vp_block_bound(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    helpers = {h.name for h in facts.all("vp_helpers")}
    alloc = _alloc_size(facts, p["allocator"])
    if not helpers or alloc is None:
        return
    size_text, alloc_path, alloc_line = alloc
    t = model.tree(facts)
    reported: set[tuple] = set()
    for entry in _entries(rule, facts):
        for path in paths.find(t, entry["function"], tuple(entry["names"]), helpers,
                               sanitizers=frozenset(p.get("sanitizers", ()))):
            first = path.hops[0]
            if (entry["function"], first.line) in reported:
                continue
            hit = _vp_overflow(t, path, rule, entry, size_text)
            if hit is None:
                continue
            reported.add((entry["function"], first.line))
            cfg, vid, nr, index, size = hit
            fn = facts.functions[entry["function"]]
            yield Finding(
                rule.id, rule.severity, fn.path, first.line, 1, fn.name,
                rule.message.format(what=entry["what"], id=vid, chain=path.chain(),
                                    index=index, size=size, size_text=size_text,
                                    alloc=f"{alloc_path}:{alloc_line}", config=_cfg(cfg),
                                    nr_servers=nr),
                key=f"{path.chain()}:{size_text}",
                counterexample={"NR_CPUS": cfg.nr_cpus, "emul_smt_mode": cfg.stride,
                                "nr_servers": nr, "id": vid, "vp_index": index,
                                "block_size": size, "entry": entry["function"],
                                "path": path.chain()})


def _alloc_size(facts: Facts, allocator: str) -> tuple[str, str, int] | None:
    """(SIZE, path, line) of the VP block allocation ``allocator(SIZE)``."""
    from .facts import calls

    for path in sorted(facts.files):
        ff = facts.files[path]
        if not ff.parsed or allocator.encode() not in facts.snapshot.files[path]:
            continue
        for c in calls(path, facts.snapshot.files[path]):
            if c.name == allocator and len(c.args) == 1 and c.function is not None:
                return " ".join(c.args[0].split()), path, c.line
    return None


def _vp_overflow(t, path, rule, entry, size_text):
    for cfg in _configs(rule):
        # every value userspace may give nr_servers (rule data: the setter clips to this)
        low = rule.params.get("nr_servers_min", 1)
        high = t.macro(rule.params.get("nr_servers_max", rule.params["count"]), cfg)
        for nr in range(low, high + 1):
            extra = {"nr_servers": nr, "vp_base": 0}
            size = t.expr(size_text)(env=cfg.env(**extra)).value
            # past the ID space the packing function warns (pack-domain's business)
            id_space = t.first_macro(rule.params.get("id_space", ()))
            for vid in _ids(t, {"bounded_by_id_space": True}, cfg, id_space):
                out = paths.run(t, path, cfg, vid, **extra)
                if not out.reached or out.result.crashed or out.result.events:
                    continue  # a crash or warning is pack-domain's business
                if out.result.value >= size:
                    return cfg, vid, nr, out.result.value, size
    return None


@check("vcore_index")
def vcore_index(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    if p["function"] not in facts.functions:
        return  # before packing there is nothing to convert to
    t = model.tree(facts)
    id_space = t.first_macro(p["id_space"])
    for entry in _entries(rule, facts):
        cp = model.create_path(t, entry["function"], tuple(entry["names"]))
        if cp is None:
            continue
        fn = facts.functions[entry["function"]]
        # a constant (the KVM_MAX_VCORES sentinel of a refused ID) is not an index to pack
        computed = [a for a in cp.assignments if not re.fullmatch(r"\(?[A-Z_0-9]+\)?", a[1])]
        power9 = [a for a in computed if any(
            g.text == "cpu_has_feature(CPU_FTR_ARCH_300)" and g.holds for g in a[0])]
        if any(p["function"] in a[1] for a in computed):
            unpacked = [a for a in power9 if p["function"] not in a[1]]
        else:  # no branch packs: every computed index is unpacked on POWER9 too
            unpacked = [a for a in computed if not any(
                g.text == "cpu_has_feature(CPU_FTR_ARCH_300)" and not g.holds for g in a[0])]
        for _guards, rhs, line in unpacked:
            yield Finding(rule.id, rule.severity, fn.path, line, 1, fn.name,
                          f"{cp.index_var} = {rhs} indexes vcores[] with an unpacked ID on the "
                          f"POWER9 path (use {p['function']}())", key=f"unpacked:{rhs}")
        size = p["array_size"]
        for cfg in _configs(rule):
            bad = None
            for vid in _ids(t, entry | {"bounded_by_id_space": True}, cfg, id_space):
                slot = cp.slot(cfg, vid)
                if slot.admitted and slot.index is not None and \
                        not 0 <= slot.index < t.macro(size, cfg):
                    bad = (vid, slot.index)
                    break
            if bad:
                yield Finding(
                    rule.id, rule.severity, fn.path, cp.site_line, 1, fn.name,
                    f"vcores[{cp.index_var}] is read with {cp.index_var}={bad[1]} for ID "
                    f"{bad[0]} ({_cfg(cfg)}): not bounded by {size} before the access",
                    key=f"unbounded:{cp.index_var}",
                    counterexample={"NR_CPUS": cfg.nr_cpus, "emul_smt_mode": cfg.stride,
                                    "id": bad[0], "index": bad[1]})
                break


@check("id_bound_mismatch")
def id_bound_mismatch(rule: Rule, facts: Facts) -> Iterator[Finding]:
    found = list(_count_comparisons(rule, facts))
    yield from found
    lines = {(f.path, f.line) for f in found}
    yield from (f for f in _disagreements(rule, facts) if (f.path, f.line) not in lines)


def _disagreements(rule: Rule, facts: Facts) -> Iterator[Finding]:
    """An ID vCPU creation accepts but an interrupt-device connect refuses."""
    p = rule.params
    helpers = {h.name for h in facts.all("vp_helpers")}
    create = next((e for e in _entries(rule, facts) if e.get("bounded_by_id_space")), None)
    if create is None or not helpers or p["function"] not in facts.functions:
        return
    t = model.tree(facts)
    cp = model.create_path(t, create["function"], tuple(create["names"]))
    id_space = t.first_macro(p["id_space"])
    if cp is None or id_space is None:
        return
    for entry in _entries(rule, facts):
        if entry is create:
            continue
        routes = paths.find(t, entry["function"], tuple(entry["names"]), helpers)
        if not routes:
            continue
        done = False
        for cfg in _configs(rule):
            extra = {"nr_servers": t.macro(p["count"], cfg), "vp_base": 0}
            for vid in range(t.macro(id_space, cfg)):
                slot = cp.slot(cfg, vid)
                if not slot.admitted or slot.events:
                    continue
                outs = [paths.run(t, r, cfg, vid, **extra) for r in routes]
                if any(o.reached for o in outs):
                    continue
                fn_name, line = next(o.refused_at for o in outs if o.refused_at)
                fact = facts.functions[fn_name]
                yield Finding(
                    rule.id, rule.severity, fact.path, line, 1, fact.name,
                    f"{create['what']} {vid} is accepted by {create['function']}() but the "
                    f"{entry['what']} {vid} is refused here ({_cfg(cfg)}): the guest is left "
                    "half set up", key=f"disagree:{entry['function']}:{line}",
                    counterexample={"NR_CPUS": cfg.nr_cpus, "emul_smt_mode": cfg.stride,
                                    "id": vid, "accepted_by": create["function"],
                                    "refused_by": fn_name})
                done = True
                break
            if done:
                break


def _count_comparisons(rule: Rule, facts: Facts) -> Iterator[Finding]:
    p = rule.params
    counts = set(p["counts"])
    t = model.tree(facts)
    for entry in _entries(rule, facts):
        fn_node, _ = t.program.functions[entry["function"]]
        fact = facts.functions[entry["function"]]
        for cmp in cparse.captures("(binary_expression) @b", fn_node).get("b", []):
            op = cmp.child_by_field_name("operator").type
            if op not in ("<", "<=", ">", ">="):
                continue
            left = cparse.strip_parens(cmp.child_by_field_name("left"))
            right = cparse.strip_parens(cmp.child_by_field_name("right"))
            sides = {cparse.text(left), cparse.text(right)}
            if not sides & set(entry["names"]):
                continue
            other = (sides - set(entry["names"])).pop() if len(sides) == 2 else ""
            last = other.split("->")[-1].split(".")[-1]
            if other in counts or last in counts:
                yield Finding(
                    rule.id, rule.severity, fact.path, cmp.start_point.row + 1,
                    cmp.start_point.column + 1, fact.name,
                    rule.message.format(what=entry["what"], cmp=" ".join(
                        cparse.text(cmp).split()), count=other),
                    key=cparse.text(cmp))
