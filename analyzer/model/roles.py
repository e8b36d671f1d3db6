"""Functions recognised by what they do, never by their names.

- the *packing function*: the tree function whose result is the index of the
  VCORE table or the offset a VP helper adds to the VP base;
- the *VP helpers*: functions returning ``P->VP_BASE + f(S)`` (c/facts.py);
- the *VP block allocation*: the call whose result is stored into ``X->VP_BASE``;
  its one argument is the block size.

The field names come from the profile, so renaming the packing function, a
helper, a local or a parameter changes nothing here.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ..c import defines, guards
from ..c import macros as cmacros
from ..c import parse as cparse
from ..c.facts import Facts
from ..profile import Profile


@dataclass(frozen=True)
class Allocation:
    """The VP block allocation: the size passed to the allocator, and where."""

    size_text: str  # the argument, whitespace collapsed
    path: str
    line: int
    function: str | None

    def counted(self, files: Mapping[str, bytes], prof: Profile) -> bool:
        """Does the allocation's file use the block-count field (``->nr_servers``)? The
        block is then meant to hold that many VPs; before the field, the vCPU count."""
        return f"->{prof.fields['block_count']}".encode() in files.get(self.path, b"")


@dataclass(frozen=True)
class Roles:
    """The functions recognised by what they do, not by their names."""

    pack: str | None
    vp_helpers: tuple[str, ...]
    allocation: Allocation | None

    def functions(self, role: str) -> tuple[str, ...]:
        if role == "pack":
            return (self.pack,) if self.pack else ()
        if role == "vp_helpers":
            return self.vp_helpers
        if role == "allocation":
            return (self.allocation.function,) if self.allocation and \
                self.allocation.function else ()
        return ()


@functools.lru_cache(maxsize=2)
def find(facts: Facts, prof) -> Roles:
    helpers = tuple(sorted({h.name for h in facts.all("vp_helpers")}))
    return Roles(_pack(facts, prof) or _folding(facts, prof.count), helpers,
                 _allocation(facts, vp_field(facts, prof), prof))


def vp_field(facts: Facts, prof) -> str:
    """The VP base field of this snapshot (the allocation's target, else the profile's)."""
    return facts.fields.block_base if facts.fields is not None else prof.fields["block_base"]


def _root(facts: Facts, path: str):
    return cparse.parse(facts.snapshot.files[path], facts.files[path].blob).root_node


def _called(expr, facts: Facts) -> list[str]:
    """Tree functions called in ``expr`` with at least one argument."""
    out = []
    for c in cparse.captures("(call_expression function: (identifier) @f) @c", expr).get(
            "c", []):
        name = cparse.text(c.child_by_field_name("function"))
        if name in facts.functions and c.child_by_field_name("arguments").named_child_count:
            out.append(name)
    return out


def _pack(facts: Facts, prof) -> str | None:
    """The function whose result indexes the table or offsets the VP base."""
    votes: Counter[str] = Counter()
    for h in facts.all("vp_helpers"):
        fn = _expanded(facts, prof, h.name)
        for ret in cparse.captures("(return_statement) @r", fn).get("r", []):
            votes.update(n for n in _called(ret, facts) if n != h.name)
    for sub in facts.all("subscripts"):
        if sub.function not in facts.functions:
            continue
        fn = _expanded(facts, prof, sub.function)
        for node in cparse.captures("(subscript_expression) @s", fn).get("s", []):
            if node.start_point.row + 1 != sub.line:
                continue
            index = cparse.strip_parens(node.child_by_field_name("index"))
            if index.type == "call_expression":
                votes.update(_called(index, facts))
            elif index.type == "identifier":
                for assign, _ in guards.reaching_assignments(node, cparse.text(index)):
                    votes.update(_called(assign, facts))
    if not votes:
        return None
    unwrapped: Counter[str] = Counter()
    for name, n in votes.items():
        unwrapped[unwrap(facts, name)] += n
    return min(unwrapped, key=lambda n: (-unwrapped[n], n))


def unwrap(facts: Facts, name: str, depth: int = 0) -> str:
    """A function whose body is ``return g(…);`` for a tree function g is a wrapper:
    the role belongs to g."""
    fn = facts.node(name)
    body = [c for c in fn.child_by_field_name("body").named_children if c.type != "comment"]
    if depth < 4 and len(body) == 1 and body[0].type == "return_statement" and \
            body[0].named_children:
        expr = cparse.strip_parens(body[0].named_children[0])
        if expr.type == "call_expression":
            callee = cparse.text(expr.child_by_field_name("function"))
            if callee in facts.functions and callee != name:
                return unwrap(facts, callee, depth + 1)
    return name


def _folding(facts: Facts, count: str) -> str | None:
    """With no user of it in the tree: the function that folds an ID into
    ``[0, count)`` through a constant table (a local array with an initialiser,
    a division or remainder, and the count macro)."""
    if not count:
        return None
    q = ("(declaration declarator: (init_declarator declarator: (array_declarator)"
         " value: (initializer_list))) @t")
    for name in sorted(facts.functions):
        f = facts.functions[name]
        text = facts.snapshot.files[f.path][f.start_byte:f.end_byte]
        if count.encode() not in text or not (b"/" in text or b"%" in text):
            continue
        if cparse.captures(q, facts.node(name)).get("t"):
            return name
    return None


def _allocation(facts: Facts, vp_field: str, prof) -> Allocation | None:
    """``X->VP_BASE = alloc(SIZE)`` with ``alloc`` a call the tree does not define
    (a stub under a branch the build leaves out does not count)."""
    def defined(name: str) -> bool:  # asked of a few calls, not of all ~800 functions
        f = facts.functions.get(name)
        return f is not None and defines.active(f.conds, prof.kconfig, prof.arch_defined)

    q = ("(assignment_expression left: (field_expression field: (field_identifier) @f)"
         " right: (call_expression) @c)")
    for path in sorted(facts.files):
        if not facts.files[path].parsed or vp_field.encode() not in facts.snapshot.files[path]:
            continue
        for m in cparse.matches(q, _root(facts, path)):
            if cparse.text(m["f"][0]) != vp_field:
                continue
            call = _through_macros(facts, prof, m["c"][0])
            if call is None:
                continue
            name = cparse.text(call.child_by_field_name("function"))
            args = [a for a in call.child_by_field_name("arguments").named_children
                    if a.type != "comment"]
            if len(args) != 1 or (defined(name) and name not in prof.vp_block_alloc):
                continue
            fn = cparse.enclosing_function(m["c"][0])
            return Allocation(" ".join(cparse.text(args[0]).split()), path,
                              m["c"][0].start_point.row + 1,
                              cparse.function_name(fn) if fn is not None else None)
    return None


def _through_macros(facts: Facts, prof, call):
    """``call`` with the tree's function-like macros expanded: the call the compiler sees
    (``X->vp_base = ALLOC_BLOCK(x)`` with ``ALLOC_BLOCK`` a macro of the allocator);
    None when the expansion is no call."""
    name = cparse.text(call.child_by_field_name("function"))
    macros = cmacros.function_macros(facts.all("macros"), prof.kconfig, prof.arch_defined)
    if name not in macros:
        return call
    expr = cparse.strip_parens(cmacros.parse_expression(
        cmacros.expand_text(cparse.text(call), macros, facts.functions)))
    return expr if expr is not None and expr.type == "call_expression" else None


def _expanded(facts: Facts, prof, name: str):
    """The function's node as the compiler sees it (the tree's macros expanded)."""
    f = facts.functions[name]
    macros = cmacros.function_macros(facts.all("macros"), prof.kconfig, prof.arch_defined)
    return cmacros.expand_function(facts.node(name), facts.snapshot.files[f.path], macros,
                                   facts.functions)[0]


@functools.lru_cache(maxsize=2)
def table_sizes(facts: Facts, prof: Profile) -> tuple[tuple[str, str], ...]:
    """(header, size name) of each declaration of the VCORE table field
    (``vcores[KVM_MAX_VCORES];``): the size it is declared with is a count."""
    table = facts.fields.table if facts.fields is not None else prof.fields["table"]
    decl = re.compile(rb"\b" + re.escape(table.encode()) + rb"\s*\[\s*(\w+)\s*\]\s*;")
    return tuple((path, m.decode()) for path, data in sorted(facts.snapshot.files.items())
                 if path.endswith(".h") and table.encode() in data
                 for m in decl.findall(data))
