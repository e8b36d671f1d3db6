"""Every tree-sitter question the analyzer asks is answered from a few grouped queries
(compiling a Query costs ~0.6 ms; a check used to compile 14): the answer must be what
compiling the question's own query and running it gives, node for node, in the same
order, on every bundled C file and on the shapes that are easy to get wrong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tree_sitter import Query, QueryCursor

from analyzer.c import parse as cparse

ROOT = Path(__file__).resolve().parent.parent
C_FILES = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.suffix in (".c", ".h"))

# The shapes a grouped answer could get wrong: nested calls and fields (same start),
# calls of calls, a declaration with two table declarators, labels, broken code.
EDGES = b"""
static int t(int id) {
    static const int tab[] = { 1, 2 }, other[] = { 3 }, m[2][2] = {{0}}, *p[] = { 0 };
    int x = 1, y = tab[id % 2][0];
    struct s *o = get(id)(x);
    o->a->b = alloc(o->c.d + x + y);
    o->vp_base = alloc_block(id);
    x = y = f(g(h(id)));
again:
    if (x + 1 > y) goto again;
    if (!o) goto out;
    switch (id) { case 1: return (u32)(x); }
    return x + (y - 1) * id;
out:
    return -1 + ;
}
"""


def _strings(scope: ast.AST) -> dict[str, str]:
    return {t.id: n.value.value for n in ast.walk(scope) if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
            for t in n.targets if isinstance(t, ast.Name)}


def _asked() -> tuple[set[str], set[str]]:
    """The query texts the analyzer passes to ``captures`` and ``matches``: literals,
    and names bound to a literal in the same function or module (an f-string is left
    out)."""
    caps: set[str] = set()
    mats: set[str] = set()
    for path in sorted((ROOT / "analyzer").rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = _strings(tree)
        for scope in ast.walk(tree):
            if not isinstance(scope, ast.FunctionDef):
                continue
            names = module | _strings(scope)
            for n in ast.walk(scope):
                if not isinstance(n, ast.Call) or not n.args:
                    continue
                fn = n.func.attr if isinstance(n.func, ast.Attribute) else \
                    getattr(n.func, "id", "")
                if fn not in ("captures", "matches"):
                    continue
                arg = n.args[0]
                text = arg.value if isinstance(arg, ast.Constant) else names.get(
                    getattr(arg, "id", None))
                if isinstance(text, str) and text.startswith("("):
                    (caps if fn == "captures" else mats).add(text)
    return caps, mats


CAPTURES, MATCHES = _asked()
CAPTURES.add("(subscript_expression) @n")  # paths._node_at's f-string, with its kind


def _nodes() -> list:
    """Every file's root and every function in it (the nodes the rules ask about)."""
    out = []
    for data in [EDGES] + [p.read_bytes() for p in C_FILES]:
        root = cparse.parse(data).root_node
        out.append(root)
        out.extend(QueryCursor(Query(cparse.C, "(function_definition) @f"))
                   .captures(root).get("f", []))
    return out


NODES = _nodes()


def _key(n) -> tuple:
    return n.start_byte, n.end_byte, n.type


def test_the_scan_finds_the_questions() -> None:
    assert len(CAPTURES) >= 15 and len(MATCHES) >= 3
    assert "(return_statement) @r" in CAPTURES


@pytest.mark.parametrize("q", sorted(CAPTURES))
def test_captures_are_those_of_the_own_query(q: str) -> None:
    assert cparse._derivation(q) is not None, "answered by compiling a query of its own"
    own_query = Query(cparse.C, q)
    found = 0
    for node in NODES:
        own = {k: sorted(map(_key, v)) for k, v in QueryCursor(own_query).captures(node).items()}
        got = {k: list(map(_key, v)) for k, v in cparse.captures(q, node).items()}
        assert got == own, (q, node.type, cparse.text(node)[:80])
        found += bool(own)
    assert found


@pytest.mark.parametrize("q", sorted(MATCHES))
def test_matches_are_those_of_the_own_query(q: str) -> None:
    assert q in cparse._MATCHES, "answered by compiling a query of its own"
    own_query = Query(cparse.C, q)
    found = 0
    for node in NODES:
        own = [m for _, m in QueryCursor(own_query).matches(node)]
        own.sort(key=lambda m: min(n.start_byte for v in m.values() for n in v))
        own = [{k: list(map(_key, v)) for k, v in m.items()} for m in own]
        got = [{k: list(map(_key, v)) for k, v in m.items()} for m in cparse.matches(q, node)]
        assert got == own, (q, node.type)
        found += bool(own)
    assert found


def test_an_unknown_question_is_still_answered() -> None:
    """A query no module asked when the groups were written compiles its own."""
    q = "(while_statement condition: (_) @c) @w"
    root = cparse.parse(b"void f(int a) { while (a) a--; }\n").root_node
    assert cparse._derivation(q) is None
    assert [cparse.text(n) for n in cparse.captures(q, root)["c"]] == ["(a)"]
