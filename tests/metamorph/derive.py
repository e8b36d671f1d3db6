"""Re-derive a counterexample independently of ``analyzer``.

Reads the packing function, its table and the macros from the (mutated)
source with tree-sitter and runs them; each operator is evaluated by
tests/creference.py, the project's one reference evaluator of C's integer rules
(written from the C standard, separate from ``analyzer.model.ceval``), with
every value an ``int``. Small on purpose: the packing function's statements only
(declarations, assignments, ``if``, ``return``, ``BUG_ON``/``WARN*``), field reads
taken from the configuration by field name. Anything else, or undefined
behaviour, raises ``Unsupported`` rather than guessing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from tree_sitter import Node

from ..creference import UB, reval
from .csrc import Tree, parse, text

_OPS = frozenset({"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "&", "|", "^",
                  "<<", ">>"})


def _c(op: str, left: int, right: int) -> int:
    """``left op right`` as C computes it on two ``int`` operands."""
    try:
        return reval(("bin", op, ("lit", left), ("lit", right)), {}, {})
    except UB:
        raise Unsupported(f"{left} {op} {right}: undefined behaviour") from None


class Unsupported(Exception):
    pass


class _Return(Exception):
    def __init__(self, value: int):
        self.value = value


@functools.lru_cache(maxsize=512)
def _expr(body: str) -> Node:
    root = parse(f"int __vpm_x = ({body});".encode())
    return root.named_children[0].child_by_field_name("declarator").child_by_field_name("value")


class Machine:
    """One configuration (NR_CPUS, emul_smt_mode, smt_mode, …) over one tree."""

    def __init__(self, tree: Tree, cfg: Mapping[str, int],
                 features: Mapping[str, int] | None = None):
        self.tree, self.cfg = tree, dict(cfg)
        self.features = dict(features or {})
        self.events: list[str] = []

    def macro(self, name: str) -> int:
        if name in ("NR_CPUS", "CONFIG_NR_CPUS"):
            return self.cfg["NR_CPUS"]
        if name in self.cfg:  # a host variable of the configuration (threads_per_subcore)
            return self.cfg[name]
        m = self.tree.macros.get(name)
        if m is None or m.params is not None or not m.body.strip():
            raise Unsupported(name)
        return self.ev(_expr(m.body.strip()), {})

    def ev(self, n: Node, env: dict) -> int:
        t = n.type
        if t == "number_literal":
            return int(text(n).rstrip("uUlL"), 0)
        if t == "parenthesized_expression":
            return self.ev(n.named_children[0], env)
        if t == "identifier":
            name = text(n)
            return env[name] if name in env else self.macro(name)
        if t == "field_expression":
            fld = text(n.child_by_field_name("field"))
            if fld not in self.cfg:
                raise Unsupported(f"field {fld} is not part of the configuration")
            return self.cfg[fld]
        if t == "binary_expression":
            op = text(n.child_by_field_name("operator"))
            left = self.ev(n.child_by_field_name("left"), env)
            if op in ("&&", "||"):
                short = (not left) if op == "&&" else bool(left)
                return int(bool(left)) if short else int(bool(
                    self.ev(n.child_by_field_name("right"), env)))
            right = self.ev(n.child_by_field_name("right"), env)
            if op not in _OPS:
                raise Unsupported(f"{text(n)} (operator {op})")
            return _c(op, left, right)
        if t == "conditional_expression":
            c = self.ev(n.child_by_field_name("condition"), env)
            return self.ev(n.child_by_field_name("consequence" if c else "alternative"), env)
        if t == "subscript_expression":
            table = env[text(n.child_by_field_name("argument"))]
            i = self.ev(n.child_by_field_name("index"), env)
            if not 0 <= i < len(table):
                raise _Sink(f"table index {i} outside {len(table)} entries")
            return table[i]
        if t == "call_expression":
            return self.call(n, env)
        if t == "unary_expression" and text(n.child_by_field_name("operator")) == "!":
            return int(not self.ev(n.child_by_field_name("argument"), env))
        raise Unsupported(f"{t}: {text(n)}")

    def call(self, n: Node, env: dict) -> int:
        name = text(n.child_by_field_name("function"))
        args = n.child_by_field_name("arguments").named_children
        if name in ("BUG_ON", "WARN_ON", "WARN_ONCE", "WARN", "WARN_ON_ONCE"):
            c = self.ev(args[0], env)
            if c:
                self.events.append(f"{name} {text(args[0])}")
                if name == "BUG_ON":
                    raise _Sink(self.events[-1])
            return int(bool(c))
        if name == "cpu_has_feature" and len(args) == 1:  # the host: set unless cleared
            return int(self.features.get(text(args[0]), 1))
        if name == self.tree.packer and args:
            value, event = pack(self.tree, self.cfg, self.ev(args[-1], env))
            if value is None:
                raise _Sink(str(event))
            return value
        raise Unsupported(f"call {name}")

    def exec(self, n: Node, env: dict) -> None:
        t = n.type
        if t in ("comment",):
            return
        if t == "compound_statement":
            for c in n.named_children:
                self.exec(c, env)
        elif t == "declaration":
            for d in n.children_by_field_name("declarator"):
                if d.type != "init_declarator":
                    continue
                name = _decl_name(d.child_by_field_name("declarator"))
                val = d.child_by_field_name("value")
                env[name] = ([self.ev(v, env) for v in val.named_children]
                             if val.type == "initializer_list" else self.ev(val, env))
        elif t == "expression_statement":
            e = n.named_children[0]
            if e.type == "assignment_expression":
                env[text(e.child_by_field_name("left"))] = self.ev(
                    e.child_by_field_name("right"), env)
            else:
                self.ev(e, env)
        elif t == "if_statement":
            if self.ev(n.child_by_field_name("condition"), env):
                self.exec(n.child_by_field_name("consequence"), env)
            elif n.child_by_field_name("alternative") is not None:
                self.exec(n.child_by_field_name("alternative").named_children[-1], env)
        elif t == "return_statement":
            raise _Return(self.ev(n.named_children[0], env))
        else:
            raise Unsupported(f"{t}: {text(n)[:40]}")


class _Sink(Exception):
    pass


def _decl_name(d: Node) -> str:
    while d.type != "identifier":
        d = d.child_by_field_name("declarator")
    return text(d)


def pack(tree: Tree, cfg: Mapping[str, int], vid: int) -> tuple[int | None, str | None]:
    """(packed value, first BUG/WARN or table overrun) of the tree's packing function."""
    fn = tree.by_name[tree.packer]
    m = Machine(tree, {"smt_mode": 1, **cfg})
    params = [p for p in fn.node.child_by_field_name("declarator")
              .child_by_field_name("parameters").named_children]
    env = {_decl_name(params[-1].child_by_field_name("declarator")): vid}
    try:
        m.exec(fn.body, env)
    except _Return as r:
        return r.value, (m.events[0] if m.events else None)
    except _Sink as s:
        return None, str(s)
    return None, "fell off the end"


def _assigns(node: Node, names: frozenset[str]) -> bool:
    return any(n.type == "assignment_expression" and text(n.child_by_field_name("left")) in
               names for n in _walk(node))


def _walk(node: Node):
    yield node
    for c in node.children:
        yield from _walk(c)


def _slice(m: Machine, node: Node, site: int, var: frozenset[str], env: dict) -> bool:
    """Run ``node`` up to the statement at byte ``site``: True once it is reached.
    Statements the machine cannot run (the kernel runtime: locking, allocation,
    printing) are skipped unless they assign one of ``var``; an ``if`` that does not
    assign one only matters as an early exit."""
    if node.type == "compound_statement":
        for c in node.named_children:
            if c.start_byte <= site < c.end_byte:
                return _slice(m, c, site, var, env)
            if c.end_byte <= site:
                _slice(m, c, site, var, env)
        return False
    if node.type == "if_statement":
        if node.start_byte == site:  # the site is the ``if`` itself: reached
            return True
        inside = node.start_byte <= site < node.end_byte
        if not inside and not _assigns(node, var):
            _early_exit(m, node, env)
            return False
        branch = node.child_by_field_name("consequence") if m.ev(
            node.child_by_field_name("condition"), env) else node.child_by_field_name(
            "alternative")
        if branch is not None and branch.type == "else_clause":
            branch = branch.named_children[-1]
        if inside and (branch is None or not branch.start_byte <= site < branch.end_byte):
            raise Refused("the branch taken does not hold the site")
        if branch is None:
            return False
        return _slice(m, branch, site, var, env)  # the arm taken runs: it may return
    if node.start_byte <= site < node.end_byte:
        return True
    if node.type in ("return_statement", "goto_statement"):  # whatever the value
        raise Refused("returns before the site")
    try:  # a statement of the kernel runtime (locking, allocation) is skipped
        m.exec(node, env)
    except (Unsupported, KeyError):
        if _assigns(node, var):
            raise
    except _Return:
        raise Refused("returns before the site") from None
    return False


class Refused(Exception):
    """The ID leaves the function (``return``/``goto``) before the site."""


def _early_exit(m: Machine, node: Node, env: dict) -> None:
    """``if (C) return …;`` on the way: refuse the ID when C holds for it. A condition
    on something else (a pointer, an error code) is the VMM's: it is skipped."""
    leaves = any(n.type in ("return_statement", "goto_statement")
                 for n in _walk(node.child_by_field_name("consequence")))
    if not leaves:
        return
    try:
        holds = m.ev(node.child_by_field_name("condition"), env)
    except (Unsupported, KeyError):
        return
    if holds:
        raise Refused(text(node.child_by_field_name("condition")))


def value_at(tree: Tree, fn, site: int, var: str, cfg: Mapping[str, int], vid: int,
             features: Mapping[str, int] | None = None) -> int:
    """The value ``var`` holds when the statement at byte ``site`` of ``fn`` (a
    function taking the ID as its last parameter, or reading it from ``->vcpu_id``)
    runs for ID ``vid``. Raises ``Refused`` when an early exit turns the ID away."""
    m, env = _start(tree, fn, cfg, vid, features)
    try:
        reached = _slice(m, fn.body, site, frozenset({var}), env)
    except _Sink as s:
        raise Refused(f"crashes before the site: {s}") from None
    if not reached or var not in env:
        raise Unsupported(f"{var} is not assigned on the way to the site")
    return env[var]


def _start(tree: Tree, fn, cfg: Mapping[str, int], vid: int,
           features: Mapping[str, int] | None) -> tuple[Machine, dict]:
    m = Machine(tree, {"smt_mode": 1, "vcpu_id": vid, **cfg}, features)
    d = fn.node.child_by_field_name("declarator")
    while d.type != "function_declarator":  # through ``*`` of a pointer result
        d = d.child_by_field_name("declarator")
    params = d.child_by_field_name("parameters").named_children
    return m, {_decl_name(params[-1].child_by_field_name("declarator")): vid}


def holds_at(tree: Tree, fn, site: int, cond: Node, cfg: Mapping[str, int], vid: int,
             features: Mapping[str, int] | None = None) -> int:
    """The value of the condition ``cond`` of the ``if`` at byte ``site`` of ``fn`` when
    ID ``vid`` reaches it (``Refused`` when it does not); ``Unsupported`` when the
    condition reads what this machine does not model."""
    m, env = _start(tree, fn, cfg, vid, features)
    try:
        names = frozenset(text(n) for n in _walk(cond) if n.type == "identifier")
        if not _slice(m, fn.body, site, names, env):
            raise Unsupported("the if is not reached")
    except _Sink as s:
        raise Refused(f"crashes before the site: {s}") from None
    return m.ev(cond, env)


def constant(tree: Tree, cfg: Mapping[str, int], expr: str) -> int:
    """The value of a C constant expression of the tree (macros expanded) under ``cfg``."""
    return Machine(tree, cfg).ev(_expr(expr), {})


def id_space(tree: Tree, n: int) -> int | None:
    """Generic KVM's bound on vCPU IDs (KVM_MAX_VCPU_IDS, formerly KVM_MAX_VCPU_ID) for
    NR_CPUS=n on the profile's host (4 threads per subcore): a VMM creates no ID beyond.
    This reader does not follow ``#if``: of the definitions it sees, the largest (the
    fewest mutants called harmless)."""
    values = []
    for name in ("KVM_MAX_VCPU_IDS", "KVM_MAX_VCPU_ID"):
        if name in tree.macros:
            try:
                values.append(constant(tree, {"NR_CPUS": n, "threads_per_subcore": 4}, name))
            except (Unsupported, KeyError):
                return None
    return max(values, default=None)


def qemu_layout_defects(tree: Tree, nr_cpus: tuple[int, ...] = (8, 16, 32)) -> list[tuple]:
    """Configurations where IDs a QEMU-style VMM uses collide or fail to pack."""
    out = []
    for n in nr_cpus:
        limit = id_space(tree, n)
        for stride in (1, 2, 4, 8):
            threads = 1
            while threads <= stride:
                ids = [v for v in [c * stride + t for c in range(n)
                                   for t in range(threads)][:n] if limit is None or v < limit]
                seen: dict[int, int] = {}
                for vid in ids:
                    value, event = pack(tree, {"NR_CPUS": n, "emul_smt_mode": stride}, vid)
                    if event or value is None or value >= n or value in seen:
                        out.append((n, stride, threads, vid, value, event))
                        break
                    seen[value] = vid
                threads *= 2
    return out
