"""Function-like macros of the tree, expanded in function bodies as cpp would.

A guard, an assignment or a call written through a ``#define F(x) …`` of the tree
must read to the engine as the code the compiler sees: a refactor that introduces
such a macro for a sub-expression changes nothing. The expansion keeps every line
where it was (an expansion is written on one line), so findings still point at
lines of the file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

from . import parse as cparse
from .defines import active

# Names the engine models itself (ceval): expanding a tree's own stub of them would
# replace the model of a BUG_ON or a lookup by the stub's text.
MODELLED = frozenset({"BUG_ON", "BUG", "WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE",
                      "likely", "unlikely", "min", "max", "min_t", "max_t", "ARRAY_SIZE",
                      "array_index_nospec", "printk", "trace_printk", "no_printk", "pr_cont"})
MAX_EXPANSIONS = 64  # per function; beyond it the function is left as written


def function_macros(macros: Iterable, kconfig: frozenset[str],
                    arch: frozenset[str] = frozenset()) -> dict[str, tuple[tuple[str, ...], str]]:
    """name -> (parameters, body) of the function-like macros the build defines
    (facts.Macro records; arch/powerpc first, as :func:`select` prefers it)."""
    out: dict[str, tuple[tuple[str, ...], str]] = {}
    for m in sorted(macros, key=lambda m: (not m.path.startswith("arch/"), m.path)):
        if m.name not in out and active(m.conds, kconfig, arch):
            out[m.name] = (tuple(m.params), m.body)
    return out


def _expandable(name: str, macro: tuple[tuple[str, ...], str], functions) -> bool:
    """A macro whose expansion is one C expression, not modelled by the engine, not a
    loop, not defined also as a function, and not mentioning itself."""
    params, body = macro
    if name in MODELLED or name.startswith("pr_") or "for_each" in name or name in functions \
            or "#" in body or "..." in params or re.search(rf"\b{re.escape(name)}\b", body):
        return False
    return _is_expression(body)


@functools.lru_cache(maxsize=4096)
def _is_expression(body: str) -> bool:
    if not body.strip():
        return False
    decl = cparse.parse(f"long long __m = ({body});".encode()).root_node.children[0]
    return decl.type == "declaration" and not decl.has_error


def expansion(name: str, macro: tuple[tuple[str, ...], str], args: list[str]) -> str | None:
    """The text cpp substitutes for ``name(args)`` (arguments parenthesised); None when
    the argument count does not match."""
    params, body = macro
    if len(params) != len(args):
        return None
    if not params:
        return f"({body})"
    # An argument that is one token needs no parentheses (they only clutter messages).
    texts = {p: a.strip() if re.fullmatch(r"\s*\w+\s*", a) else f"({a})"
             for p, a in zip(params, args, strict=True)}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, params)) + r")\b")
    return "(" + pattern.sub(lambda m: texts[m.group(1)], body) + ")"


def _first_call(node, macros, functions):
    """The first call (in document order, outermost first) of an expandable macro."""
    for call in cparse.captures("(call_expression function: (identifier) @f) @c", node
                                ).get("c", []):
        name = cparse.text(call.child_by_field_name("function"))
        if name in macros and _expandable(name, macros[name], functions):
            return call, name
    return None


def expand_function(node, src: bytes, macros: Mapping, functions=frozenset()):
    """``(function_definition, source)`` with every call of a function-like macro of
    the tree replaced by its expansion, as cpp would: a guard or an assignment written
    through a macro then reads as the code the compiler sees. Lines are kept (an
    expansion is one line; newlines of the call follow it), so every line the engine
    reports is a line of the file. ``node``/``src`` are returned unchanged when the
    function calls no such macro."""
    if not macros or _first_call(node, macros, functions) is None:
        return node, src
    row, col = node.start_point.row, node.start_point.column
    prefix = b"\n" * row + b" " * col
    text = node.text
    for _ in range(MAX_EXPANSIONS):
        cur = cparse.parse(prefix + text).root_node
        fn = _function_at(cur)
        hit = fn and _first_call(fn, macros, functions)
        if not hit:
            return (fn, prefix + text) if fn is not None else (node, src)
        call, name = hit
        args = [cparse.text(a) for a in call.child_by_field_name("arguments").named_children
                if a.type != "comment"]
        new = expansion(name, macros[name], args)
        if new is None:
            return node, src
        lines = call.text.count(b"\n")
        new_b = " ".join(new.split()).encode() + b"\n" * lines
        lo, hi = call.start_byte - len(prefix), call.end_byte - len(prefix)
        text = text[:lo] + new_b + text[hi:]
    return node, src


def _function_at(root):
    for c in root.named_children:
        if c.type == "function_definition":
            return c
    return None


def expand_text(text: str, macros: Mapping, functions=frozenset(), depth: int = 8) -> str:
    """An expression's text with the tree's function-like macros expanded (for roles
    read from a single expression, e.g. the VP block allocation's call)."""
    for _ in range(depth):
        root = cparse.parse(f"long long __m = ({text});".encode()).root_node
        hit = _first_call(root, macros, functions)
        if not hit:
            return text
        call, name = hit
        args = [cparse.text(a) for a in call.child_by_field_name("arguments").named_children
                if a.type != "comment"]
        new = expansion(name, macros[name], args)
        if new is None:
            return text
        src = root.text
        start = len(b"long long __m = (")
        lo, hi = call.start_byte - start, call.end_byte - start
        text = (src[start:-2][:lo] + " ".join(new.split()).encode() + src[start:-2][hi:]).decode()
    return text


def parse_expression(text: str):
    """``text`` parsed as one C expression (None if it is not one)."""
    decl = cparse.parse(f"long long __m = ({text});".encode()).root_node.children[0]
    d = decl.child_by_field_name("declarator") if decl.type == "declaration" else None
    value = d.child_by_field_name("value") if d is not None else None
    return None if value is None or decl.has_error else value
