"""Expressions compiled to closures, one handler per tree-sitter node type.

:meth:`ExprCompiler.expr` dispatches on the node's type to the method
``e_<type>`` (pyflakes' style: a new construct is a new method, never a new
branch); a type without a handler is :class:`Unsupported`. This module holds
the dispatcher, names, literals and the arithmetic and logic operators;
:mod:`.access` the fields, subscripts and assignments, :mod:`.calls` the
calls and macros; :mod:`.operators` builds the closures of the operators.
"""

from __future__ import annotations

from tree_sitter import Node

from ...c import parse as cparse
from .access import Access
from .calls import Calls
from .limits import Unsupported
from .operators import arith, fold, negate
from .runtime import _E, Program, _const, _convert, _env_read, _Goto, _line, _mk, _named
from .types import _TYPES, INT, PTR, VOID, Type, _literal, common, parse_type, promote

MAX_DEPTH = 200  # nesting of expressions and statements compiled; deeper is undecided


class ExprCompiler(Access, Calls):
    """Names, expressions, calls and assignments of one function being compiled."""

    def __init__(self, program: Program, name: str, rtype: Type) -> None:
        self.program = program
        self.name = name
        self.rtype = rtype
        self.scopes: list[dict[str, tuple]] = []
        self.nslots = 0
        self.expanding: set[str] = set()
        self.depth = 0
        self.labels: dict[str, _Goto] = {}

    def _enter(self, n: Node) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unsupported(f"code nested deeper than {MAX_DEPTH} levels", _line(n))

    # --- names ----------------------------------------------------------------

    def lookup(self, name: str) -> tuple | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def declare(self, name: str, ty: Type) -> int:
        slot = 2 + self.nslots
        self.nslots += 1
        self.scopes[-1][name] = ("var", slot, ty)
        return slot

    def type_of(self, n: Node, strip: bool = False) -> Type:
        s = cparse.text(n)
        if strip:
            s = s.strip()[1:-1]
        ty = parse_type(s, _line(n))
        if ty == VOID:
            raise Unsupported("cast to void", _line(n))
        return ty

    # --- the dispatcher ---------------------------------------------------------

    def expr(self, n: Node) -> _E:
        """Compile an expression; the depth is bounded (1,000 nested parentheses or a
        900-term sum are undecided, not a RecursionError)."""
        self._enter(n)
        try:
            handler = getattr(self, f"e_{n.type}", None)
            if handler is None:
                raise Unsupported(n.type, _line(n))
            return handler(n)
        finally:
            self.depth -= 1

    # --- leaves -------------------------------------------------------------------

    def e_number_literal(self, n: Node) -> _E:
        return _const(*_literal(cparse.text(n), _line(n)))

    def e_true(self, n: Node) -> _E:
        return _const(1, INT)

    def e_false(self, n: Node) -> _E:
        return _const(0, INT)

    def e_null(self, n: Node) -> _E:
        return _const(0, PTR)

    def e_char_literal(self, n: Node) -> _E:
        s = cparse.text(n)[1:-1]
        if len(s) != 1:
            raise Unsupported("char_literal", _line(n))
        return _const(ord(s), INT)

    def e_identifier(self, n: Node) -> _E:
        """A local or parameter, a macro of the tree (expanded), else a configuration name."""
        name, line = cparse.text(n), _line(n)
        info = self.lookup(name)
        if info is not None:
            if info[0] == "array":
                raise Unsupported(f"array {name} used as a value", line)
            _, slot, ty = info
            return _E(lambda f: f[slot], ty, None, ("slot", slot))
        if name in self.program.defines and name not in self.expanding:
            text = self.program.defines[name]
            if not text.strip():
                raise Unsupported(f"empty macro {name}", line)
            return self.expand(name, text, line)
        return _E(_env_read(name, self.name), INT)

    # --- operators ----------------------------------------------------------------

    def e_parenthesized_expression(self, n: Node) -> _E:
        inner = _named(n)
        if len(inner) != 1:
            raise Unsupported("comma expression", _line(n))
        return self.expr(inner[0])

    def e_cast_expression(self, n: Node) -> _E:
        ty = self.type_of(n.child_by_field_name("type"))
        return _convert(self.expr(n.child_by_field_name("value")), ty)

    def e_unary_expression(self, n: Node) -> _E:
        op = n.child_by_field_name("operator").type
        a = self.expr(n.child_by_field_name("argument"))
        if op == "!":
            af = a.fn
            return fold(_E(lambda f: not af(f), INT, None, _mk("(not {0})", a)), a)
        ty = promote(a.ty)
        a = _convert(a, ty)
        af = a.fn
        if op == "+":
            return a
        if op == "-":
            return negate(a)
        if op != "~":
            raise Unsupported(f"unary {op}", _line(n))
        if ty[1]:
            return fold(_E(lambda f: ~af(f), ty, None, _mk("(~{0})", a)), a)
        mask = (1 << ty[0]) - 1
        return fold(_E(lambda f: af(f) ^ mask, ty, None, _mk("({0} ^ {1})", a, ("val", mask))),
                    a)

    def e_binary_expression(self, n: Node) -> _E:
        op = n.child_by_field_name("operator").type
        left = n.child_by_field_name("left")
        ty = self.cast_type(left) if op in ("-", "+") else None
        if ty is not None:  # ``(u32)-1`` read as a subtraction: a cast of ``-1``
            return self.cast_unary(ty, op, n.child_by_field_name("right"))
        a = self.expr(left)
        b = self.expr(n.child_by_field_name("right"))
        return arith(op, a, b, _line(n), self.name)

    def cast_type(self, n: Node) -> Type | None:
        """The type, if ``n`` is ``(T)`` for a type name that is not a variable or macro."""
        if n.type != "parenthesized_expression":
            return None
        inner = _named(n)
        if len(inner) != 1 or inner[0].type != "identifier":
            return None
        name = cparse.text(inner[0])
        if name not in _TYPES or self.lookup(name) is not None or name in self.program.defines:
            return None
        return _TYPES[name] if _TYPES[name] != VOID else None

    def cast_unary(self, ty: Type, op: str, right: Node) -> _E:
        """``(T) op R`` as C reads it: the cast and sign bind to R's leftmost operand."""
        if right.type == "binary_expression":
            a = self.cast_unary(ty, op, right.child_by_field_name("left"))
            b = self.expr(right.child_by_field_name("right"))
            return arith(right.child_by_field_name("operator").type, a, b, _line(right),
                         self.name)
        a = self.expr(right)
        a = _convert(a, promote(a.ty))
        if op == "-":
            a = negate(a)
        return _convert(a, ty)

    def e_conditional_expression(self, n: Node) -> _E:
        c = self.expr(n.child_by_field_name("condition"))
        x = self.expr(n.child_by_field_name("consequence"))
        y = self.expr(n.child_by_field_name("alternative"))
        ty = common(x.ty, y.ty)
        x, y = _convert(x, ty), _convert(y, ty)
        if c.const is not None:
            return x if c.const else y
        cf, xf, yf = c.fn, x.fn, y.fn
        return _E(lambda f: xf(f) if cf(f) else yf(f), ty, None,
                  _mk("({1} if {0} else {2})", c, x, y))
