"""C integer types: spellings, conversions, promotions, literals (C11 6.3, 6.4.4.1)."""

from __future__ import annotations

import re

from .limits import Unsupported

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


def _range(ty: Type) -> tuple[int, int, Type]:
    bits, signed = ty
    if bits <= 1:
        return 0, 2, ty
    return (-(1 << (bits - 1)), 1 << (bits - 1), ty) if signed else (0, 1 << bits, ty)
