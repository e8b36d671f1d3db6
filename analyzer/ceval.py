"""A small evaluator for the C these functions are written in.

A function definition from the tree is compiled once into nested Python
closures (no tree walking at run time) with C integer semantics: fixed-width
types, integer promotion and the usual arithmetic conversions, unsigned
wrap-around, division truncating toward zero. ``BUG_ON``/``WARN*`` become
events. Anything outside the subset raises :class:`Unsupported` at compile
time, naming the construct and its line.

Names that are neither locals, parameters nor macros are read at run time
from ``env`` (``NR_CPUS``, ``threads_per_subcore``); a field read
``a->b.c`` reads ``env["c"]`` (0 when absent: pointers such as
``xive->kvm`` are only passed on); a call to a function outside the program
reads ``env["name:ARG,..."]`` (``cpu_has_feature:CPU_FTR_ARCH_300``).
Division by zero raises :class:`ModelError`; reading a local array out of
its bounds records an ``oob`` event and reads 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tree_sitter import Node

from . import cparse
from .errors import ModelLimit


@dataclass(frozen=True)
class Event:
    kind: str  # "bug" (stops), "warn", "oob"
    macro: str
    line: int
    function: str


@dataclass(frozen=True)
class Result:
    value: int | None
    events: tuple[Event, ...]
    crashed: bool


class Unsupported(ModelLimit):
    def __init__(self, construct: str, line: int) -> None:
        super().__init__(f"{construct} at line {line}")
        self.construct, self.line = construct, line


class ModelError(ModelLimit):
    """A run-time fault of the evaluated C (division by zero)."""


class Unbound(ModelLimit, KeyError):
    """A name the tree does not define and the configuration does not bind."""

    def __init__(self, name: str, function: str) -> None:
        super().__init__(f"{name} is neither defined in the tree nor bound by the model")
        self.name, self.function = name, function

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Program:
    functions: Mapping[str, tuple[Node, bytes]]
    defines: Mapping[str, str] = field(default_factory=dict)


# --- types ------------------------------------------------------------------

Type = tuple[int, bool]  # (bits, signed)
INT: Type = (32, True)
UINT: Type = (32, False)
LONG: Type = (64, True)
ULONG: Type = (64, False)
PTR: Type = (64, False)
BOOL: Type = (1, False)

_TYPES = {
    "u8": (8, False), "u16": (16, False), "u32": UINT, "u64": ULONG,
    "s8": (8, True), "s16": (16, True), "s32": INT, "s64": LONG,
    "__u8": (8, False), "__u16": (16, False), "__u32": UINT, "__u64": ULONG,
    "__s8": (8, True), "__s16": (16, True), "__s32": INT, "__s64": LONG,
    "uint8_t": (8, False), "uint16_t": (16, False), "uint32_t": UINT, "uint64_t": ULONG,
    "int8_t": (8, True), "int16_t": (16, True), "int32_t": INT, "int64_t": LONG,
    "char": (8, True), "signed char": (8, True), "unsigned char": (8, False),
    "short": (16, True), "unsigned short": (16, False), "int": INT, "signed": INT,
    "signed int": INT, "unsigned": UINT, "unsigned int": UINT, "long": LONG,
    "long int": LONG, "unsigned long": ULONG, "unsigned long int": ULONG,
    "long long": LONG, "unsigned long long": ULONG, "size_t": ULONG, "ssize_t": LONG,
    "bool": BOOL, "_Bool": BOOL, "void": INT,
}


def parse_type(text: str, line: int = 0) -> Type:
    words = [w for w in text.replace("const", " ").replace("volatile", " ").split()
             if w not in ("static", "inline", "__inline", "extern", "register")]
    name = " ".join(words)
    if name.startswith("struct ") or name.startswith("union ") or name.startswith("enum "):
        return INT if name.startswith("enum ") else PTR
    if name in _TYPES:
        return _TYPES[name]
    raise Unsupported(f"type {name!r}", line)


def conv(v: int, t: Type) -> int:
    bits, signed = t
    if bits == 1:
        return 1 if v else 0
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def promote(t: Type) -> Type:
    return INT if t[0] < 32 else t


def common(a: Type, b: Type) -> Type:
    a, b = promote(a), promote(b)
    if a == b:
        return a
    if a[1] == b[1]:
        return a if a[0] >= b[0] else b
    u, s = (a, b) if not a[1] else (b, a)
    if u[0] >= s[0]:
        return u
    return s


# --- run-time frame ----------------------------------------------------------


class _Crash(Exception):
    pass


class Frame:
    __slots__ = ("vars", "env", "events")

    def __init__(self, env: Mapping[str, int], events: list[Event]) -> None:
        self.vars: dict[str, object] = {}
        self.env = env
        self.events = events


Expr = Callable[[Frame], int]


def _line(n: Node) -> int:
    return n.start_point.row + 1


_INT_LIT = re.compile(r"^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)$")


def _literal(text: str, line: int) -> tuple[int, Type]:
    """An integer constant and its C type (C11 6.4.4.1: the first type that fits)."""
    if text.startswith("-"):  # tree-sitter folds a leading minus into the literal
        v, t = _literal(text[1:].lstrip(), line)
        t = INT if t[0] < 32 else t
        return conv(-v, t), t
    m = _INT_LIT.match(text)
    if not m:
        raise Unsupported(f"literal {text!r}", line)
    digits, suffix = m.groups()
    v = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 8 if digits[0] == "0"
                                                                 and len(digits) > 1 else 10)
    suffix = suffix.lower()
    decimal = not digits.startswith("0") or digits == "0"
    if "u" in suffix:
        cands = [UINT, ULONG] if "l" not in suffix else [ULONG]
    elif "l" in suffix:
        cands = [LONG] if decimal else [LONG, ULONG]
    else:
        cands = [INT, LONG] if decimal else [INT, UINT, LONG, ULONG]
    for t in cands:
        if v < 1 << (t[0] - (1 if t[1] else 0)):
            return v, t
    return v & ((1 << 64) - 1), ULONG


# --- compiler -----------------------------------------------------------------


class _Compiler:
    def __init__(self, program: Program, name: str, cache: dict) -> None:
        self.program = program
        self.name = name
        self.cache = cache
        self.scopes: list[dict[str, Type | tuple]] = []
        self.expanding: set[str] = set()

    # names
    def lookup(self, name: str):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def expr(self, n: Node) -> tuple[Expr, Type]:
        t = n.type
        line = _line(n)
        if t == "parenthesized_expression":
            inner = [c for c in n.named_children if c.type != "comment"]
            if len(inner) != 1:
                raise Unsupported("comma expression", line)
            return self.expr(inner[0])
        if t == "number_literal":
            v, ty = _literal(cparse.text(n), line)
            return (lambda f, v=v: v), ty
        if t in ("true", "false"):
            v = 1 if t == "true" else 0
            return (lambda f, v=v: v), INT
        if t == "char_literal":
            s = cparse.text(n)[1:-1]
            if len(s) != 1:
                raise Unsupported("char literal", line)
            v = ord(s)
            return (lambda f, v=v: v), INT
        if t == "identifier":
            return self.ident(cparse.text(n), line)
        if t == "field_expression":
            fld = cparse.text(n.child_by_field_name("field"))
            return (lambda f, k=fld: f.env.get(k, 0)), INT
        if t == "unary_expression":
            return self.unary(n)
        if t == "binary_expression":
            return self.binary(n)
        if t == "conditional_expression":
            c, _ = self.expr(n.child_by_field_name("condition"))
            a, ta = self.expr(n.child_by_field_name("consequence"))
            b, tb = self.expr(n.child_by_field_name("alternative"))
            ty = common(ta, tb)
            return (lambda f: conv(a(f), ty) if c(f) else conv(b(f), ty)), ty
        if t == "cast_expression":
            ty = parse_type(cparse.text(n.child_by_field_name("type")), line)
            v, _ = self.expr(n.child_by_field_name("value"))
            return (lambda f: conv(v(f), ty)), ty
        if t == "call_expression":
            operand = cparse.cast_like_call(n)
            if operand is not None:
                ty = parse_type(cparse.text(n.child_by_field_name("function"))[1:-1], line)
                v, _ = self.expr(operand)
                return (lambda f: conv(v(f), ty)), ty
            return self.call(n)
        if t == "assignment_expression":
            return self.assign(n)
        if t == "update_expression":
            return self.update(n)
        if t == "subscript_expression":
            return self.subscript(n)
        raise Unsupported(t, line)

    def ident(self, name: str, line: int) -> tuple[Expr, Type]:
        ty = self.lookup(name)
        if ty is not None:
            if isinstance(ty, tuple) and ty and ty[0] == "array":
                raise Unsupported(f"array {name} used as a value", line)
            return (lambda f, k=name: f.vars[k]), ty
        if name in self.program.defines and name not in self.expanding:
            text = self.program.defines[name]
            if not text:
                raise Unsupported(f"empty macro {name}", line)
            self.expanding.add(name)
            try:
                return self.expr(_parse_expr(text, name))
            finally:
                self.expanding.discard(name)

        return self._env_read(name), INT

    def _env_read(self, key: str) -> Expr:
        """Read ``key`` from the run-time configuration (free names, external calls)."""
        def read(f: Frame, k=key, fname=self.name):
            try:
                return f.env[k]
            except KeyError:
                raise Unbound(k, fname) from None
        return read

    def unary(self, n: Node) -> tuple[Expr, Type]:
        op = n.child_by_field_name("operator").type
        a, ta = self.expr(n.child_by_field_name("argument"))
        if op == "!":
            return (lambda f: 0 if a(f) else 1), INT
        ty = promote(ta)
        if op == "-":
            return (lambda f: conv(-a(f), ty)), ty
        if op == "+":
            return (lambda f: conv(a(f), ty)), ty
        if op == "~":
            return (lambda f: conv(~a(f), ty)), ty
        raise Unsupported(f"unary {op}", _line(n))

    def binary(self, n: Node) -> tuple[Expr, Type]:
        op = n.child_by_field_name("operator").type
        a, ta = self.expr(n.child_by_field_name("left"))
        b, tb = self.expr(n.child_by_field_name("right"))
        line = _line(n)
        if op == "&&":
            return (lambda f: 1 if a(f) and b(f) else 0), INT
        if op == "||":
            return (lambda f: 1 if a(f) or b(f) else 0), INT
        cmps = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
                ">=": lambda x, y: x >= y, "==": lambda x, y: x == y,
                "!=": lambda x, y: x != y}
        if op in cmps:
            fn = cmps[op]
            ty = common(ta, tb)
            return (lambda f: 1 if fn(conv(a(f), ty), conv(b(f), ty)) else 0), INT
        return self._arith(op, a, ta, b, tb, line)

    def call(self, n: Node) -> tuple[Expr, Type]:
        callee = n.child_by_field_name("function")
        line = _line(n)
        if callee.type != "identifier":
            raise Unsupported("call through an expression", line)
        name = cparse.text(callee)
        args = [c for c in n.child_by_field_name("arguments").named_children
                if c.type != "comment"]
        if name in ("BUG_ON", "BUG"):
            cond = self.expr(args[0])[0] if args else (lambda f: 1)

            def bug(f, fname=self.name, macro=name):
                if cond(f):
                    f.events.append(Event("bug", macro, line, fname))
                    raise _Crash
                return 0
            return bug, INT
        if name in ("WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE"):
            cond, _ = self.expr(args[0])

            def warn(f, fname=self.name, macro=name):
                if cond(f):
                    f.events.append(Event("warn", macro, line, fname))
                    return 1
                return 0
            return warn, INT
        if name in ("likely", "unlikely"):
            return self.expr(args[0])
        if name.startswith("pr_") or name in ("printk", "trace_printk"):
            return (lambda f: 0), INT
        if name in self.program.functions:
            arg_fns = [self.expr(a)[0] for a in args]
            target = compile_function(self.program, name, _cache=self.cache)
            ret = self.cache[("rtype", name)]

            def call(f):
                vals = [g(f) for g in arg_fns]
                return target.run(vals, f.env, f.events)
            return call, ret
        key = f"{name}:{','.join(' '.join(cparse.text(a).split()) for a in args)}"
        return self._env_read(key), INT

    def _target(self, n: Node) -> tuple[str, Type]:
        n = cparse.strip_parens(n) if n.type == "parenthesized_expression" else n
        if n.type != "identifier":
            raise Unsupported(f"assignment to {n.type}", _line(n))
        name = cparse.text(n)
        ty = self.lookup(name)
        if ty is None or (isinstance(ty, tuple) and ty and ty[0] == "array"):
            raise Unsupported(f"assignment to {name}", _line(n))
        return name, ty

    def assign(self, n: Node) -> tuple[Expr, Type]:
        name, ty = self._target(n.child_by_field_name("left"))
        op = n.child_by_field_name("operator").type
        right = n.child_by_field_name("right")
        if op == "=":
            v, _ = self.expr(right)
        else:
            def current(f, k=name):
                return f.vars[k]
            b, tb = self.expr(right)
            v, _ = self._arith(op[:-1], current, ty, b, tb, _line(n))

        def assign(f, k=name):
            f.vars[k] = x = conv(v(f), ty)
            return x
        return assign, ty

    def _arith(self, op, a, ta, b, tb, line):
        ty = promote(ta) if op in ("<<", ">>") else common(ta, tb)
        if op in ("/", "%"):
            def div(f, rem=op == "%"):
                x, y = conv(a(f), ty), conv(b(f), ty)
                if y == 0:
                    raise ModelError(f"division by zero at line {line} of {self.name}()")
                q = abs(x) // abs(y)
                if (x < 0) != (y < 0):
                    q = -q
                return conv(x - y * q if rem else q, ty)
            return div, ty
        fns = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
               "&": lambda x, y: x & y, "|": lambda x, y: x | y, "^": lambda x, y: x ^ y,
               "<<": lambda x, y: x << y, ">>": lambda x, y: x >> y}
        if op not in fns:
            raise Unsupported(f"operator {op}", line)
        fn = fns[op]
        return (lambda f: conv(fn(conv(a(f), ty), b(f) if op in ("<<", ">>") else
                                  conv(b(f), ty)), ty)), ty

    def update(self, n: Node) -> tuple[Expr, Type]:
        name, ty = self._target(n.child_by_field_name("argument"))
        op = n.child_by_field_name("operator").type
        delta = 1 if op == "++" else -1
        prefix = n.children[0].type in ("++", "--")

        def upd(f, k=name):
            old = f.vars[k]
            f.vars[k] = new = conv(old + delta, ty)
            return new if prefix else old
        return upd, ty

    def subscript(self, n: Node) -> tuple[Expr, Type]:
        arr = n.child_by_field_name("argument")
        line = _line(n)
        if arr.type != "identifier":
            raise Unsupported("subscript of a non-local array", line)
        name = cparse.text(arr)
        info = self.lookup(name)
        if not (isinstance(info, tuple) and info and info[0] == "array"):
            raise Unsupported(f"subscript of {name}", line)
        _, ety, size = info
        idx, _ = self.expr(n.child_by_field_name("index"))

        def read(f, k=name, fname=self.name):
            i = idx(f)
            values = f.vars[k]
            if 0 <= i < size:
                return values[i]
            f.events.append(Event("oob", f"{k}[{i}]", line, fname))
            return 0
        return read, ety

    # statements: each returns a closure f -> None (go on) or ("ret", value)
    def stmt(self, n: Node):
        t = n.type
        line = _line(n)
        if t == "compound_statement":
            self.scopes.append({})
            try:
                parts = [self.stmt(c) for c in n.named_children if c.type != "comment"]
            finally:
                self.scopes.pop()

            def block(f):
                for p in parts:
                    r = p(f)
                    if r is not None:
                        return r
                return None
            return block
        if t == "declaration":
            return self.declaration(n)
        if t == "expression_statement":
            inner = [c for c in n.named_children if c.type != "comment"]
            if not inner:
                return lambda f: None
            e, _ = self.expr(inner[0])

            def run(f):
                e(f)
                return None
            return run
        if t == "if_statement":
            c, _ = self.expr(n.child_by_field_name("condition"))
            then = self.stmt(n.child_by_field_name("consequence"))
            alt_node = n.child_by_field_name("alternative")
            if alt_node is not None and alt_node.type == "else_clause":
                alt_node = [x for x in alt_node.named_children if x.type != "comment"][0]
            alt = self.stmt(alt_node) if alt_node is not None else (lambda f: None)

            def if_(f):
                return then(f) if c(f) else alt(f)
            return if_
        if t == "return_statement":
            inner = [c for c in n.named_children if c.type != "comment"]
            if not inner:
                return lambda f: ("ret", None)
            e, _ = self.expr(inner[0])
            rt = self.cache[("rtype", self.name)]
            return lambda f: ("ret", conv(e(f), rt))
        if t in ("comment", "empty_statement"):
            return lambda f: None
        raise Unsupported(t, line)

    def declaration(self, n: Node):
        base = parse_type(cparse.text(n.child_by_field_name("type")), _line(n))
        parts = []
        for d in n.children_by_field_name("declarator"):
            init = None
            if d.type == "init_declarator":
                init = d.child_by_field_name("value")
                d = d.child_by_field_name("declarator")
            ty = base
            if d.type == "pointer_declarator":
                ty = PTR
                while d.type == "pointer_declarator":
                    d = d.child_by_field_name("declarator")
            if d.type == "array_declarator":
                name = cparse.text(d.child_by_field_name("declarator"))
                if init is None or init.type != "initializer_list":
                    raise Unsupported("array without initialiser", _line(d))
                values = [self.expr(v)[0] for v in init.named_children if v.type != "comment"]
                size_node = d.child_by_field_name("size")
                size = len(values)
                if size_node is not None:
                    sz, _ = self.expr(size_node)
                    size = sz(Frame({}, []))
                self.scopes[-1][name] = ("array", ty, size)

                def arr(f, k=name, vals=values, ety=ty, size=size):
                    got = [conv(v(f), ety) for v in vals]
                    f.vars[k] = got + [0] * (size - len(got))
                    return None
                parts.append(arr)
                continue
            if d.type != "identifier":
                raise Unsupported(f"declarator {d.type}", _line(d))
            name = cparse.text(d)
            if init is not None:
                e, _ = self.expr(init)
                self.scopes[-1][name] = ty

                def dec(f, k=name, e=e, ty=ty):
                    f.vars[k] = conv(e(f), ty)
                    return None
            else:
                self.scopes[-1][name] = ty

                def dec(f, k=name):
                    f.vars[k] = 0
                    return None
            parts.append(dec)

        def run(f):
            for p in parts:
                p(f)
            return None
        return run


_EXPR_CACHE: dict[tuple[str, str], Node] = {}


def _parse_expr(text: str, name: str) -> Node:
    key = (name, text)
    if key not in _EXPR_CACHE:
        src = f"long long __m = ({text});".encode()
        tree = cparse.parse(src)
        decl = tree.root_node.children[0]
        init = decl.child_by_field_name("declarator").child_by_field_name("value")
        _EXPR_CACHE[key] = init
    return _EXPR_CACHE[key]


class Compiled:
    """A compiled function: call ``fn(*args, env=...)``."""

    def __init__(self, name: str, params: list[tuple[str, Type]], body) -> None:
        self.name, self.params, self.body = name, params, body

    def run(self, args, env, events):
        f = Frame(env, events)
        for (pname, ty), v in zip(self.params, args, strict=False):
            f.vars[pname] = conv(v, ty) if v is not None else 0
        r = self.body(f)
        return r[1] if r is not None and r[1] is not None else 0

    def __call__(self, *args: int, env: Mapping[str, int]) -> Result:
        events: list[Event] = []
        try:
            value = self.run(list(args), env, events)
        except _Crash:
            return Result(None, tuple(events), True)
        return Result(value, tuple(events), False)


def _signature(fn: Node) -> tuple[Type, list[tuple[str, Type]]]:
    line = _line(fn)
    rtype_text = cparse.text(fn.child_by_field_name("type"))
    d = fn.child_by_field_name("declarator")
    pointer = False
    while d is not None and d.type != "function_declarator":
        pointer = pointer or d.type == "pointer_declarator"
        d = d.child_by_field_name("declarator")
    rtype = PTR if pointer else parse_type(rtype_text, line)
    params = []
    for p in d.child_by_field_name("parameters").named_children:
        if p.type != "parameter_declaration":
            continue
        pty = parse_type(cparse.text(p.child_by_field_name("type")), line)
        pd = p.child_by_field_name("declarator")
        if pd is None:
            continue  # (void)
        while pd.type != "identifier":
            if pd.type == "pointer_declarator":
                pty = PTR
            pd = pd.child_by_field_name("declarator")
        params.append((cparse.text(pd), pty))
    return rtype, params


def compile_function(program: Program, name: str, _cache: dict | None = None) -> Compiled:
    cache = _cache if _cache is not None else _program_cache(program)
    if name in cache:
        return cache[name]
    fn, _ = program.functions[name]
    try:
        rtype, params = _signature(fn)
        cache[("rtype", name)] = rtype
        compiled = Compiled(name, params, None)
        cache[name] = compiled  # recursion compiles to a call of this object
        comp = _Compiler(program, name, cache)
        comp.scopes.append(dict(params))
        compiled.body = comp.stmt(fn.child_by_field_name("body"))
    except Unsupported as e:
        cache.pop(name, None)
        if e.function is None:
            e.function = name
        raise
    return compiled


_CACHES: dict[int, tuple[Program, dict]] = {}


def _program_cache(program: Program) -> dict:
    got = _CACHES.get(id(program))
    if got is None or got[0] is not program:
        got = (program, {})
        _CACHES[id(program)] = got
    return got[1]
