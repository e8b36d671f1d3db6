"""Facts: what the checks need to know about a snapshot, read with tree-sitter.

Extraction is a pure function of (path, bytes) and is cached by blob id, so a
file that a patch series does not touch is parsed once for the whole series.
Files that contain none of the tokens the rules care about are not parsed.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tree_sitter import Node

from ..sources.tree import Snapshot, check_utf8
from . import parse as cparse
from .defines import Define


def _default_tokens() -> tuple[bytes, ...]:
    from .. import profile

    return tuple(t.encode() for t in profile.tokens(profile.load()))


@dataclass(frozen=True)
class Macro:
    """A function-like ``#define NAME(PARAMS) BODY``."""

    name: str
    params: tuple[str, ...]
    body: str
    path: str
    line: int
    conds: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class Function:
    """A function definition, located without keeping its parse tree."""

    name: str
    path: str
    line: int
    end_line: int
    params: tuple[str, ...]
    start_byte: int
    end_byte: int
    conds: tuple[tuple[str, bool], ...] = ()  # the #if conditions around it, as Define's


@dataclass(frozen=True)
class Call:
    """A call by name with its arguments' text, as the call graph needs it."""

    name: str
    path: str
    line: int
    column: int
    function: str | None
    args: tuple[str, ...]


@dataclass(frozen=True)
class VpAddition:
    """``X->vp_base + E`` (operands in either order, through parens and casts)."""

    path: str
    line: int
    column: int
    function: str | None
    start_byte: int  # the whole additive chain that holds the vp_base term
    end_byte: int
    obj: str  # X, as written
    offset: str  # E, as written (the other terms of the chain, in order)
    expr: str  # the chain, as written
    conds: tuple[tuple[str, bool], ...] = ()  # the #if conditions around it


@dataclass(frozen=True)
class VpHelper:
    """A function whose return value is ``P->vp_base + <expr>``."""

    name: str
    path: str
    line: int
    obj_param: int  # which parameter is P
    offset_param: int  # which parameter is the server number


@dataclass(frozen=True)
class Subscript:
    """``...vcores[INDEX]``."""

    path: str
    line: int
    column: int
    function: str | None
    array: str
    index: str
    is_write: bool


@dataclass(frozen=True)
class FileFacts:
    """What one file contributes, cached by its blob id across snapshots."""

    path: str
    blob: str
    parsed: bool
    errors: int
    includes: tuple[str, ...] = ()
    defines: tuple[Define, ...] = ()
    macros: tuple[Macro, ...] = ()
    functions: tuple[Function, ...] = ()
    vp_additions: tuple[VpAddition, ...] = ()
    vp_helpers: tuple[VpHelper, ...] = ()
    subscripts: tuple[Subscript, ...] = ()


@dataclass(frozen=True)
class Fields:
    """The field names the extractors look for (from the kernel profile)."""

    block_base: str
    table: str

    @staticmethod
    def of(profile, snapshot: Snapshot | None = None) -> Fields:
        """The fields by their role when the snapshot shows it, else the profile's
        names (so renaming a field changes nothing): the VP base is the field the VP
        block allocation is stored in; the table is the array field indexed by the
        variable that is compared with the table size."""
        vp, table = profile.fields["block_base"], profile.fields["table"]
        if snapshot is None:
            return Fields(vp, table)
        sources = [snapshot.files[p] for p in sorted(snapshot.files) if p.endswith(".c")]
        if profile.vp_block_alloc:
            alloc = "|".join(re.escape(a) for a in profile.vp_block_alloc).encode()
            pat = re.compile(rb"->\s*(\w+)\s*=\s*(?:" + alloc + rb")\s*\(")
            vp = next((m.group(1).decode() for d in sources
                       if any(a.encode() in d for a in profile.vp_block_alloc)
                       and (m := pat.search(d))), None) or _helper_base(snapshot) or vp
        return Fields(vp, _table_field(sources, profile.table_size) or table)


_HELPER_RETURN = re.compile(rb"return\s+\(?\s*\w+\s*->\s*(\w+)\s*\+\s*\w+\s*\(")


def _helper_base(snapshot: Snapshot) -> str | None:
    """Without an allocation in the tree: the field a VP helper adds a call's result to
    (``return P->F + f(S);``), the most frequent."""
    votes: dict[bytes, int] = {}
    for data in snapshot.files.values():
        for f in _HELPER_RETURN.findall(data):
            votes[f] = votes.get(f, 0) + 1
    return max(sorted(votes), key=votes.get).decode() if votes else None


def _table_field(sources: list[bytes], size: str) -> str | None:
    """``V < SIZE`` with ``->F[V]`` or ``.F[V]`` close by: F is the table (most frequent)."""
    below = re.compile(rb"<\s*" + re.escape(size.encode()) + rb"\b")
    votes: dict[bytes, int] = {}
    for data in sources:
        if size.encode() not in data:
            continue
        for start, end, name in _compared_below(data, below):
            var = re.escape(name)
            near = data[max(0, start - 300):end + 300]
            for f in re.findall(rb"(?:->|\.)\s*(\w+)\s*\[\s*" + var + rb"\s*\]", near):
                votes[f] = votes.get(f, 0) + 1
    return max(sorted(votes), key=votes.get).decode() if votes else None


_SPACE = frozenset(b" \t\n\r\f\v")
_WORD_BYTE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_WORD_CHARS = frozenset(bytes([b]) for b in _WORD_BYTE)


def _compared_below(data: bytes, below: re.Pattern[bytes]) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, V) of each ``V < SIZE``, as ``re.finditer(rb"\\b(\\w+)\\s*<\\s*SIZE\\b")``
    finds them (non-overlapping, left to right), but searched from the ``<``: a pattern
    that starts with ``\\w+`` tries every position of the file."""
    last = 0
    for m in below.finditer(data):
        j = m.start()
        while j > 0 and data[j - 1] in _SPACE:
            j -= 1
        k = j
        while k > 0 and data[k - 1] in _WORD_BYTE:
            k -= 1
        if k < j and k >= last:
            last = m.end()
            yield k, m.end(), data[k:j]


@dataclass(frozen=True, eq=False)  # identity: one Facts per snapshot, cached by the model
class Facts:
    """What the checks read of one snapshot: every file's facts, joined."""

    snapshot: Snapshot
    files: Mapping[str, FileFacts]
    fields: Fields | None = None  # the field names the extractors used
    defines: Mapping[str, Define] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defines: dict[str, Define] = {}
        functions: dict[str, Function] = {}
        # A .c definition wins over a header's (the header's is usually the
        # !CONFIG stub); otherwise the first by path, whatever the source order.
        for path in sorted(self.files, key=lambda p: (p.endswith(".h"), p)):
            ff = self.files[path]
            for d in ff.defines:
                defines.setdefault(d.name, d)
            for f in ff.functions:
                functions.setdefault(f.name, f)
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        object.__setattr__(self, "defines", MappingProxyType(defines))
        object.__setattr__(self, "functions", MappingProxyType(functions))

    def node(self, name: str) -> Node | None:
        """The ``function_definition`` node of function ``name`` (its file parsed once)."""
        f = self.functions[name]
        root = cparse.parse(self.snapshot.files[f.path], self.files[f.path].blob).root_node
        node = root.descendant_for_byte_range(f.start_byte, f.end_byte)
        while node is not None and node.type != "function_definition":
            node = node.parent
        return node

    def all(self, attr: str) -> Iterable:
        for path in sorted(self.files):
            yield from getattr(self.files[path], attr)

    @property
    def parsed_files(self) -> int:
        return sum(ff.parsed for ff in self.files.values())

    @property
    def error_nodes(self) -> int:
        return sum(ff.errors for ff in self.files.values())


def extract(snapshot: Snapshot, tokens: Iterable[bytes] | None = None,
            profile=None) -> Facts:
    """Facts of every file; only files holding one of ``tokens`` are parsed.
    ``profile`` (default: the shipped one) names the fields to look for."""
    from .. import profile as profile_mod

    prof = profile or profile_mod.load()
    fields = Fields.of(prof, snapshot)
    tokens = tuple(dict.fromkeys((tuple(tokens) if tokens is not None else _default_tokens())
                                 + (fields.block_base.encode(), fields.table.encode())))
    files = {}
    blobs = {}
    for path, data in snapshot.files.items():
        check_utf8(path, data)
        blobs[path] = blob = cparse.blob_id(data)
        if _mentions_any(blob, data, tokens):
            files[path] = _extract_cached(path, blob, data, fields)
    parsed = list(files)
    used = frozenset().union(*(_words(blobs[p], snapshot.files[p], _MACRO_WORD) for p in parsed))
    words = used - frozenset().union(*(_words(blobs[p], snapshot.files[p], _DEFINE)
                                       for p in parsed))
    for path, data in snapshot.files.items():
        if path in files:
            continue
        if path.endswith(".h") and not _words(blobs[path], data, _DEFINE).isdisjoint(words):
            # a header that defines a macro the parsed files use (MAX_SMT_THREADS)
            files[path] = _extract_cached(path, blobs[path], data, fields)
        else:
            files[path] = FileFacts(path, blobs[path], parsed=False, errors=0)
    return Facts(snapshot, files, fields)


# What extraction learns from a file's bytes before parsing it, once per file version
# (a series snapshot shares most of its files with the previous one; only ids are kept).
# Only what is needed is scanned: the words of files that are parsed, the #defines of
# those and of headers; a .c file that mentions no token is not scanned further.
_SCANS: dict[tuple, object] = {}


def _cached(key: tuple, make):
    got = _SCANS.get(key)
    if got is None:
        if len(_SCANS) > 4096:
            _SCANS.clear()
        got = _SCANS[key] = make()
    return got


def _mentions_any(blob: str, data: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Holds one of the tokens as a whole word: parsed. A token is a name (a function,
    macro or field), so a file where it is only part of a longer name (``vcores`` in
    ``online_vcores``) holds none of what it names."""
    return _cached((blob, tokens), lambda: any(
        head in data and any(_has_word(data, tok) for tok in group)
        for head, group in _token_groups(tokens)))


@functools.lru_cache(maxsize=16)
def _token_groups(tokens: tuple[bytes, ...]) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
    """The tokens grouped by their first 8 bytes, each group with the prefix its tokens
    share: a file without the prefix holds none of them (one search instead of several:
    most files hold no token, and each is searched for every one)."""
    groups: dict[bytes, list[bytes]] = {}
    for tok in sorted(tokens):
        groups.setdefault(tok[:8], []).append(tok)
    return tuple((os.path.commonprefix(g), tuple(g)) for g in groups.values())


def _has_word(data: bytes, word: bytes) -> bool:
    return next(_word_starts(data, word), None) is not None


def _word_starts(data: bytes, word: bytes) -> Iterator[int]:
    """Where ``word`` occurs not inside a longer identifier: ``re.finditer(rb"\bW\b")``
    for an identifier ``W``, by ``bytes.find`` (the pattern tries every offset)."""
    i = data.find(word)
    head, tail = word[:1] in _WORD_CHARS, word[-1:] in _WORD_CHARS
    while i >= 0:
        j = i + len(word)
        if not (head and i and data[i - 1] in _WORD_BYTE) and \
                not (tail and j < len(data) and data[j] in _WORD_BYTE):
            yield i
            i = data.find(word, j)
        else:
            i = data.find(word, i + 1)


def _words(blob: str, data: bytes, pattern: re.Pattern[bytes]) -> frozenset[bytes]:
    """The macro-like names (upper case) a file uses, or the names it #defines."""
    scan = defined_names if pattern is _DEFINE else pattern.findall
    return _cached((blob, pattern.pattern), lambda: frozenset(scan(data)))


_MACRO_WORD = re.compile(rb"\b[A-Z_][A-Z0-9_]{2,}\b")
_DEFINE = re.compile(rb"^\s*#\s*define\s+(\w+)", re.M)
_HASH_DEFINE = re.compile(rb"#\s*define\s+(\w+)")


def defined_names(data: bytes) -> list[bytes]:
    """What ``_DEFINE.findall`` finds, ten times faster: a search that starts at a ``#``
    (a pattern that starts at every line start tries every line), kept when only
    blanks stand before it on its line."""
    out = []
    for m in _HASH_DEFINE.finditer(data):
        start = m.start()
        if not data[data.rfind(b"\n", 0, start) + 1:start].strip(b" \t\r\f\v"):
            out.append(m.group(1))
    return out


@functools.lru_cache(maxsize=1024)
def _extract_cached(path: str, blob: str, data: bytes, fields: Fields) -> FileFacts:
    tree = cparse.parse(data, blob)
    root = tree.root_node
    vp = fields.block_base.encode() in data
    return FileFacts(
        path=path,
        blob=blob,
        parsed=True,
        errors=cparse.count_errors(tree),
        includes=_includes(root),
        defines=_defines(path, root),
        macros=_macros(path, root),
        functions=_functions(path, root),
        vp_additions=_vp_additions(path, root, fields.block_base) if vp else (),
        vp_helpers=_vp_helpers(path, root, fields.block_base) if vp else (),
        subscripts=_subscripts(path, root, fields.table)
        if fields.table.encode() in data else (),
    )


@functools.lru_cache(maxsize=256)
def calls(path: str, data: bytes) -> tuple[Call, ...]:
    """Every call site of a file; computed on demand (it is the costly extractor)."""
    return _calls(path, cparse.parse(data).root_node)


def extract_file(path: str, data: bytes, fields: Fields | None = None) -> FileFacts:
    if fields is None:
        from .. import profile

        fields = Fields.of(profile.load())
    return _extract_cached(path, cparse.blob_id(data), data, fields)


# --- extractors -----------------------------------------------------------

Q_CALL = "(call_expression function: (identifier) @name arguments: (argument_list) @args) @call"
Q_RETURN = "(return_statement) @r"  # the text the roles use: one compiled query, one cache


def _line(node: Node) -> int:
    return node.start_point.row + 1


def _col(node: Node) -> int:
    return node.start_point.column + 1


def _fname(node: Node) -> str | None:
    fn = cparse.enclosing_function(node)
    return cparse.function_name(fn) if fn is not None else None


_CONTAINERS = frozenset({"translation_unit", "preproc_if", "preproc_ifdef", "preproc_else",
                         "preproc_elif", "preproc_elifdef", "ERROR", "linkage_specification",
                         "declaration_list"})
_TOP = frozenset({"function_definition", "preproc_def", "preproc_function_def",
                  "preproc_include"})


@functools.lru_cache(maxsize=2)  # the extractors of one file share it; a root pins its tree
def _top_level(root: Node) -> dict[str, list[Node]]:
    """Definitions, macros and includes outside function bodies, by node type: a walk
    over the top level (and #if blocks) instead of whole-tree queries."""
    out: dict[str, list[Node]] = {t: [] for t in _TOP}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in reversed(node.children):
            if child.type in _TOP:
                out[child.type].append(child)
            elif child.type in _CONTAINERS:
                stack.append(child)
    for nodes in out.values():
        nodes.sort(key=lambda n: n.start_byte)
    return out


def _includes(root: Node) -> tuple[str, ...]:
    nodes = [n.child_by_field_name("path") for n in _top_level(root)["preproc_include"]]
    return tuple(cparse.text(n).strip('"<>') for n in nodes if n is not None)


def _defines(path: str, root: Node) -> tuple[Define, ...]:
    out = []
    for d in _top_level(root)["preproc_def"]:
        name, v = d.child_by_field_name("name"), d.child_by_field_name("value")
        value = cparse.text(v).replace("\\\n", " ").strip() if v is not None else ""
        out.append(Define(cparse.text(name), _strip_comments(value), path, _line(d),
                          _pp_conds(d)))
    return tuple(out)


def _macros(path: str, root: Node) -> tuple[Macro, ...]:
    out = []
    for d in _top_level(root)["preproc_function_def"]:
        params = tuple(cparse.text(p) for p in d.child_by_field_name("parameters").named_children
                       if p.type == "identifier")
        v = d.child_by_field_name("value")
        body = cparse.text(v).replace("\\\n", " ") if v is not None else ""
        out.append(Macro(cparse.text(d.child_by_field_name("name")), params,
                         _strip_comments(body), path, _line(d), _pp_conds(d)))
    return tuple(out)


def _pp_cond(node: Node) -> str:
    """The condition of an #if/#ifdef/#ifndef/#elif node, as ``defined(X)`` or C text."""
    if node.type == "preproc_ifdef":
        name = cparse.text(node.child_by_field_name("name"))
        return f"defined({name})"
    return _strip_comments(cparse.text(node.child_by_field_name("condition")))


def _pp_conds(node: Node) -> tuple[tuple[str, bool], ...]:
    out: list[tuple[str, bool]] = []
    child, parent = node, node.parent
    while parent is not None:
        if parent.type in ("preproc_ifdef", "preproc_if", "preproc_elif"):
            alt = parent.child_by_field_name("alternative")
            in_alt = alt is not None and alt.start_byte <= child.start_byte < alt.end_byte
            negated = parent.type == "preproc_ifdef" and parent.children[0].type == "#ifndef"
            if not in_alt:
                out.append((_pp_cond(parent), not negated))
            else:
                out.append((_pp_cond(parent), negated))
        child, parent = parent, parent.parent
    return tuple(reversed(out))


def _strip_comments(s: str) -> str:
    while "/*" in s:
        a = s.index("/*")
        b = s.find("*/", a + 2)
        s = s[:a] + " " + (s[b + 2 :] if b >= 0 else "")
    if "//" in s:
        s = s[: s.index("//")]
    return " ".join(s.split())


def _params(fn: Node) -> tuple[str, ...]:
    d = cparse.function_declarator(fn)
    return _declared_params(d) if d is not None else ()


def _declared_params(d: Node) -> tuple[str, ...]:
    """The parameter names of a ``function_declarator`` ("" for an unnamed one)."""
    out = []
    for p in d.child_by_field_name("parameters").named_children:
        if p.type != "parameter_declaration":
            continue
        n = p.child_by_field_name("declarator")
        while n is not None and n.type != "identifier":
            n = n.child_by_field_name("declarator")
        out.append(cparse.text(n) if n is not None else "")
    return tuple(out)


def _functions(path: str, root: Node) -> tuple[Function, ...]:
    """Each definition's name and parameters, read from one walk down its declarator
    (``cparse.function_name`` and :func:`_params` would walk it twice)."""
    out = []
    for fn in _top_level(root)["function_definition"]:
        d = cparse.function_declarator(fn)
        if d is not None and (name := cparse.declarator_name(d)):
            out.append(Function(name, path, _line(fn), fn.end_point.row + 1,
                                _declared_params(d), fn.start_byte, fn.end_byte, _pp_conds(fn)))
    return tuple(out)


def _calls(path: str, root: Node) -> tuple[Call, ...]:
    out = []
    for m in cparse.matches(Q_CALL, root):
        call = m["call"][0]
        args = tuple(cparse.text(a) for a in m["args"][0].named_children if a.type != "comment")
        name = cparse.text(m["name"][0])
        out.append(Call(name, path, _line(call), _col(call), _fname(call), args))
    return tuple(out)


def is_field(node: Node, name: str) -> bool:
    node = cparse.strip_parens(node)
    if node.type != "field_expression":
        return False
    f = node.child_by_field_name("field")
    return f is not None and cparse.text(f) == name


def _additive_chain(node: Node) -> Node:
    """The topmost ``+`` expression that ``node`` is a term of (not crossing parens)."""
    while (
        node.parent is not None
        and node.parent.type == "binary_expression"
        and node.parent.child_by_field_name("operator").type == "+"
        and node.parent.child_by_field_name("left") == node
    ):
        node = node.parent
    return node


def _terms(node: Node) -> list[Node]:
    """Terms of a left-nested ``+`` chain, iteratively (a 900-term sum is no recursion)."""
    out = []
    while node.type == "binary_expression" and \
            node.child_by_field_name("operator").type == "+":
        out.append(node.child_by_field_name("right"))
        node = node.child_by_field_name("left")
    out.append(node)
    return out[::-1]


_PLUS = frozenset({"binary_expression"})


def _vp_additions(path: str, root: Node, fld: str) -> tuple[VpAddition, ...]:
    out = []
    seen: set[int] = set()
    for add in _around(root, fld, _PLUS):
        if add.child_by_field_name("operator").type != "+":
            continue
        terms = _terms(add)
        base = [t for t in terms if is_field(t, fld)]
        if len(base) != 1 or len(terms) < 2:
            continue
        chain = _additive_chain(add)
        if chain.start_byte in seen:
            continue
        seen.add(chain.start_byte)
        terms = _terms(chain)
        vp = base[0]
        obj = cparse.strip_parens(vp).child_by_field_name("argument")
        offset = " + ".join(cparse.text(t) for t in terms if t != vp)
        out.append(VpAddition(path, _line(chain), _col(chain), _fname(chain), chain.start_byte,
                              chain.end_byte, cparse.text(obj), offset, cparse.text(chain),
                              _pp_conds(chain)))
    return tuple(out)


def _vp_helpers(path: str, root: Node, fld: str) -> tuple[VpHelper, ...]:
    """Functions that map (object, server) to a VP id: every return is
    ``P->vp_base + f(S)`` with P and S parameters (the RFC's ``xive_vp``,
    later ``kvmppc_xive_vp``). Ordinary functions that happen to return a
    raw sum in one branch are not helpers: they are what the rule flags."""
    out = []
    for fn in _top_level(root)["function_definition"]:
        if fld.encode() not in fn.text:
            continue  # no return can add the field: not a helper, no query needed
        params = _params(fn)
        rets = [r for r in cparse.captures(Q_RETURN, fn).get("r", [])
                if cparse.enclosing_function(r) == fn]
        aliases = _param_aliases(fn, params)
        shapes = {_helper_shape(r, params, fld, aliases) for r in rets}
        if len(shapes) == 1 and None not in shapes:
            obj, server = shapes.pop()
            out.append(VpHelper(cparse.function_name(fn), path, _line(fn), obj, server))
    return tuple(out)


def _param_aliases(fn: Node, params: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The parameters each local is computed from (``u32 s = server;``), so that a helper
    that passes its parameter on through a local is still recognised by its shape."""
    out: dict[str, frozenset[str]] = {p: frozenset({p}) for p in params if p}
    q = "(assignment_expression) @a (init_declarator) @a"  # as the path engine asks it
    for a in cparse.captures(q, fn).get("a", []):
        left = a.child_by_field_name("declarator") or a.child_by_field_name("left")
        right = a.child_by_field_name("value") or a.child_by_field_name("right")
        while left is not None and left.type == "pointer_declarator":
            left = left.child_by_field_name("declarator")
        if left is None or right is None or left.type != "identifier":
            continue
        name, rhs = cparse.text(left), cparse.text(right)
        if name in params:
            return {p: frozenset({p}) for p in params if p}  # a parameter reassigned
        out[name] = out.get(name, frozenset()) | frozenset(
            par for n, ps in out.items() if _mentions(rhs, n) for par in ps)
    return out


def _helper_shape(ret: Node, params: tuple[str, ...], fld: str,
                  aliases: dict[str, frozenset[str]] | None = None) -> tuple[int, int] | None:
    """(object param, server param) if ``ret`` returns ``P->vp_base + f(S)``, P and S
    parameters or locals computed from just one of them."""
    aliases = aliases or {p: frozenset({p}) for p in params if p}
    if not ret.named_children:
        return None
    expr = cparse.strip_parens(ret.named_children[0])
    terms = _terms(expr) if expr.type == "binary_expression" else []
    base = [t for t in terms if is_field(t, fld)]
    if len(terms) < 2 or len(base) != 1:
        return None
    objs = aliases.get(cparse.text(cparse.strip_parens(base[0]).child_by_field_name(
        "argument")), frozenset())
    if len(objs) != 1:
        return None
    obj = next(iter(objs))
    rest = " ".join(cparse.text(t) for t in terms if t != base[0])
    used = {p for n, ps in aliases.items() if _mentions(rest, n) for p in ps}
    others = [i for i, p in enumerate(params) if p != obj and p in used]
    return (params.index(obj), others[0]) if len(others) == 1 else None


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _around(root: Node, word: str, types: frozenset[str]) -> list[Node]:
    """Every node of one of ``types`` that encloses an occurrence of the identifier
    ``word``, in document order (by start, then end, as a query's captures): what a
    whole-tree query for those types would find, narrowed to the ones a rule about
    ``word`` can use, for the cost of a text search."""
    src = root.text  # from root.start_byte: a file may begin with blanked lines
    at = root.start_byte
    found: dict[tuple[int, int, int], Node] = {}
    seen: set[int] = set()  # nodes walked up from: their ancestors were walked too
    w = word.encode()
    for i in _word_starts(src, w):
        node = root.descendant_for_byte_range(at + i, at + i + len(w))
        while node is not None and node.type != "translation_unit" and node.id not in seen:
            seen.add(node.id)
            if node.type in types:
                found.setdefault((node.start_byte, node.end_byte, node.id), node)
            node = node.parent
    return [found[k] for k in sorted(found)]


def _subscripts(path: str, root: Node, fld: str) -> tuple[Subscript, ...]:
    out = []
    for sub in _around(root, fld, frozenset({"subscript_expression"})):
        array, index = sub.child_by_field_name("argument"), sub.child_by_field_name("index")
        if array is None or index is None:
            continue
        arr = cparse.strip_parens(array)
        name = arr.child_by_field_name("field") if arr.type == "field_expression" else arr
        if name is None or cparse.text(name) != fld:
            continue
        parent = sub.parent
        is_write = (parent is not None and parent.type == "assignment_expression"
                    and parent.child_by_field_name("left") == sub)
        out.append(Subscript(path, _line(sub), _col(sub), _fname(sub), cparse.text(arr),
                             cparse.text(index), is_write))
    return tuple(out)
