"""Behaviour-preserving rewrites of C, each offered at every site where it applies.

A transformation is a generator ``kind(tree) -> Site...``: it finds every site
in the functions the analysis can see (``Tree.visible``) and returns, per
site, a stable key and a thunk that builds the rewritten files. A rewrite
that would not provably keep behaviour (side effects evaluated a different
number of times, shadowing, a macro capturing a local, a name already taken)
is not offered. ``Variant.renames`` maps every function name the rewrite
introduces back to the original function, for the oracle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from tree_sitter import Node

from . import cscope as cs
from .csrc import ENTRY_POINTS, Edit, Func, Tree, apply_edits, declarator_name, errors, text, walk

ON_SYMBOL = "CONFIG_PPC_BOOK3S_64"  # on in a powerpc KVM-HV build (analyzer/defines.py)
OFF_SYMBOL = "CONFIG_PPC_BOOK3E_64"  # Book3E: never set together with Book3S-64
UNLIKELY = b"#ifndef unlikely\n#define unlikely(x) __builtin_expect(!!(x), 0)\n#endif\n"


@dataclass(frozen=True)
class Variant:
    files: Mapping[str, bytes]  # the changed files only
    renames: Mapping[str, str] = field(default_factory=dict)  # new function -> original


@dataclass(frozen=True)
class Site:
    transform: str
    key: str
    make: Callable[[], Variant] = field(compare=False, repr=False)


class InvalidRewrite(Exception):
    """A rewrite added a parse error: a bug in the instrument, never a finding."""


def checked(tree: Tree, edits: list[Edit], renames: Mapping[str, str] | None = None) -> Variant:
    files = apply_edits(tree.files, edits)
    for path, data in files.items():
        if errors(data) > errors(tree.files[path]):
            raise InvalidRewrite(f"{path}: new parse errors")
    return Variant(files, dict(renames or {}))


def key(fn: Func, node: Node | None, detail: str) -> str:
    line = (node.start_point[0] + 1) if node is not None else fn.line
    return f"{fn.path}:{fn.name}:{detail}@{line}"


def ifs(fn: Func) -> list[Node]:
    return [n for n in cs.walk(fn.body) if n.type == "if_statement"]


def cond_inner(ifn: Node) -> Node:
    c = ifn.child_by_field_name("condition")
    return c.named_children[0] if c.type == "parenthesized_expression" else c


def E(path: str, node_or_start, end: int | None = None, new: str | bytes = b"") -> Edit:
    if isinstance(node_or_start, Node):
        start, stop = node_or_start.start_byte, node_or_start.end_byte
    else:
        start, stop = node_or_start, end
    return Edit(path, start, stop, new.encode() if isinstance(new, str) else new)


# ---------------------------------------------------------------- renames


def _code_idents(tree: Tree, name: str, kind: str = "identifier") -> list[tuple[str, Node]]:
    """Every ``kind`` token ``name`` in every file, and the word in macro bodies."""
    out = []
    for path, root in tree.roots.items():
        for n in walk(root):
            if n.type == kind and text(n) == name and n.parent.type != "preproc_arg":
                out.append((path, n))
    return out


def _macro_body_edits(tree: Tree, pattern: str, repl: str) -> list[Edit]:
    edits = []
    for m in tree.macros.values():
        val = m.node.child_by_field_name("value")
        if val is not None and re.search(pattern, m.body):
            edits.append(E(m.path, val, new=re.sub(pattern, repl, m.body)))
    return edits


def _profile_functions() -> frozenset[str]:
    """The kernel interfaces the profile models by name besides the entry points: its
    runtime table (lookups whose success is the VMM's choice, calls that succeed for
    every ID, the VP block allocator). Renaming one is an interface change that the
    profile follows, like renaming an entry point, not a refactor."""
    from analyzer import profile

    p = profile.load()
    return frozenset(p.sanitizers | p.succeed | set(p.vp_block_alloc))


def rename_function(tree: Tree) -> Iterator[Site]:
    for name in sorted(tree.visible - ENTRY_POINTS - _profile_functions()):
        fn = tree.by_name[name]

        def make(fn=fn, name=name):
            new = tree.fresh(name + "_mm")
            edits = [E(p, n, new=new) for p, n in _code_idents(tree, name)]
            edits += _macro_body_edits(tree, rf"\b{name}\b", new)
            return checked(tree, edits, {new: name})
        yield Site("rename-function", key(fn, None, "fn"), make)


_MEMBER_MACROS = re.compile(r"container_of|offsetof|for_each|sizeof_field|member|entry")


def _renamable_locals(tree: Tree, fn: Func, params: bool) -> Iterator[cs.Local]:
    for loc in cs.unique_locals(fn).values():
        if loc.param != params or cs.macro_captures(tree, fn.node, {loc.name}):
            continue
        member_use = any(
            n.type == "call_expression" and _MEMBER_MACROS.search(
                text(n.child_by_field_name("function")))
            and any(text(a) == loc.name for a in n.child_by_field_name("arguments").named_children)
            for n in walk(fn.body))
        if not member_use:
            yield loc


def _rename_in_function(tree: Tree, fn: Func, kind: str, params: bool) -> Iterator[Site]:
    for loc in _renamable_locals(tree, fn, params):
        def make(fn=fn, loc=loc):
            new = tree.fresh(loc.name + "_mm")
            edits = [E(fn.path, n, new=new) for n in walk(fn.node)
                     if n.type == "identifier" and text(n) == loc.name]
            return checked(tree, edits)
        yield Site(kind, key(fn, loc.node, f"{loc.name}"), make)


def rename_local(tree: Tree) -> Iterator[Site]:
    for fn in tree.visible_funcs():
        yield from _rename_in_function(tree, fn, "rename-local", False)


def rename_param(tree: Tree) -> Iterator[Site]:
    for fn in tree.visible_funcs():
        yield from _rename_in_function(tree, fn, "rename-param", True)


def _assigned(fn: Func, name: str) -> bool:
    for n in walk(fn.body):
        target = (n.child_by_field_name("left") if n.type == "assignment_expression" else
                  n.child_by_field_name("argument") if n.type == "update_expression" else None)
        if target is not None and text(target) == name:
            return True
    return cs.address_taken(fn, name)


def alias_param(tree: Tree) -> Iterator[Site]:
    """The ID passed on through another local: ``T a = p;`` first, then ``a`` for ``p``."""
    for fn in tree.visible_funcs():
        body = fn.body
        for loc in _renamable_locals(tree, fn, True):
            uses = [n for n in walk(body) if n.type == "identifier" and text(n) == loc.name]
            if loc.ctype is None or not uses or _assigned(fn, loc.name) or len(
                    body.children) < 2:
                continue

            def make(fn=fn, loc=loc, uses=uses):
                new = tree.fresh(loc.name + "_alias")
                decl = f"\n\t{loc.ctype} {new} = {loc.name};".replace("* ", "*")
                first = fn.body.children[0]  # '{'
                return checked(tree, [E(fn.path, first.end_byte, first.end_byte, decl)]
                               + [E(fn.path, n, new=new) for n in uses])
            yield Site("alias-param", key(fn, loc.node, loc.name), make)


def _tree_fields(tree: Tree) -> set[str]:
    return {text(d) for root in tree.roots.values() for n in walk(root)
            if n.type == "field_declaration"
            for d in walk(n) if d.type == "field_identifier"}


def _configuration_fields() -> frozenset[str]:
    from analyzer import profile

    return frozenset({profile.load().stride})


def rename_field(tree: Tree) -> Iterator[Site]:
    # The stride field is the VM configuration userspace sets (KVM_CAP_PPC_SMT), named in the
    # kernel profile like an entry point: renaming it changes the interface, not a refactor.
    declared = _tree_fields(tree) - _configuration_fields()
    plain = {text(n) for root in tree.roots.values() for n in walk(root)
             if n.type in ("identifier", "type_identifier")}
    used = sorted({text(n) for fn in tree.visible_funcs() for n in walk(fn.body)
                   if n.type == "field_identifier"})
    for name in used:
        other_use = any(re.search(rf"\b{name}\b", re.sub(rf"(\.|->)\s*{name}\b", "", m.body))
                        for m in tree.macros.values())
        if name not in declared or name in plain or other_use:
            continue  # used outside member access: not only the tree's field

        def make(name=name):
            new = tree.fresh(name + "_mm")
            edits = [E(p, n, new=new) for p, n in _code_idents(tree, name, "field_identifier")]
            edits += _macro_body_edits(tree, rf"(\.|->)(\s*){name}\b", rf"\g<1>\g<2>{new}")
            return checked(tree, edits)
        yield Site("rename-field", f"field:{name}", make)


# ------------------------------------------------------- extracting conditions


def _free_locals(fn: Func, node: Node) -> list[cs.Local] | None:
    """The function's locals ``node`` reads, in order; None if one cannot be passed by value."""
    locs = cs.unique_locals(fn)
    all_names = {loc.name for loc in cs.locals_of(fn)}
    out: list[cs.Local] = []
    for n in cs.idents(node):
        name = text(n)
        if name in all_names and name not in locs:
            return None  # shadowed somewhere: unclear which one
        loc = locs.get(name)
        if loc is not None and loc not in out:
            if loc.ctype is None or cs.address_taken(fn, name):
                return None
            out.append(loc)
    return out


def _helper_header(tree: Tree, fn: Func) -> str | None:
    """A header of the tree that ``fn``'s file includes (the last one), for static inlines."""
    best = None
    for n in walk(tree.roots[fn.path]):
        if n.type == "preproc_include":
            inc = text(n.child_by_field_name("path")).strip('"<>')
            for cand in (f"{fn.path.rsplit('/', 1)[0]}/{inc}", f"arch/powerpc/include/{inc}",
                         f"include/{inc}"):
                if cand in tree.files and cand != fn.path:
                    best = cand
    return best


def _header_insert_point(tree: Tree, path: str) -> int:
    """End of the include guard's body, else end of file."""
    root = tree.roots[path]
    guards = [n for n in root.named_children if n.type in ("preproc_ifdef", "preproc_if")]
    if guards:
        last = guards[-1].children[-1]  # '#endif'
        return last.start_byte
    return len(tree.files[path])


def _uses_file_static(tree: Tree, fn: Func, node: Node) -> bool:
    """Does ``node`` use a function, macro or variable of the .c that a header cannot see?"""
    own = {name for d in tree.roots[fn.path].named_children if d.type == "declaration"
           for x in d.children_by_field_name("declarator")
           if (name := declarator_name(x))}
    if own & {text(n) for n in cs.idents(node)}:
        return True
    for n in cs.idents(node):
        f = tree.by_name.get(text(n))
        if f is not None and f.path == fn.path and not fn.path.endswith(".h"):
            return True
        m = tree.macros.get(text(n))
        if m is not None and m.path == fn.path and not fn.path.endswith(".h"):
            return True
    return False


def _extract(tree: Tree, kind: str, in_header: bool) -> Iterator[Site]:
    for fn in tree.visible_funcs():
        if in_header and fn.path.endswith(".h"):
            continue
        header = _helper_header(tree, fn) if in_header else None
        for ifn in ifs(fn):
            cond = cond_inner(ifn)
            free = _free_locals(fn, cond)
            if free is None or not cs.no_effects(cond) or (in_header and (
                    header is None or _uses_file_static(tree, fn, cond))):
                continue

            def make(fn=fn, ifn=ifn, cond=cond, free=free, header=header):
                name = tree.fresh("vpm_cond")
                params = ", ".join(f"{loc.ctype} {loc.name}".replace("* ", "*") for loc in free)
                body = (f"static {'inline ' if in_header else ''}bool {name}"
                        f"({params or 'void'})\n{{\n\treturn {text(cond)};\n}}\n\n")
                call = f"{name}({', '.join(loc.name for loc in free)})"
                edits = [E(fn.path, cond, new=call)]
                if header:
                    edits.append(E(header, *([_header_insert_point(tree, header)] * 2),
                                   body))
                else:
                    edits.append(E(fn.path, fn.node.start_byte, fn.node.start_byte, body))
                return checked(tree, edits, {name: fn.name})
            yield Site(kind, key(fn, ifn, "if"), make)


def extract_static(tree: Tree) -> Iterator[Site]:
    yield from _extract(tree, "extract-static", False)


def extract_inline(tree: Tree) -> Iterator[Site]:
    yield from _extract(tree, "extract-inline-header", True)


# --------------------------------------------------- locals and macros for sub-expressions


def _subexpr_candidates(fn: Func) -> Iterator[tuple[Node, Node]]:
    """(statement, sub-expression): comparison operands in if conditions, RHS of assignments."""
    for n in walk(fn.body):
        if n.type == "if_statement":
            cond = cond_inner(n)
            for b in walk(cond):
                if b.type == "binary_expression" and text(b.child_by_field_name("operator")) in (
                        "<", "<=", ">", ">=", "==", "!="):
                    for side in ("left", "right"):
                        yield n, b.child_by_field_name(side)
        elif n.type == "expression_statement" and n.named_children and \
                n.named_children[0].type == "assignment_expression":
            yield n, n.named_children[0].child_by_field_name("right")
        elif n.type == "declaration":
            for d in n.children_by_field_name("declarator"):
                if d.type == "init_declarator" and d.child_by_field_name("value") is not None:
                    yield n, d.child_by_field_name("value")


def _interesting(expr: Node) -> bool:
    return expr.type in ("binary_expression", "field_expression", "parenthesized_expression",
                         "conditional_expression", "call_expression")


def local_for_subexpr(tree: Tree) -> Iterator[Site]:
    ftypes = cs.field_types(tree)
    for fn in tree.visible_funcs():
        for stmt, expr in _subexpr_candidates(fn):
            if not (_interesting(expr) and cs.no_effects(expr) and cs.statement_parent_ok(stmt)):
                continue
            if stmt.type == "if_statement" and cs.conditional_context(expr, stmt):
                continue
            ctype = cs.infer(tree, fn, expr, ftypes)
            if ctype is None or _free_locals(fn, expr) is None:
                continue

            def make(fn=fn, stmt=stmt, expr=expr, ctype=ctype):
                name = tree.fresh("vpm_t")
                data = tree.files[fn.path]
                ind = cs.indent_of(data, stmt.start_byte).decode()
                decl = f"{ctype} {name} = {text(expr)};\n{ind}"
                return checked(tree, [E(fn.path, stmt.start_byte, stmt.start_byte, decl),
                                      E(fn.path, expr, new=name)])
            yield Site("local-for-subexpr", key(fn, expr, f"{stmt.type}"), make)


def macro_for_subexpr(tree: Tree) -> Iterator[Site]:
    for fn in tree.visible_funcs():
        for stmt, expr in _subexpr_candidates(fn):
            free = _free_locals(fn, expr)
            if not _interesting(expr) or free is None:
                continue

            def make(fn=fn, expr=expr, free=free):
                name = tree.fresh("VPM_EXPR")
                params = [tree.fresh(f"vpm_a{i}_") for i in range(len(free))]
                rename = {loc.name: p for loc, p in zip(free, params, strict=True)}
                body = _substitute(expr, rename)
                macro = f"#define {name}({', '.join(params)}) ({body})\n"
                call = f"{name}({', '.join(loc.name for loc in free)})"
                return checked(tree, [E(fn.path, fn.node.start_byte, fn.node.start_byte, macro),
                                      E(fn.path, expr, new=call)])
            yield Site("macro-for-subexpr", key(fn, expr, f"{stmt.type}"), make)


def _substitute(node: Node, rename: dict[str, str]) -> str:
    """``node``'s text with its identifiers renamed (macro parameters in parentheses) and
    its comments dropped (cpp reads a comment as a space; tree-sitter cannot parse one
    inside a ``#define`` line)."""
    src = node.text
    out, pos = [], 0
    parts = [n for n in cs.idents(node) if text(n) in rename] + \
        [n for n in walk(node) if n.type == "comment"]
    for n in sorted(parts, key=lambda n: n.start_byte):
        out.append(src[pos: n.start_byte - node.start_byte].decode())
        out.append(f"({rename[text(n)]})" if n.type == "identifier" else " ")
        pos = n.end_byte - node.start_byte
    out.append(src[pos:].decode())
    return "".join(out).replace("\n", " ")


# ------------------------------------------------------------ control flow


def _block_rest(stmt: Node) -> list[Node]:
    """The statements after ``stmt`` in its block."""
    sibs = [c for c in stmt.parent.named_children]
    return sibs[sibs.index(stmt) + 1:]


def early_return_to_else(tree: Tree) -> Iterator[Site]:
    """``if (c) return X; REST`` -> ``if (c) return X; else { REST }``."""
    for fn in tree.visible_funcs():
        for ifn in ifs(fn):
            cons = ifn.child_by_field_name("consequence")
            rest = [c for c in _block_rest(ifn) if c.type != "comment"] if \
                cs.statement_parent_ok(ifn) else []
            if ifn.child_by_field_name("alternative") is not None or not rest or \
                    not cs.jumps_away(cons):
                continue

            def make(fn=fn, ifn=ifn, cons=cons):
                close = ifn.parent.children[-1]  # '}'
                return checked(tree, [E(fn.path, cons.end_byte, cons.end_byte, " else {"),
                                      E(fn.path, close.start_byte, close.start_byte, "}\n")])
            yield Site("early-return-to-else", key(fn, ifn, "if"), make)


def _constant_return(stmt: Node, fn: Func) -> Node | None:
    """The return statement of ``stmt`` (itself or its only statement) if it reads no local."""
    if stmt.type == "compound_statement":
        inner = [c for c in stmt.named_children if c.type != "comment"]
        stmt = inner[0] if len(inner) == 1 else stmt
    if stmt.type != "return_statement":
        return None
    names = {loc.name for loc in cs.locals_of(fn)}
    if any(text(n) in names for n in cs.idents(stmt)) or not cs.no_effects(stmt):
        return None
    return stmt


def return_to_goto(tree: Tree) -> Iterator[Site]:
    """``if (c) return K;`` -> ``if (c) goto L; ... L: return K;`` at the end of the body."""
    for fn in tree.visible_funcs():
        body_stmts = [c for c in fn.body.named_children if c.type != "comment"]
        ends = bool(body_stmts) and body_stmts[-1].type in ("return_statement", "goto_statement")
        if not (ends or cs.returns_void(fn)):
            continue
        for ifn in ifs(fn):
            ret = _constant_return(ifn.child_by_field_name("consequence"), fn)
            if ret is None:
                continue

            def make(fn=fn, ret=ret):
                label = tree.fresh("vpm_out")
                close = fn.body.children[-1]
                return checked(tree, [
                    E(fn.path, ret, new=f"goto {label};"),
                    E(fn.path, close.start_byte, close.start_byte, f"{label}:\n\t{text(ret)}\n")])
            yield Site("return-to-goto", key(fn, ifn, "if"), make)


def _else_body(ifn: Node) -> Node | None:
    alt = ifn.child_by_field_name("alternative")
    if alt is None:
        return None
    stmt = alt.named_children[-1]
    return None if stmt.type == "if_statement" else stmt


def _last_in_void(fn: Func, ifn: Node) -> bool:
    stmts = [c for c in fn.body.named_children if c.type != "comment"]
    return cs.returns_void(fn) and bool(stmts) and stmts[-1] == ifn


def else_to_early_return(tree: Tree) -> Iterator[Site]:
    """``if (c) { ...; return; } else { B }`` -> ``if (c) { ...; return; } B``.

    Also the last ``if``/``else`` of a void function: ``return;`` is added to the first arm.
    """
    for fn in tree.visible_funcs():
        for ifn in ifs(fn):
            body, cons = _else_body(ifn), ifn.child_by_field_name("consequence")
            if body is None or not cs.statement_parent_ok(ifn):
                continue
            add_return = not cs.jumps_away(cons)
            if add_return and not (_last_in_void(fn, ifn) and cons.type == "compound_statement"):
                continue
            if body.type == "compound_statement" and any(
                    c.type == "declaration" for c in body.named_children):
                continue  # its names would move into the enclosing block

            def make(fn=fn, ifn=ifn, body=body, cons=cons, add_return=add_return):
                alt = ifn.child_by_field_name("alternative")
                inner = body.text[1:-1] if body.type == "compound_statement" else body.text
                edits = [E(fn.path, alt, new=b"\n" + inner)]
                if add_return:
                    close = cons.children[-1]
                    edits.append(E(fn.path, close.start_byte, close.start_byte, "\treturn;\n"))
                return checked(tree, edits)
            yield Site("else-to-early-return", key(fn, ifn, "if"), make)


def negate_swap(tree: Tree) -> Iterator[Site]:
    """``if (c) A else B`` -> ``if (!(c)) { B } else { A }``."""
    for fn in tree.visible_funcs():
        for ifn in ifs(fn):
            body = _else_body(ifn)
            if body is None:
                continue

            def make(fn=fn, ifn=ifn, body=body):
                cond, cons = ifn.child_by_field_name("condition"), \
                    ifn.child_by_field_name("consequence")
                alt = ifn.child_by_field_name("alternative")
                new = (f"if (!{text(cond)}) {{\n{text(body)}\n}} else {{\n{text(cons)}\n}}")
                return checked(tree, [E(fn.path, ifn.start_byte, alt.end_byte, new)])
            yield Site("negate-swap", key(fn, ifn, "if"), make)


_BREAKABLE = ("for_statement", "while_statement", "do_statement", "switch_statement")


def _owner(node: Node) -> Node | None:
    """The loop or switch a ``break`` at ``node`` leaves."""
    p = node.parent
    while p is not None and p.type not in _BREAKABLE:
        p = p.parent
    return p


def _breaks_to(node: Node, owner: Node | None) -> list[Node]:
    """``break`` statements under ``node`` that leave ``owner`` (not an inner loop/switch)."""
    return [n for n in walk(node) if n.type == "break_statement" and _owner(n) == owner]


def _switch_groups(sw: Node) -> list[tuple[list[Node], list[Node]]] | None:
    """[(labels, statements)] with fall-through only between empty labels; else None."""
    groups: list[tuple[list[Node], list[Node]]] = []
    labels: list[Node] = []
    for case in sw.child_by_field_name("body").named_children:
        if case.type == "comment":
            continue
        if case.type != "case_statement":
            return None
        stmts = [c for c in case.named_children if c != case.child_by_field_name("value")
                 and c.type != "comment"]
        labels.append(case)
        if stmts:
            groups.append((labels, stmts))
            labels = []
    if labels:
        groups.append((labels, []))
    return groups


def _group_ok(sw: Node, stmts: list[Node], last: bool) -> bool:
    breaks = [b for s in stmts for b in _breaks_to(s, sw)]
    if any(s.type == "declaration" for s in stmts):
        return False
    if not stmts:
        return last
    if stmts[-1].type == "break_statement":
        return len(breaks) == 1
    return not breaks and (last or cs.jumps_away(stmts[-1]))


def switch_to_if(tree: Tree) -> Iterator[Site]:
    for fn in tree.visible_funcs():
        for sw in (n for n in walk(fn.body) if n.type == "switch_statement"):
            value = sw.child_by_field_name("condition")
            groups = _switch_groups(sw)
            if groups is None or not cs.pure(value):
                continue
            defaults = [i for i, (labels, _) in enumerate(groups)
                        if any(c.child_by_field_name("value") is None for c in labels)]
            if defaults not in ([], [len(groups) - 1]) or not all(
                    _group_ok(sw, s, i == len(groups) - 1) for i, (_, s) in enumerate(groups)):
                continue
            yield Site("switch-to-if", key(fn, sw, "switch"),
                       lambda fn=fn, sw=sw, groups=groups, value=value:
                       checked(tree, [E(fn.path, sw, new=_if_chain(value, groups))]))


def _if_chain(value: Node, groups: list[tuple[list[Node], list[Node]]]) -> str:
    parts = []
    for labels, stmts in groups:
        body = [text(s) for s in stmts if s.type != "break_statement"]
        vals = [c.child_by_field_name("value") for c in labels]
        block = "{\n" + "\n".join(body) + "\n}"
        if any(v is None for v in vals):
            parts.append(block)
        else:
            cond = " || ".join(f"{text(value)} == ({text(v)})" for v in vals)
            parts.append(f"if ({cond}) {block}")
    return " else ".join(parts)


def _chain(ifn: Node) -> tuple[Node, list[tuple[Node, Node]], Node | None] | None:
    """``if (x == K1) A else if (x == K2) B ... else Z`` -> (x, [(K, A)], Z)."""
    arms, subject, cur = [], None, ifn
    while True:
        c = cond_inner(cur)
        if c.type != "binary_expression" or text(c.child_by_field_name("operator")) != "==":
            return None
        left, right = c.child_by_field_name("left"), c.child_by_field_name("right")
        if subject is not None and text(left) != text(subject):
            return None
        subject = left
        ok_const = right.type == "number_literal" or (
            right.type == "identifier" and text(right).isupper())
        if not ok_const:
            return None
        arms.append((right, cur.child_by_field_name("consequence")))
        alt = cur.child_by_field_name("alternative")
        nxt = alt.named_children[-1] if alt is not None else None
        if nxt is not None and nxt.type == "if_statement":
            cur = nxt
            continue
        return subject, arms, nxt


def if_to_switch(tree: Tree) -> Iterator[Site]:
    ftypes = cs.field_types(tree)
    for fn in tree.visible_funcs():
        for ifn in ifs(fn):
            if ifn.parent.type == "else_clause":
                continue
            got = _chain(ifn)
            if got is None or len(got[1]) < 2:
                continue
            subject, arms, rest = got
            consts = [text(k) for k, _ in arms]
            bodies = [b for _, b in arms] + ([rest] if rest is not None else [])
            if len(set(consts)) != len(consts) or not cs.pure(subject) or \
                    cs.infer(tree, fn, subject, ftypes) is None or \
                    any(_breaks_to(b, _owner(ifn)) for b in bodies):
                continue
            yield Site("if-to-switch", key(fn, ifn, "if"),
                       lambda fn=fn, ifn=ifn, got=got:
                       checked(tree, [E(fn.path, ifn, new=_switch(*got))]))


def _switch(subject: Node, arms: list[tuple[Node, Node]], rest: Node | None) -> str:
    out = [f"switch ({text(subject)}) {{"]
    for k, body in arms:
        out.append(f"case {text(k)}:\n{{\n{text(body)}\n}}\nbreak;")
    if rest is not None:
        out.append(f"default:\n{{\n{text(rest)}\n}}\nbreak;")
    return "\n".join(out) + "\n}"


# ------------------------------------------------------ annotations and #ifdef


def unlikely(tree: Tree) -> Iterator[Site]:
    """``if (c)`` -> ``if (unlikely(c))``; ``unlikely`` defined (guarded) if the tree lacks it."""
    defined = "unlikely" in tree.macros
    for fn in tree.visible_funcs():
        for ifn in ifs(fn):
            def make(fn=fn, ifn=ifn):
                cond = cond_inner(ifn)
                edits = [E(fn.path, cond, new=f"unlikely({text(cond)})")]
                if not defined:
                    edits.append(E(fn.path, fn.node.start_byte, fn.node.start_byte, UNLIKELY))
                return checked(tree, edits)
            yield Site("unlikely", key(fn, ifn, "if"), make)


def _own_lines(data: bytes, node: Node) -> tuple[int, int] | None:
    """(start of its first line, end of its last line) when ``node`` stands on lines alone."""
    start = cs.line_start(data, node.start_byte)
    end = data.find(b"\n", node.end_byte)
    end = len(data) if end < 0 else end + 1
    if data[start: node.start_byte].strip() or data[node.end_byte: end].strip():
        return None
    return start, end


def _wrap_ifdef(tree: Tree, kind: str, before: str, after: str) -> Iterator[Site]:
    for fn in tree.visible_funcs():
        for ifn in ifs(fn):
            span = _own_lines(tree.files[fn.path], ifn)
            # Only a statement of a block: an #ifdef around the body of a braceless
            # for/while/if would leave that statement without a body in the other
            # branch (C then takes the next statement as its body).
            if span is None or ifn.parent.type not in ("compound_statement", "case_statement"):
                continue

            def make(fn=fn, span=span):
                return checked(tree, [E(fn.path, span[0], span[0], before),
                                      E(fn.path, span[1], span[1], after)])
            yield Site(kind, key(fn, ifn, "if"), make)


def ifdef_on(tree: Tree) -> Iterator[Site]:
    """``#ifdef ON`` around a check, ``#else`` left empty."""
    yield from _wrap_ifdef(tree, "ifdef-on", f"#ifdef {ON_SYMBOL}\n",
                           "#else\n\t/* not built on this configuration */\n#endif\n")


def ifdef_off_else(tree: Tree) -> Iterator[Site]:
    """The check in the ``#else`` of an ``#ifdef`` that the configuration leaves off."""
    yield from _wrap_ifdef(tree, "ifdef-off-else",
                           f"#ifdef {OFF_SYMBOL}\n\t/* Book3E: no check */\n#else\n", "#endif\n")


# ------------------------------------------------------- moving and splitting


def _top_level(fn: Func) -> bool:
    p = fn.node.parent
    if p.type == "translation_unit":
        return True
    guard = p.type == "preproc_ifdef" and p.parent.type == "translation_unit" and \
        text(p.children[0]) == "#ifndef" and fn.path.endswith(".h")
    return guard


def reorder_function(tree: Tree) -> Iterator[Site]:
    """Move a definition to the end of its file, leaving a prototype in its place."""
    for fn in tree.visible_funcs():
        data = tree.files[fn.path]
        if not _top_level(fn) or b"#undef" in data:
            continue

        def make(fn=fn):
            end = (fn.node.parent.children[-1].start_byte
                   if fn.node.parent.type != "translation_unit" else len(tree.files[fn.path]))
            proto = fn.node.text[: fn.body.start_byte - fn.node.start_byte].decode().rstrip()
            return checked(tree, [E(fn.path, fn.node, new=proto + ";"),
                                  E(fn.path, end, end, "\n" + text(fn.node) + "\n")])
        yield Site("reorder-function", key(fn, None, "fn"), make)


def _labels_cross(prefix: list[Node], tail: list[Node]) -> bool:
    def labels(ns):
        return {text(n.children[0]) for s in ns for n in walk(s) if n.type == "labeled_statement"}

    def gotos(ns):
        return {text(n.named_children[0]) for s in ns for n in walk(s)
                if n.type == "goto_statement"}
    return bool(gotos(prefix) & labels(tail)) or bool(gotos(tail) - labels(tail))


def _split_args(tree: Tree, fn: Func, prefix: list[Node], tail: list[Node]) -> \
        list[cs.Local] | None:
    """The parameters and prefix locals the tail reads, passed by value; None if unsafe."""
    locs = cs.locals_of(fn)
    if len({loc.name for loc in locs}) != len(locs):
        return None
    visible = {loc.name: loc for loc in locs if loc.param or any(
        p.start_byte <= loc.node.start_byte < p.end_byte and p.type == "declaration"
        for p in prefix)}
    used = {text(n) for s in tail for n in cs.idents(s)}
    args = [visible[name] for name in visible if name in used]
    inner = {loc.name for loc in locs if not loc.param and loc.name not in visible}
    if any(a.ctype is None or cs.address_taken(fn, a.name) for a in args) or \
            (used & inner - {loc.name for loc in locs if _declared_in(loc, tail)}):
        return None
    if any(cs.macro_captures(tree, s, set(visible)) for s in tail):
        return None
    return args


def _unset(loc: cs.Local, prefix: list[Node]) -> bool:
    """Declared without initialiser and never written in the prefix: declare it in the tail."""
    decl = loc.node.parent
    while decl is not None and decl.type in ("pointer_declarator", "array_declarator",
                                             "parenthesized_declarator"):
        decl = decl.parent  # ``struct kvm *kvm = …``: the initialiser is above the pointer
    if loc.param or (decl is not None and decl.type == "init_declarator"):
        return False
    return not any(n.type in ("assignment_expression", "update_expression") and any(
        text(i) == loc.name for i in cs.idents(n.child_by_field_name("left")
                                               or n.child_by_field_name("argument") or n))
        for s in prefix for n in walk(s))


def _declared_in(loc: cs.Local, stmts: list[Node]) -> bool:
    return any(s.start_byte <= loc.node.start_byte < s.end_byte for s in stmts)


def split_function(tree: Tree) -> Iterator[Site]:
    """Move the statements after a top-level boundary into a new static function."""
    for fn in tree.visible_funcs():
        stmts = [c for c in fn.body.named_children if c.type != "comment"]
        for k in range(1, len(stmts)):
            prefix, tail = stmts[:k], stmts[k:]
            if any(s.type == "declaration" for s in tail[:0]) or _labels_cross(prefix, tail):
                continue
            args = _split_args(tree, fn, prefix, tail)
            if args is None:
                continue
            fresh = [a for a in args if _unset(a, prefix)]
            yield Site("split-function", key(fn, tail[0], f"k{k}"),
                       lambda fn=fn, tail=tail, args=args, fresh=fresh:
                       _split(tree, fn, tail, [a for a in args if a not in fresh], fresh))


def _split(tree: Tree, fn: Func, tail: list[Node], args: list[cs.Local],
           fresh: list[cs.Local]) -> Variant:
    name = tree.fresh(fn.name + "_tail")
    ret = cs.return_prefix(fn)
    if "static" not in ret:
        ret = "static " + ret
    params = ", ".join(f"{a.ctype} {a.name}".replace("* ", "*") for a in args) or "void"
    body = tree.files[fn.path][tail[0].start_byte: tail[-1].end_byte].decode()
    decls = "".join(f"{a.ctype} {a.name};\n\t".replace("* ", "*") for a in fresh)
    new_fn = f"{ret}{name}({params})\n{{\n\t{decls}{body}\n}}\n\n"
    call = f"{name}({', '.join(a.name for a in args)})"
    call = f"{call};" if cs.returns_void(fn) else f"return {call};"
    return checked(tree, [E(fn.path, fn.node.start_byte, fn.node.start_byte, new_fn),
                          E(fn.path, tail[0].start_byte, tail[-1].end_byte, call)],
                   {name: fn.name})


def whitespace_comments(tree: Tree) -> Iterator[Site]:
    """A comment and a blank line before every statement of a body, spaces for tabs."""
    for fn in tree.visible_funcs():
        def make(fn=fn):
            edits = []
            for n in walk(fn.body):
                if n.type == "compound_statement":
                    for s in n.named_children:
                        if s.type != "comment":
                            edits.append(E(fn.path, s.start_byte, s.start_byte,
                                           "/* metamorphic: a comment */\n\n    "))
            return checked(tree, edits)
        yield Site("whitespace-comments", key(fn, None, "fn"), make)


TRANSFORMS: dict[str, Callable[[Tree], Iterator[Site]]] = {
    "rename-function": rename_function,
    "rename-local": rename_local,
    "rename-param": rename_param,
    "rename-field": rename_field,
    "alias-param": alias_param,
    "extract-static": extract_static,
    "extract-inline-header": extract_inline,
    "local-for-subexpr": local_for_subexpr,
    "macro-for-subexpr": macro_for_subexpr,
    "early-return-to-else": early_return_to_else,
    "return-to-goto": return_to_goto,
    "else-to-early-return": else_to_early_return,
    "negate-swap": negate_swap,
    "switch-to-if": switch_to_if,
    "if-to-switch": if_to_switch,
    "unlikely": unlikely,
    "ifdef-on": ifdef_on,
    "ifdef-off-else": ifdef_off_else,
    "reorder-function": reorder_function,
    "split-function": split_function,
    "whitespace-comments": whitespace_comments,
}


def all_sites(tree: Tree, kinds: list[str] | None = None) -> list[Site]:
    out: list[Site] = []
    for kind in kinds or list(TRANSFORMS):
        sites = list(TRANSFORMS[kind](tree))
        seen: dict[str, int] = {}
        for s in sites:  # keys are unique per tree (same line twice: numbered)
            n = seen.get(s.key, 0)
            seen[s.key] = n + 1
            out.append(s if n == 0 else Site(s.transform, f"{s.key}#{n}", s.make))
    return out
