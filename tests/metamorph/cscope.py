"""What a rewrite must know about one function: its locals, their types, side effects.

Conservative by design: when a question cannot be answered with certainty
(an array local, a type that cannot be inferred, a macro that may capture a
local by name), the answer is None or False and the site is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from .csrc import Func, Tree, declarator_name, text, walk

STORAGE = re.compile(r"\b(?:static|inline|extern|register|__always_inline)\b\s*")
_EFFECTS = ("assignment_expression", "update_expression", "comma_expression")
_INT = {"int": (1, False), "signed int": (1, False), "short": (1, False), "char": (1, False),
        "bool": (1, False), "u8": (1, False), "u16": (1, False), "s8": (1, False),
        "s16": (1, False), "s32": (1, False), "unsigned int": (1, True), "unsigned": (1, True),
        "u32": (1, True), "long": (2, False), "long int": (2, False), "s64": (2, False),
        "unsigned long": (2, True), "u64": (2, True), "ulong": (2, True), "size_t": (2, True),
        "long long": (2, False), "unsigned long long": (2, True)}
_NAMES = {(1, False): "int", (1, True): "unsigned int", (2, False): "long",
          (2, True): "unsigned long"}


@dataclass(frozen=True)
class Local:
    name: str
    ctype: str | None  # declared type ("struct kvm *"), None for arrays/function pointers
    node: Node  # the declaring identifier
    param: bool


def _declared(decl: Node, declarator: Node) -> tuple[str, str | None, Node] | None:
    """(name, type text, identifier) of one declarator of a declaration/parameter."""
    stars = 0
    d = declarator
    if d.type == "init_declarator":
        d = d.child_by_field_name("declarator")
    while d is not None and d.type == "pointer_declarator":
        stars += 1
        d = d.child_by_field_name("declarator")
    if d is None or d.type not in ("identifier", "field_identifier"):
        name = declarator_name(declarator)
        return (name, None, declarator) if name else None
    base = decl.child_by_field_name("type")
    quals = [text(c) for c in decl.children
             if c.type == "type_qualifier" and c.end_byte <= base.start_byte]
    ctype = " ".join([*quals, text(base)]) + (" " + "*" * stars if stars else "")
    return text(d), ctype, d


def locals_of(fn: Func) -> list[Local]:
    """Parameters and every local declaration in the body, in order."""
    out: list[Local] = []
    fdecl = _function_declarator(fn.node)
    if fdecl is not None:
        for p in fdecl.child_by_field_name("parameters").named_children:
            d = p.child_by_field_name("declarator") if p.type == "parameter_declaration" else None
            got = _declared(p, d) if d is not None else None
            if got:
                out.append(Local(got[0], got[1], got[2], True))
    for n in walk(fn.body):
        if n.type == "declaration":
            for d in n.children_by_field_name("declarator"):
                got = _declared(n, d)
                if got:
                    out.append(Local(got[0], got[1], got[2], False))
    return out


def _function_declarator(node: Node) -> Node | None:
    d = node.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    return d


def return_prefix(fn: Func) -> str:
    """The definition's text before its name: 'static struct kvm_vcpu *'."""
    fdecl = _function_declarator(fn.node)
    return fn.node.text[: fdecl.start_byte - fn.node.start_byte].decode()


def returns_void(fn: Func) -> bool:
    return STORAGE.sub("", return_prefix(fn)).strip() == "void"


def unique_locals(fn: Func) -> dict[str, Local]:
    """Locals declared exactly once in the function (no shadowing to get wrong)."""
    seen: dict[str, list[Local]] = {}
    for loc in locals_of(fn):
        seen.setdefault(loc.name, []).append(loc)
    return {k: v[0] for k, v in seen.items() if len(v) == 1}


def pure(node: Node) -> bool:
    """No assignment, increment, comma or call under ``node`` (macros look like calls)."""
    return not any(n.type in (*_EFFECTS, "call_expression") for n in walk(node))


def no_effects(node: Node) -> bool:
    """No assignment, increment or comma (calls allowed)."""
    return not any(n.type in _EFFECTS for n in walk(node))


def idents(node: Node) -> list[Node]:
    return [n for n in walk(node) if n.type == "identifier"]


def macro_captures(tree: Tree, node: Node, names: set[str]) -> bool:
    """Does a macro used under ``node`` mention one of ``names`` in its body (implicit use)?"""
    for n in idents(node):
        m = tree.macros.get(text(n))
        if m is not None and any(re.search(rf"\b{re.escape(x)}\b", m.body) for x in names):
            return True
    return False


def address_taken(fn: Func, name: str) -> bool:
    return any(n.type == "pointer_expression" and text(n).replace(" ", "") == "&" + name
               for n in walk(fn.body))


def conditional_context(node: Node, stop: Node) -> bool:
    """Is ``node`` evaluated only sometimes within ``stop`` (right of &&/||, in ?: arms)?"""
    child, cur = node, node.parent
    while cur is not None and child != stop:
        if cur.type == "binary_expression" and text(cur.child_by_field_name("operator")) in (
            "&&", "||") and child == cur.child_by_field_name("right"):
            return True
        if cur.type == "conditional_expression" and child != cur.child_by_field_name(
                "condition"):
            return True
        if cur == stop:
            break
        child, cur = cur, cur.parent
    return False


def field_types(tree: Tree) -> dict[str, str | None]:
    """field name -> its declared type, None when structs disagree or it is not scalar."""
    out: dict[str, str | None] = {}
    for root in tree.roots.values():
        for n in walk(root):
            if n.type != "field_declaration":
                continue
            for d in n.children_by_field_name("declarator"):
                got = _declared(n, d)
                if got:
                    name, ctype = got[0], got[1]
                    out[name] = ctype if out.get(name, ctype) == ctype else None
    return out


def _rank(ctype: str | None) -> tuple[int, bool] | None:
    if ctype is None:
        return None
    return _INT.get(re.sub(r"\b(?:const|volatile)\b\s*", "", ctype).strip())


def infer(tree: Tree, fn: Func, node: Node, ftypes: dict[str, str | None]) -> str | None:
    """The C type of an integer expression, or None when unsure."""
    t = node.type
    if t == "parenthesized_expression":
        return infer(tree, fn, node.named_children[0], ftypes)
    if t == "number_literal":
        s = text(node).lower()
        return "unsigned int" if s.endswith("u") else (None if s.endswith("l") else "int")
    if t == "identifier":
        loc = unique_locals(fn).get(text(node))
        if loc is not None:
            return _scalar(loc.ctype)
        name = text(node)
        return "int" if (name in tree.macros or name.isupper()) else None
    if t == "field_expression":
        return _scalar(ftypes.get(text(node.child_by_field_name("field"))))
    if t == "call_expression":
        callee = tree.by_name.get(text(node.child_by_field_name("function")))
        return _scalar(STORAGE.sub("", return_prefix(callee)).strip()) if callee else None
    if t == "binary_expression":
        op = text(node.child_by_field_name("operator"))
        if op in ("<", "<=", ">", ">=", "==", "!=", "&&", "||"):
            return "int"
        if op in ("<<", ">>"):
            return _promote(infer(tree, fn, node.child_by_field_name("left"), ftypes))
        return _usual(infer(tree, fn, node.child_by_field_name("left"), ftypes),
                      infer(tree, fn, node.child_by_field_name("right"), ftypes))
    if t == "conditional_expression":
        return _usual(infer(tree, fn, node.child_by_field_name("consequence"), ftypes),
                      infer(tree, fn, node.child_by_field_name("alternative"), ftypes))
    if t == "cast_expression":
        ctype = text(node.child_by_field_name("type"))
        return ctype if _rank(ctype) else None
    return None


def _scalar(ctype: str | None) -> str | None:
    """``ctype`` if a local of it copies the value exactly (integer or pointer)."""
    if ctype is None:
        return None
    return ctype if (_rank(ctype) or ctype.rstrip().endswith("*")) else None


def _promote(ctype: str | None) -> str | None:
    r = _rank(ctype)
    return None if r is None else _NAMES[r]


def _usual(a: str | None, b: str | None) -> str | None:
    ra, rb = _rank(a), _rank(b)
    if ra is None or rb is None:
        return None
    if ra[0] != rb[0]:
        return _NAMES[max(ra, rb)]
    return _NAMES[(ra[0], ra[1] or rb[1])]


def statement_parent_ok(stmt: Node) -> bool:
    """A statement directly in a block (not a switch body): code can go before it."""
    p = stmt.parent
    return p is not None and p.type == "compound_statement" and (
        p.parent is None or p.parent.type != "switch_statement")


def line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def indent_of(data: bytes, offset: int) -> bytes:
    start = line_start(data, offset)
    m = re.match(rb"[ \t]*", data[start:offset])
    return m.group(0) if m else b""


def jumps_away(stmt: Node) -> bool:
    """Does ``stmt`` always leave (return/goto), directly or as the last statement of a block?"""
    while stmt.type == "compound_statement" and stmt.named_children:
        stmt = [c for c in stmt.named_children if c.type != "comment"][-1]
    return stmt.type in ("return_statement", "goto_statement")
