"""A kernel tree as parsed C: its files, functions, macros, and the code the analysis sees.

Independent of ``analyzer`` on purpose: the instruments must not share the
engine's mistakes. Only the userspace entry points are named; everything else
(the packing function, the functions worth rewriting) is found from the code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import tree_sitter_c
from tree_sitter import Language, Node, Parser

C = Language(tree_sitter_c.language())

# The files vpcheck documents that it reads (README "Use").
RELEVANT = re.compile(
    r"^(?:arch/powerpc/kvm/[^/]+\.[ch]"
    r"|arch/powerpc/include/asm/(?:kvm|xive)[^/]*\.h"
    r"|include/linux/kvm_host\.h"
    r"|virt/kvm/kvm_main\.c)$"
)
RELEVANT_DIRS = ("arch/powerpc/kvm", "arch/powerpc/include/asm", "include/linux", "virt/kvm")

# The userspace entry points (the kernel's ABI): never renamed, split or moved.
ENTRY_POINTS = frozenset({
    "kvmppc_core_vcpu_create_hv", "kvmppc_xive_connect_vcpu", "kvmppc_xive_native_connect_vcpu",
})

# Sparse and section annotations tree-sitter-c does not know; blanked (same length) for
# parsing only, so offsets into the original bytes stay valid.
_ANNOTATIONS = re.compile(
    rb"\b(?:__user|__iomem|__rcu|__percpu|__force|__bitwise|__must_check|__init|__exit"
    rb"|__read_mostly|__always_inline|noinline|__maybe_unused|__cold|__ro_after_init"
    rb"|__noreturn|__always_unused)\b"
)
_WORD = re.compile(rb"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Edit:
    """Replace bytes [start, end) of ``path`` with ``text``."""

    path: str
    start: int
    end: int
    text: bytes


@dataclass(frozen=True)
class Func:
    name: str
    path: str
    node: Node  # function_definition

    @property
    def body(self) -> Node:
        return self.node.child_by_field_name("body")

    @property
    def line(self) -> int:
        return self.node.start_point[0] + 1


@dataclass(frozen=True)
class Macro:
    name: str
    path: str
    params: tuple[str, ...] | None  # None: object-like
    body: str
    node: Node


def read_tree(root: str | Path) -> dict[str, bytes]:
    """The relevant files of a kernel tree directory, path -> bytes."""
    top = Path(root)
    files: dict[str, bytes] = {}
    for d in RELEVANT_DIRS:
        base = top / d
        if not base.is_dir():
            continue
        for p in sorted(base.iterdir()):
            rel = f"{d}/{p.name}"
            if p.is_file() and RELEVANT.match(rel):
                files[rel] = p.read_bytes()
    return files


def write_tree(files: Mapping[str, bytes], dest: Path) -> Path:
    for rel, data in files.items():
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return dest


@functools.lru_cache(maxsize=256)
def parse(data: bytes) -> Node:
    return Parser(C).parse(_ANNOTATIONS.sub(lambda m: b" " * len(m.group(0)), data)).root_node


def walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def text(node: Node) -> str:
    return node.text.decode()


def errors(data: bytes) -> int:
    """ERROR and MISSING nodes: a rewrite must not add any."""
    return sum(1 for n in walk(parse(data)) if n.type == "ERROR" or n.is_missing)


def declarator_name(decl: Node | None) -> str | None:
    """The identifier a (possibly nested pointer/array/function) declarator declares."""
    while decl is not None:
        if decl.type in ("identifier", "field_identifier", "type_identifier"):
            return text(decl)
        decl = decl.child_by_field_name("declarator")
    return None


def apply_edits(files: Mapping[str, bytes], edits: list[Edit]) -> dict[str, bytes]:
    """The changed files after ``edits`` (non-overlapping; several per file allowed)."""
    out: dict[str, bytes] = {}
    by_path: dict[str, list[Edit]] = {}
    for e in edits:
        by_path.setdefault(e.path, []).append(e)
    for path, es in by_path.items():
        data = files[path]
        last = len(data) + 1
        for e in sorted(es, key=lambda e: (e.start, e.end), reverse=True):
            if e.end > last:
                raise ValueError(f"overlapping edits in {path} at {e.start}")
            data = data[: e.start] + e.text + data[e.end :]
            last = e.start
        out[path] = data
    return out


def line_of(files: Mapping[str, bytes], path: str, offset: int) -> int:
    return files[path].count(b"\n", 0, offset) + 1


class Tree:
    """Parsed view of a tree's files (read-only; built once per tree)."""

    def __init__(self, name: str, files: Mapping[str, bytes]):
        self.name = name
        self.files = MappingProxyType(dict(files))
        self.roots = {p: parse(d) for p, d in self.files.items()}
        self.functions = tuple(self._functions())
        self.by_name = {}
        for f in self.functions:
            self.by_name.setdefault(f.name, f)
        self.macros: dict[str, Macro] = {}
        for m in self._macros():  # the first definition: arch/powerpc sorts first
            self.macros.setdefault(m.name, m)
        self.words = frozenset(w.decode() for d in self.files.values() for w in _WORD.findall(d))
        self.packer = packing_function(self)
        self.visible = visible_functions(self)

    def patched(self, changes: Mapping[str, bytes]) -> Tree:
        """This tree with some files replaced; only those are re-read (roles kept)."""
        new = object.__new__(Tree)
        new.name, new.files = self.name, MappingProxyType({**self.files, **changes})
        new.roots = {**self.roots, **{p: parse(d) for p, d in changes.items()}}
        new.functions = tuple(f for f in self.functions if f.path not in changes) + tuple(
            new._functions(changes))
        new.by_name = {}
        for f in new.functions:
            new.by_name.setdefault(f.name, f)
        new.macros = {}
        for m in [*new._macros(changes), *(m for m in self.macros.values()
                                           if m.path not in changes)]:
            new.macros.setdefault(m.name, m)
        new.words, new.packer, new.visible = self.words, self.packer, self.visible
        return new

    def _functions(self, only: Mapping | None = None) -> Iterator[Func]:
        for path, root in self.roots.items():
            if only is not None and path not in only:
                continue
            for n in walk(root):
                if n.type == "function_definition":
                    name = declarator_name(n.child_by_field_name("declarator"))
                    if name:
                        yield Func(name, path, n)

    def _macros(self, only: Mapping | None = None) -> Iterator[Macro]:
        for path, root in self.roots.items():
            if only is not None and path not in only:
                continue
            for n in walk(root):
                if n.type in ("preproc_def", "preproc_function_def"):
                    ps = n.child_by_field_name("parameters")
                    params = (tuple(text(c) for c in ps.named_children) if ps else None)
                    val = n.child_by_field_name("value")
                    yield Macro(text(n.child_by_field_name("name")), path, params,
                                text(val) if val else "", n)

    def fresh(self, base: str, taken: set[str] | None = None) -> str:
        """A name used nowhere in the tree (nor in ``taken``)."""
        taken = taken or set()
        for i in range(1000):
            cand = f"{base}{i}" if i else base
            if cand not in self.words and cand not in taken:
                taken.add(cand)
                return cand
        raise RuntimeError("no fresh name")

    def visible_funcs(self) -> list[Func]:
        """The functions the analysis can see, in a stable order."""
        return [f for f in self.functions if f.name in self.visible]


def called_names(tree: Tree, node: Node) -> set[str]:
    """Functions of the tree called under ``node``, through function-like macros too."""
    out: set[str] = set()
    todo: list[str] = []
    for n in walk(node):
        if n.type == "call_expression":
            fn = n.child_by_field_name("function")
            if fn is not None and fn.type == "identifier":
                todo.append(text(fn))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in tree.by_name:
            out.add(name)
        m = tree.macros.get(name)
        if m is not None:
            todo.extend(re.findall(r"[A-Za-z_]\w*", m.body))
    return out


def packing_function(tree: Tree) -> str | None:
    """By role: a value-returning function with a local initialised table, `/` and `%`."""
    for f in tree.functions:
        body = f.body
        has_table = any(n.type == "initializer_list" for n in walk(body))
        ops = {text(n.child_by_field_name("operator")) for n in walk(body)
               if n.type == "binary_expression"}
        if has_table and {"/", "%"} <= ops and "return" in text(body):
            return f.name
    return None


def visible_functions(tree: Tree) -> frozenset[str]:
    """Reachable by calls from the entry points, plus those touching vp_base/vcores/packer."""
    seen: set[str] = set()
    todo = [e for e in ENTRY_POINTS if e in tree.by_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(called_names(tree, tree.by_name[name].body))
    for f in tree.functions:
        for n in walk(f.body):
            if (n.type == "field_identifier" and text(n) in ("vp_base", "vcores")) or (
                tree.packer and n.type == "identifier" and text(n) == tree.packer
            ):
                seen.add(f.name)
                break
    return frozenset(seen)
