"""The path engine's shortcuts give what the plain ways they replace give: generated
expression code runs like the closures, a function's callers found from its name
are the calls a query finds, and a sweep's runner is :func:`paths.run`. (Timing is
measured by benchmarks/bench_check.py and bench_model.py, never asserted here.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.c import parse as cparse
from analyzer.model import ceval, paths
from analyzer.model.ceval import runtime

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
C_FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".c", ".h") and p.is_file())

# Every operator that has a generated form, with the values where C's rules bite:
# signed and unsigned division and remainder (negative operands, zero divisors),
# wrap-around, conversions, a constant table read out of bounds, WARN, configuration
# reads out of range, None or unbound, short-circuits and the conditional operator.
FUNCTIONS = {
    "div": """int f(int a, int b) { int q = a / b; int r = a % b; unsigned u = a;
              unsigned v = b; return q * 1000 + r + (int)(u / (v | 1)) - (int)(u % (v | 1)); }""",
    "udiv-zero": "unsigned f(unsigned a, unsigned b) { return a / b + a % (b + 1); }",
    "wrap": """int f(int a, int b) { u8 x = a * 37; s16 y = a * b * 4099; u32 z = a - b;
               long w = (long)a * b; return x + y + (int)(z >> 3) + (int)(w & 0xff) + ~a; }""",
    "table": """int f(int a, int b) { const int t[4] = {3, 1, 4, 1}; int k = a & 7;
                if (WARN_ON(k > 3)) return -1; return t[k] * 10 + t[b & 3]; }""",
    "env": """int f(int a, int b) { u8 small = NR_CPUS; return a < NR_CPUS ? small + b :
               (threads_per_subcore - a) / (b ? b : 1); }""",
    "logic": """int f(int a, int b) { int x = 0; x = (a > 2 && b < 5) + 2 * (a == 1 || !b);
                x += -a + (a != b) + (a <= b) * 3; return x; }""",
    "built-array": """int f(int a, int b) { int t[3] = {a, b, a + b}; return t[(a & 3)]; }""",
    "shift": "int f(int a, int b) { return (a << (b & 7)) + (a >> 2); }",
}
ENVS = [{"NR_CPUS": 4, "threads_per_subcore": 8}, {"NR_CPUS": 300, "threads_per_subcore": -9},
        {"NR_CPUS": None, "threads_per_subcore": 1}, {"NR_CPUS": 2**40, "threads_per_subcore": 3},
        {"threads_per_subcore": 3}]


def _runs(name: str) -> list:
    src = FUNCTIONS[name].encode()
    node = cparse.parse(src).root_node.children[0]
    fn = ceval.compile_function(ceval.Program({"f": (node, src)}), "f")
    out = []
    for env in ENVS:
        for a in (-7, -1, 0, 1, 2, 5, 255, 2**31 - 1):
            for b in (-3, 0, 1, 2, 7):
                try:
                    out.append(fn(a, b, env=env))
                except (ceval.ModelError, ceval.Unbound) as e:
                    out.append((type(e).__name__, str(e)))
    return out


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_generated_expressions_run_like_the_closures(name: str, monkeypatch) -> None:
    """The same function, compiled with its expressions generated as one function each
    and with every operator a closure, gives the same values, events, crashes and
    faults for every argument and configuration."""
    generated = _runs(name)
    monkeypatch.setattr(runtime, "MAX_SRC_DEPTH", -1)  # every operand a closure call
    monkeypatch.setattr(runtime._E, "fast", property(lambda e: e.fn))
    closures = _runs(name)
    assert generated == closures
    assert len({repr(r) for r in generated}) > 3  # the inputs reach different outcomes


def _query_calls(root, name: str) -> list:
    found = cparse.captures("(call_expression function: (identifier) @f) @c", root).get("c", [])
    return [c for c in found if cparse.text(c.child_by_field_name("function")) == name]


def test_callers_found_from_the_name_are_the_query_s() -> None:
    """For every function called in the bundled sources, the calls found where its
    name is written are, in order, those a query over every call of the file finds."""
    checked = 0
    for path in C_FILES:
        root = cparse.parse(path.read_bytes()).root_node
        names = {cparse.text(c.child_by_field_name("function")) for c in
                 cparse.captures("(call_expression function: (identifier) @f) @c", root
                                 ).get("c", [])}
        for name in sorted(names) + ["kvm", "vcpu", "not_called_anywhere"]:
            assert list(paths._find_calls(root, name)) == _query_calls(root, name), (path, name)
            checked += 1
    assert checked > 100


def test_a_file_that_begins_blank_keeps_its_offsets() -> None:
    """Offsets of a name in the root's text are shifted by where the root starts."""
    src = b"\n\n/* c */\nstatic int g(int x) { return x; }\nint f(void) { return g(1) + g(2); }\n"
    root = cparse.parse(src).root_node
    got = paths._find_calls(root, "g")
    assert [cparse.text(c) for c in got] == ["g(1)", "g(2)"]
    assert list(got) == _query_calls(root, "g")
