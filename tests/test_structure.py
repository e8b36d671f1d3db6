"""The package's shape, checked from its source (AST and tokens, nothing imported):
the import graph has no cycle (lazy imports count), no function is longer than one
screen, and the kernel's names come from the profile and the rule files, not from
Python code (docstrings, comments and the CLI's help text may name them)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "analyzer"
MAX_FUNCTION_LINES = 60
KERNEL_NAMES = re.compile(r"kvmppc_|vp_base|vcores|cpu_has_feature|CPU_FTR_|emul_smt_mode|"
                          r"KVM_MAX_V|nr_servers|book3s_")
HELP_KEYWORDS = {"help", "description", "epilog", "usage"}
_FSTRING_MIDDLE = getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)  # Python 3.12+


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports, anywhere in the file (lazy ones too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = _package_of(name, path).split(".")
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in known and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    mods = modules()
    graph = {name: imports(name, path, set(mods)) for name, path in mods.items()}
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # the walk saw the code
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_find_cycle_sees_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def long_functions(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{node.name} (line {node.lineno}, {length} lines)")
    return out


def test_no_function_is_longer_than_a_screen() -> None:
    found = {str(p.relative_to(PACKAGE)): f for p in PACKAGE.rglob("*.py")
             if (f := long_functions(p.read_text()))}
    assert found == {}
    longest = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    assert long_functions(longest) == ["f (line 1, 61 lines)"]


def _prose(tree: ast.AST, cli: bool) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    """Spans of the strings that are prose: docstrings, and in the CLI the
    help text (``help=``/``description=``/``epilog=``/``usage=`` and the module's
    upper-case text constants)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.update(_strings(body[0].value))
        if cli and isinstance(node, ast.keyword) and node.arg in HELP_KEYWORDS:
            out.update(_strings(node.value))
        if cli and isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            out.update(_strings(node.value))
    return out


def _strings(node: ast.AST) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    return {((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset))
            for n in ast.walk(node) if isinstance(n, ast.Constant | ast.JoinedStr)}


def kernel_names(source: str, cli: bool = False) -> list[str]:
    """``line: token`` for each code token (names and non-prose strings) naming the kernel."""
    prose = _prose(ast.parse(source), cli)
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or any(a <= tok.start < b for a, b in prose):
            continue
        if tok.type in (tokenize.NAME, tokenize.STRING, _FSTRING_MIDDLE) and \
                KERNEL_NAMES.search(tok.string):
            out.append(f"{tok.start[0]}: {tok.string}")
    return out


def test_kernel_names_come_from_the_profile() -> None:
    found = {str(p.relative_to(PACKAGE)): k for p in sorted(PACKAGE.rglob("*.py"))
             if (k := kernel_names(p.read_text(), cli=p.name == "cli.py"))}
    assert found == {}


def test_kernel_names_sees_code_but_not_prose() -> None:
    src = ('"""kvmppc_pack_vcpu_id in a docstring."""\n'
           "x = 'vp_base'  # vcores in a comment\n"
           "def f(nr_servers):\n    return f'{x} CPU_FTR_ARCH_300'\n")
    assert [k.partition(":")[0] for k in kernel_names(src)] == ["2", "3", "4"]
    cli = "p.add_argument('--x', help='see kvmppc_xive')\nEPILOG = 'book3s_hv.c'\n"
    assert kernel_names(cli, cli=True) == [] and len(kernel_names(cli)) == 2
