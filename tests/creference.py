"""A reference evaluator of C's integer rules for expression trees, written from the
C standard and separate from analyzer.model.ceval: the tests compare the two.

Expressions are tuples: ("var", name), ("lit", v), ("cast", type, e), ("neg"|"not"|"inv", e),
("cond", c, a, b), ("bin", op, x, y). ``rtype`` computes an expression's C type
without evaluating it (6.3.1.1 promotions, 6.3.1.8 usual arithmetic conversions);
``reval`` evaluates with short-circuit and only the chosen branch of ?:, and raises
``UB`` on undefined behaviour (signed overflow, division by zero, bad shift counts);
``rrender`` prints the expression as C.
"""

from __future__ import annotations

RTYPES = {"int": (32, True), "u32": (32, False), "u64": (64, False), "u8": (8, False),
          "long": (64, True), "s16": (16, True), "u16": (16, False), "bool": (1, False)}


class UB(Exception):
    pass


def rwrap(v: int, t: str) -> int:
    bits, signed = RTYPES[t]
    if bits == 1:
        return int(v != 0)
    v %= 1 << bits
    return v - (1 << bits) if signed and v >= 1 << (bits - 1) else v


def rpromote(t: str) -> str:
    return "int" if RTYPES[t][0] < 32 else t


def rconvert(x: str, y: str) -> str:
    x, y = rpromote(x), rpromote(y)
    (bx, sx), (by, sy) = RTYPES[x], RTYPES[y]
    if x == y:
        return x
    if sx == sy:
        return x if bx >= by else y
    u, s = (x, y) if sy else (y, x)
    return u if RTYPES[u][0] >= RTYPES[s][0] else s


def rcheck(v: int, t: str) -> int:
    """A result of an operation in ``t``: signed overflow is undefined."""
    if RTYPES[t][1] and rwrap(v, t) != v:
        raise UB
    return rwrap(v, t)


def rtype(e, types: dict[str, str]) -> str:
    k = e[0]
    if k == "var":
        return types[e[1]]
    if k == "lit":
        return "int"
    if k == "cast":
        return e[1]
    if k in ("neg", "inv"):
        return rpromote(rtype(e[1], types))
    if k == "not":
        return "int"
    if k == "cond":
        return rconvert(rtype(e[2], types), rtype(e[3], types))
    op = e[1]
    if op in ("&&", "||", "<", "<=", ">", ">=", "==", "!="):
        return "int"
    if op in ("<<", ">>"):
        return rpromote(rtype(e[2], types))
    return rconvert(rtype(e[2], types), rtype(e[3], types))


def reval(e, vals: dict[str, int], types: dict[str, str]) -> int:
    k = e[0]
    if k == "var":
        return vals[e[1]]
    if k == "lit":
        return e[1]
    if k == "cast":
        return rwrap(reval(e[2], vals, types), e[1])
    if k == "not":
        return int(reval(e[1], vals, types) == 0)
    t = rtype(e, types)
    if k == "neg":
        return rcheck(-reval(e[1], vals, types), t)
    if k == "inv":
        return rwrap(~reval(e[1], vals, types), t)
    if k == "cond":
        branch = e[2] if reval(e[1], vals, types) else e[3]
        return rwrap(reval(branch, vals, types), t)
    op = e[1]
    if op == "&&":
        return int(bool(reval(e[2], vals, types)) and bool(reval(e[3], vals, types)))
    if op == "||":
        return int(bool(reval(e[2], vals, types)) or bool(reval(e[3], vals, types)))
    x, y = reval(e[2], vals, types), reval(e[3], vals, types)
    if op in ("<<", ">>"):
        if not 0 <= y < RTYPES[t][0]:
            raise UB
        if op == ">>":
            return x >> y
        if RTYPES[t][1] and x < 0:
            raise UB
        return rcheck(x << y, t)
    ct = rconvert(rtype(e[2], types), rtype(e[3], types))
    x, y = rwrap(x, ct), rwrap(y, ct)
    if op in ("<", "<=", ">", ">=", "==", "!="):
        return int(eval(f"{x} {op} {y}"))  # noqa: S307 - two ints and an operator
    if op in ("/", "%"):
        if y == 0:
            raise UB
        q = abs(x) // abs(y)
        if (x < 0) != (y < 0):
            q = -q
        return rcheck(q if op == "/" else x - q * y, t)
    return rcheck({"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y,
                   "^": x ^ y}[op], t)


def rrender(e) -> str:
    k = e[0]
    if k == "var":
        return e[1]
    if k == "lit":
        return str(e[1])
    if k == "cast":
        return f"(({e[1]})({rrender(e[2])}))"
    if k in ("neg", "not", "inv"):
        return f"({ {'neg': '-', 'not': '!', 'inv': '~'}[k] }{rrender(e[1])})"
    if k == "cond":
        return f"({rrender(e[1])} ? {rrender(e[2])} : {rrender(e[3])})"
    return f"({rrender(e[2])} {e[1]} {rrender(e[3])})"
