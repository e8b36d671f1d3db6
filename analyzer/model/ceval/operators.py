"""C's binary operators on compiled operands, with constant folding (C11 6.5).

Pure functions of compiled operands (:class:`_E`): the expression compiler
picks the operands, these pick the closure. The tables fuse an operation
with its wrap-around for the common types, and a constant right operand
into the closure, because the model sweep calls these closures millions of
times.
"""

from __future__ import annotations

from collections.abc import Callable

from .limits import ModelError, Unsupported
from .runtime import _E, Fn, _const, _convert, _mk, _wrap_src, _wrapper
from .types import INT, Type, common, conv, promote

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


def fold(e: _E, *parts: _E) -> _E:
    """``e`` as a constant when every operand is one (faults stay at run time)."""
    if all(p.const is not None for p in parts):
        try:
            v = int(e.fn(None))  # type: ignore[arg-type]
        except ModelError:
            return e
        return _const(v, e.ty)
    return e


def negate(a: _E) -> _E:
    """Unary minus of an operand already promoted."""
    af, ty = a.fn, a.ty
    return fold(_E(_wrapper(ty)(lambda f: -af(f)), ty, None, _wrap_src(ty, _mk("(-{0})", a))),
                a)


def arith(op: str, a: _E, b: _E, line: int, fname: str) -> _E:
    """``a op b`` for every binary operator but the comma; ``fname`` names faults."""
    af, bf = a.fn, b.fn
    if op == "&&":
        if a.const is not None and not a.const:
            return _const(0, INT)
        return fold(_E(lambda f: af(f) and bf(f) != 0, INT, None,
                       _mk("({0} and {1} != 0)", a, b)), a, b)
    if op == "||":
        if a.const:
            return _const(1, INT)
        return fold(_E(lambda f: af(f) != 0 or bf(f) != 0, INT, None,
                       _mk("({0} != 0 or {1} != 0)", a, b)), a, b)
    if op in ("<<", ">>"):
        return fold(shift(op, a, b, line, fname), a, b)
    ty = common(a.ty, b.ty)
    if op in _CMP:
        a, b = _convert(a, ty), _convert(b, ty)
        src = _mk(f"({{0}} {op} {{1}})", a, b)
        if b.const is not None and a.const is None:
            return _E(_CMP_K[op](a.fn, b.const), INT, None, src)
        return fold(_E(_CMP[op](a.fn, b.fn), INT, None, src), a, b)
    if op in ("/", "%"):
        a, b = _convert(a, ty), _convert(b, ty)
        if not ty[1] and b.const and a.const is None:  # unsigned, constant divisor
            af, k = a.fn, b.const
            return _E((lambda f: af(f) // k) if op == "/" else (lambda f: af(f) % k), ty, None,
                      _mk("({0} // {1})" if op == "/" else "({0} % {1})", a, ("val", k)))
        return fold(divide(op, a, b, ty, line, fname), a, b)
    if op not in _RING:
        raise Unsupported(f"operator {op}", line)
    fn, src = _ring(op, a, b, ty)
    return fold(_E(fn, ty, None, src), a, b)


def _ring(op: str, a: _E, b: _E, ty: Type) -> tuple[Fn, tuple]:
    """+ - * & | ^ commute with reduction modulo 2**bits, and a signed common type
    holds both operands' values: no operand conversion is needed. (The closure, and
    its source.)"""
    af, bf = a.fn, b.fn
    bits, signed = ty
    mask = (1 << bits) - 1
    k = None if a.const is not None or b.const is None else conv(b.const, ty)
    right = b if k is None else ("val", k)
    if op in _RING_U and not signed:
        return (_RING_U[op](af, bf, mask) if k is None else _RING_UK[op](af, k, mask),
                _mk(f"(({{0}} {op} {{1}}) & {{2}})", a, right, ("val", mask)))
    if op in _RING_S and signed:
        half = 1 << (bits - 1)
        return (_RING_S[op](af, bf, mask, half) if k is None else
                _RING_SK[op](af, k, mask, half),
                _mk(f"((({{0}} {op} {{1}} + {{3}}) & {{2}}) - {{3}})", a, right,
                    ("val", mask), ("val", half)))
    plain = _mk(f"({{0}} {op} {{1}})", a, b)
    if op in ("&", "|", "^") and (signed or (a.ty[1] is False and b.ty[1] is False)):
        return _RING[op](af, bf), plain  # in range already
    return _wrapper(ty)(_RING[op](af, bf)), _wrap_src(ty, plain)


def divide(op: str, a: _E, b: _E, ty: Type, line: int, fname: str) -> _E:
    """``/`` and ``%`` truncating toward zero; division by zero is a :class:`ModelError`.
    (``a`` and ``b`` are converted to ``ty`` already.)"""
    af, bf = a.fn, b.fn
    def zero():
        return ModelError(f"division by zero at line {line} of {fname}()", fname, line)

    def fail():
        raise zero()
    y, x = ("tmp",), ("tmp",)
    if not ty[1]:
        # the divisor first, as the closure does
        src = _mk("({0} %s {2} if ({2} := {1}) else {3}())" % ("//" if op == "/" else "%"),
                  a, b, y, ("val", fail))
        if op == "/":
            def udiv(f):
                y = bf(f)
                if not y:
                    raise zero()
                return af(f) // y
            return _E(udiv, ty, None, src)

        def umod(f):
            y = bf(f)
            if not y:
                raise zero()
            return af(f) % y
        return _E(umod, ty, None, src)
    wrap = conv

    def slow(x, y, rem=op == "%"):
        if not y:
            raise zero()
        if x >= 0 and y > 0:
            return x % y if rem else x // y
        q = abs(x) // abs(y)
        if (x < 0) != (y < 0):
            q = -q
        return x - y * q if rem else wrap(q, ty)

    def sdiv(f):
        return slow(af(f), bf(f))
    # both operands first, in order; the common case (both positive) in line
    src = _mk("({2} %s {3} if (({2} := {0}) >= 0) & (({3} := {1}) > 0) else {4}({2}, {3}))"
              % ("//" if op == "/" else "%"), a, b, x, y, ("val", slow))
    return _E(sdiv, ty, None, src)


def shift(op: str, a: _E, b: _E, line: int, fname: str) -> _E:
    """``<<`` and ``>>``; a count outside [0, bits) is a :class:`ModelError`."""
    ty = promote(a.ty)
    a = _convert(a, ty)
    af, bf = a.fn, b.fn
    bits = ty[0]

    def count(f):
        y = bf(f)
        if 0 <= y < bits:
            return y
        raise ModelError(f"shift by {y} at line {line} of {fname}() ({bits}-bit operand)",
                         fname, line)
    if op == ">>":
        return _E(lambda f: af(f) >> count(f), ty, None, _mk("({0} >> {1})", a, ("obj", count)))
    return _E(_wrapper(ty)(lambda f: af(f) << count(f)), ty, None,
              _wrap_src(ty, _mk("({0} << {1})", a, ("obj", count))))


def minmax(op: str, a: _E, b: _E, ty: Type) -> _E:
    """The kernel's ``min``/``max`` (and ``min_t``/``max_t``, with ``ty`` given)."""
    a, b = _convert(a, ty), _convert(b, ty)
    af, bf = a.fn, b.fn
    pick = min if op == "min" else max
    return fold(_E(lambda f: pick(af(f), bf(f)), ty), a, b)
