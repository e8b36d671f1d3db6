"""Where values live: field reads, local arrays, assignments, pointers passed on.

Fields and pointers are not modelled as memory: a field read is a name read
from the configuration, a pointer argument is passed on leniently, and only
locals are written. A mixin of :class:`~.expressions.ExprCompiler`.
"""

from __future__ import annotations

from tree_sitter import Node

from ...c import parse as cparse
from .limits import Unsupported
from .operators import arith
from .runtime import _E, Event, Fn, _const, _convert, _env_read, _line, _mk, _wrapper
from .types import INT, PTR, Type


class Access:
    """Handlers for fields, subscripts, assignments and updates."""

    def e_field_expression(self, n: Node) -> _E:
        fld = cparse.text(n.child_by_field_name("field"))
        return _E(_env_read(fld, self.name), INT)

    def pointer_arg(self, a: Node) -> Fn:
        """An argument for a pointer parameter: passed on, read leniently."""
        a = cparse.strip_parens(a)
        if a.type == "field_expression":
            return _env_read(cparse.text(a.child_by_field_name("field")), self.name, PTR, 0)
        if a.type == "identifier":
            info = self.lookup(cparse.text(a))
            if info is not None and info[0] == "var":
                slot = info[1]
                return lambda f: f[slot]
            if cparse.text(a) not in self.program.defines:
                return _env_read(cparse.text(a), self.name, PTR, 0)
        try:
            return _convert(self.expr(a), PTR).fn
        except Unsupported:
            return lambda f: 0

    def _target(self, n: Node) -> tuple[int, Type]:
        """The slot and type of an assigned local; any other target is Unsupported."""
        n = cparse.strip_parens(n) if n.type == "parenthesized_expression" else n
        line = _line(n)
        if n.type == "field_expression":
            raise Unsupported("write to a field", line)
        if n.type != "identifier":
            raise Unsupported(f"assignment to {n.type}", line)
        name = cparse.text(n)
        info = self.lookup(name)
        if info is None or info[0] != "var":
            raise Unsupported(f"assignment to {name}", line)
        return info[1], info[2]

    def e_assignment_expression(self, n: Node) -> _E:
        slot, ty = self._target(n.child_by_field_name("left"))
        op = n.child_by_field_name("operator").type
        right = self.expr(n.child_by_field_name("right"))
        if op != "=":
            right = arith(op[:-1], _E(lambda f: f[slot], ty), right, _line(n), self.name)
        vf = _convert(right, ty).fast

        def assign(f):
            f[slot] = v = vf(f)
            return v
        assign.store = (slot, vf)  # as a statement: a store (see s_expression_statement)
        return _E(assign, ty)

    def e_update_expression(self, n: Node) -> _E:
        slot, ty = self._target(n.child_by_field_name("argument"))
        delta = 1 if n.child_by_field_name("operator").type == "++" else -1
        prefix = n.children[0].type in ("++", "--")
        step = _wrapper(ty)(lambda f: f[slot] + delta)

        def upd(f):
            old = f[slot]
            f[slot] = new = step(f)
            return new if prefix else old
        return _E(upd, ty)

    def e_subscript_expression(self, n: Node) -> _E:
        """``a[i]`` of a local array: a constant table, or one built at run time."""
        arr = n.child_by_field_name("argument")
        line = _line(n)
        if arr.type != "identifier":
            raise Unsupported("subscript of a non-local array", line)
        name = cparse.text(arr)
        info = self.lookup(name)
        if info is None or info[0] != "array":
            raise Unsupported(f"subscript of {name}", line)
        _, values, size, ety = info
        idx = self.expr(n.child_by_field_name("index"))
        fname = self.name

        def oob(f, i):
            f[1].append(Event("oob", f"{name}[{i}]", line, fname))
            return 0
        if isinstance(values, tuple) and isinstance(size, int):
            return _table_read(values, size, ety, idx, oob)
        return _E(_slot_read(values, idx.fast, oob), ety)


def _table_read(values: tuple, size: int, ety: Type, idx: _E, oob) -> _E:
    """A read of a local array whose every element is a constant."""
    table = values + (0,) * (size - len(values))
    if idx.const is not None and 0 <= idx.const < size:
        return _const(table[idx.const], ety)
    ix = idx.fast

    def read(f):
        i = ix(f)
        if 0 <= i < size:
            return table[i]
        return oob(f, i)
    i = ("tmp",)
    return _E(read, ety, None, _mk("({0}[{1}] if 0 <= ({1} := {2}) < {3} else {4}(f, {1}))",
                                   ("val", table), i, idx, ("val", size), ("val", oob)))


def _slot_read(slot: int, ix: Fn, oob) -> Fn:
    """A read of a local array built at run time: ``[size, v0, v1, ...]`` in a slot."""
    def read_dyn(f):
        i = ix(f)
        cells = f[slot]
        if 0 <= i < cells[0]:
            return cells[1 + i] if 1 + i < len(cells) else 0
        return oob(f, i)
    return read_dyn
