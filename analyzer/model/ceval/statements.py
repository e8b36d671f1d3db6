"""Statements compiled to closures, and compiling a whole function."""

from __future__ import annotations

from collections.abc import Callable

from tree_sitter import Node

from ...c import parse as cparse
from .expressions import ExprCompiler
from .limits import ModelError, Unsupported
from .runtime import (
    _BREAK,
    _E,
    _S,
    _VOID,
    MAX_STEPS,
    Compiled,
    Fn,
    Program,
    _block,
    _convert,
    _Goto,
    _line,
    _mk,
    _named,
    _nothing,
    _quiet,
)
from .types import PTR, VOID, Type, conv, parse_type, promote


class _Compiler(ExprCompiler):
    """Adds statements: blocks, declarations, if, return, switch, goto."""

    def compile_other(self, name: str) -> Compiled:
        return compile_function(self.program, name)

    def stmt(self, n: Node) -> _S | None:
        self._enter(n)
        try:
            return self._stmt(n)
        finally:
            self.depth -= 1

    def _stmt(self, n: Node) -> _S | None:
        """One handler per statement type (pyflakes style)."""
        if n.is_missing or n.is_error:
            raise Unsupported("syntax error", _line(n))
        if n.type in ("comment", "empty_statement", "preproc_call"):
            return None
        handler = getattr(self, f"s_{n.type}", None)
        if handler is None:
            raise Unsupported(n.type, _line(n))
        return handler(n)

    def s_compound_statement(self, n: Node) -> _S | None:
        self.scopes.append({})
        try:
            parts = [p for c in _named(n) if (p := self.stmt(c)) is not None]
        finally:
            self.scopes.pop()
        return _block(parts)

    def s_declaration(self, n: Node):
        return self.declaration(n)

    def s_expression_statement(self, n: Node) -> _S | None:
        inner = _named(n)
        if not inner:
            return None
        if len(inner) != 1:
            raise Unsupported("comma expression", _line(n))
        e = self.expr(inner[0])
        if any(c.is_missing or c.is_error for c in n.children):
            raise Unsupported("syntax error", _line(n))
        store = getattr(e.fn, "store", None)  # ``x = E;``: a block stores in place
        return _S(e.fast, False, None if store is None else ("store", *store))

    def s_if_statement(self, n: Node) -> _S | None:
        c = self.expr(n.child_by_field_name("condition"))
        then = self.stmt(n.child_by_field_name("consequence"))
        alt_node = n.child_by_field_name("alternative")
        if alt_node is not None and alt_node.type == "else_clause":
            alt_node = _named(alt_node)[0]
        alt = self.stmt(alt_node) if alt_node is not None else None
        if c.const is not None:
            return then if c.const else alt
        returns = any(s is not None and s.returns for s in (then, alt))
        tf = _nothing if then is None else then.fn if then.returns or not returns else \
            _quiet(then.fn)
        af = _nothing if alt is None else alt.fn if alt.returns or not returns else \
            _quiet(alt.fn)
        cf = c.fast
        if af is _nothing:
            inline = ("if", cf, then) if then is not None else None
            return _S(lambda f: tf(f) if cf(f) else None, returns, inline)
        return _S(lambda f: tf(f) if cf(f) else af(f), returns)

    def s_return_statement(self, n: Node) -> _S:
        inner = _named(n)
        if not inner:
            if self.rtype != VOID:
                raise Unsupported("return without a value", _line(n))
            return _S(lambda f: _VOID, True, ("const", _VOID))
        e = self.expr(inner[0])
        if self.rtype == VOID:
            ef = e.fast

            def ret_void(f):
                ef(f)
                return _VOID
            return _S(ret_void, True)
        e = _convert(e, self.rtype)
        if e.const is not None:
            v = e.const
            return _S(lambda f: v, True, ("const", v))
        return _S(e.fast, True)

    def s_switch_statement(self, n: Node) -> _S:
        return self.switch(n)

    def s_break_statement(self, n: Node) -> _S:
        return _S(lambda f: _BREAK, True)

    def s_goto_statement(self, n: Node) -> _S:
        label = cparse.text(n.child_by_field_name("label"))
        if label not in self.labels:
            raise Unsupported(f"goto {label} (a label inside a block)", _line(n))
        target = self.labels[label]
        return _S(lambda f: target, True)

    def switch(self, n: Node) -> _S:
        """``switch``: the matching case (or default) and every case after it, until a
        ``break`` (which ends the switch) or a ``return``."""
        c = self.expr(n.child_by_field_name("condition"))
        ty = promote(c.ty)
        c = _convert(c, ty)
        cases: list[tuple[int | None, Callable | None]] = []
        self.scopes.append({})
        try:
            for case in _named(n.child_by_field_name("body")):
                if case.type != "case_statement":
                    raise Unsupported(f"{case.type} outside a case", _line(case))
                value = case.child_by_field_name("value")
                const = None
                if value is not None:
                    v = self.expr(value)
                    if v.const is None:
                        raise Unsupported("case label that is not a constant", _line(case))
                    const = conv(v.const, ty)
                parts = [p for x in _named(case) if x != value and (p := self.stmt(x))]
                body = _block(parts)
                cases.append((const, None if body is None else
                              body.fn if body.returns else _quiet(body.fn)))
        finally:
            self.scopes.pop()
        table = {v: i for i, (v, _) in reversed(list(enumerate(cases))) if v is not None}
        default = next((i for i, (v, _) in enumerate(cases) if v is None), len(cases))
        bodies = tuple(b for _, b in cases)
        cf = c.fast

        def run(f):
            for body in bodies[table.get(cf(f), default):]:
                r = None if body is None else body(f)
                if r is _BREAK:
                    return None
                if r is not None:
                    return r
            return None
        return _S(run, True)

    def function_body(self, body: Node) -> _S | None:
        """The body; with labels at its top level, ``goto`` jumps between its statements
        (error paths), at most :data:`MAX_STEPS` times per call."""
        stmts = _named(body)
        names = [cparse.text(s.child_by_field_name("label"))
                 for s in stmts if s.type == "labeled_statement"]
        if not names:
            return self.stmt(body)
        self.labels = {name: _Goto(name) for name in names}
        self.scopes.append({})
        try:
            index, parts = {}, []
            for s in stmts:
                while s.type == "labeled_statement":
                    index[cparse.text(s.child_by_field_name("label"))] = len(parts)
                    s = _named(s)[-1]
                parts.append(self.stmt(s))
        finally:
            self.scopes.pop()
        fns = tuple((p.fn if p.returns else _quiet(p.fn)) if p else _nothing for p in parts)
        jump = {self.labels[n]: i for n, i in index.items()}
        fname = self.name

        def run(f):
            i, steps = 0, 0
            while i < len(fns):
                r = fns[i](f)
                if r is None:
                    i += 1
                elif isinstance(r, _Goto):
                    steps += 1
                    if steps > MAX_STEPS:
                        raise ModelError(f"more than {MAX_STEPS} jumps in {fname}()", fname)
                    i = jump[r]
                else:
                    return r
            return None
        return _S(run, True)

    def declaration(self, n: Node):
        base = self.type_of(n.child_by_field_name("type"))
        parts = []
        for d in n.children_by_field_name("declarator"):
            init = None
            if d.type == "init_declarator":
                init = d.child_by_field_name("value")
                d = d.child_by_field_name("declarator")
            ty = base
            while d.type in ("pointer_declarator", "parenthesized_declarator"):
                ty = PTR
                d = d.child_by_field_name("declarator") or _named(d)[0]
            if d.type == "array_declarator":
                parts.extend(self.array(d, ty, init))
                continue
            if d.type != "identifier":
                raise Unsupported(f"declarator {d.type}", _line(d))
            name = cparse.text(d)
            if init is None:
                self.declare(name, ty)  # frames start zeroed
                continue
            if init.type == "initializer_list":
                raise Unsupported("initializer_list for a scalar", _line(init))
            ef = _convert(self.expr(init), ty).fast
            slot = self.declare(name, ty)  # after the initialiser: ``int x = x;`` reads outer

            def dec(f, slot=slot, ef=ef):
                f[slot] = ef(f)
            parts.append(_S(dec, False, ("store", slot, ef)))
        return _block(parts)

    def array(self, d: Node, ety: Type, init: Node | None) -> list:
        line = _line(d)
        inner = d.child_by_field_name("declarator")
        if inner.type != "identifier":
            raise Unsupported("multi-dimensional array", line)
        name = cparse.text(inner)
        if init is None or init.type != "initializer_list":
            raise Unsupported("array without initialiser", line)
        elems = []
        for v in _named(init):
            if v.type in ("initializer_pair", "initializer_list"):
                raise Unsupported(v.type, _line(v))
            elems.append(_convert(self.expr(v), ety))
        size_node = d.child_by_field_name("size")
        size: int | Fn = len(elems)
        if size_node is not None:
            s = self.expr(size_node)
            size = s.const if s.const is not None else s.fn
        if isinstance(size, int) and len(elems) > size:
            raise Unsupported("excess elements in array initializer", line)
        if isinstance(size, int) and all(e.const is not None for e in elems):
            self.scopes[-1][name] = ("array", tuple(e.const for e in elems), size, ety)
            return []
        slot = 2 + self.nslots
        self.nslots += 1
        self.scopes[-1][name] = ("array", slot, size, ety)
        fns = [e.fn for e in elems]
        sizef = (lambda f: size) if isinstance(size, int) else size
        parts = [("val", size) if isinstance(size, int) else ("obj", size), *elems]
        cells = _E(lambda f: [sizef(f), *(g(f) for g in fns)], PTR, None, _mk(
            "[" + ", ".join(f"{{{i}}}" for i in range(len(parts))) + "]", *parts)).fast

        def build(f):
            f[slot] = cells(f)
        return [_S(build, False, ("store", slot, cells))]


def _signature(fn: Node) -> tuple[Type, list[tuple[str, Type]]]:
    line = _line(fn)
    d = fn.child_by_field_name("declarator")
    pointer = False
    while d is not None and d.type != "function_declarator":
        pointer = pointer or d.type == "pointer_declarator"
        d = d.child_by_field_name("declarator")
    if d is None:
        raise Unsupported("function definition without a declarator", line)
    rtype = PTR if pointer else parse_type(cparse.text(fn.child_by_field_name("type")), line)
    params = []
    for p in d.child_by_field_name("parameters").named_children:
        if p.type == "comment":
            continue
        if p.type != "parameter_declaration":
            raise Unsupported(p.type, _line(p))
        pty = parse_type(cparse.text(p.child_by_field_name("type")), _line(p))
        pd = p.child_by_field_name("declarator")
        if pd is None:
            if pty == VOID:
                continue  # (void)
            raise Unsupported("unnamed parameter", _line(p))
        while pd.type != "identifier":
            if pd.type in ("pointer_declarator", "array_declarator"):
                pty = PTR
            nxt = pd.child_by_field_name("declarator")
            if nxt is None:
                raise Unsupported(f"parameter {pd.type}", _line(pd))
            pd = nxt
        if pty == VOID:
            raise Unsupported("void parameter", _line(p))
        params.append((cparse.text(pd), pty))
    return rtype, params


def _first_error_line(fn: Node) -> int:
    stack = [fn]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            return _line(n)
        stack.extend(c for c in n.children if c.has_error or c.is_missing)
    return _line(fn)


def compile_function(program: Program, name: str) -> Compiled:
    """``fn(*args, env=Mapping[str, int]) -> Result``, compiled once per program and name.

    Raises :class:`Unsupported` for C outside the subset (in ``name`` or any
    function it calls), ``KeyError`` if ``name`` is not in the program.
    """
    cache = program._cache
    got = cache.get(name)
    if isinstance(got, Compiled):
        return got
    if isinstance(got, Unsupported):
        raise got
    fn, _ = program.functions[name]
    outermost = "__compiling" not in cache
    if outermost:
        cache["__compiling"] = []
    try:
        rtype, params = _signature(fn)
        compiled = Compiled(name, rtype, params)
        cache[name] = compiled  # a recursive call compiles to a call of this object
        cache["__compiling"].append(name)
        comp = _Compiler(program, name, rtype)
        comp.scopes.append({})
        for pname, pty in params:
            comp.declare(pname, pty)
        body = fn.child_by_field_name("body")
        if body is None:
            raise Unsupported("function without a body", _line(fn))
        top = comp.function_body(body)
        compiled.body = _nothing if top is None else top.fn if top.returns else \
            _quiet(top.fn)
        compiled.zeros = [0] * (comp.nslots - len(params))
    except Unsupported as e:
        if e.function is None:
            e.function = name
        for n in cache["__compiling"]:  # callers half-built around this failure
            cache.pop(n, None)
        cache["__compiling"].clear()
        cache[name] = e
        raise
    except (AttributeError, TypeError, IndexError, ValueError):
        if not fn.has_error:
            raise  # a bug of the evaluator: it must surface, not become a finding
        for n in cache["__compiling"]:
            cache.pop(n, None)
        cache["__compiling"].clear()
        err = Unsupported("syntax error", _first_error_line(fn))
        err.function = name
        cache[name] = err
        raise err from None
    finally:
        if outermost:
            cache.pop("__compiling", None)
    return compiled
