"""pack-table: the packing function, run from the tree over every layout a VMM
following ``id = core * stride + thread`` uses, collides or leaves the array."""

from __future__ import annotations

from collections.abc import Iterator

from .. import model
from ..facts import Facts
from ..findings import Finding
from ._common import found_roles, record, tree
from .registry import check


@check("pack_table", params={"nr_cpus": (list, False)}, reads=("pack",))
def pack_table(rule, facts: Facts) -> Iterator[Finding]:
    name = found_roles(rule, facts).pack
    if name is None:
        return
    fn = facts.functions[name]
    t = tree(rule, facts)
    pack = t.compiled(name)
    count = rule.profile.count
    found: dict[tuple[str, bool], Finding] = {}
    memo: dict[tuple[int, int], dict[int, object]] = {}
    for cfg in t.configs(tuple(rule.params.get("nr_cpus", ())) or None, layouts=True):
        if all((k, cfg.qemu_like) in found for k in ("event", "range", "collision")):
            continue
        known = memo.setdefault((cfg.nr_cpus, cfg.stride), {})
        for kind, problem, ids, packed in _problems(t, pack, cfg, count, known):
            if (kind, cfg.qemu_like) in found:
                continue
            severity, message = rule.text(
                None if cfg.qemu_like else "outside_qemu", function=name, problem=problem,
                config=cfg.text())
            ce = record(cfg, ids, **({} if packed is None else {"packed": packed}))
            found[kind, cfg.qemu_like] = Finding(
                rule.id, severity, fn.path, fn.line, 1, name, message,
                key=f"{kind}:{cfg.qemu_like}", counterexample=ce)
    yield from found.values()


def _problems(t: model.Tree, pack, cfg: model.Config, count: str, known: dict):
    """(kind, text, ids, packed) for the first problem of each kind in one layout.
    ``known``: results already computed for this NR_CPUS and stride (layouts share IDs)."""
    env = cfg.env()
    n = t.macro(count, cfg)
    seen: dict[int, int] = {}
    kinds: set[str] = set()
    for vid in model.layout(cfg.stride, cfg.threads, n, t.id_space(cfg)):
        r = known.get(vid)
        if r is None:
            r = known[vid] = pack(0, vid, env=env)
        if r.events:
            kind, text, ids, packed = "event", f"ID {vid} hits {r.events[0].macro} at line " \
                f"{r.events[0].line}", [vid], None
        elif r.value >= n:
            kind, text, ids, packed = "range", f"ID {vid} packs to {r.value}, beyond " \
                f"{count}={n}", [vid], r.value
        elif r.value in seen:
            kind, ids, packed = "collision", [seen[r.value], vid], r.value
            text = f"IDs {seen[r.value]} and {vid} both pack to {r.value}"
        else:
            seen[r.value] = vid
            continue
        if kind not in kinds:
            kinds.add(kind)
            yield kind, text, ids, packed
