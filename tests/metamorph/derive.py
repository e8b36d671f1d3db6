"""Re-derive a counterexample with plain Python arithmetic, independently of ``analyzer``.

Reads the packing function, its table and the macros from the (mutated)
source with tree-sitter and runs them on non-negative integers, where C's
truncating division and Python's floor division agree. Small on purpose: the
packing function's statements only (declarations, assignments, ``if``,
``return``, ``BUG_ON``/``WARN*``), field reads taken from the configuration by
field name. Anything else raises ``Unsupported`` rather than guessing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from tree_sitter import Node

from .csrc import Tree, parse, text

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a // b, "%": lambda a, b: a % b, "<": lambda a, b: int(a < b),
        "<=": lambda a, b: int(a <= b), ">": lambda a, b: int(a > b),
        ">=": lambda a, b: int(a >= b), "==": lambda a, b: int(a == b),
        "!=": lambda a, b: int(a != b), "&": lambda a, b: a & b, "|": lambda a, b: a | b}


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

    def __init__(self, tree: Tree, cfg: Mapping[str, int]):
        self.tree, self.cfg = tree, dict(cfg)
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
            if op in ("/", "%") and right == 0 or op not in _OPS:
                raise Unsupported(f"{text(n)} (division by zero or operator {op})")
            return _OPS[op](left, right)
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


def constant(tree: Tree, cfg: Mapping[str, int], expr: str) -> int:
    """The value of a C constant expression of the tree (macros expanded) under ``cfg``."""
    return Machine(tree, cfg).ev(_expr(expr), {})


def qemu_layout_defects(tree: Tree, nr_cpus: tuple[int, ...] = (8, 16, 32)) -> list[tuple]:
    """Configurations where IDs a QEMU-style VMM uses collide or fail to pack."""
    out = []
    for n in nr_cpus:
        for stride in (1, 2, 4, 8):
            threads = 1
            while threads <= stride:
                ids = [c * stride + t for c in range(n) for t in range(threads)][:n]
                seen: dict[int, int] = {}
                for vid in ids:
                    value, event = pack(tree, {"NR_CPUS": n, "emul_smt_mode": stride}, vid)
                    if event or value is None or value >= n or value in seen:
                        out.append((n, stride, threads, vid, value, event))
                        break
                    seen[value] = vid
                threads *= 2
    return out
