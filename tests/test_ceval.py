"""analyzer.model.ceval: the kernel's packing functions, the C subset, and random
programs checked against a reference model of C's integer rules written here."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analyzer.c import parse as cparse
from analyzer.errors import ModelLimit
from analyzer.model import ceval

from .creference import RTYPES, UB, rcheck, rconvert, reval, rrender, rtype, rwrap

RFC_DEFINES = {"KVM_MAX_VCPUS": "NR_CPUS", "MAX_SMT_THREADS": "8"}

# The RFC's packing function, as in seed/rfc-pack-vcore-ids.mbox.
RFC = """\
static inline u32 kvmppc_pack_vcpu_id(struct kvm *kvm, u32 id)
{
	const int block_offsets[MAX_SMT_THREADS] = {0, 4, 2, 6, 1, 5, 3, 7};
	int stride = kvm->arch.emul_smt_mode > 1 ?
		kvm->arch.emul_smt_mode : kvm->arch.smt_mode;
	int block = (id / KVM_MAX_VCPUS) * (MAX_SMT_THREADS / stride);
	u32 packed_id;

	BUG_ON(block >= MAX_SMT_THREADS);
	packed_id = (id % KVM_MAX_VCPUS) + block_offsets[block];
	BUG_ON(packed_id >= KVM_MAX_VCPUS);
	return packed_id;
}
"""

# The merged kernel's shape.
MERGED = """\
static inline u32 kvmppc_pack_vcpu_id(struct kvm *kvm, u32 id)
{
	const u32 block_offsets[MAX_SMT_THREADS] = {0, 4, 2, 6, 1, 5, 3, 7};
	u32 stride = kvm->arch.emul_smt_mode;
	u32 packed_id;
	int block;

	if (WARN_ONCE(stride > MAX_SMT_THREADS, "Bad stride"))
		return 0;
	block = (id / KVM_MAX_VCPUS) * (MAX_SMT_THREADS / stride);
	if (WARN_ONCE(block >= MAX_SMT_THREADS, "VCPU ID too large to pack"))
		return 0;
	packed_id = (id % KVM_MAX_VCPUS) + block_offsets[block];
	if (WARN_ONCE(packed_id >= KVM_MAX_VCPUS, "VCPU ID packing failed"))
		return 0;
	return packed_id;
}

static inline u32 kvmppc_xive_vp(struct kvmppc_xive *xive, u32 server)
{
	return xive->vp_base + kvmppc_pack_vcpu_id(xive->kvm, server);
}
"""


def program(src: str, defines: dict[str, str] | None = None) -> ceval.Program:
    data = src.encode()
    fns = {}
    for node in cparse.parse(data).root_node.children:
        if node.type == "function_definition":
            fns[cparse.function_name(node)] = (node, data)
    return ceval.Program(fns, dict(defines or {}))


def line_of(src: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, text in enumerate(src.splitlines(), 1) if needle in text)


def compile_src(src: str, name: str = "f", defines: dict[str, str] | None = None):
    return ceval.compile_function(program(src, defines), name)


# --- the kernel's functions ------------------------------------------------------


def test_rfc_packs_david_gibsons_example() -> None:
    pack = compile_src(RFC, "kvmppc_pack_vcpu_id", RFC_DEFINES)
    env = {"NR_CPUS": 16, "emul_smt_mode": 8, "smt_mode": 1}
    got = [pack(0, vid, env=env) for vid in (0, 1, 8, 9, 16, 17, 24, 25)]
    assert [r.value for r in got] == [0, 1, 8, 9, 4, 5, 12, 13]
    assert not any(r.crashed or r.events for r in got)


def test_rfc_crashes_at_the_first_bug_on_for_a_large_id() -> None:
    pack = compile_src(RFC, "kvmppc_pack_vcpu_id", RFC_DEFINES)
    r = pack(None, 128, env={"NR_CPUS": 16, "emul_smt_mode": 8, "smt_mode": 1})
    assert r.crashed and r.value is None
    assert r.events == (ceval.Event("bug", "BUG_ON", line_of(RFC, "BUG_ON(block"),
                                    "kvmppc_pack_vcpu_id"),)


def test_rfc_second_bug_on_and_smt_mode_fallback() -> None:
    pack = compile_src(RFC, "kvmppc_pack_vcpu_id", RFC_DEFINES)
    env = {"NR_CPUS": 16, "emul_smt_mode": 8, "smt_mode": 1}
    r = pack(0, 31, env=env)  # 15 + block_offsets[1] = 19 >= 16
    assert r.crashed and [e.line for e in r.events] == [line_of(RFC, "BUG_ON(packed_id")]
    # emul_smt_mode 1: stride comes from smt_mode (2): block = (id / 16) * 4
    env = {"NR_CPUS": 16, "emul_smt_mode": 1, "smt_mode": 2}
    assert pack(0, 16, env=env).value == 1  # block 4 -> offset 1
    assert pack(0, 32, env=env).crashed


def test_rfc_every_id_matches_the_formula() -> None:
    pack = compile_src(RFC, "kvmppc_pack_vcpu_id", RFC_DEFINES)
    offsets = [0, 4, 2, 6, 1, 5, 3, 7]
    for n in (8, 16, 32):
        for stride in (1, 2, 4, 8):
            env = {"NR_CPUS": n, "emul_smt_mode": stride, "smt_mode": 1}
            for vid in range(0, stride * n + 8):
                block = (vid // n) * (8 // max(stride, 1))
                r = pack(0, vid, env=env)
                if block >= 8:
                    assert r.crashed, (n, stride, vid)
                    continue
                packed = vid % n + offsets[block]
                assert r.crashed == (packed >= n), (n, stride, vid)
                if not r.crashed:
                    assert r.value == packed


def test_merged_warns_and_returns_zero() -> None:
    prog = program(MERGED, RFC_DEFINES)
    pack = ceval.compile_function(prog, "kvmppc_pack_vcpu_id")
    env = {"NR_CPUS": 16, "emul_smt_mode": 8}
    assert [pack(0, v, env=env).value for v in (0, 1, 8, 9, 16, 17, 24, 25)] == \
        [0, 1, 8, 9, 4, 5, 12, 13]
    r = pack(0, 128, env=env)
    assert (r.value, r.crashed) == (0, False)
    assert r.events == (ceval.Event("warn", "WARN_ONCE", line_of(MERGED, "too large"),
                                    "kvmppc_pack_vcpu_id"),)
    r = pack(0, 31, env=env)
    assert (r.value, [e.line for e in r.events]) == (0, [line_of(MERGED, "packing failed")])
    r = pack(0, 3, env={"NR_CPUS": 16, "emul_smt_mode": 16})
    assert (r.value, [e.line for e in r.events]) == (0, [line_of(MERGED, "Bad stride")])


def test_merged_stride_zero_is_a_model_error() -> None:
    pack = compile_src(MERGED, "kvmppc_pack_vcpu_id", RFC_DEFINES)
    with pytest.raises(ceval.ModelError, match="division by zero"):
        pack(0, 3, env={"NR_CPUS": 16, "emul_smt_mode": 0})


def test_vp_helper_composes_with_the_packing_function() -> None:
    vp = compile_src(MERGED, "kvmppc_xive_vp", RFC_DEFINES)
    env = {"NR_CPUS": 16, "emul_smt_mode": 8, "vp_base": 0x1000}
    assert vp(0, 17, env=env).value == 0x1005
    r = vp(0, 128, env=env)  # the packing function warns and gives 0: the block's base
    assert (r.value, r.crashed) == (0x1000, False)
    assert [(e.kind, e.function) for e in r.events] == [("warn", "kvmppc_pack_vcpu_id")]
    # the RFC's BUG_ON inside the callee stops the caller too
    rfc = program(RFC + MERGED.split("}\n\n", 1)[1], RFC_DEFINES)
    r = ceval.compile_function(rfc, "kvmppc_xive_vp")(0, 128, env={**env, "smt_mode": 1})
    assert r.crashed and r.value is None and r.events[0].kind == "bug"


def test_vp_base_wraps_as_u32() -> None:
    vp = compile_src(MERGED, "kvmppc_xive_vp", RFC_DEFINES)
    assert vp(0, 4, env={"NR_CPUS": 16, "emul_smt_mode": 8, "vp_base": -1}).value == 3


def test_compiled_once_per_program_and_name() -> None:
    prog = program(MERGED, RFC_DEFINES)
    assert ceval.compile_function(prog, "kvmppc_xive_vp") is \
        ceval.compile_function(prog, "kvmppc_xive_vp")


# --- the subset -------------------------------------------------------------------


def fn_src(body: str, params: str = "int x", rtype: str = "int") -> str:
    return f"{rtype} f({params})\n{{\n{body}\n}}\n"


def run(body: str, *args: int, params: str = "int x", rtype: str = "int", env=None,
        defines=None) -> ceval.Result:
    return compile_src(fn_src(body, params, rtype), "f", defines)(*args, env=env or {})


@pytest.mark.parametrize(("expr", "rtype", "want"), [
    ("(u32)0 - 1u", "u32", 2**32 - 1),
    ("(u32)0 - 1u", "long", 2**32 - 1),
    ("-7 / 2", "int", -3),
    ("-7 % 2", "int", -1),
    ("7 % -2", "int", 1),
    ("-1 < 1u", "int", 0),
    ("-1 < 1", "int", 1),
    ("-1L < 1u", "int", 1),  # u32 converts to long: value kept
    ("-1 < (u64)1", "int", 0),
    ("(u8)-1", "int", 255),  # read by tree-sitter as ``(u8) - 1``
    ("(u8)-1 * 2", "int", 510),  # the cast binds to -1 only
    ("(u8)-3 / 2 + 1", "int", 127),
    ("(u8)+300", "int", 44),
    ("(s8)200", "int", -56),
    ("(u16)70000", "int", 4464),
    ("~(u8)0", "int", -1),  # promoted to int first
    ("~0u", "u64", 2**32 - 1),
    ("(bool)256", "int", 1),
    ("1u << 31", "u32", 2**31),
    ("-16 >> 2", "int", -4),
    ("0xffffffff + 1", "long", 0),  # hex: unsigned int
    ("4294967295 + 1", "long", 2**32),  # decimal: long
    ("2147483647 + 1", "long", -(2**31)),  # int + int wraps (-fno-strict-overflow)
    ("2147483648 + 1", "long", 2**31 + 1),  # the literal is a long
    ("(u32)3000000000 * 2", "u64", 1705032704),
    ("(unsigned long)3000000000u * 2", "u64", 6000000000),
    ("(size_t)-1", "u64", 2**64 - 1),
    ("1 ? -1 : 0u", "long", 2**32 - 1),  # ?: converts to unsigned int
    ("0 && 1 / 0", "int", 0),
    ("1 || 1 / 0", "int", 1),
    ("!5 + !0", "int", 1),
    ("likely(3) + unlikely(0)", "int", 3),
    ("min(3, -1) + max_t(u8, 300, 2)", "int", 43),
])
def test_expression_corner_cases(expr: str, rtype: str, want: int) -> None:
    assert run(f"\treturn {expr};", 0, rtype=rtype).value == want


def test_statements_and_assignments() -> None:
    body = """\
	u8 a = 250, b = 10;
	int n = 0;
	u32 u;
	a += b;          /* 260 -> 4 */
	n -= 7;
	n /= 2;          /* -3 */
	u = n;           /* 2**32 - 3 */
	if (u > 5)
		n = n * 100;
	else
		n = 1;
	{
		u8 n = 1;    /* shadows */
		a <<= n;
	}
	++n;
	n++;
	return a * 1000000 + n;"""
    assert run(body, 0).value == 8 * 1000000 + -298


def test_update_expression_values() -> None:
    body = "\tint a = x;\n\tint b = a++;\n\tint c = --a;\n\treturn b * 100 + c * 10 + a;"
    assert run(body, 4).value == 444
    assert run("\tu8 a = x;\n\ta++;\n\treturn a;", 255).value == 0


def test_warn_value_and_no_op_calls() -> None:
    body = ('\tpr_devel("x=%d\\n", x);\n\tprintk("hello");\n'
            '\treturn WARN_ON(x > 3) + WARN(x, "fmt %d", x) * 10;')
    r = run(body, 5)
    assert r.value == 11 and [e.macro for e in r.events] == ["WARN_ON", "WARN"]
    assert [e.line for e in r.events] == [5, 5]
    assert run(body, 0) == ceval.Result(0, (), False)


def test_bug_without_condition_and_void_functions() -> None:
    src = "void g(int x)\n{\n\tif (x)\n\t\tBUG();\n\treturn;\n}\n" \
          "int f(int x)\n{\n\tg(x);\n\treturn 7;\n}\n"
    prog = program(src)
    assert ceval.compile_function(prog, "g")(0, env={}) == ceval.Result(None, (), False)
    r = ceval.compile_function(prog, "f")(1, env={})
    assert r == ceval.Result(None, (ceval.Event("bug", "BUG", 4, "g"),), True)
    assert ceval.compile_function(prog, "f")(0, env={}).value == 7


def test_local_array_out_of_bounds_reads_zero_and_records() -> None:
    body = "\tconst int t[4] = {5, 6};\n\treturn t[x] + 1;"
    assert [run(body, i).value for i in range(4)] == [6, 7, 1, 1]
    r = run(body, 4)
    assert r.value == 1 and r.events == (ceval.Event("oob", "t[4]", 4, "f"),)
    assert run(body, -1).events[0].macro == "t[-1]"
    # an array whose elements depend on the arguments
    assert run("\tint t[] = {x, x * 2};\n\treturn t[1] + ARRAY_SIZE(t);", 5).value == 12


def test_macros_expand_recursively_with_a_guard() -> None:
    defines = {"A": "B * 2", "B": "(C + 1)", "C": "3", "SELF": "SELF + 1"}
    assert run("\treturn A;", 0, defines=defines).value == 8
    assert run("\treturn SELF;", 0, defines=defines, env={"SELF": 10}).value == 11
    with pytest.raises(ceval.Unsupported, match="macro BAD"):
        compile_src(fn_src("\treturn BAD;"), "f", {"BAD": "do { } while (0)"})


def test_free_names_fields_and_externals_read_env() -> None:
    body = ("\tif (!cpu_has_feature(CPU_FTR_ARCH_300))\n\t\treturn -1;\n"
            "\treturn threads_per_subcore + kvm->arch.emul_smt_mode * 10;")
    params = "struct kvm *kvm"
    env = {"cpu_has_feature:CPU_FTR_ARCH_300": 1, "threads_per_subcore": 4,
           "emul_smt_mode": 8}
    assert run(body, 0, params=params, env=env).value == 84
    assert run(body, 0, params=params, env={**env, "cpu_has_feature:CPU_FTR_ARCH_300": 0}
               ).value == -1
    with pytest.raises(KeyError, match="threads_per_subcore"):
        run(body, 0, params=params, env={"cpu_has_feature:CPU_FTR_ARCH_300": 1})
    with pytest.raises(KeyError, match="emul_smt_mode"):
        run(body, 0, params=params, env={"cpu_has_feature:CPU_FTR_ARCH_300": 1,
                                         "threads_per_subcore": 1})


def test_env_values_are_converted_to_int() -> None:
    assert run("\treturn NR_CPUS;", 0, env={"NR_CPUS": 2**32 + 5}).value == 5


@pytest.mark.parametrize(("body", "construct", "line"), [
    ("\tint i;\n\tfor (i = 0; i < x; i++)\n\t\tx++;\n\treturn x;", "for_statement", 4),
    ("\tif (x) {\n\t\tgoto out;\nout:\n\t\tx++;\n\t}\n\treturn 0;",
     "goto out (a label inside a block)", 4),
    ("\twhile (x)\n\t\tx--;\n\treturn x;", "while_statement", 3),
    ("\tdo {\n\t\tx--;\n\t} while (x);\n\treturn x;", "do_statement", 3),
    ("\tswitch (x) {\n\tcase 1:\n\t\tcontinue;\n\t}\n\treturn x;", "continue_statement", 5),
    ("\tswitch (x) {\n\tcase 1:\n\tcase x:\n\t\treturn 2;\n\t}\n\treturn x;",
     "case label that is not a constant", 5),
    ("\treturn sizeof(x);", "sizeof_expression", 3),
    ("\tint *p = &x;\n\treturn *p;", "pointer_expression", 3),
    ("\tkvm->arch.smt_mode = x;\n\treturn 0;", "write to a field", 3),
    ("\tint t[2] = {1, 2};\n\tt[0] = x;\n\treturn 0;", "assignment to subscript_expression", 4),
    ("\tpid_t p = x;\n\treturn p;", "type 'pid_t'", 3),
    ("\treturn (x, 1);", "comma_expression", 3),
    ("\tkvm_for_each_vcpu(i, vcpu, kvm) {\n\t\tx++;\n\t}\n\treturn x;",
     "loop macro kvm_for_each_vcpu", 3),
])
def test_unsupported_names_construct_and_line(body: str, construct: str, line: int) -> None:
    with pytest.raises(ceval.Unsupported) as e:
        compile_src(fn_src(body, "struct kvm *kvm, int x"), "f")
    assert (e.value.construct, e.value.line, e.value.function) == (construct, line, "f")
    assert str(e.value) == f"{construct} at line {line}"


def test_unsupported_in_a_callee_fails_the_caller() -> None:
    src = "int g(int x)\n{\n\tfor (;;)\n\t\t;\n}\nint f(int x)\n{\n\treturn g(x);\n}\n"
    prog = program(src)
    for _ in range(2):  # the failure is cached, and raised again
        with pytest.raises(ceval.Unsupported) as e:
            ceval.compile_function(prog, "f")
        assert (e.value.construct, e.value.line, e.value.function) == ("for_statement", 3, "g")


def test_run_time_faults() -> None:
    with pytest.raises(ceval.ModelError):
        run("\treturn 10 / x;", 0)
    with pytest.raises(ceval.ModelError):
        run("\treturn 10 % x;", 0, params="u32 x")
    with pytest.raises(ceval.ModelError, match="shift"):
        run("\treturn 1 << x;", 32)
    with pytest.raises(ceval.ModelError, match="shift"):
        run("\treturn 1u >> x;", -1)
    assert run("\treturn 1ul << x;", 40, rtype="u64").value == 2**40


FUZZ_TOKENS = ["x", "y", "1", "0u", "-", "+", "/", "%", "<<", "(", ")", "{", "}", ";", "if",
               "else", "return", "for", "goto", "int", "u32", "=", "+=", "->", ".", "a", "[",
               "]", ",", "?", ":", "BUG_ON", "WARN_ON", "&&", "!", "++", "\"s\"", "*", "&",
               "sizeof", "while", "NULL", "true", "'c'", "(u8)", "g", "const", "struct s"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FUZZ_TOKENS), max_size=30), st.integers(-3, 3))
def test_random_bodies_raise_only_model_limits(tokens: list[str], arg: int) -> None:
    src = ("int g(int y)\n{\n\treturn y + 1;\n}\n"
           f"int f(struct kvm *kvm, int x)\n{{\n\t{' '.join(tokens)}\n}}\n")
    prog = program(src, {"M": "x + 1"})
    if "f" not in prog.functions:
        return
    try:
        fn = ceval.compile_function(prog, "f")
    except ceval.Unsupported:
        return
    try:
        r = fn(0, arg, env={})
    except ModelLimit:  # Unbound (a KeyError), ModelError
        return
    assert isinstance(r, ceval.Result)


# --- random programs against the reference model of C (tests/creference.py) ---

PARAMS = {"a": "int", "b": "u32", "c": "u64", "d": "u8", "e": "long"}


BINOPS = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "<=", ">", ">=", "==",
          "!=", "&&", "||"]


def expressions(names: list[str]):
    return _expressions(tuple(names))


@functools.cache
def _expressions(names: tuple[str, ...]):
    lits = st.integers(0, 40).map(lambda v: ("lit", v))
    leaves = st.one_of(st.sampled_from([("var", n) for n in names]), lits,
                       lits.map(lambda v: ("neg", v)))
    counts = st.integers(0, 9).map(lambda v: ("lit", v))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.tuples(st.just("bin"), st.sampled_from(BINOPS), inner, inner),
        # mixed signedness matters most in comparisons, / % and shifts: more of them
        st.tuples(st.just("bin"), st.sampled_from(["<", ">=", "==", "/", "%"]), inner, inner),
        st.tuples(st.just("bin"), st.sampled_from(["<<", ">>"]), inner, counts),
        st.tuples(st.just("cast"), st.sampled_from(list(RTYPES)), inner),
        st.tuples(st.sampled_from(["neg", "not", "inv"]), inner),
        st.tuples(st.just("cond"), inner, inner, inner)), max_leaves=6)


param_values = st.fixed_dictionaries({
    "a": st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-9, 9)),
    "b": st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 9)),
    "c": st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 9)),
    "d": st.integers(0, 255),
    "e": st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-9, 9))})

COMPOUND = ["=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="]


@st.composite
def programs(draw):
    """A straight-line body with declarations, (compound) assignments, ++/--, if/else."""
    names = list(PARAMS)
    types = dict(PARAMS)
    stmts = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["decl", "assign", "if", "incr"]))
        if kind == "decl":
            name, ty = f"v{i}", draw(st.sampled_from(list(RTYPES)))
            stmts.append(("decl", name, ty, draw(expressions(names))))
            names.append(name)
            types[name] = ty
        elif kind == "assign":
            stmts.append(("assign", draw(st.sampled_from(names)), draw(st.sampled_from(COMPOUND)),
                          draw(expressions(names))))
        elif kind == "incr":
            stmts.append(("incr", draw(st.sampled_from(names)),
                          draw(st.sampled_from(["++", "--"])), draw(st.booleans())))
        else:
            arm = st.tuples(st.just("assign"), st.sampled_from(names), st.sampled_from(COMPOUND),
                            expressions(names))
            stmts.append(("if", draw(expressions(names)), draw(arm),
                          draw(st.one_of(st.none(), arm))))
    ret = draw(st.sampled_from(list(RTYPES)))
    return stmts, ret, draw(expressions(names)), types


def rexec(prog, vals: dict[str, int]) -> int:
    stmts, ret, result, types = prog
    vals = dict(vals)

    def do(s):
        if s[0] == "decl":
            vals[s[1]] = rwrap(reval(s[3], vals, types), s[2])
        elif s[0] == "assign":
            _, name, op, e = s
            if op == "=":
                v = reval(e, vals, types)
            else:
                v = reval(("bin", op[:-1], ("var", name), e), vals, types)
            vals[name] = rwrap(v, types[name])
        elif s[0] == "incr":
            _, name, op, _prefix = s
            t = types[name]
            ct = rconvert(t, "int")
            v = vals[name] + (1 if op == "++" else -1)
            vals[name] = rwrap(rcheck(v, ct), t) if t != "bool" else int(v != 0)
        else:
            _, c, then, alt = s
            if reval(c, vals, types):
                do(then)
            elif alt is not None:
                do(alt)

    for s in stmts:
        do(s)
    return rwrap(reval(result, vals, types), ret)


def render_program(prog) -> str:
    stmts, ret, result, _ = prog

    def line(s) -> str:
        if s[0] == "decl":
            return f"{s[2]} {s[1]} = {rrender(s[3])};"
        if s[0] == "assign":
            return f"{s[1]} {s[2]} {rrender(s[3])};"
        if s[0] == "incr":
            return f"{s[2]}{s[1]};" if s[3] else f"{s[1]}{s[2]};"
        text = f"if ({rrender(s[1])})\n\t\t{line(s[2])}"
        return text + (f"\n\telse\n\t\t{line(s[3])}" if s[3] is not None else "")

    body = "".join(f"\t{line(s)}\n" for s in stmts)
    return (f"{ret} f(int a, u32 b, u64 c, u8 d, long e)\n{{\n{body}"
            f"\treturn {rrender(result)};\n}}\n")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), param_values)
def test_random_programs_agree_with_reference(prog, vals) -> None:
    try:
        want = rexec(prog, vals)
    except UB:
        assume(False)
    src = render_program(prog)
    got = compile_src(src)(*(vals[p] for p in PARAMS), env={})
    assert got.value == want, src
    assert not got.events and not got.crashed


@settings(max_examples=500, deadline=None)
@given(expressions(list(PARAMS)), param_values)
def test_random_expressions_agree_with_reference(e, vals) -> None:
    try:
        want = reval(e, vals, PARAMS)
        t = rtype(e, PARAMS)
    except UB:
        assume(False)
    src = f"{t} f(int a, u32 b, u64 c, u8 d, long e)\n{{\n\treturn {rrender(e)};\n}}\n"
    assert compile_src(src)(*(vals[p] for p in PARAMS), env={}).value == want, src


@pytest.mark.parametrize("e", [
    ("bin", "-", ("cast", "u32", ("lit", 0)), ("lit", 1)),
    ("bin", "<", ("neg", ("lit", 1)), ("cast", "u32", ("lit", 1))),
    ("bin", "/", ("neg", ("lit", 7)), ("lit", 2)),
    ("bin", "%", ("neg", ("lit", 7)), ("lit", 2)),
])
def test_reference_corner_cases_agree(e) -> None:
    want, t = reval(e, {}, {}), rtype(e, {})
    src = f"{t} f(void)\n{{\n\treturn {rrender(e)};\n}}\n"
    assert compile_src(src)(env={}).value == want
    assert want in (2**32 - 1, 0, -3, -1)


# --- switch, goto, function-like macros ------------------------------------------

SWITCH = """
int f(int x)
{
	int r = 0;

	switch (x) {
	case 0:
		r = 10;
		break;
	case 1:
	case 2:
		r += 20;
	case 3:
		r += 3;
		break;
	case 4:
		return -4;
	default:
		r = 99;
	}
	return r;
}
"""


@pytest.mark.parametrize(("x", "want"), [(0, 10), (1, 23), (2, 23), (3, 3), (4, -4), (5, 99),
                                         (-1, 99)])
def test_switch_follows_c_fallthrough(x: int, want: int) -> None:
    assert compile_src(SWITCH)(x).value == want


GOTO = """
int f(int x)
{
	int err = -22;

	if (x > 10)
		goto out;
	err = 0;
	if (x == 3)
		goto bad;
	return x;
bad:
	err = -1;
out:
	return err;
}
"""


@pytest.mark.parametrize(("x", "want"), [(11, -22), (3, -1), (5, 5)])
def test_goto_to_top_level_labels(x: int, want: int) -> None:
    assert compile_src(GOTO)(x).value == want


def test_backward_goto_is_bounded() -> None:
    src = "int f(int x)\n{\nagain:\n\tx = x + 1;\n\tif (x)\n\t\tgoto again;\n\treturn x;\n}\n"
    with pytest.raises(ceval.ModelError, match="more than 10000 jumps"):
        compile_src(src)(1)


def test_function_like_macro_is_expanded() -> None:
    prog = program("int f(int x)\n{\n\treturn TWICE(x + 1) + LIMIT;\n}\n",
                   {"LIMIT": "100"})
    prog = ceval.Program(prog.functions, prog.defines, {"TWICE": (("a",), "(a) * 2")})
    assert ceval.compile_function(prog, "f")(4).value == 110
