"""Calls and macros: the tree's functions, its macros expanded as cpp would, the
kernel's ``BUG_ON``/``WARN*`` as events, a few built-ins, and every other call
read from the configuration. A mixin of :class:`~.expressions.ExprCompiler`.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from ...c import parse as cparse
from .limits import Unsupported
from .operators import fold, minmax
from .runtime import _E, _VOID, Event, _const, _convert, _Crash, _env_read, _line, _mk, _named
from .types import INT, PTR, ULONG, VOID, common

_PRINTERS = {"printk", "trace_printk", "no_printk", "pr_cont"}
_WARNS = ("WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE")


class Calls:
    """Handlers for calls, function-like macros and object-like macro expansion."""

    def e_call_expression(self, n: Node) -> _E:
        operand = cparse.cast_like_call(n)
        if operand is not None:  # ``(u32)(x)`` read as a call of ``(u32)``
            ty = self.type_of(n.child_by_field_name("function"), strip=True)
            return _convert(self.expr(operand), ty)
        callee = n.child_by_field_name("function")
        line = _line(n)
        if callee.type != "identifier":
            raise Unsupported("call through an expression", line)
        name = cparse.text(callee)
        if "for_each" in name:  # list_for_each_entry(...), kvm_for_each_vcpu(...): loops
            raise Unsupported(f"loop macro {name}", line)
        return self.call(name, _named(n.child_by_field_name("arguments")), line)

    def call(self, name: str, args: list[Node], line: int) -> _E:
        """``name(args)``: the first of these that knows ``name`` compiles it."""
        if name in ("BUG_ON", "BUG"):
            return self._bug(name, args, line)
        if name in _WARNS:
            return self._warn(name, args, line)
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
        return _E(_env_read(key, self.name), INT)

    def _bug(self, name: str, args: list[Node], line: int) -> _E:
        """``BUG_ON(c)``/``BUG()``: an event that stops the whole evaluation."""
        if name == "BUG_ON" and len(args) != 1:
            raise Unsupported("BUG_ON without one argument", line)
        cond = self.expr(args[0]).fast if args else (lambda f: 1)
        fname = self.name

        def bug(f):
            if cond(f):
                f[1].append(Event("bug", name, line, fname))
                raise _Crash
            return 0
        return _E(bug, INT)

    def _warn(self, name: str, args: list[Node], line: int) -> _E:
        """``WARN*(c, ...)``: an event each time ``c`` holds, and ``!!c`` as the value."""
        if not args:
            raise Unsupported(f"{name} without a condition", line)
        c = self.expr(args[0])
        cond, event = c.fast, Event("warn", name, line, self.name)  # events are immutable

        def warn(f):
            if cond(f):
                f[1].append(event)
                return 1
            return 0
        return _E(warn, INT, None, _mk("((f[1].append({1}) or 1) if {0} else 0)", c,
                                       ("val", event)))

    def builtin(self, name: str, args: list[Node], line: int) -> _E | None:
        if name in ("min", "max") and len(args) == 2:
            a, b = self.expr(args[0]), self.expr(args[1])
            return minmax(name, a, b, common(a.ty, b.ty))
        if name in ("min_t", "max_t") and len(args) == 3:
            ty = self.type_of(args[0])
            return minmax(name[:3], self.expr(args[1]), self.expr(args[2]), ty)
        if name == "ARRAY_SIZE" and len(args) == 1 and args[0].type == "identifier":
            info = self.lookup(cparse.text(args[0]))
            if info is not None and info[0] == "array" and isinstance(info[2], int):
                return _const(info[2], ULONG)
            return None
        if name == "array_index_nospec" and len(args) == 2:
            i, size = self.expr(args[0]), self.expr(args[1])
            iu, su = _convert(i, ULONG).fn, _convert(size, ULONG).fn
            jf = i.fn
            return fold(_E(lambda f: jf(f) if iu(f) < su(f) else 0, i.ty), i, size)
        return None

    def program_call(self, name: str, args: list[Node], line: int) -> _E:
        """A call of a function of the tree, compiled (once) by ``compile_other``."""
        target = self.compile_other(name)
        if len(args) != len(target.params):
            raise Unsupported(f"call of {name} with {len(args)} arguments", line)
        fns = []
        for a, (_, pty) in zip(args, target.params, strict=True):
            fns.append(self.pointer_arg(a) if pty == PTR else _convert(self.expr(a), pty).fast)
        rtype = INT if target.rtype == VOID else target.rtype
        fns_t = tuple(fns)
        # Compiled.enter in line (the body and locals are read at each call: a recursive
        # call is compiled before its target's body is)
        if len(fns_t) == 1:
            (g,) = fns_t

            def call1(f):
                r = target.body([f[0], f[1], g(f), *target.zeros])
                return 0 if r is None or r is _VOID else r
            return _E(call1, rtype)
        if len(fns_t) == 2:
            g, h = fns_t

            def call2(f):
                r = target.body([f[0], f[1], g(f), h(f), *target.zeros])
                return 0 if r is None or r is _VOID else r
            return _E(call2, rtype)
        return _E(lambda f: target.enter(f[0], f[1], [g(f) for g in fns_t]), rtype)

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
        return self.expand(name, text, line)

    def expand(self, name: str, text: str, line: int) -> _E:
        """Compile a macro's replacement text; a macro is never expanded inside itself."""
        self.expanding.add(name)
        try:
            return self.expr(_parse_expr(text))
        except Unsupported as e:
            raise Unsupported(f"macro {name}: {e.construct}", line) from None
        finally:
            self.expanding.discard(name)


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
