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
from .runtime import _E, Fn, _const, _convert, _wrapper
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
    return fold(_E(_wrapper(ty)(lambda f: -af(f)), ty), a)


def arith(op: str, a: _E, b: _E, line: int, fname: str) -> _E:
    """``a op b`` for every binary operator but the comma; ``fname`` names faults."""
    af, bf = a.fn, b.fn
    if op == "&&":
        if a.const is not None and not a.const:
            return _const(0, INT)
        return fold(_E(lambda f: af(f) and bf(f) != 0, INT), a, b)
    if op == "||":
        if a.const:
            return _const(1, INT)
        return fold(_E(lambda f: af(f) != 0 or bf(f) != 0, INT), a, b)
    if op in ("<<", ">>"):
        return fold(shift(op, a, b, line, fname), a, b)
    ty = common(a.ty, b.ty)
    if op in _CMP:
        a, b = _convert(a, ty), _convert(b, ty)
        if b.const is not None and a.const is None:
            return _E(_CMP_K[op](a.fn, b.const), INT)
        return fold(_E(_CMP[op](a.fn, b.fn), INT), a, b)
    if op in ("/", "%"):
        a, b = _convert(a, ty), _convert(b, ty)
        if not ty[1] and b.const and a.const is None:  # unsigned, constant divisor
            af, k = a.fn, b.const
            return _E((lambda f: af(f) // k) if op == "/" else (lambda f: af(f) % k), ty)
        return fold(divide(op, a.fn, b.fn, ty, line, fname), a, b)
    if op not in _RING:
        raise Unsupported(f"operator {op}", line)
    return fold(_E(_ring(op, a, b, ty), ty), a, b)


def _ring(op: str, a: _E, b: _E, ty: Type) -> Fn:
    """+ - * & | ^ commute with reduction modulo 2**bits, and a signed common type
    holds both operands' values: no operand conversion is needed."""
    af, bf = a.fn, b.fn
    bits, signed = ty
    mask = (1 << bits) - 1
    k = None if a.const is not None or b.const is None else conv(b.const, ty)
    if op in _RING_U and not signed:
        return _RING_U[op](af, bf, mask) if k is None else _RING_UK[op](af, k, mask)
    if op in _RING_S and signed:
        half = 1 << (bits - 1)
        return _RING_S[op](af, bf, mask, half) if k is None else \
            _RING_SK[op](af, k, mask, half)
    if op in ("&", "|", "^") and (signed or (a.ty[1] is False and b.ty[1] is False)):
        return _RING[op](af, bf)  # in range already
    return _wrapper(ty)(_RING[op](af, bf))


def divide(op: str, af: Fn, bf: Fn, ty: Type, line: int, fname: str) -> _E:
    """``/`` and ``%`` truncating toward zero; division by zero is a :class:`ModelError`."""
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
        return _E(lambda f: af(f) >> count(f), ty)
    return _E(_wrapper(ty)(lambda f: af(f) << count(f)), ty)


def minmax(op: str, a: _E, b: _E, ty: Type) -> _E:
    """The kernel's ``min``/``max`` (and ``min_t``/``max_t``, with ``ty`` given)."""
    a, b = _convert(a, ty), _convert(b, ty)
    af, bf = a.fn, b.fn
    pick = min if op == "min" else max
    return fold(_E(lambda f: pick(af(f), bf(f)), ty), a, b)
