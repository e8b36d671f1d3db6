"""The evaluator against the independent reference of C's integer rules.

Random expressions over int/u32/u64/u8/long variables are rendered to C, compiled
by analyzer.model.ceval and compared with tests/creference.py (written from the C
standard: 6.3.1.1 promotions, 6.3.1.8 usual arithmetic conversions, 6.5.5
truncating division). Expressions with undefined behaviour (signed overflow,
division by zero, bad shift counts) are discarded.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analyzer.c import parse as cparse
from analyzer.model import ceval

from .creference import RTYPES, UB, reval, rrender, rtype

VARS = {"a": "int", "b": "u32", "c": "u64", "d": "u8", "e": "long"}


def ref(e, env) -> tuple[int, str]:
    """The reference's value and C type of ``e`` (tests/creference.py)."""
    return reval(e, env, VARS), rtype(e, VARS)


OPS = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "<=", ">", ">=", "==", "!=",
       "&&", "||"]
leaves = st.one_of(st.sampled_from([("var", v) for v in VARS]),
                   st.integers(0, 70).map(lambda v: ("lit", v)))
exprs = st.recursive(leaves, lambda inner: st.one_of(
    st.tuples(st.just("bin"), st.sampled_from(OPS), inner, inner),
    st.tuples(st.just("cast"), st.sampled_from(list(RTYPES)), inner),
    st.tuples(st.sampled_from(["neg", "not", "inv"]), inner),
    st.tuples(st.just("cond"), inner, inner, inner)), max_leaves=8)
envs = st.fixed_dictionaries({
    "a": st.integers(-(2**31), 2**31 - 1), "b": st.integers(0, 2**32 - 1),
    "c": st.integers(0, 2**64 - 1), "d": st.integers(0, 255),
    "e": st.integers(-(2**63), 2**63 - 1)})


def compile_expr(text: str, rtype: str):
    src = (f"{rtype} f(int a, u32 b, u64 c, u8 d, long e)\n{{\n\treturn {text};\n}}\n"
           ).encode()
    fn = cparse.parse(src).root_node.children[0]
    return ceval.compile_function(ceval.Program({"f": (fn, src)}, {}), "f")


@settings(max_examples=400, deadline=None)
@given(exprs, envs)
def test_expressions_agree_with_reference(e, env) -> None:
    try:
        want, t = ref(e, env)
    except UB:
        assume(False)
    fn = compile_expr(rrender(e), t)
    got = fn(env["a"], env["b"], env["c"], env["d"], env["e"], env={})
    assert got.value == want, (rrender(e), env, t)


@pytest.mark.parametrize(("text", "rtype", "want"), [
    ("(u32)0 - 1u", "u32", 2**32 - 1),
    ("-7 / 2", "int", -3),
    ("-7 % 2", "int", -1),
    ("-1 < 1u", "int", 0),
    ("(u8)300", "u8", 44),
    ("b * 2", "u32", 2**32 - 2),  # b = 2**32 - 1 wraps
    ("0xffffffff + 1", "long", 0),  # a hex literal that does not fit int is unsigned int
    ("4294967295 + 1", "long", 2**32),  # a decimal one is long
])
def test_known_corner_cases(text: str, rtype: str, want: int) -> None:
    assert compile_expr(text, rtype)(0, 2**32 - 1, 0, 0, 0, env={}).value == want


def _fn(body: str):
    src = f"int f(int x)\n{{\n{body}\n}}\n".encode()
    fn = cparse.parse(src).root_node.children[0]
    return ceval.Program({"f": (fn, src)}, {})


@pytest.mark.parametrize(("body", "construct", "line"), [
    ("\tint i;\n\tfor (i = 0; i < x; i++)\n\t\tx++;\n\treturn x;", "for_statement", 4),
    ("\tif (x) {\n\t\tgoto out;\nout:\n\t\tx++;\n\t}\n\treturn 0;",
     "goto out (a label inside a block)", 4),
    ("\twhile (x)\n\t\tx--;\n\treturn x;", "while_statement", 3),
])
def test_unsupported_names_construct_and_line(body: str, construct: str, line: int) -> None:
    with pytest.raises(ceval.Unsupported) as e:
        ceval.compile_function(_fn(body), "f")
    assert (e.value.construct, e.value.line) == (construct, line)
    assert str(e.value) == f"{construct} at line {line}"


def test_bug_on_stops_and_warn_continues() -> None:
    prog = _fn("\tif (WARN_ONCE(x > 5, \"big\"))\n\t\treturn 0;\n\tBUG_ON(x == 3);\n\treturn x;")
    fn = ceval.compile_function(prog, "f")
    r = fn(7, env={})
    assert (r.value, r.crashed, [(e.kind, e.line) for e in r.events]) == (0, False, [("warn", 3)])
    r = fn(3, env={})
    assert (r.value, r.crashed, [(e.kind, e.line) for e in r.events]) == (None, True, [("bug", 5)])
    assert fn(2, env={}).value == 2


def test_division_by_zero_is_a_model_error() -> None:
    fn = ceval.compile_function(_fn("\treturn 10 / x;"), "f")
    with pytest.raises(ceval.ModelError):
        fn(0, env={})
