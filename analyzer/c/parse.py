"""tree-sitter-c parsing, shared by every extractor.

The Language and every Query are built once per process, and the structural
questions are answered from a few grouped Queries (compiling one costs ~0.6 ms);
parse trees are cached by the blob's content hash so a file that is unchanged
across the snapshots of a series is parsed once.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import re
from collections.abc import Iterator

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

C = Language(tree_sitter_c.language())

# Kernel annotations tree-sitter-c does not know (the profile lists them).
# Blanking them with the same number of spaces keeps every byte offset and
# line number unchanged and turns most ERROR nodes back into ordinary declarations.


@functools.cache
def _annotations() -> tuple[bytes, ...]:
    from .. import profile

    return tuple(w.encode() for w in profile.load().annotations) or (b"__vpcheck_none__",)


@functools.cache
def _annotation_pattern() -> re.Pattern[bytes]:
    return re.compile(rb"\b(?:" + b"|".join(map(re.escape, _annotations())) + rb")\b")


_IDENT = re.compile(rb"[A-Za-z0-9_]+")
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@functools.cache
def _annotation_finders() -> tuple[re.Pattern[bytes], ...] | None:
    """One pattern per two-byte prefix the annotations share (``__user|__iomem|…`` is
    ``__(?:user|iomem|…)``): a pattern that starts with a literal is searched for that
    literal, five times faster than a ``bytes.find`` per word or one alternation.
    None when an annotation is not an identifier (the plain pattern then serves)."""
    if not all(_IDENT.fullmatch(w) for w in _annotations()):
        return None
    groups: dict[bytes, list[bytes]] = {}
    for w in _annotations():
        groups.setdefault(w[:2], []).append(w[2:])
    return tuple(re.compile(re.escape(head) + rb"(?:" + b"|".join(map(re.escape, rests))
                            + rb")(?![A-Za-z0-9_])") for head, rests in groups.items())


def _annotation_spans(src: bytes) -> list[tuple[int, int]]:
    """Where each annotation stands as a whole word. An annotation is all word bytes, so a
    match is a whole identifier: the lookahead ends it at the identifier's end, and a
    match that does not start one is dropped (its identifier began before it, where a
    whole-word match would already have been found)."""
    spans = []
    for pat in _annotation_finders():
        for m in pat.finditer(src):
            i = m.start()
            if i == 0 or src[i - 1] not in _WORD_BYTES:
                spans.append(m.span())
    return spans


def blank_annotations(src: bytes) -> bytes:
    """Each annotation that stands as a whole word, blanked."""
    if _annotation_finders() is None:
        return _annotation_pattern().sub(lambda m: b" " * len(m.group(0)), src)
    spans = _annotation_spans(src)
    return _blanked(src, sorted(spans)) if spans else src


_SPACES = bytes(10 if b == 10 else 32 for b in range(256))


def _blanked(src: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``src`` with every byte but newlines in the sorted, disjoint ``spans`` a space: one
    join of slices (a slice store into a bytearray per span copies the file's tail)."""
    pieces, pos = [], 0
    for lo, hi in spans:
        pieces.append(src[pos:lo])
        pieces.append(src[lo:hi].translate(_SPACES))
        pos = hi
    pieces.append(src[pos:])
    return b"".join(pieces)


def blob_id(data: bytes) -> str:
    """The git blob id of ``data``: the natural cache key for a file's contents."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)  # not ``header + data``: that copies the file
    return h.hexdigest()


@functools.lru_cache(maxsize=24)  # a snapshot's parsed files; older versions go
def _parse_cached(key: str, data: bytes) -> Tree:
    return Parser(C).parse(preprocess(data))


def preprocess(data: bytes) -> bytes:
    """What the compiler of the profile's build sees, at the same offsets: annotations
    blanked, and the ``#if`` branches the build leaves out (``#if 0`` too) blanked
    with their directive lines. Newlines stay, so every line number is the file's."""
    src = blank_annotations(data)
    return _blank_inactive(src) if b"#" in src else src


_DIRECTIVE = re.compile(
    rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b((?:[^\n]*\\\n)*[^\n]*)", re.M)


def _directives(src: bytes) -> Iterator[re.Match[bytes]]:
    """``_DIRECTIVE.finditer(src)``, tried only at the lines whose first non-blank byte
    is ``#`` (found with ``bytes.find``) instead of at every line."""
    pos, i = 0, src.find(b"#")
    while i >= 0:
        start = src.rfind(b"\n", 0, i) + 1
        if start >= pos and not src[start:i].strip(b" \t"):
            m = _DIRECTIVE.match(src, start)
            if m is not None:
                yield m
                pos = m.end()
                i = src.find(b"#", pos)
                continue
        i = src.find(b"#", i + 1)


def _blank_inactive(src: bytes) -> bytes:
    """Every directive line blanked, and the lines of the branches the build leaves out."""
    spans: list[tuple[int, int]] = []
    stack: list[list[bool]] = []  # [enclosing branch active, a branch of this #if taken]
    active, start = True, 0  # start: where the current run of lines began
    for m in _directives(src):
        lo, hi = m.span()
        spans.append((lo if active else start, hi))  # an inactive run joins its directive
        active = _branch(stack, active, m.group(1), m.group(2))
        start = hi
    if not active:
        spans.append((start, len(src)))
    return _blanked(src, spans) if spans else src


def _branch(stack: list[list[bool]], active: bool, kw: bytes, rest: bytes) -> bool:
    """Whether the lines after this directive are compiled."""
    if kw in (b"if", b"ifdef", b"ifndef"):
        taken = active and _holds(kw, rest)
        stack.append([active, taken])
        return taken
    if not stack:
        return active  # unbalanced: leave the rest alone
    outer, taken = stack[-1]
    if kw == b"elif":
        now = outer and not taken and _holds(kw, rest)
        stack[-1][1] = taken or now
        return now
    if kw == b"else":
        stack[-1][1] = True
        return outer and not taken
    stack.pop()
    return outer


_COMMENT = re.compile(r"/\*.*?\*/|//.*")


@functools.lru_cache(maxsize=4096)  # the same conditions recur in every file
def _holds(kw: bytes, rest: bytes) -> bool:
    """Whether the condition of ``#if``/``#elif rest`` (``#ifdef``/``#ifndef rest``) holds."""
    text = rest.decode()
    if kw in (b"ifdef", b"ifndef"):
        text = f"{'!' if kw == b'ifndef' else ''}defined({text.strip()})"
    holds, kconfig, arch = _config()
    return holds(_COMMENT.sub(" ", text).strip(), "", False, kconfig, arch)


@functools.cache
def _config():
    """``defines.holds`` and the profile's configuration, imported and loaded once."""
    from .. import profile
    from .defines import holds

    prof = profile.load()
    return holds, prof.kconfig, prof.arch_defined


def parse(data: bytes, blob: str | None = None) -> Tree:
    """Parse C bytes (cached by blob id; pass ``blob`` when it is known: hashing a
    large file for every lookup is what made big files quadratic)."""
    return _parse_cached(blob or blob_id(data), data)


@functools.cache
def query(text: str) -> Query:
    """Compile a query once per process."""
    return Query(C, text)


def captures(q: str, node: Node) -> dict[str, list[Node]]:
    """Captures of ``q`` under ``node``, each list in document order (new lists: the
    caller may change them)."""
    return {k: list(v) for k, v in _captures(q, node).items()}


# The rules ask the same questions of the same nodes (the guards of a function, the
# assignments that reach a call): on 6.12 a check runs 1,300 queries, 140 of them
# distinct. A node keeps its tree alive, so the cache is kept small.
@functools.lru_cache(maxsize=512)
def _captures(q: str, node: Node) -> dict[str, tuple[Node, ...]]:
    derive = _derivation(q)
    if derive is not None:
        return derive(node)
    caps = QueryCursor(query(q)).captures(node)
    return {k: tuple(sorted(v, key=_POS)) for k, v in caps.items()}


def matches(q: str, node: Node) -> list[dict[str, list[Node]]]:
    """The matches of ``q`` under ``node``, ordered by their first node."""
    derive = _MATCHES.get(q)
    if derive is not None:
        return derive(node)
    ms = QueryCursor(query(q)).matches(node)
    out = [m for _, m in ms]
    out.sort(key=lambda m: min(n.start_byte for v in m.values() for n in v))
    return out


# Compiling a Query costs about 0.6 ms whatever it holds, and a check asked 14 of them.
# So the node types the modules ask about are grouped by the nodes they are asked of:
# one Query per group, with one capture per type, runs once per node and keeps every
# type's nodes, and each question is answered from those (a pattern with fields by
# looking at the nodes' fields). Calls and assignments are asked of whole files: their
# groups hold no type a file has thousands of.
_GROUPS = (
    ("identifier", "field_identifier"),
    ("call_expression", "function_definition"),
    ("assignment_expression", "init_declarator"),
    ("declaration", "return_statement", "labeled_statement", "goto_statement",
     "if_statement", "binary_expression", "field_expression", "subscript_expression"),
)
_GROUP = {kind: i for i, group in enumerate(_GROUPS) for kind in group}
_POS = operator.attrgetter("start_byte", "end_byte")


@functools.lru_cache(maxsize=512)
def _grouped(group: int, node: Node) -> dict[str, list[Node]]:
    return QueryCursor(query(" ".join(f"({k}) @{k}" for k in _GROUPS[group]))).captures(node)


def _of(kind: str, node: Node) -> tuple[Node, ...]:
    """The nodes of type ``kind`` under ``node`` (``node`` too), in document order."""
    return tuple(sorted(_grouped(_GROUP[kind], node).get(kind, ()), key=_POS))


def _child(node: Node, field: str, kind: str) -> Node | None:
    """``node``'s child in ``field`` if it is a ``kind`` (``_``: any named node)."""
    child = node.child_by_field_name(field)
    if child is None or not (child.type == kind or kind == "_" and child.is_named):
        return None
    return child


_SIMPLE = re.compile(r"\((\w+)\) @(\w+)")
_CALL_OF = re.compile(r"\(call_expression function: \(identifier\)(?: @(\w+))?\)(?: @(\w+))?")
_OBJECT = re.compile(r"\(field_expression argument: \(identifier\) @(\w+)\)")


@functools.cache
def _derivation(q: str):
    """How ``captures(q, node)`` is answered from the grouped nodes; None: by compiling
    ``q`` (a question no module asked when this was written)."""
    simple = [(m.group(1), m.group(2)) for m in _SIMPLE.finditer(q)]
    if simple and " ".join(f"({k}) @{n}" for k, n in simple) == q and \
            all(k in _GROUP for k, _ in simple):
        return functools.partial(_typed, tuple(simple))
    if m := _CALL_OF.fullmatch(q):
        return functools.partial(_named_calls, m.group(1), m.group(2))
    if m := _OBJECT.fullmatch(q):
        return functools.partial(_objects, m.group(1))
    return _CAPTURES.get(q)


def _typed(pairs: tuple[tuple[str, str], ...], node: Node) -> dict[str, tuple[Node, ...]]:
    """``(kind) @name ...``: several kinds under one name are merged in document order."""
    out: dict[str, tuple[Node, ...]] = {}
    for kind, name in pairs:
        found = _of(kind, node)
        if found:
            out[name] = tuple(sorted(out[name] + found, key=_POS)) if name in out else found
    return out


def _named_calls(f: str | None, c: str | None, node: Node) -> dict[str, tuple[Node, ...]]:
    """``(call_expression function: (identifier) @f) @c``, either capture optional."""
    calls = tuple(n for n in _of("call_expression", node) if _child(n, "function", "identifier"))
    if not calls:
        return {}
    out = {f: tuple(n.child_by_field_name("function") for n in calls)} if f else {}
    return out | {c: calls} if c else out


def _objects(name: str, node: Node) -> dict[str, tuple[Node, ...]]:
    """``(field_expression argument: (identifier) @name)``."""
    objs = tuple(o for n in _of("field_expression", node)
                 if (o := _child(n, "argument", "identifier")) is not None)
    return {name: objs} if objs else {}


def _pairs(node: Node, kind: str, field: str, child: str, names: tuple[str, str]) -> dict:
    """``(kind field: (child) @names[1]) @names[0]``."""
    found = [(n, c) for n in _of(kind, node) if (c := _child(n, field, child)) is not None]
    return {names[0]: tuple(n for n, _ in found), names[1]: tuple(c for _, c in found)} \
        if found else {}


def _jumps(node: Node) -> dict[str, tuple[Node, ...]]:
    return _pairs(node, "labeled_statement", "label", "statement_identifier",
                  ("lstmt", "label")) | \
        _pairs(node, "goto_statement", "label", "statement_identifier", ("goto", "target"))


def _if_conditions(node: Node) -> dict[str, tuple[Node, ...]]:
    conds = tuple(c for n in _of("if_statement", node)
                  if (c := _child(n, "condition", "_")) is not None)
    return {"c": conds} if conds else {}


def _sums(node: Node) -> dict[str, tuple[Node, ...]]:
    found = tuple(n for n in _of("binary_expression", node) if _child(n, "operator", "+"))
    return {"a": found} if found else {}


def _array_inits(node: Node) -> list[tuple[Node, Node, Node]]:
    """(declaration, array declarator's identifier or None, initializer_list) of each
    ``T name[] = {...}`` declarator."""
    out = []
    for decl in _of("declaration", node):
        for d in decl.children_by_field_name("declarator"):
            if d.type != "init_declarator" or (init := _child(d, "value", "initializer_list")) \
                    is None or (array := _child(d, "declarator", "array_declarator")) is None:
                continue
            out.append((decl, _child(array, "declarator", "identifier"), init))
    return out


def _tables(node: Node) -> dict[str, tuple[Node, ...]]:
    decls = tuple(dict.fromkeys(decl for decl, _, _ in _array_inits(node)))
    return {"t": decls} if decls else {}


_CAPTURES = {
    "(labeled_statement label: (statement_identifier) @label) @lstmt"
    " (goto_statement label: (statement_identifier) @target) @goto": _jumps,
    "(if_statement condition: (_) @c)": _if_conditions,
    '(binary_expression operator: "+") @a': _sums,
    "(declaration declarator: (init_declarator declarator: (array_declarator)"
    " value: (initializer_list))) @t": _tables,
}


def _named_tables(node: Node) -> list[dict[str, list[Node]]]:
    return [{"name": [name], "init": [init]} for _, name, init in _array_inits(node)
            if name is not None]


def _field_calls(node: Node) -> list[dict[str, list[Node]]]:
    """``X->f = call(...)``."""
    out = []
    for a in _of("assignment_expression", node):
        left, right = _child(a, "left", "field_expression"), _child(a, "right", "call_expression")
        if left is not None and right is not None and \
                (f := _child(left, "field", "field_identifier")) is not None:
            out.append({"f": [f], "c": [right]})
    return out


def _calls_with_args(node: Node) -> list[dict[str, list[Node]]]:
    return [{"name": [n.child_by_field_name("function")], "args": [args], "call": [n]}
            for n in _of("call_expression", node)
            if _child(n, "function", "identifier") is not None
            and (args := _child(n, "arguments", "argument_list")) is not None]


_MATCHES = {
    "(declaration declarator: (init_declarator declarator: (array_declarator"
    " declarator: (identifier) @name) value: (initializer_list) @init))": _named_tables,
    "(assignment_expression left: (field_expression field: (field_identifier) @f)"
    " right: (call_expression) @c)": _field_calls,
    "(call_expression function: (identifier) @name arguments: (argument_list) @args)"
    " @call": _calls_with_args,
}


def text(node: Node) -> str:
    return node.text.decode("utf-8", "replace")


# ``(u32)(x)`` is ambiguous to a parser without a symbol table: tree-sitter
# reads it as a call of ``(u32)``. Names of this shape are taken as types.
_TYPE_NAME = re.compile(r"^(?:__)?[us](?:8|16|32|64)$|^[a-z_0-9]+_t$|^(?:bool|size_t)$")


def cast_like_call(node: Node) -> Node | None:
    """The operand of a ``(type)(x)`` misparsed as a call, else None."""
    if node.type != "call_expression":
        return None
    fn = node.child_by_field_name("function")
    if fn.type != "parenthesized_expression" or fn.named_child_count != 1:
        return None
    inner = fn.named_children[0]
    if inner.type != "identifier" or not _TYPE_NAME.match(inner.text.decode()):
        return None
    args = [a for a in node.child_by_field_name("arguments").named_children if a.type != "comment"]
    return args[0] if len(args) == 1 else None


def strip_parens(node: Node) -> Node:
    """Look through parentheses and casts: ``((u32)(x))`` is ``x``."""
    while True:
        if (operand := cast_like_call(node)) is not None:
            node = operand
        elif node.type == "parenthesized_expression":
            inner = [c for c in node.named_children if c.type != "comment"]
            if len(inner) != 1:
                return node
            node = inner[0]
        elif node.type == "cast_expression":
            node = node.child_by_field_name("value")
        else:
            return node


def enclosing_function(node: Node) -> Node | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return n


def function_name(fn: Node) -> str | None:
    """Name declared by a ``function_definition`` (looks through pointer declarators)."""
    d = function_declarator(fn)
    return declarator_name(d) if d is not None else None


def function_declarator(fn: Node) -> Node | None:
    """The ``function_declarator`` of a ``function_definition`` (under pointers)."""
    d = fn.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    return d


def declarator_name(d: Node) -> str | None:
    """The name a ``function_declarator`` declares."""
    name = d.child_by_field_name("declarator")
    while name is not None and name.type not in ("identifier", "field_identifier"):
        name = name.child_by_field_name("declarator")
    return text(name) if name is not None else None


def count_errors(tree: Tree) -> int:
    """Number of ERROR/MISSING nodes: reported in the summary, never fatal."""
    if not tree.root_node.has_error:
        return 0
    n = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            n += 1
            continue
        if node.has_error:
            stack.extend(node.children)
    return n
