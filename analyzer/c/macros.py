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

from tree_sitter import Parser

from . import parse as cparse
from .defines import active

# Names the engine models itself (ceval): expanding a tree's own stub of them would
# replace the model of a BUG_ON or a lookup by the stub's text.
MODELLED = frozenset({"BUG_ON", "BUG", "WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE",
                      "likely", "unlikely", "min", "max", "min_t", "max_t", "ARRAY_SIZE",
                      "array_index_nospec", "printk", "trace_printk", "no_printk", "pr_cont"})
MAX_ROUNDS = 16  # nested expansions; a deeper nest is left as written


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
            or "#" in body or "..." in params or mentions(body, name):
        return False
    return _is_expression(body)


def mentions(text: str, name: str) -> bool:
    """``re.search(rf"\\b{name}\\b", text)`` for an identifier ``name``, without compiling a
    pattern per name (a check asks it of every function-like macro of the tree)."""
    i = text.find(name)
    while i >= 0:
        j = i + len(name)
        if (i == 0 or not _word(text[i - 1])) and (j == len(text) or not _word(text[j])):
            return True
        i = text.find(name, i + 1)
    return False


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what \\w matches in a str pattern


@functools.lru_cache(maxsize=4096)
def _is_expression(body: str) -> bool:
    if not body.strip():
        return False
    decl = _parse(f"long long __m = ({body});".encode()).root_node.children[0]
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


_LAST: list = [None, None, frozenset()]  # (macros, functions, names): one model at a time


def expandable(macros: Mapping, functions=frozenset()) -> frozenset[str]:
    """The names of the macros :func:`expand_function` expands."""
    if _LAST[0] is not macros or _LAST[1] is not functions:
        _LAST[:] = [macros, functions, _expandable_set(
            frozenset(macros.items()), frozenset(n for n in macros if n in functions))]
    return _LAST[2]


@functools.lru_cache(maxsize=8)
def _expandable_set(items: frozenset, shadowed: frozenset[str]) -> frozenset[str]:
    return frozenset(name for name, m in items if _expandable(name, m, shadowed))


def _outer_calls(node, macros, functions) -> list:
    """The calls of expandable macros under ``node`` that no other such call contains,
    as (call, name), in document order."""
    out: list = []
    names = expandable(macros, functions)
    for call in cparse.captures("(call_expression function: (identifier) @f) @c", node
                                ).get("c", []):
        name = cparse.text(call.child_by_field_name("function"))
        if name not in names:
            continue
        if out and call.start_byte < out[-1][0].end_byte:
            continue  # inside the previous one: expanded with it, re-scanned after
        out.append((call, name))
    return out


def _expanded_text(text: bytes, base: int, calls, macros) -> bytes | None:
    """``text`` (starting at byte ``base`` of its parse) with ``calls`` expanded."""
    for call, name in reversed(calls):
        args = [cparse.text(a) for a in call.child_by_field_name("arguments").named_children
                if a.type != "comment"]
        new = expansion(name, macros[name], args)
        if new is None:
            return None
        new_b = " ".join(new.split()).encode() + b"\n" * call.text.count(b"\n")
        text = text[:call.start_byte - base] + new_b + text[call.end_byte - base:]
    return text


def expand_function(node, src: bytes, macros: Mapping, functions=frozenset()):
    """``(function_definition, source)`` with every call of a function-like macro of
    the tree replaced by its expansion, as cpp would: a guard or an assignment written
    through a macro then reads as the code the compiler sees. Lines are kept (an
    expansion is one line; newlines of the call follow it), so every line the engine
    reports is a line of the file. ``node``/``src`` are returned unchanged when the
    function calls no such macro."""
    names = expandable(macros, functions)
    if not names:
        return node, src
    if _calls_pattern(names).search(src, node.start_byte, node.end_byte) is None:
        return node, src  # (a call cannot straddle the function's first or last byte)
    calls = _outer_calls(node, macros, functions)
    if not calls:
        return node, src
    prefix = b"\n" * node.start_point.row + b" " * node.start_point.column
    text, base = node.text, node.start_byte
    for _ in range(MAX_ROUNDS):
        text = _expanded_text(text, base, calls, macros)
        if text is None:
            return node, src
        fn = _function_at(_parse(prefix + text).root_node)
        if fn is None:
            return node, src
        nested = _calls_pattern(names).search(text)
        calls, base = (_outer_calls(fn, macros, functions) if nested else []), len(prefix)
        if not calls:
            return fn, prefix + text
    return node, src


@functools.lru_cache(maxsize=512)
def _parse(src: bytes):
    """Parse text this module made (an expansion, a macro body): a cache of its own, so
    that these never evict a snapshot's files from :func:`parse.parse`'s cache."""
    return Parser(cparse.C).parse(cparse.preprocess(src))


@functools.lru_cache(maxsize=8)
def _calls_pattern(names: frozenset[str]) -> re.Pattern[bytes]:
    """Matches a call of one of ``names`` (a cheap test before any tree query)."""
    alts = b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True))
    return re.compile(rb"\b(?:" + alts + rb")\s*\(")


def _function_at(root):
    for c in root.named_children:
        if c.type == "function_definition":
            return c
    return None


def expand_text(text: str, macros: Mapping, functions=frozenset()) -> str:
    """An expression's text with the tree's function-like macros expanded (for roles
    read from a single expression, e.g. the VP block allocation's call)."""
    head = b"long long __m = ("
    src = head + text.encode() + b");"
    for _ in range(MAX_ROUNDS):
        calls = _outer_calls(_parse(src).root_node, macros, functions)
        if not calls:
            break
        new = _expanded_text(src, 0, calls, macros)
        if new is None:
            break
        src = new
    return src[len(head):-2].decode()


def parse_expression(text: str):
    """``text`` parsed as one C expression (None if it is not one)."""
    decl = _parse(f"long long __m = ({text});".encode()).root_node.children[0]
    d = decl.child_by_field_name("declarator") if decl.type == "declaration" else None
    value = d.child_by_field_name("value") if d is not None else None
    return None if value is None or decl.has_error else value
