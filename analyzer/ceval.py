"""A small evaluator for the C these functions are written in.

A function definition from the tree is compiled once into nested Python
closures (no tree walking at run time) with C integer semantics for
powerpc64 (LP64: ``int`` 32 bits, ``long`` and pointers 64): fixed-width
types, integer promotion and the usual arithmetic conversions, unsigned
wrap-around, division truncating toward zero, assignment converting to the
target's declared type. Subtrees made of constants (literals, macros that
expand to literals) are folded at compile time.

Choices where C leaves room or the kernel needs a stand-in:

- ``BUG_ON(c)``/``BUG()`` record an event of kind ``"bug"`` and stop the whole
  evaluation (``Result.crashed``, ``value`` None). ``WARN_ON``,
  ``WARN_ON_ONCE``, ``WARN``, ``WARN_ONCE`` record ``"warn"`` (every time: one
  evaluation is one boot) and evaluate to ``!!c``.
- Division or remainder by zero, and a shift count that is negative or not
  below the width of the promoted left operand, raise :class:`ModelError`
  (undefined behaviour: the model has no answer). Signed overflow wraps (the
  kernel is built with ``-fno-strict-overflow``).
- Reading a local array out of its bounds records an event of kind ``"oob"``
  (``macro`` is ``"name[index]"``) and reads 0. Local arrays are read-only:
  writing an element is :class:`Unsupported`.
- Names that are neither locals, parameters nor macros (``Program.defines``,
  expanded recursively; a self-referential macro stays a name, as in cpp) are
  read at run time from ``env`` as ``int`` (``NR_CPUS``,
  ``threads_per_subcore``). A field read ``a->b.c`` reads ``env["c"]``. A
  missing key raises :class:`Unbound` (a ``KeyError``) naming it. Where a
  pointer is only passed on (an argument for a pointer parameter of a
  function in the program, such as ``xive->kvm``), a missing name or field,
  or an expression the model cannot evaluate (``&x``), passes 0.
- A call of a function outside the program reads
  ``env["name:ARG,ARG"]`` (argument texts with whitespace collapsed), e.g.
  ``env["cpu_has_feature:CPU_FTR_ARCH_300"] = 1``; its arguments are not
  evaluated. ``likely``/``unlikely`` are the identity, ``pr_*``/``printk``
  do nothing; ``min``/``max``/``min_t``/``max_t``, ``ARRAY_SIZE`` (of a local
  array) and ``array_index_nospec`` are built in.
- Writes to fields or through pointers are :class:`Unsupported`, as are loops,
  ``goto``, ``switch``, ``sizeof``, strings used as values and unknown types.
  ``Unsupported`` is raised at compile time only and names the construct and
  its 1-based line.
- ``(u32)-1`` (which tree-sitter reads as ``(u32) - 1`` for want of a symbol
  table) is read as the cast of ``-1`` when the parenthesised name is a known
  integer type and not a variable or macro.
- Uninitialised locals read 0; a non-void function that falls off its end
  returns 0; a ``void`` function's ``Result.value`` is None. Calling a
  compiled function from Python with fewer arguments than parameters passes 0
  for the rest.
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
    macro: str  # "BUG_ON", "WARN_ONCE", ...; "name[index]" for "oob"
    line: int  # 1-based, in the file of ``function``
    function: str


@dataclass(frozen=True)
class Result:
    value: int | None  # None when crashed, or for a void function
    events: tuple[Event, ...]
    crashed: bool


class Unsupported(ModelLimit):
    """C outside the subset, found at compile time: ``"for_statement at line 12"``."""

    def __init__(self, construct: str, line: int) -> None:
        super().__init__(f"{construct} at line {line}")
        self.construct, self.line = construct, line


class ModelError(ModelLimit):
    """A run-time fault of the evaluated C: division by zero, a bad shift count."""

    def __init__(self, message: str, function: str | None = None, line: int = 0) -> None:
        super().__init__(message)
        self.function, self.line = function, line


class Unbound(ModelLimit, KeyError):
    """A name the tree does not define and the configuration does not bind."""

    def __init__(self, name: str, function: str) -> None:
        super().__init__(f"{name} is neither defined in the tree nor bound by the model")
        self.name, self.function = name, function

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Program:
    """Everything compile needs from the tree: function definitions and
    object-like ``#define``s (name -> replacement text)."""

    functions: Mapping[str, tuple[Node, bytes]]
    defines: Mapping[str, str] = field(default_factory=dict)
    # function-like macros: name -> (parameters, replacement text)
    macros: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)


# --- types ------------------------------------------------------------------

Type = tuple[int, bool]  # (bits, signed)
INT: Type = (32, True)
UINT: Type = (32, False)
LONG: Type = (64, True)
ULONG: Type = (64, False)
PTR: Type = (64, False)
BOOL: Type = (1, False)
VOID: Type = (0, False)

_TYPES = {
    "u8": (8, False), "u16": (16, False), "u32": UINT, "u64": ULONG,
    "s8": (8, True), "s16": (16, True), "s32": INT, "s64": LONG,
    "__u8": (8, False), "__u16": (16, False), "__u32": UINT, "__u64": ULONG,
    "__s8": (8, True), "__s16": (16, True), "__s32": INT, "__s64": LONG,
    "uint8_t": (8, False), "uint16_t": (16, False), "uint32_t": UINT, "uint64_t": ULONG,
    "int8_t": (8, True), "int16_t": (16, True), "int32_t": INT, "int64_t": LONG,
    "char": (8, True), "signed char": (8, True), "unsigned char": (8, False),
    "short": (16, True), "short int": (16, True), "signed short": (16, True),
    "unsigned short": (16, False), "unsigned short int": (16, False),
    "int": INT, "signed": INT, "signed int": INT, "unsigned": UINT, "unsigned int": UINT,
    "long": LONG, "long int": LONG, "signed long": LONG, "unsigned long": ULONG,
    "unsigned long int": ULONG, "long long": LONG, "long long int": LONG,
    "unsigned long long": ULONG, "unsigned long long int": ULONG,
    "size_t": ULONG, "ssize_t": LONG, "uintptr_t": ULONG, "phys_addr_t": ULONG,
    "bool": BOOL, "_Bool": BOOL, "void": VOID,
}
_IGNORED_WORDS = {"const", "volatile", "static", "inline", "__inline", "__inline__", "extern",
                  "register"}


def parse_type(text: str, line: int = 0) -> Type:
    """The type named by a C type spelling; structs and unions stand for pointers."""
    words = [w for w in text.split() if w not in _IGNORED_WORDS]
    if words and words[0] in ("struct", "union"):
        return PTR
    if words and words[0] == "enum":
        return INT
    name = " ".join(words)
    if name in _TYPES:
        return _TYPES[name]
    raise Unsupported(f"type {name!r}", line)


def conv(v: int, t: Type) -> int:
    """``v`` converted to ``t`` (C11 6.3.1.3, modulo 2**bits for signed too)."""
    bits, signed = t
    if bits <= 1:
        return 1 if v else 0
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def promote(t: Type) -> Type:
    return INT if t[0] < 32 else t


def common(a: Type, b: Type) -> Type:
    """The usual arithmetic conversions (C11 6.3.1.8)."""
    a, b = promote(a), promote(b)
    if a == b:
        return a
    if a[1] == b[1]:
        return a if a[0] >= b[0] else b
    u, s = (a, b) if not a[1] else (b, a)
    return u if u[0] >= s[0] else s


def _preserves(src: Type, dst: Type) -> bool:
    """Does every value of ``src`` keep its value in ``dst``?"""
    if src in (dst, BOOL):
        return True
    if dst in (BOOL, VOID) or src == VOID:
        return False
    if src[1] and not dst[1]:
        return False
    if not src[1] and dst[1]:
        return src[0] < dst[0]
    return src[0] <= dst[0]


# --- compiled expressions -------------------------------------------------------
#
# A frame is a list: [env, events, slot0, slot1, ...]; parameters take the first
# slots. Every value held in a slot or returned by an expression closure is in
# the range of its C type (comparisons may yield Python bools, which are ints).

Fn = Callable[[list], int]


@dataclass(frozen=True)
class _E:
    fn: Fn
    ty: Type
    const: int | None = None


class _Crash(Exception):
    pass


class _Void:
    """What ``return;`` gives: a statement's result that is not None and not a value."""


_VOID = _Void()


class _Break:
    """What ``break`` gives: ends the enclosing switch."""


_BREAK = _Break()
MAX_STEPS = 10_000  # jumps per call (a backward goto is a loop): beyond, no answer


@dataclass(frozen=True, eq=False)
class _Goto:
    """What ``goto LABEL`` gives: the function body resumes at the label."""

    label: str


def _const(v: int, ty: Type) -> _E:
    return _E(lambda f: v, ty, v)


def _wrapper(ty: Type) -> Callable[[Fn], Fn]:
    """Closure transformer: wrap a closure's (unbounded) result into ``ty``."""
    bits, signed = ty
    if bits <= 1:
        return lambda a: (lambda f: 1 if a(f) else 0)
    mask = (1 << bits) - 1
    if not signed:
        return lambda a: (lambda f: a(f) & mask)
    half = 1 << (bits - 1)
    return lambda a: (lambda f: ((a(f) + half) & mask) - half)


def _convert(e: _E, dst: Type) -> _E:
    """``e`` converted to ``dst`` (as by assignment or a cast)."""
    if dst == VOID:
        return _E(e.fn, VOID, None)
    if _preserves(e.ty, dst):
        return _E(e.fn, dst, e.const)
    fn = _wrapper(dst)(e.fn)
    return _E(fn, dst, None if e.const is None else conv(e.const, dst))


def _line(n: Node) -> int:
    return n.start_point.row + 1


def _named(n: Node) -> list[Node]:
    return [c for c in n.named_children if c.type != "comment"]


_INT_LIT = re.compile(r"^(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)$")


def _literal(text: str, line: int) -> tuple[int, Type]:
    """An integer constant and its C type (C11 6.4.4.1: the first type that fits)."""
    text = text.replace("'", "")
    if text.startswith("-"):  # tree-sitter may fold a leading minus into the literal
        v, t = _literal(text[1:].lstrip(), line)
        t = promote(t)
        return conv(-v, t), t
    m = _INT_LIT.match(text)
    if not m:
        raise Unsupported(f"literal {text!r}", line)
    digits, suffix = m.groups()
    low = digits.lower()
    if low.startswith("0x"):
        v = int(digits, 16)
    elif low.startswith("0b"):
        v = int(digits[2:], 2)
    else:
        v = int(digits, 8 if digits[0] == "0" and len(digits) > 1 else 10)
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


def _env_read(key: str, fname: str, ty: Type = INT, default: int | None = None) -> Fn:
    """Read ``key`` from the run-time configuration, as a value of ``ty``."""
    bits, signed = ty
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)

    def read(f):
        try:
            v = f[0][key]
        except KeyError:
            if default is not None:
                return default
            raise Unbound(key, fname) from None
        if v is None:
            return 0
        if lo <= v < hi:
            return v
        return conv(v, ty)
    return read


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


class _Compiler:
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
            self.expanding.add(name)
            try:
                return self.expr(_parse_expr(text))
            except Unsupported as e:
                raise Unsupported(f"macro {name}: {e.construct}", line) from None
            finally:
                self.expanding.discard(name)
        return _E(_env_read(name, self.name), INT)

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
        self.expanding.add(name)
        try:
            return self.expr(_parse_expr(text))
        except Unsupported as e:
            raise Unsupported(f"macro {name}: {e.construct}", line) from None
        finally:
            self.expanding.discard(name)

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
        target = compile_function(self.program, name)
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

    def stmt(self, n: Node) -> _S | None:
        self._enter(n)
        try:
            return self._stmt(n)
        finally:
            self.depth -= 1

    def _stmt(self, n: Node) -> _S | None:
        t = n.type
        line = _line(n)
        if n.is_missing or n.is_error:
            raise Unsupported("syntax error", line)
        if t == "compound_statement":
            self.scopes.append({})
            try:
                parts = [p for c in _named(n) if (p := self.stmt(c)) is not None]
            finally:
                self.scopes.pop()
            return _block(parts)
        if t == "declaration":
            return self.declaration(n)
        if t == "expression_statement":
            inner = _named(n)
            if not inner:
                return None
            if len(inner) != 1:
                raise Unsupported("comma expression", line)
            e = self.expr(inner[0])
            if any(c.is_missing or c.is_error for c in n.children):
                raise Unsupported("syntax error", line)
            return _S(e.fn, False)
        if t == "if_statement":
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
            cf = c.fn
            if af is _nothing:
                return _S(lambda f: tf(f) if cf(f) else None, returns)
            return _S(lambda f: tf(f) if cf(f) else af(f), returns)
        if t == "return_statement":
            inner = _named(n)
            if not inner:
                if self.rtype != VOID:
                    raise Unsupported("return without a value", line)
                return _S(lambda f: _VOID, True)
            e = self.expr(inner[0])
            if self.rtype == VOID:
                ef = e.fn

                def ret_void(f):
                    ef(f)
                    return _VOID
                return _S(ret_void, True)
            e = _convert(e, self.rtype)
            if e.const is not None:
                v = e.const
                return _S(lambda f: v, True)
            return _S(e.fn, True)
        if t in ("comment", "empty_statement", "preproc_call"):
            return None
        if t == "switch_statement":
            return self.switch(n)
        if t == "break_statement":
            return _S(lambda f: _BREAK, True)
        if t == "goto_statement":
            label = cparse.text(n.child_by_field_name("label"))
            if label not in self.labels:
                raise Unsupported(f"goto {label} (a label inside a block)", line)
            target = self.labels[label]
            return _S(lambda f: target, True)
        raise Unsupported(t, line)

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
        cf = c.fn

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
            ef = _convert(self.expr(init), ty).fn
            slot = self.declare(name, ty)  # after the initialiser: ``int x = x;`` reads outer

            def dec(f, slot=slot, ef=ef):
                f[slot] = ef(f)
            parts.append(_S(dec, False))
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

        def build(f):
            f[slot] = [sizef(f), *(g(f) for g in fns)]
        return [_S(build, False)]


def _nothing(f):
    return None


@dataclass(frozen=True)
class _S:
    fn: Callable[[list], object]
    returns: bool  # may give the function's value (else its result is ignored)


def _quiet(fn: Callable[[list], object]) -> Callable[[list], object]:
    def stmt(f):
        fn(f)
    return stmt


def _block(parts: list[_S]) -> _S | None:
    """Statements in sequence, as runs of plain ones each ended by one that may return."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    segments: list[tuple[tuple, Callable | None]] = []
    plain: list = []
    for p in parts:
        if p.returns:
            segments.append((tuple(plain), p.fn))
            plain = []
        else:
            plain.append(p.fn)
    if not segments:
        run = tuple(plain)

        def plain_block(f):
            for p in run:
                p(f)
        return _S(plain_block, False)
    if plain:
        segments.append((tuple(plain), None))
    if len(segments) == 1 and segments[0][1] is not None:
        first, last = segments[0]

        def tail_block(f):
            for p in first:
                p(f)
            return last(f)
        return _S(tail_block, True)
    segs = tuple(segments)

    def block(f):
        for run, ret in segs:
            for p in run:
                p(f)
            if ret is not None:
                r = ret(f)
                if r is not None:
                    return r
        return None
    return _S(block, True)


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


class Compiled:
    """A compiled function: ``fn(*args, env=...) -> Result``."""

    def __init__(self, name: str, rtype: Type, params: list[tuple[str, Type]]) -> None:
        self.name, self.rtype, self.params = name, rtype, params
        self.body: Callable[[list], object] = _nothing
        self.zeros: list[int] = []
        self._bounds = [_range(ty) for _, ty in params]
        self._results: dict[int, Result] = {}  # value -> Result without events: shared

    def enter(self, env: Mapping[str, int], events: list[Event], args: list[int]) -> int:
        """Run with arguments already converted to the parameter types."""
        f = [env, events, *args]
        if self.zeros:
            f += self.zeros
        r = self.body(f)
        return 0 if r is None or r is _VOID else r

    def __call__(self, *args: int | None, env: Mapping[str, int] | None = None) -> Result:
        vals = list(args)
        for i, (lo, hi, ty) in enumerate(self._bounds):
            if i >= len(vals):
                vals.append(0)
                continue
            v = vals[i]
            if v is None:
                vals[i] = 0
            elif not lo <= v < hi:
                vals[i] = conv(v, ty)
        del vals[len(self._bounds):]
        events: list[Event] = []
        try:
            value = self.enter({} if env is None else env, events, vals)
        except _Crash:
            return Result(None, tuple(events), True)
        except RecursionError:
            raise ModelError(f"recursion too deep in {self.name}()", self.name) from None
        if events:
            return Result(None if self.rtype == VOID else int(value), tuple(events), False)
        r = self._results.get(value)
        if r is None:
            if len(self._results) > 4096:
                self._results.clear()
            r = self._results[value] = Result(None if self.rtype == VOID else int(value), (),
                                              False)
        return r


def _range(ty: Type) -> tuple[int, int, Type]:
    bits, signed = ty
    if bits <= 1:
        return 0, 2, ty
    return (-(1 << (bits - 1)), 1 << (bits - 1), ty) if signed else (0, 1 << bits, ty)


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
