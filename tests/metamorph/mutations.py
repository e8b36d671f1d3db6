"""Injected bugs of every sink kind, at every site of the real code where they apply.

Each operator finds its sites by role (the VP helper returns ``P->vp_base + …``,
the allocation is the call assigned to ``->vp_base``, the packing function has
the table), rewrites one, and says which rule must report it and where:

| operator | rule | expected line |
|---|---|---|
| raw-vp-helper, -macro, -renamed-field | xive-raw-vp-base | the raw ``vp_base +`` / macro use |
| table-entry, table-swap | pack-table | the line of the changed table entry |
| divisor | pack-table | the line of the changed ``/`` or ``%`` |
| collision-bug-on | collision-crash | the inserted ``BUG_ON`` |
| vp-block-minus-one, vp-block-cap16 | vp-block-bound | the allocation |
| vcores-store | vcore-index | the inserted store |
| vcores-loop-bound | vcore-index | the ``vcores[i]`` access in the loop |
| guard-weaken | any guard rule | the weakened comparison (the check that should have refused) |
| guard-equivalent | (none: ``id >= B`` as ``id > B - 1``, B >= 1) | findings unchanged |
| drop-stride | capacity, id-bound-mismatch | the guard |

``verify`` re-derives the reported counterexample with ``derive`` (the mutated
source run with tests/creference.py's C arithmetic: the packing function, the
create function up to a ``vcores[]`` store, the macros) and returns why it does
not hold, or None. Mutants that ``derive`` shows harmless are ``equivalent``:
findings must not change. So is a weakened guard whose one more admitted ID
hits a BUG/WARN that smaller IDs the guard admits already hit (the tree is
reported on that path before the mutation; the mutant adds no bug).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from tree_sitter import Node

from . import cscope as cs
from . import derive
from .csrc import ENTRY_POINTS, Edit, Tree, apply_edits, line_of, text, walk
from .plan import core_functions

GUARD_RULES = ("pack-domain", "vp-block-bound", "vcore-index", "collision-crash", "capacity",
               "id-bound-mismatch")
NR_CPUS = (8, 16, 32)
STRIDES = (1, 2, 4, 8)
Verify = Callable[[dict], "str | None"]


@dataclass(frozen=True)
class Mutant:
    operator: str
    key: str
    rules: tuple[str, ...]
    path: str
    line: int  # in the mutated file
    equivalent: bool
    files: dict = field(compare=False, repr=False)
    verify: Verify = field(compare=False, repr=False, default=lambda f: None)
    # when the unmutated tree already reports the mutated line: does a finding there still
    # show a fault of the mutated code? (None: the operator makes no such claim)
    verify_site: Verify | None = field(compare=False, repr=False, default=None)
    calls: frozenset = field(compare=False, repr=False, default=frozenset())  # of its function

    @property
    def base_line(self) -> int:
        """The expected line before the mutation (the key's line)."""
        return int(self.key.split(":")[1])


def _mutant(tree: Tree, op: str, edits: list[Edit], target: Edit, rules, verify=None,
            equivalent: bool = False, key_detail: str = "", verify_site=None) -> Mutant:
    """Build a mutant; the expected line is where ``target``'s text lands after ``edits``."""
    shift = sum(e.text.count(b"\n") - tree.files[e.path].count(b"\n", e.start, e.end)
                for e in edits if e.path == target.path and e.start < target.start)
    line = line_of(tree.files, target.path, target.start) + shift
    key = f"{target.path}:{line_of(tree.files, target.path, target.start)}:{key_detail}"
    return Mutant(op, key, tuple(rules), target.path, line, equivalent,
                  apply_edits(tree.files, edits), verify or (lambda f: None), verify_site,
                  _calls_around(tree, target))


def _calls_around(tree: Tree, target: Edit) -> frozenset[str]:
    """The functions the mutated function calls (the undecided classification asks
    whether the construct the engine could not run is one of them or inside one)."""
    for f in tree.functions:
        if f.path == target.path and f.node.start_byte <= target.start < f.node.end_byte:
            return frozenset(text(n.child_by_field_name("function")) for n in walk(f.body)
                             if n.type == "call_expression")
    return frozenset()


def _edit(path: str, node: Node, new: str) -> Edit:
    return Edit(path, node.start_byte, node.end_byte, new.encode())


def _cfg(ce: dict) -> dict:
    return {k: v for k, v in ce.items() if isinstance(v, int)}


# ------------------------------------------------------------------ the VP helper


def vp_helpers(tree: Tree) -> list[str]:
    """Functions returning ``P->vp_base + …`` of their first parameter."""
    out = []
    for f in tree.functions:
        rets = [n for n in walk(f.body) if n.type == "return_statement"]
        if any(n.type == "field_identifier" and text(n) == "vp_base" for r in rets
               for n in walk(r)) and len(cs.locals_of(f)) >= 2:
            out.append(f.name)
    return out


def _helper_calls(tree: Tree) -> Iterator[tuple[str, Node, Node]]:
    helpers = set(vp_helpers(tree))
    for fn in tree.functions:
        if fn.name in helpers:
            continue
        for n in walk(fn.body):
            if n.type == "call_expression" and text(n.child_by_field_name("function")) in helpers:
                args = n.child_by_field_name("arguments").named_children
                if len(args) == 2:
                    yield fn.path, n, fn.node


def raw_vp(tree: Tree) -> Iterator[Mutant]:
    renamed = tree.fresh("vp_first")
    rename = [Edit(p, n.start_byte, n.end_byte, renamed.encode())
              for p, root in tree.roots.items() for n in walk(root)
              if n.type == "field_identifier" and text(n) == "vp_base"]
    for path, call, fnode in _helper_calls(tree):
        a, s = (text(x) for x in call.child_by_field_name("arguments").named_children)
        e = _edit(path, call, f"({a})->vp_base + ({s})")
        yield _mutant(tree, "raw-vp-helper", [e], e, ["xive-raw-vp-base"], key_detail="call")
        e = _edit(path, call, f"({a})->{renamed} + ({s})")  # the field renamed everywhere
        yield _mutant(tree, "raw-vp-renamed-field", [*rename, e], e, ["xive-raw-vp-base"],
                      key_detail="call")
        macro = tree.fresh("VPM_RAW_VP")
        d = Edit(path, fnode.start_byte, fnode.start_byte,
                 f"#define {macro}(x, s) ((x)->vp_base + (s))\n".encode())
        e = _edit(path, call, f"{macro}({a}, {s})")
        yield _mutant(tree, "raw-vp-macro", [d, e], e, ["xive-raw-vp-base"], key_detail="call")


# ------------------------------------------------------------- the packing function


def _flat(f: dict) -> dict:
    """The counterexample record with its ``values`` and single ID lifted to the top:
    the verifiers read ``id``, ``index``, ``first_refused`` whatever the rule."""
    ce = dict(f.get("counterexample") or {})
    ce.update(ce.pop("values", None) or {})
    ids = ce.get("ids") or []
    if len(ids) == 1:
        ce.setdefault("id", ids[0])
        if f.get("rule") == "capacity":
            ce.setdefault("first_refused", ids[0])
    return ce


def _verify_pack(tree_after: Tree) -> Verify:
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        ids = ce.get("ids") or ([ce["id"]] if "id" in ce else [])
        if not ids:
            return f"no IDs in {ce}"
        got = [derive.pack(tree_after, _cfg(ce), i) for i in ids]
        n = ce.get("NR_CPUS", 0)
        if any(ev or v is None or v >= n for v, ev in got):
            return None
        if len(ids) > 1 and len({v for v, _ in got}) < len(ids):
            return None
        return f"IDs {ids} pack to {got}: no collision, all in range"
    return verify


def _pack_mutant(tree: Tree, op: str, e: Edit, detail: str) -> Iterator[Mutant]:
    """The mutant, unless ``derive`` cannot run this packing function (then no oracle)."""
    after = tree.patched(apply_edits(tree.files, [e]))
    try:
        equivalent = not derive.qemu_layout_defects(after, NR_CPUS) or \
            _same_packing(tree, after)
    except derive.Unsupported:
        return
    yield _mutant(tree, op, [e], e, ["pack-table"], _verify_pack(after), equivalent, detail)


def _same_packing(tree: Tree, after: Tree) -> bool:
    """Does the mutated packing function give every ID of the ID space the same value
    and the same BUG/WARN as the original, in every build and stride swept? Then the
    change is invisible (an entry no ID reads, in a tree whose index never reaches it):
    equivalent, whatever defects the tree already has."""
    for n in NR_CPUS:
        limit = derive.id_space(tree, n) or 16 * n
        for s in STRIDES:
            cfg = {"NR_CPUS": n, "emul_smt_mode": s}
            if any(derive.pack(tree, cfg, v) != derive.pack(after, cfg, v)
                   for v in range(limit)):
                return False
    return True


def pack_table(tree: Tree) -> Iterator[Mutant]:
    if tree.packer is None:
        return
    fn = tree.by_name[tree.packer]
    for init in (n for n in walk(fn.body) if n.type == "initializer_list"):
        vals = init.named_children
        for i, v in enumerate(vals):
            e = _edit(fn.path, v, text(vals[(i + 1) % len(vals)]))
            yield from _pack_mutant(tree, "table-entry", e, f"entry{i}")


def pack_swap(tree: Tree) -> Iterator[Mutant]:
    """Neighbouring table entries exchanged: harmless or not, ``derive`` decides."""
    if tree.packer is None:
        return
    fn = tree.by_name[tree.packer]
    for init in (n for n in walk(fn.body) if n.type == "initializer_list"):
        vals = init.named_children
        for i in range(len(vals) - 1):
            a, b = vals[i], vals[i + 1]
            e = Edit(fn.path, a.start_byte, b.end_byte,
                     f"{text(b)}{tree.files[fn.path][a.end_byte:b.start_byte].decode()}"
                     f"{text(a)}".encode())
            yield from _pack_mutant(tree, "table-swap", e, f"swap{i}")


def pack_divisor(tree: Tree) -> Iterator[Mutant]:
    if tree.packer is None:
        return
    fn = tree.by_name[tree.packer]
    for n in walk(fn.body):
        if n.type == "binary_expression" and text(n.child_by_field_name("operator")) in "/%":
            r = n.child_by_field_name("right")
            e = _edit(fn.path, r, f"({text(r)} + 1)")
            op = text(n.child_by_field_name("operator"))
            yield from _pack_mutant(tree, "divisor", e, f"{op}{text(r)}")


# ------------------------------------------------------------------- collisions


def collision_bug_on(tree: Tree) -> Iterator[Mutant]:
    """An ``if`` that handles a VCORE already taken becomes ``BUG_ON`` of its condition."""
    for fn in tree.functions:
        if fn.name not in ENTRY_POINTS:
            continue
        loads = [n for n in walk(fn.body) if n.type == "assignment_expression"
                 and "vcores[" in text(n.child_by_field_name("right"))]
        loaded = {text(n.child_by_field_name("left")) for n in loads}
        for ifn in (n for n in walk(fn.body) if n.type == "if_statement"):
            cond = ifn.child_by_field_name("condition").named_children[0]
            names = {text(i) for i in cs.idents(cond)}
            if not (names & loaded) or text(cond).replace(" ", "").startswith("!"):
                continue
            ind = cs.indent_of(tree.files[fn.path], ifn.start_byte).decode()
            e = Edit(fn.path, ifn.start_byte, ifn.start_byte,
                     f"BUG_ON({text(cond)});\n{ind}".encode())
            after = tree.patched(apply_edits(tree.files, [e]))
            load = [n for n in loads if text(n.child_by_field_name("left")) in names]
            yield _mutant(tree, "collision-bug-on", [e], e, ["collision-crash"],
                          _verify_collision(after), _no_collision(tree, fn, load),
                          key_detail="if")


def _no_collision(tree: Tree, fn, loads: list[Node]) -> bool:
    """Do distinct IDs that reach the ``vcores[]`` load (``derive``, both hosts) always
    read distinct slots? Then the slot is never taken when the ``if`` asks, and its
    ``BUG_ON`` can never fire: equivalent."""
    if len(loads) != 1:
        return False
    sub = _vcores_subscripts(loads[0])
    index = sub[0].child_by_field_name("index") if sub else None
    if index is None or index.type != "identifier":
        return False
    site, idx = loads[0].start_byte, text(index)
    for n in NR_CPUS:
        limit = derive.id_space(tree, n) or 16 * n
        for s in STRIDES:
            for host in HOSTS:
                seen: set[int] = set()
                for vid in range(limit):
                    try:
                        slot = derive.value_at(tree, fn, site, idx, {
                            "NR_CPUS": n, "emul_smt_mode": s}, vid, host)
                    except derive.Refused:
                        continue
                    except (derive.Unsupported, KeyError):
                        return False
                    if slot in seen:
                        return False
                    seen.add(slot)
    return True


def _verify_collision(after: Tree) -> Verify:
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        ids = ce.get("ids") or []
        got = {derive.pack(after, _cfg(ce), i) for i in ids}
        return None if len(ids) == 2 and len(got) == 1 else f"IDs {ids} pack to {got}"
    return verify


# ----------------------------------------------------------------- the VP block


def _allocations(tree: Tree) -> Iterator[tuple[str, Node]]:
    for path, root in tree.roots.items():
        for n in walk(root):
            if n.type == "assignment_expression" and text(n.child_by_field_name(
                    "left")).endswith("vp_base"):
                r = n.child_by_field_name("right")
                if r.type == "call_expression" and len(
                        r.child_by_field_name("arguments").named_children) == 1:
                    yield path, r.child_by_field_name("arguments").named_children[0]


def vp_block(tree: Tree) -> Iterator[Mutant]:
    for path, size in _allocations(tree):
        only_warned = _vp_only_after_warning(tree)
        dead = _vp_dead_after_lookup(tree)
        for op, new, big in (("vp-block-minus-one", f"({text(size)}) - 1", 0),
                             ("vp-block-cap16", f"(({text(size)}) < 16 ? ({text(size)}) : 16)",
                              16)):
            e = _edit(path, size, new)
            yield _mutant(tree, op, [e], e, ["vp-block-bound"],
                          _verify_block(tree, new, big), only_warned or dead,
                          key_detail="alloc", verify_site=_verify_block(tree, new, 0))


def _lookups() -> frozenset[str]:
    """The profile's lookups (rules/profiles: runtime.sanitizers), read as data: a server
    number they find is the server number of an existing vCPU."""
    import tomllib
    from pathlib import Path

    prof = Path(__file__).resolve().parents[2] / "rules" / "profiles" / "powerpc-kvm-hv.toml"
    return frozenset(tomllib.loads(prof.read_text())["runtime"]["sanitizers"])


def _after_lookup(fn, stmt_start: int, var: str, lookups: frozenset[str]) -> bool:
    """Is the statement at ``stmt_start`` preceded, in ``fn``'s body, by
    ``if (!LOOKUP(…, var, …)) return …;`` (reached only when the lookup found ``var``)?"""
    for st in fn.body.named_children:
        if st.start_byte >= stmt_start:
            return False
        if st.type != "if_statement" or st.child_by_field_name("alternative") is not None:
            continue
        cond = st.child_by_field_name("condition").named_children[0]
        cons = st.child_by_field_name("consequence")
        if cond.type == "unary_expression" and text(cond).startswith("!") and \
                cons.type == "return_statement":
            call = cond.child_by_field_name("argument")
            while call.type == "parenthesized_expression":
                call = call.named_children[0]
            if call.type == "call_expression" and text(call.child_by_field_name(
                    "function")) in lookups and var in {text(a) for a in call.child_by_field_name(
                        "arguments").named_children}:
                return True
    return False


def _vp_dead_after_lookup(tree: Tree) -> bool:
    """Is every VP helper call in an entry function reached only after a lookup found the
    server number (an existing vCPU holds it), while the tree stores a server number
    into a vCPU's state (``xc->server_num = cpu``) only after that same lookup? Then no
    server number is ever found first: the lookup never succeeds, the VP computation
    behind it never runs, and a smaller block adds no reachable bug. (The engine trusts
    such a lookup; the unmutated and the mutated tree both have nothing to report.)"""
    helpers, lookups = set(vp_helpers(tree)), _lookups()
    vp_calls, stores = [], []
    for fn in tree.functions:
        if fn.name not in ENTRY_POINTS:
            continue
        for n in walk(fn.body):
            if n.type == "call_expression" and text(n.child_by_field_name("function")) in \
                    helpers:
                var = text(n.child_by_field_name("arguments").named_children[-1])
                vp_calls.append((fn, _top_statement(fn, n), var))
            if n.type == "assignment_expression" and n.child_by_field_name(
                    "left").type == "field_expression" and \
                    n.child_by_field_name("right").type == "identifier":
                stores.append((fn, _top_statement(fn, n), text(n.child_by_field_name("right"))))
    servers = {var for _f, _s, var in vp_calls}
    stores = [s for s in stores if s[2] in servers]
    return bool(vp_calls) and bool(stores) and all(
        _after_lookup(fn, st.start_byte, var, lookups) for fn, st, var in vp_calls + stores)


def _top_statement(fn, n: Node) -> Node:
    while n.parent is not None and n.parent != fn.body:
        n = n.parent
    return n


def _bounds_in(tree: Tree, fn) -> set[int]:
    """The values the comparisons of ``fn`` compare with, where ``derive`` computes them."""
    out: set[int] = set()
    for n in walk(fn.body):
        if n.type == "binary_expression" and text(n.child_by_field_name("operator")) in (
                "<", "<=", ">", ">="):
            for side in (n.child_by_field_name("left"), n.child_by_field_name("right")):
                with contextlib.suppress(derive.Unsupported, KeyError, AttributeError):
                    out.add(derive.constant(tree, {"NR_CPUS": 8}, text(side)))
    return out


def _vp_only_after_warning(tree: Tree) -> bool:
    """Does every server number that reaches a VP helper call in an entry function
    (``derive``: its ``if``s and returns; IDs up to 16 * NR_CPUS and around the constants
    its checks compare with) make the packing function BUG/WARN? Then no VP index is
    computed on a path without a reported warning, and the block's size shows nowhere
    else: a smaller block adds no bug (as for a weakened guard, ``_subsumed``). At least
    one ID must reach the call: an empty sweep proves nothing."""
    helpers = set(vp_helpers(tree))
    if tree.packer is None or not helpers:
        return False
    calls = [(fn, _statement_of(n), text(n.child_by_field_name("arguments").named_children[-1]))
             for fn in tree.functions if fn.name in ENTRY_POINTS for n in walk(fn.body)
             if n.type == "call_expression" and text(n.child_by_field_name("function")) in
             helpers and n.child_by_field_name("arguments").named_children[-1].type ==
             "identifier"]
    reached = False
    try:
        for fn, stmt, var in calls:
            near = {v + d for v in _bounds_in(tree, fn) for d in (-1, 0, 1)}
            for n in NR_CPUS:
                for s in STRIDES:
                    cfg = {"NR_CPUS": n, "emul_smt_mode": s, "nr_servers": n}
                    for vid in sorted(set(range(16 * n)) | {v for v in near if v >= 0}):
                        try:
                            server = derive.value_at(tree, fn, stmt.start_byte, var, cfg, vid)
                        except derive.Refused:
                            continue
                        reached = True
                        if not derive.pack(tree, cfg, server)[1]:
                            return False
    except (derive.Unsupported, KeyError):
        return False
    return reached


def _statement_of(n: Node) -> Node:
    while n.parent is not None and not (n.type.endswith("statement") or
                                        n.type == "declaration"):
        n = n.parent
    return n


def _verify_block(tree: Tree, size_expr: str, above: int) -> Verify:
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        cfg = _cfg(ce)
        if "id" not in ce or "NR_CPUS" not in ce:
            return f"no id/NR_CPUS in {ce}"
        cfg.setdefault("nr_servers", ce.get("nr_servers", ce["NR_CPUS"]))
        size = derive.constant(tree, cfg, size_expr)
        index, event = derive.pack(tree, cfg, ce["id"]) if tree.packer else (ce["id"], None)
        if event or index is None or index < size:
            return f"ID {ce['id']} → index {index} ({event}) within the block of {size}"
        if ce["NR_CPUS"] <= above:
            return f"NR_CPUS {ce['NR_CPUS']}: the capped block is not too small there"
        return None
    return verify


# -------------------------------------------------------------------- vcores[]


def _vcores_subscripts(node: Node) -> list[Node]:
    return [n for n in walk(node) if n.type == "subscript_expression"
            and text(n.child_by_field_name("argument")).endswith("vcores")]


def vcores(tree: Tree) -> Iterator[Mutant]:
    for fn in tree.visible_funcs():
        for ifn in (n for n in walk(fn.body) if n.type == "if_statement"):
            cond = ifn.child_by_field_name("condition").named_children[0]
            subs = _vcores_subscripts(ifn.child_by_field_name("consequence"))
            if cond.type != "binary_expression" or "KVM_MAX_VCORES" not in text(cond) or \
                    not subs or not cs.statement_parent_ok(ifn):
                continue
            idx = text(cond.child_by_field_name("left"))
            arr = text(subs[0].child_by_field_name("argument"))
            ind = cs.indent_of(tree.files[fn.path], ifn.start_byte).decode()
            e = Edit(fn.path, ifn.start_byte, ifn.start_byte,
                     f"{arr}[{idx}] = NULL;\n{ind}".encode())
            after = tree.patched(apply_edits(tree.files, [e]))
            yield _mutant(tree, "vcores-store", [e], e, ["vcore-index"],
                          _verify_store(after, fn.name, ifn.start_byte, idx),
                          _store_harmless(after, fn.name, ifn.start_byte, idx),
                          key_detail="store")
        for loop in (n for n in walk(fn.body) if n.type == "for_statement"):
            cond = loop.child_by_field_name("condition")
            subs = _vcores_subscripts(loop.child_by_field_name("body"))
            if cond is None or cond.type != "binary_expression" or not subs or \
                    text(cond.child_by_field_name("operator")) != "<" or \
                    "KVM_MAX_VCORES" not in text(cond):
                continue
            e = _edit(fn.path, cond.child_by_field_name("operator"), "<=")
            sink = Edit(fn.path, subs[0].start_byte, subs[0].end_byte, b"")
            m = _mutant(tree, "vcores-loop-bound", [e], sink, ["vcore-index"],
                        _verify_loop(tree, text(cond.child_by_field_name("right"))),
                        key_detail="loop")
            yield Mutant(m.operator, m.key, m.rules, m.path, m.line, False,
                         apply_edits(tree.files, [e]), m.verify)


def _verify_store(after: Tree, fname: str, site: int, idx: str) -> Verify:
    """The index the store gets for the counterexample's ID, re-derived by running the
    mutated create function up to the store (its ``if``s and the assignments of the
    index), is the one reported and lies outside the table."""
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        if "id" not in ce or "index" not in ce:
            return f"no id/index in {ce}"
        cfg = _cfg(ce)
        fn = after.by_name[fname]
        index = derive.value_at(after, fn, site, idx, cfg, ce["id"], ce.get("host"))
        size = derive.constant(after, cfg, "KVM_MAX_VCORES")
        if index != ce["index"]:
            return f"ID {ce['id']} gives {idx}={index}, not {ce['index']}"
        return None if not 0 <= index < size else f"index {index} < {size} VCOREs"
    return verify


HOSTS = ({}, {"CPU_FTR_ARCH_300": 0})  # the profile's POWER9 host, and a POWER8 one


def _store_harmless(after: Tree, fname: str, site: int, idx: str) -> bool:
    """Does every ID that reaches the store (``derive``, on both hosts) give an index
    inside the table? Then storing before the bound check is safe: equivalent."""
    fn = after.by_name[fname]
    for n in NR_CPUS:
        limit = derive.id_space(after, n) or 16 * n
        for s in STRIDES:
            cfg = {"NR_CPUS": n, "emul_smt_mode": s}
            try:
                size = derive.constant(after, cfg, "KVM_MAX_VCORES")
            except (derive.Unsupported, KeyError):
                return False
            for host in HOSTS:
                for vid in range(limit):
                    try:
                        index = derive.value_at(after, fn, site, idx, cfg, vid, host)
                    except derive.Refused:
                        continue
                    except (derive.Unsupported, KeyError):
                        return False
                    if not 0 <= index < size:
                        return False
    return True


def _verify_loop(tree: Tree, bound: str) -> Verify:
    """``i <= BOUND``: the last index is BOUND itself, at or beyond the table's size."""
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        if "index" not in ce or "NR_CPUS" not in ce:
            return f"no index/NR_CPUS in {ce}"
        top = derive.constant(tree, _cfg(ce), bound)
        size = derive.constant(tree, _cfg(ce), "KVM_MAX_VCORES")
        if ce["index"] != top:
            return f"the loop's last index is {top}, not {ce['index']}"
        return None if top >= size else f"index {top} < {size} VCOREs"
    return verify


# ---------------------------------------------------------------------- guards

_BOUND = re.compile(r"KVM_MAX_V|nr_servers|emul_smt_mode|MAX_SMT_THREADS")
_WEAKER = {">=": ">", "<": "<="}


def _guard_comparisons(tree: Tree) -> Iterator[tuple[str, Node, Node, Node]]:
    """(path, comparison, ID side, bound side) in the conditions and predicates on the paths."""
    core = core_functions(tree)
    for fn in tree.functions:
        if fn.name not in core or fn.name == tree.packer:
            continue
        params = {loc.name for loc in cs.locals_of(fn)}
        for n in walk(fn.body):
            if n.type != "binary_expression" or text(n.child_by_field_name("operator")) not in (
                    "<", "<=", ">", ">="):
                continue
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            for idn, bound in ((left, right), (right, left)):
                if _BOUND.search(text(bound)) and _id_side(tree, idn, params):
                    yield fn.path, n, idn, bound


def _id_side(tree: Tree, node: Node, params: set[str]) -> bool:
    """A local/parameter holding the ID, or the packing function applied to it."""
    if node.type == "identifier":
        return text(node) in params and not _BOUND.search(text(node))
    return node.type == "call_expression" and text(node.child_by_field_name(
        "function")) == tree.packer


def _is_param(idn: Node) -> bool:
    """Is ``idn`` a parameter of its function (a raw ID, not a derived index like ``core``)?"""
    fn = idn.parent
    while fn is not None and fn.type != "function_definition":
        fn = fn.parent
    if fn is None or idn.type != "identifier":
        return False
    plist = [n for n in walk(fn.child_by_field_name("declarator")) if n.type == "parameter_list"]
    return bool(plist) and any(n.type == "identifier" and text(n) == text(idn)
                               for n in walk(plist[0]))


def _boundary_harmless(tree: Tree, idn: Node, bound: Node) -> bool:
    """Is the raw ID the weakened guard newly admits (the bound) packable everywhere?

    Only for a parameter: a derived value such as ``core`` indexes ``vcores[]`` itself.
    """
    if tree.packer is None or not _is_param(idn):
        return False
    for n in NR_CPUS:
        for s in STRIDES:
            cfg = {"NR_CPUS": n, "emul_smt_mode": s, "nr_servers": n, "threads_per_subcore": 4}
            try:
                b = derive.constant(tree, cfg, text(bound))
            except (derive.Unsupported, KeyError):
                return False
            try:
                value, event = derive.pack(tree, cfg, b)
            except derive.Unsupported:
                return False
            if event or value is None or value >= n:
                return False
    return True


def _function_of(n: Node) -> Node | None:
    while n is not None and n.type != "function_definition":
        n = n.parent
    return n


def _subsumed(tree: Tree, idn: Node, bound: Node) -> bool:
    """Does an ID below the bound, which the guard admits already, hit a BUG/WARN in the
    packing function (``derive``)? Then the tree is reported on this path before the
    mutation, and the one more ID the weakened guard admits adds no new bug: the mutant
    must change nothing. Only for the sole bound check on a raw parameter."""
    if tree.packer is None or not _is_param(idn):
        return False
    for n in NR_CPUS:
        for s in STRIDES:
            cfg = {"NR_CPUS": n, "emul_smt_mode": s, "nr_servers": n, "threads_per_subcore": 4}
            try:
                b = derive.constant(tree, cfg, text(bound))
                if any(derive.pack(tree, cfg, v)[1] for v in range(min(b, 16 * n))):
                    return True
            except (derive.Unsupported, KeyError):
                return False
    return False




def _sinks(tree: Tree, fn) -> list[tuple[Node, str]]:
    """(statement, variable) of each sink in ``fn``: a ``vcores[]`` index, or the ID
    handed to the packing function or a VP helper, when it is a plain variable."""
    takers = set(vp_helpers(tree)) | {tree.packer}
    out = []
    for n in walk(fn.body):
        arg = None
        if n.type == "subscript_expression" and text(
                n.child_by_field_name("argument")).endswith("vcores"):
            arg = n.child_by_field_name("index")
        elif n.type == "call_expression" and text(n.child_by_field_name("function")) in takers:
            args = n.child_by_field_name("arguments").named_children
            arg = args[-1] if args else None
        if arg is not None and arg.type == "identifier":
            out.append((_statement_of(n), text(arg)))
    return out


def _observe(tree: Tree, fn, sinks, cfg: dict, host: dict, vid: int) -> tuple:
    out = []
    for stmt, var in sinks:
        try:
            out.append(derive.value_at(tree, fn, stmt.start_byte, var, cfg, vid, host))
        except derive.Refused:
            out.append(None)
    return tuple(out)


def _same_sinks(tree: Tree, edits: list[Edit], cmp_: Node, bound: Node) -> bool:
    """Does every ID reach the same sinks of the guard's function (``vcores[]``
    indices, the packing function, the VP helpers) with the same values after the
    mutation, in every build, stride, ``nr_servers`` and host swept (``derive``)? Then
    the changed comparison never decides anything (another check refuses first, or the
    value never reaches the boundary): equivalent. The mutated ``if`` must be one that
    ``derive`` evaluates, so that a skipped condition is never taken as harmless."""
    fn_node = _function_of(cmp_)
    name = next((f.name for f in tree.functions if f.node == fn_node), None)
    after = tree.patched(apply_edits(tree.files, edits))
    if name is None or tree.packer is None:
        return False
    fn, fn2 = tree.by_name[name], after.by_name[name]
    sinks, sinks2 = _sinks(tree, fn), _sinks(after, fn2)
    ifs = [n for n in walk(fn2.body) if n.type == "if_statement"
           and n.start_byte <= edits[-1].start < n.child_by_field_name("condition").end_byte]
    if not sinks or len(sinks) != len(sinks2) or len(ifs) != 1:
        return False
    cond = ifs[0].child_by_field_name("condition")
    body = text(fn.body)
    try:
        for n in NR_CPUS:
            for s in STRIDES:
                for nr in (1, n) if "nr_servers" in body else (n,):
                    cfg = {"NR_CPUS": n, "emul_smt_mode": s, "nr_servers": nr,
                           "threads_per_subcore": 4}
                    b = derive.constant(tree, cfg, text(bound))
                    ids = sorted(set(range(derive.id_space(tree, n) or 16 * n)) |
                                 {b - 1, b, b + 1} - {-1})
                    for host in HOSTS if "cpu_has_feature" in body else HOSTS[:1]:
                        asked = False
                        for vid in ids:
                            if _observe(tree, fn, sinks, cfg, host, vid) != _observe(
                                    after, fn2, sinks2, cfg, host, vid):
                                return False
                            if not asked:
                                try:
                                    derive.holds_at(after, fn2, ifs[0].start_byte, cond, cfg,
                                                    vid, host)
                                    asked = True
                                except derive.Refused:
                                    pass
    except (derive.Unsupported, KeyError):
        return False
    return True


def guard_weaken(tree: Tree) -> Iterator[Mutant]:
    for path, cmp_, idn, bound in _guard_comparisons(tree):
        op = text(cmp_.child_by_field_name("operator"))
        if op not in _WEAKER or idn != cmp_.child_by_field_name("left"):
            continue  # only `id >= B` and `id < B`: the forms that refuse/admit at B
        e = _edit(path, cmp_.child_by_field_name("operator"), _WEAKER[op])
        same = sum(1 for p2, c2, i2, _b in _guard_comparisons(tree)
                   if p2 == path and text(i2) == text(idn) and _function_of(c2) == _function_of(
                       cmp_))
        yield _mutant(tree, "guard-weaken", [e], e, GUARD_RULES, _verify_boundary(tree, idn, bound),
                      _boundary_harmless(tree, idn, bound) or (
                          same == 1 and _subsumed(tree, idn, bound)) or
                      _same_sinks(tree, [e], cmp_, bound), f"{text(idn)}{op}",
                      verify_site=_verify_pack(tree.patched(apply_edits(tree.files, [e]))))
        if _positive(tree, bound):  # `id >= B` == `id > B - 1` for B >= 1: must change nothing
            e = _edit(path, cmp_, f"{text(idn)} {_WEAKER[op]} ({text(bound)}) - 1")
            yield _mutant(tree, "guard-equivalent", [e], e, GUARD_RULES, equivalent=True,
                          key_detail=f"{text(idn)}{op}")


def _positive(tree: Tree, bound: Node) -> bool:
    """B >= 1 in every configuration swept (so B - 1 cannot wrap)."""
    try:
        return all(derive.constant(tree, {"NR_CPUS": n, "emul_smt_mode": s, "nr_servers": 1},
                                   text(bound)) >= 1 for n in NR_CPUS for s in STRIDES)
    except (derive.Unsupported, KeyError):
        return False


def _verify_boundary(tree: Tree, idn: Node, bound: Node) -> Verify:
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        vid = ce.get("id", ce.get("first_refused"))
        if vid is None:
            return None if f["rule"] in ("capacity", "id-bound-mismatch") else f"no id in {ce}"
        cfg = {"nr_servers": ce.get("nr_servers", ce.get("NR_CPUS", 0)), **_cfg(ce)}
        b = derive.constant(tree, cfg, text(bound))
        packed = idn.type == "call_expression"
        got = derive.pack(tree, cfg, vid)[0] if packed else vid
        if f["rule"] == "id-bound-mismatch":  # an ID the guard (still) refuses: any above B
            return None if got > b else f"ID {vid} ({got}) is admitted by the mutated guard"
        if got != b:
            return f"ID {vid} ({'packed ' if packed else ''}{got}) is not the boundary {b}" \
                " the weakened guard newly admits"
        if packed:
            return None
        if f["rule"] == "pack-domain" and tree.packer and not derive.pack(tree, cfg, vid)[1]:
            return f"ID {vid} packs without BUG/WARN"
        return None
    return verify


def drop_stride(tree: Tree) -> Iterator[Mutant]:
    """``id >= KVM_MAX_VCPUS * stride`` -> ``id >= KVM_MAX_VCPUS``: stricter, a capacity bug."""
    for path, _cmp, _idn, bound in _guard_comparisons(tree):
        for n in walk(bound):
            if n.type == "binary_expression" and text(n.child_by_field_name("operator")) == "*":
                left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
                keep = [s for s in (left, right) if "KVM_MAX_VCPUS" in text(s)]
                if keep and "emul_smt_mode" in text(n):
                    e = _edit(path, n, text(keep[0]))
                    yield _mutant(tree, "drop-stride", [e], e, ["capacity", "id-bound-mismatch"],
                                  _verify_capacity(tree, text(keep[0])), key_detail="stride")


def _verify_capacity(tree: Tree, count: str) -> Verify:
    def verify(f: dict) -> str | None:
        ce = _flat(f)
        if "first_refused" not in ce:
            return None if f["rule"] == "id-bound-mismatch" else f"no first_refused in {ce}"
        n = derive.constant(tree, _cfg(ce), count)
        ok = n <= ce["first_refused"] < n * ce.get("emul_smt_mode", 1)
        return None if ok else f"first refused {ce['first_refused']} not in [{n}, {n}*stride)"
    return verify


OPERATORS: dict[str, Callable[[Tree], Iterator[Mutant]]] = {
    "raw-vp": raw_vp,
    "table-entry": pack_table,
    "table-swap": pack_swap,
    "divisor": pack_divisor,
    "collision-bug-on": collision_bug_on,
    "vp-block": vp_block,
    "vcores": vcores,
    "guard-weaken": guard_weaken,
    "drop-stride": drop_stride,
}


def all_mutants(tree: Tree) -> list[Mutant]:
    out: list[Mutant] = []
    seen: dict[str, int] = {}
    for gen in OPERATORS.values():
        for m in gen(tree):
            k = f"{m.operator}|{m.key}"
            n = seen.get(k, 0)
            seen[k] = n + 1
            out.append(m if n == 0 else replace(m, key=f"{m.key}#{n}"))
    return out
