"""Expressions compiled to closures, one handler per node type."""

from __future__ import annotations

import re
from collections.abc import Callable

from tree_sitter import Node

from ...c import parse as cparse
from .limits import ModelError, Unsupported
from .runtime import (
    _E,
    Event,
    Fn,
    Program,
    _const,
    _convert,
    _Crash,
    _env_read,
    _Goto,
    _line,
    _named,
    _wrapper,
)
from .types import _TYPES, INT, PTR, ULONG, VOID, Type, _literal, common, conv, parse_type, promote

_CMP: dict[str, Callable[[Fn, Fn], Fn]] = {
    "<": lambda a, b: lambda f: a(f) < b(f),
    "<=": lambda a, b: lambda f: a(f) <= b(f),
    ">": lambda a, b: lambda f: a(f) > b(f),
    ">=": lambda a, b: lambda f: a(f) >= b(f),
    "==": lambda a, b: lambda f: a(f) == b(f),
    "!=": lambda a, b: lambda f: a(f) != b(f),
}
_RING: dict[str, Callable[[Fn, Fn], Fn]] = {
    "+": lambda a, b: lambda f: a(f) + b(f),
    "-": lambda a, b: lambda f: a(f) - b(f),
    "*": lambda a, b: lambda f: a(f) * b(f),
    "&": lambda a, b: lambda f: a(f) & b(f),
    "|": lambda a, b: lambda f: a(f) | b(f),
    "^": lambda a, b: lambda f: a(f) ^ b(f),
}
# Fused ring operation + wrap, for the common types (saves a closure call).
_RING_U = {
    "+": lambda a, b, m: lambda f: (a(f) + b(f)) & m,
    "-": lambda a, b, m: lambda f: (a(f) - b(f)) & m,
    "*": lambda a, b, m: lambda f: (a(f) * b(f)) & m,
}
_RING_S = {
    "+": lambda a, b, m, h: lambda f: ((a(f) + b(f) + h) & m) - h,
    "-": lambda a, b, m, h: lambda f: ((a(f) - b(f) + h) & m) - h,
    "*": lambda a, b, m, h: lambda f: ((a(f) * b(f) + h) & m) - h,
}
# The same with a constant right operand (``x >= MAX_SMT_THREADS``).
_CMP_K: dict[str, Callable[[Fn, int], Fn]] = {
    "<": lambda a, k: lambda f: a(f) < k,
    "<=": lambda a, k: lambda f: a(f) <= k,
    ">": lambda a, k: lambda f: a(f) > k,
    ">=": lambda a, k: lambda f: a(f) >= k,
    "==": lambda a, k: lambda f: a(f) == k,
    "!=": lambda a, k: lambda f: a(f) != k,
}
_RING_UK = {
    "+": lambda a, k, m: lambda f: (a(f) + k) & m,
    "-": lambda a, k, m: lambda f: (a(f) - k) & m,
    "*": lambda a, k, m: lambda f: (a(f) * k) & m,
}
_RING_SK = {
    "+": lambda a, k, m, h: lambda f: ((a(f) + k + h) & m) - h,
    "-": lambda a, k, m, h: lambda f: ((a(f) - k + h) & m) - h,
    "*": lambda a, k, m, h: lambda f: ((a(f) * k + h) & m) - h,
}
_PRINTERS = {"printk", "trace_printk", "no_printk", "pr_cont"}
_WARNS = ("WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE")


MAX_DEPTH = 200  # nesting of expressions and statements compiled; deeper is undecided


class ExprCompiler:
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

    # --- names --------------------------------------------------------------

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

    # --- expressions ----------------------------------------------------------

    def expr(self, n: Node) -> _E:
        """Compile an expression; the depth is bounded (1,000 nested parentheses or a
        900-term sum are undecided, not a RecursionError)."""
        self._enter(n)
        try:
            return self._expr(n)
        finally:
            self.depth -= 1

    def _expr(self, n: Node) -> _E:
        t = n.type
        line = _line(n)
        if t == "parenthesized_expression":
            inner = _named(n)
            if len(inner) != 1:
                raise Unsupported("comma expression", line)
            return self.expr(inner[0])
        if t == "number_literal":
            return _const(*_literal(cparse.text(n), line))
        if t in ("true", "false"):
            return _const(1 if t == "true" else 0, INT)
        if t == "null":
            return _const(0, PTR)
        if t == "char_literal":
            s = cparse.text(n)[1:-1]
            if len(s) != 1:
                raise Unsupported("char_literal", line)
            return _const(ord(s), INT)
        if t == "identifier":
            return self.ident(cparse.text(n), line)
        if t == "field_expression":
            fld = cparse.text(n.child_by_field_name("field"))
            return _E(_env_read(fld, self.name), INT)
        if t == "unary_expression":
            return self.unary(n)
        if t == "binary_expression":
            return self.binary(n)
        if t == "conditional_expression":
            return self.conditional(n)
        if t == "cast_expression":
            ty = self.type_of(n.child_by_field_name("type"))
            return _convert(self.expr(n.child_by_field_name("value")), ty)
        if t == "call_expression":
            operand = cparse.cast_like_call(n)
            if operand is not None:
                ty = self.type_of(n.child_by_field_name("function"), strip=True)
                return _convert(self.expr(operand), ty)
            return self.call(n)
        if t == "assignment_expression":
            return self.assign(n)
        if t == "update_expression":
            return self.update(n)
        if t == "subscript_expression":
            return self.subscript(n)
        raise Unsupported(t, line)

    def type_of(self, n: Node, strip: bool = False) -> Type:
        s = cparse.text(n)
        if strip:
            s = s.strip()[1:-1]
        ty = parse_type(s, _line(n))
        if ty == VOID:
            raise Unsupported("cast to void", _line(n))
        return ty

    def ident(self, name: str, line: int) -> _E:
        info = self.lookup(name)
        if info is not None:
            if info[0] == "array":
                raise Unsupported(f"array {name} used as a value", line)
            _, slot, ty = info
            return _E(lambda f: f[slot], ty)
        if name in self.program.defines and name not in self.expanding:
            text = self.program.defines[name]
            if not text.strip():
                raise Unsupported(f"empty macro {name}", line)
            return self._expand(name, text, line)
        return _E(_env_read(name, self.name), INT)

    def _expand(self, name: str, text: str, line: int) -> _E:
        """Compile a macro's replacement text; a macro is never expanded inside itself."""
        self.expanding.add(name)
        try:
            return self.expr(_parse_expr(text))
        except Unsupported as e:
            raise Unsupported(f"macro {name}: {e.construct}", line) from None
        finally:
            self.expanding.discard(name)

    def _fold(self, e: _E, *parts: _E) -> _E:
        """``e`` as a constant when every operand is one (faults stay at run time)."""
        if all(p.const is not None for p in parts):
            try:
                v = int(e.fn(None))  # type: ignore[arg-type]
            except ModelError:
                return e
            return _const(v, e.ty)
        return e

    def unary(self, n: Node) -> _E:
        op = n.child_by_field_name("operator").type
        a = self.expr(n.child_by_field_name("argument"))
        af = a.fn
        if op == "!":
            return self._fold(_E(lambda f: not af(f), INT), a)
        ty = promote(a.ty)
        a = _convert(a, ty)
        af = a.fn
        if op == "+":
            return a
        if op == "-":
            out = _E(_wrapper(ty)(lambda f: -af(f)), ty)
        elif op == "~":
            if ty[1]:
                out = _E(lambda f: ~af(f), ty)
            else:
                mask = (1 << ty[0]) - 1
                out = _E(lambda f: af(f) ^ mask, ty)
        else:
            raise Unsupported(f"unary {op}", _line(n))
        return self._fold(out, a)

    def binary(self, n: Node) -> _E:
        op = n.child_by_field_name("operator").type
        left = n.child_by_field_name("left")
        ty = self.cast_type(left) if op in ("-", "+") else None
        if ty is not None:  # ``(u32)-1`` read as a subtraction: a cast of ``-1``
            return self.cast_unary(ty, op, n.child_by_field_name("right"))
        a = self.expr(left)
        b = self.expr(n.child_by_field_name("right"))
        return self.arith(op, a, b, _line(n))

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
            return self.arith(right.child_by_field_name("operator").type, a, b, _line(right))
        a = self.expr(right)
        a = _convert(a, promote(a.ty))
        if op == "-":
            af, pty = a.fn, a.ty
            a = self._fold(_E(_wrapper(pty)(lambda f: -af(f)), pty), a)
        return _convert(a, ty)

    def arith(self, op: str, a: _E, b: _E, line: int) -> _E:
        af, bf = a.fn, b.fn
        if op == "&&":
            if a.const is not None and not a.const:
                return _const(0, INT)
            return self._fold(_E(lambda f: af(f) and bf(f) != 0, INT), a, b)
        if op == "||":
            if a.const:
                return _const(1, INT)
            return self._fold(_E(lambda f: af(f) != 0 or bf(f) != 0, INT), a, b)
        if op in ("<<", ">>"):
            return self._fold(self.shift(op, a, b, line), a, b)
        ty = common(a.ty, b.ty)
        if op in _CMP:
            a, b = _convert(a, ty), _convert(b, ty)
            if b.const is not None and a.const is None:
                return _E(_CMP_K[op](a.fn, b.const), INT)
            return self._fold(_E(_CMP[op](a.fn, b.fn), INT), a, b)
        if op in ("/", "%"):
            a, b = _convert(a, ty), _convert(b, ty)
            if not ty[1] and b.const and a.const is None:  # unsigned, constant divisor
                af, k = a.fn, b.const
                return _E((lambda f: af(f) // k) if op == "/" else (lambda f: af(f) % k), ty)
            return self._fold(self.divide(op, a.fn, b.fn, ty, line), a, b)
        if op not in _RING:
            raise Unsupported(f"operator {op}", line)
        # + - * & | ^ commute with reduction modulo 2**bits, and a signed common
        # type holds both operands' values: no operand conversion is needed.
        bits, signed = ty
        mask = (1 << bits) - 1
        k = None if a.const is not None or b.const is None else conv(b.const, ty)
        if op in _RING_U and not signed:
            fn = _RING_U[op](af, bf, mask) if k is None else _RING_UK[op](af, k, mask)
        elif op in _RING_S and signed:
            half = 1 << (bits - 1)
            fn = _RING_S[op](af, bf, mask, half) if k is None else \
                _RING_SK[op](af, k, mask, half)
        elif op in ("&", "|", "^") and (signed or (a.ty[1] is False and b.ty[1] is False)):
            fn = _RING[op](af, bf)  # in range already
        else:
            fn = _wrapper(ty)(_RING[op](af, bf))
        return self._fold(_E(fn, ty), a, b)

    def divide(self, op: str, af: Fn, bf: Fn, ty: Type, line: int) -> _E:
        fname = self.name

        def zero():
            return ModelError(f"division by zero at line {line} of {fname}()", fname, line)
        if not ty[1]:
            if op == "/":
                def udiv(f):
                    y = bf(f)
                    if not y:
                        raise zero()
                    return af(f) // y
                return _E(udiv, ty)

            def umod(f):
                y = bf(f)
                if not y:
                    raise zero()
                return af(f) % y
            return _E(umod, ty)
        wrap = conv

        def sdiv(f, rem=op == "%"):
            x, y = af(f), bf(f)
            if not y:
                raise zero()
            if x >= 0 and y > 0:
                return x % y if rem else x // y
            q = abs(x) // abs(y)
            if (x < 0) != (y < 0):
                q = -q
            return x - y * q if rem else wrap(q, ty)
        return _E(sdiv, ty)

    def shift(self, op: str, a: _E, b: _E, line: int) -> _E:
        ty = promote(a.ty)
        a = _convert(a, ty)
        af, bf = a.fn, b.fn
        bits, fname = ty[0], self.name

        def count(f):
            y = bf(f)
            if 0 <= y < bits:
                return y
            raise ModelError(f"shift by {y} at line {line} of {fname}() ({bits}-bit operand)",
                             fname, line)
        if op == ">>":
            return _E(lambda f: af(f) >> count(f), ty)
        return _E(_wrapper(ty)(lambda f: af(f) << count(f)), ty)

    def conditional(self, n: Node) -> _E:
        c = self.expr(n.child_by_field_name("condition"))
        x = self.expr(n.child_by_field_name("consequence"))
        y = self.expr(n.child_by_field_name("alternative"))
        ty = common(x.ty, y.ty)
        x, y = _convert(x, ty), _convert(y, ty)
        if c.const is not None:
            return x if c.const else y
        cf, xf, yf = c.fn, x.fn, y.fn
        return _E(lambda f: xf(f) if cf(f) else yf(f), ty)

    # --- calls ------------------------------------------------------------------

    def call(self, n: Node) -> _E:
        callee = n.child_by_field_name("function")
        line = _line(n)
        if callee.type != "identifier":
            raise Unsupported("call through an expression", line)
        name = cparse.text(callee)
        if "for_each" in name:  # list_for_each_entry(...), kvm_for_each_vcpu(...): loops
            raise Unsupported(f"loop macro {name}", line)
        args = _named(n.child_by_field_name("arguments"))
        fname = self.name
        if name in ("BUG_ON", "BUG"):
            if name == "BUG_ON" and len(args) != 1:
                raise Unsupported("BUG_ON without one argument", line)
            cond = self.expr(args[0]).fn if args else (lambda f: 1)

            def bug(f):
                if cond(f):
                    f[1].append(Event("bug", name, line, fname))
                    raise _Crash
                return 0
            return _E(bug, INT)
        if name in _WARNS:
            if not args:
                raise Unsupported(f"{name} without a condition", line)
            cond = self.expr(args[0]).fn

            def warn(f):
                if cond(f):
                    f[1].append(Event("warn", name, line, fname))
                    return 1
                return 0
            return _E(warn, INT)
        if name in ("likely", "unlikely") and len(args) == 1:
            return self.expr(args[0])
        if name in self.program.functions:
            return self.program_call(name, args, line)
        if name.startswith("pr_") or name in _PRINTERS:
            return _const(0, INT)
        builtin = self.builtin(name, args, line)
        if builtin is not None:
            return builtin
        if name in self.program.macros and name not in self.expanding:
            return self.macro_call(name, args, line)
        key = f"{name}:{','.join(' '.join(cparse.text(a).split()) for a in args)}"
        return _E(_env_read(key, fname), INT)

    def macro_call(self, name: str, args: list[Node], line: int) -> _E:
        """A function-like macro of the tree, expanded as cpp would (arguments
        substituted as text, parenthesised) and compiled in place."""
        params, body = self.program.macros[name]
        if len(params) != len(args) or "#" in body:
            raise Unsupported(f"macro {name} with {len(args)} arguments", line)
        texts = {p: f"({cparse.text(a)})" for p, a in zip(params, args, strict=True)}
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, params)) + r")\b") if params \
            else None
        text = pattern.sub(lambda m: texts[m.group(1)], body) if pattern else body
        return self._expand(name, text, line)

    def builtin(self, name: str, args: list[Node], line: int) -> _E | None:
        if name in ("min", "max") and len(args) == 2:
            a, b = self.expr(args[0]), self.expr(args[1])
            return self._minmax(name, a, b, common(a.ty, b.ty))
        if name in ("min_t", "max_t") and len(args) == 3:
            ty = self.type_of(args[0])
            return self._minmax(name[:3], self.expr(args[1]), self.expr(args[2]), ty)
        if name == "ARRAY_SIZE" and len(args) == 1 and args[0].type == "identifier":
            info = self.lookup(cparse.text(args[0]))
            if info is not None and info[0] == "array" and isinstance(info[2], int):
                return _const(info[2], ULONG)
            return None
        if name == "array_index_nospec" and len(args) == 2:
            i, size = self.expr(args[0]), self.expr(args[1])
            iu, su = _convert(i, ULONG).fn, _convert(size, ULONG).fn
            jf = i.fn
            return self._fold(_E(lambda f: jf(f) if iu(f) < su(f) else 0, i.ty), i, size)
        return None

    def _minmax(self, op: str, a: _E, b: _E, ty: Type) -> _E:
        a, b = _convert(a, ty), _convert(b, ty)
        af, bf = a.fn, b.fn
        pick = min if op == "min" else max
        return self._fold(_E(lambda f: pick(af(f), bf(f)), ty), a, b)

    def program_call(self, name: str, args: list[Node], line: int) -> _E:
        target = self.compile_other(name)
        if len(args) != len(target.params):
            raise Unsupported(f"call of {name} with {len(args)} arguments", line)
        fns = []
        for a, (_, pty) in zip(args, target.params, strict=True):
            fns.append(self.pointer_arg(a) if pty == PTR else _convert(self.expr(a), pty).fn)
        rtype = INT if target.rtype == VOID else target.rtype
        fns_t = tuple(fns)
        if len(fns_t) == 1:
            (g,) = fns_t
            return _E(lambda f: target.enter(f[0], f[1], [g(f)]), rtype)
        if len(fns_t) == 2:
            g, h = fns_t
            return _E(lambda f: target.enter(f[0], f[1], [g(f), h(f)]), rtype)
        return _E(lambda f: target.enter(f[0], f[1], [g(f) for g in fns_t]), rtype)

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

    # --- assignments --------------------------------------------------------------

    def _target(self, n: Node) -> tuple[int, Type]:
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

    def assign(self, n: Node) -> _E:
        slot, ty = self._target(n.child_by_field_name("left"))
        op = n.child_by_field_name("operator").type
        right = self.expr(n.child_by_field_name("right"))
        if op != "=":
            right = self.arith(op[:-1], _E(lambda f: f[slot], ty), right, _line(n))
        vf = _convert(right, ty).fn

        def assign(f):
            f[slot] = v = vf(f)
            return v
        return _E(assign, ty)

    def update(self, n: Node) -> _E:
        slot, ty = self._target(n.child_by_field_name("argument"))
        delta = 1 if n.child_by_field_name("operator").type == "++" else -1
        prefix = n.children[0].type in ("++", "--")
        step = _wrapper(ty)(lambda f: f[slot] + delta)

        def upd(f):
            old = f[slot]
            f[slot] = new = step(f)
            return new if prefix else old
        return _E(upd, ty)

    def subscript(self, n: Node) -> _E:
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
        ix, fname = idx.fn, self.name

        def oob(f, i):
            f[1].append(Event("oob", f"{name}[{i}]", line, fname))
            return 0
        if isinstance(values, tuple) and isinstance(size, int):
            table = values + (0,) * (size - len(values))
            if idx.const is not None and 0 <= idx.const < size:
                return _const(table[idx.const], ety)

            def read(f):
                i = ix(f)
                if 0 <= i < size:
                    return table[i]
                return oob(f, i)
            return _E(read, ety)
        slot = values  # built at run time: [size, v0, v1, ...] in a slot

        def read_dyn(f):
            i = ix(f)
            cells = f[slot]
            if 0 <= i < cells[0]:
                return cells[1 + i] if 1 + i < len(cells) else 0
            return oob(f, i)
        return _E(read_dyn, ety)

    # --- statements: each compiles to a _S. A closure that ``returns`` gives None to
    # go on, or the function's value (an int, or _VOID for ``return;``); a plain one
    # never returns and its result is ignored. ----------------------------------------


_EXPR_CACHE: dict[str, Node] = {}


def _parse_expr(text: str) -> Node:
    """A macro's replacement text parsed as a C expression."""
    node = _EXPR_CACHE.get(text)
    if node is None:
        src = f"long long __m = ({text});".encode()
        decl = cparse.parse(src).root_node.children[0]
        node = None
        if decl.type == "declaration":
            d = decl.child_by_field_name("declarator")
            if d is not None and d.type == "init_declarator":
                node = d.child_by_field_name("value")
        if node is None or node.has_error:
            raise Unsupported(f"macro text {text!r}", 1)
        _EXPR_CACHE[text] = node
    return node
