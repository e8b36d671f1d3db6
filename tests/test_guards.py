"""Dominating guards and reaching assignments (analyzer/c/guards.py)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.c.guards import (
    Guard,
    calls_in,
    dominating_guards,
    function_named,
    reaching_assignments,
)
from analyzer.c.parse import enclosing_function, parse, text


def node_at(src: str, snippet: str, nth: int = 0):
    """The smallest node spanning the ``nth`` occurrence of ``snippet`` in ``src``."""
    data = src.encode()
    start = -1
    for _ in range(nth + 1):
        start = data.index(snippet.encode(), start + 1)
    node = parse(data).root_node.descendant_for_byte_range(start, start + len(snippet))
    assert text(node) == snippet, (text(node), snippet)
    return node


def summary(guards) -> list[tuple[str, bool, str]]:
    return [(g.text, g.holds, g.kind) for g in guards]


def guards_at(src: str, snippet: str, nth: int = 0, **kw) -> list[tuple[str, bool, str]]:
    return summary(dominating_guards(node_at(src, snippet, nth), **kw))


def reaching(src: str, snippet: str, var: str):
    return [(text(n), summary(gs)) for n, gs in reaching_assignments(node_at(src, snippet), var)]


# --------------------------------------------------------------------------- enclosing


IF_ELSE = """
int f(int a, int b)
{
	if (a > 1) {
		x = 1;
	} else {
		y = 2;
	}
	z = 3;
	return 0;
}
"""


def test_if_then_and_else():
    assert guards_at(IF_ELSE, "x = 1") == [("a > 1", True, "enclosing")]
    assert guards_at(IF_ELSE, "y = 2") == [("a > 1", False, "enclosing")]
    assert guards_at(IF_ELSE, "z = 3") == []


def test_guard_fields():
    src = "int f(void)\n{\n\tif ((a  &&\n\t     b))\n\t\tsite();\n\treturn 0;\n}\n"
    (g,) = dominating_guards(node_at(src, "site()"))
    assert isinstance(g, Guard)
    assert g.line == 3
    assert g.text == "a && b"
    assert g.cond.type == "binary_expression"  # parentheses stripped
    assert g.holds is True and g.kind == "enclosing"


ELSE_IF = """
int f(int a)
{
	if (a == 1)
		one();
	else if (a == 2)
		two();
	else if (a == 3)
		three();
	else
		other();
	return 0;
}
"""


def test_else_if_chain():
    assert guards_at(ELSE_IF, "one()") == [("a == 1", True, "enclosing")]
    assert guards_at(ELSE_IF, "two()") == [
        ("a == 1", False, "enclosing"),
        ("a == 2", True, "enclosing"),
    ]
    assert guards_at(ELSE_IF, "three()") == [
        ("a == 1", False, "enclosing"),
        ("a == 2", False, "enclosing"),
        ("a == 3", True, "enclosing"),
    ]
    assert guards_at(ELSE_IF, "other()") == [
        ("a == 1", False, "enclosing"),
        ("a == 2", False, "enclosing"),
        ("a == 3", False, "enclosing"),
    ]


def test_conditional_operator():
    src = "int f(int id)\n{\n\treturn (id < N) ? pack(id) : fold(id);\n}\n"
    assert guards_at(src, "pack(id)") == [("id < N", True, "enclosing")]
    assert guards_at(src, "fold(id)") == [("id < N", False, "enclosing")]
    assert guards_at(src, "id < N") == []


def test_and_or_operands():
    src = "int f(void)\n{\n\tBUG_ON(arch300() && vcore);\n\treturn ok() || retry(1);\n}\n"
    assert guards_at(src, "vcore") == [("arch300()", True, "enclosing")]
    assert guards_at(src, "arch300()") == []
    assert guards_at(src, "retry(1)") == [("ok()", False, "enclosing")]


def test_nested_and_or_in_if():
    src = "int f(void)\n{\n\tif (a && (b || c))\n\t\treturn 1;\n\treturn 0;\n}\n"
    assert guards_at(src, "c") == [("a", True, "enclosing"), ("b", False, "enclosing")]


# --------------------------------------------------------------------------- early exit


EARLY = """
int f(struct kvm *kvm, u32 id)
{
	int r;

	if (id >= LIMIT)
		return -EINVAL;
	if (!kvm->ready) {
		pr_devel("not ready\\n");
		return -EBUSY;
	}
	if (kvm->maybe) {
		if (kvm->really)
			return -EIO;
		pr_devel("survived\\n");
	}
	if (kvm->x)
		pr_devel("no exit here\\n");
	if (kvm->mode == 1)
		r = 1;
	else
		return -ENODEV;
	site(id);
	return r;
}
"""


def test_early_returns():
    assert guards_at(EARLY, "site(id)") == [
        ("id >= LIMIT", False, "early-exit"),
        ("!kvm->ready", False, "early-exit"),
        ("kvm->mode == 1", True, "early-exit"),
    ]


def test_if_that_does_not_always_leave_gives_no_guard():
    got = guards_at(EARLY, "site(id)")
    assert all("maybe" not in t and "really" not in t and t != "kvm->x" for t, _, _ in got)
    # inside the branch, the earlier exits still hold, and the branch's own if
    assert guards_at(EARLY, 'pr_devel("survived\\n")') == [
        ("id >= LIMIT", False, "early-exit"),
        ("!kvm->ready", False, "early-exit"),
        ("kvm->maybe", True, "enclosing"),
        ("kvm->really", False, "early-exit"),
    ]


def test_statements_before_an_exit_are_not_guarded_by_it():
    assert guards_at(EARLY, "int r;") == []
    assert guards_at(EARLY, 'pr_devel("not ready\\n")') == [
        ("id >= LIMIT", False, "early-exit"),
        ("!kvm->ready", True, "enclosing"),
    ]


GOTO = """
int f(struct kvm *kvm, u32 cpu)
{
	int r = -EBUSY;

	if (cpu >= MAX)
		return -EINVAL;
	xc = kzalloc(sizeof(*xc), GFP_KERNEL);
	if (!xc) {
		r = -ENOMEM;
		goto bail;
	}
	r = get_info(xc);
	if (r)
		goto bail;
	use(xc);
	return 0;
bail:
	cleanup(cpu);
	return r;
}
"""


def test_early_goto_to_error_label():
    assert guards_at(GOTO, "use(xc)") == [
        ("cpu >= MAX", False, "early-exit"),
        ("!xc", False, "early-exit"),
        ("r", False, "early-exit"),
    ]


def test_code_after_the_label_is_not_guarded_by_the_gotos():
    # the gotos jump *to* the label, so their ifs do not dominate it; the return before does
    assert guards_at(GOTO, "cleanup(cpu)") == [("cpu >= MAX", False, "early-exit")]


def test_goto_from_before_an_exit_bypasses_it():
    src = """
int f(int a)
{
	if (a < 0)
		goto out;
	if (a > 9)
		return -1;
out:
	site(a);
	return 0;
}
"""
    # `a > 9` is not checked on the path through `goto out`
    assert guards_at(src, "site(a)") == []


def test_goto_from_after_an_exit_keeps_it():
    src = """
int f(int a)
{
	if (a > 9)
		return -1;
	if (a < 0)
		goto out;
	work(a);
out:
	site(a);
	return 0;
}
"""
    assert guards_at(src, "site(a)") == [("a > 9", False, "early-exit")]
    assert guards_at(src, "work(a)") == [
        ("a > 9", False, "early-exit"),
        ("a < 0", False, "early-exit"),
    ]


def test_label_inside_branch_entered_from_outside_drops_enclosing_guard():
    src = """
int f(int a)
{
	if (a == 5)
		goto in;
	if (a < 3) {
in:
		site(a);
	}
	return 0;
}
"""
    assert guards_at(src, "site(a)") == []


NESTED = """
int f(int a, int b)
{
	if (a) {
		if (!b)
			return 0;
		{
			if (b > 4)
				return 1;
			while (b--) {
				if (b == 2)
					break;
				site(b);
			}
		}
	}
	return 2;
}
"""


def test_nested_blocks_and_loops():
    assert guards_at(NESTED, "site(b)") == [
        ("a", True, "enclosing"),
        ("!b", False, "early-exit"),
        ("b > 4", False, "early-exit"),
        ("b == 2", False, "early-exit"),
    ]
    # the loop condition itself is not a guard
    assert guards_at(NESTED, "b--") == guards_at(NESTED, "site(b)")[:3]


def test_switch_cases():
    src = """
int f(int a)
{
	switch (a) {
	case 1:
		if (!ok())
			break;
		one();
	case 2:
		two();
		break;
	}
	return 0;
}
"""
    assert guards_at(src, "one()") == [("(a) == (1)", True, "enclosing"),
                                       ("!ok()", False, "early-exit")]
    # reached from `case 2:` directly or by falling through from `case 1:`
    assert guards_at(src, "two()") == [("(a) == (1) || (a) == (2)", True, "enclosing")]


def test_site_outside_any_function():
    src = "int x = (a ? b : c);\n"
    assert dominating_guards(node_at(src, "b")) == ()


# --------------------------------------------------------------------------- real shapes


CREATE_612 = """
static int kvmppc_core_vcpu_create_hv(struct kvm_vcpu *vcpu)
{
	int err;
	int core;
	struct kvmppc_vcore *vcore;
	struct kvm *kvm;
	unsigned int id;

	kvm = vcpu->kvm;
	id = vcpu->vcpu_id;
	core = 0;

	mutex_lock(&kvm->lock);
	vcore = NULL;
	err = -EINVAL;
	if (cpu_has_feature(CPU_FTR_ARCH_300)) {
		if (id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)) {
			pr_devel("KVM: VCPU ID too high\\n");
			core = KVM_MAX_VCORES;
		} else {
			BUG_ON(kvm->arch.smt_mode != 1);
			core = kvmppc_pack_vcpu_id(kvm, id);
		}
	} else {
		core = id / kvm->arch.smt_mode;
	}
	if (core < KVM_MAX_VCORES) {
		vcore = kvm->arch.vcores[core];
		if (vcore && cpu_has_feature(CPU_FTR_ARCH_300)) {
			pr_devel("KVM: collision on id %u", id);
			vcore = NULL;
		} else if (!vcore) {
			err = -ENOMEM;
			vcore = kvmppc_vcore_create(kvm, id & ~(kvm->arch.smt_mode - 1));
			kvm->arch.vcores[core] = vcore;
			kvm->arch.online_vcores++;
			mutex_lock(&kvm->arch.mmu_setup_lock);
		}
	}
	mutex_unlock(&kvm->lock);

	if (!vcore)
		return err;

	spin_lock_init(&vcpu->arch.vpa_update_lock);
	return 0;
}
"""

ARCH300 = "cpu_has_feature(CPU_FTR_ARCH_300)"
TOO_HIGH = "id >= (KVM_MAX_VCPUS * kvm->arch.emul_smt_mode)"


def test_612_create_vcore_read_guards():
    site = "kvm->arch.vcores[core]"
    assert guards_at(CREATE_612, site) == [("core < KVM_MAX_VCORES", True, "enclosing")]
    assert guards_at(CREATE_612, site, sentinels=True) == [
        (TOO_HIGH, False, "sentinel"),
        ("core < KVM_MAX_VCORES", True, "enclosing"),
    ]
    # the write, in the else-if of the collision check
    assert guards_at(CREATE_612, site, nth=1) == [
        ("core < KVM_MAX_VCORES", True, "enclosing"),
        ("vcore && cpu_has_feature(CPU_FTR_ARCH_300)", False, "enclosing"),
        ("!vcore", True, "enclosing"),
    ]
    assert guards_at(CREATE_612, "spin_lock_init(&vcpu->arch.vpa_update_lock)") == [
        ("!vcore", False, "early-exit")
    ]


def test_612_create_pack_call_guards():
    fn = function_named(parse(CREATE_612.encode()).root_node, "kvmppc_core_vcpu_create_hv")
    (call,) = calls_in(fn, "kvmppc_pack_vcpu_id")
    assert summary(dominating_guards(call)) == [
        (ARCH300, True, "enclosing"),
        (TOO_HIGH, False, "enclosing"),
    ]


def test_612_create_reaching_assignments_of_core():
    assert reaching(CREATE_612, "kvm->arch.vcores[core]", "core") == [
        (
            "core = KVM_MAX_VCORES",
            [(ARCH300, True, "enclosing"), (TOO_HIGH, True, "enclosing")],
        ),
        (
            "core = kvmppc_pack_vcpu_id(kvm, id)",
            [(ARCH300, True, "enclosing"), (TOO_HIGH, False, "enclosing")],
        ),
        ("core = id / kvm->arch.smt_mode", [(ARCH300, False, "enclosing")]),
    ]
    # `core = 0` is overwritten on every path
    (n, _), *_ = reaching_assignments(node_at(CREATE_612, "kvm->arch.vcores[core]"), "core")
    assert n.type == "assignment_expression"


def test_sentinel_needs_every_path_to_assign_the_sentinel():
    # The too-high branch only sometimes sets the sentinel: no sentinel guard for it,
    # but one for the inner `if (strict)` whose true branch always does.
    src = CREATE_612.replace(
        "core = KVM_MAX_VCORES;", "if (strict)\n\t\t\t\tcore = KVM_MAX_VCORES;"
    )
    assert guards_at(src, "kvm->arch.vcores[core]", sentinels=True) == [
        ("strict", False, "sentinel"),
        ("core < KVM_MAX_VCORES", True, "enclosing"),
    ]
    # The too-high branch may overwrite the sentinel with something that passes.
    src = CREATE_612.replace(
        "core = KVM_MAX_VCORES;", "core = KVM_MAX_VCORES;\n\t\t\tif (lenient)\n\t\t\t\tcore = 0;"
    )
    assert guards_at(src, "kvm->arch.vcores[core]", sentinels=True) == [
        ("core < KVM_MAX_VCORES", True, "enclosing")
    ]
    # The sentinel is assigned only on some paths through the branch.
    src = CREATE_612.replace("core = KVM_MAX_VCORES;", "strict && (core = KVM_MAX_VCORES);")
    assert guards_at(src, "kvm->arch.vcores[core]", sentinels=True) == [
        ("core < KVM_MAX_VCORES", True, "enclosing")
    ]
    # A sentinel that passes the check (`core <= KVM_MAX_VCORES`) is no sentinel.
    src = CREATE_612.replace("core < KVM_MAX_VCORES", "core <= KVM_MAX_VCORES")
    assert guards_at(src, "kvm->arch.vcores[core]", sentinels=True) == [
        ("core <= KVM_MAX_VCORES", True, "enclosing")
    ]
    # The sentinel written the other way round, checked with `>=` ... `else`.
    src = CREATE_612.replace(
        "if (core < KVM_MAX_VCORES) {", "if (core >= KVM_MAX_VCORES) {\n\t\tnothing();\n\t} else {"
    )
    assert guards_at(src, "kvm->arch.vcores[core]", sentinels=True) == [
        (TOO_HIGH, False, "sentinel"),
        ("core >= KVM_MAX_VCORES", False, "enclosing"),
    ]


RFC = """
int kvmppc_core_vcpu_create_hv(struct kvm *kvm, struct kvm_vcpu *vcpu, unsigned int id)
{
	int core;
	struct kvmppc_vcore *vcore;

	err = -EINVAL;
	vcore = NULL;
	if (cpu_has_feature(CPU_FTR_ARCH_300)) {
		BUG_ON(kvm->arch.smt_mode != 1);
		core = kvmppc_pack_vcpu_id(kvm, id);
	} else {
		core = id / kvm->arch.smt_mode;
	}
	if (core < KVM_MAX_VCORES) {
		vcore = kvm->arch.vcores[core];
		BUG_ON(cpu_has_feature(CPU_FTR_ARCH_300) && vcore);
		if (!vcore) {
			err = -ENOMEM;
			vcore = kvmppc_vcore_create(kvm, id & ~(kvm->arch.smt_mode - 1));
			kvm->arch.vcores[core] = vcore;
			kvm->arch.online_vcores++;
		}
	}
	mutex_unlock(&kvm->lock);
	if (!vcore)
		goto free_vcpu;
	return vcpu;
free_vcpu:
	kmem_cache_free(kvm_vcpu_cache, vcpu);
	return ERR_PTR(err);
}
"""


def test_rfc_create_shape():
    site = "kvm->arch.vcores[core]"
    assert guards_at(RFC, site) == [("core < KVM_MAX_VCORES", True, "enclosing")]
    # no sentinel in the RFC: nothing stops a too-high id reaching the pack call
    assert guards_at(RFC, site, sentinels=True) == guards_at(RFC, site)
    assert reaching(RFC, site, "core") == [
        ("core = kvmppc_pack_vcpu_id(kvm, id)", [(ARCH300, True, "enclosing")]),
        ("core = id / kvm->arch.smt_mode", [(ARCH300, False, "enclosing")]),
    ]
    both = node_at(RFC, "cpu_has_feature(CPU_FTR_ARCH_300) && vcore")
    assert summary(dominating_guards(both.child_by_field_name("right"))) == [
        ("core < KVM_MAX_VCORES", True, "enclosing"),
        (ARCH300, True, "enclosing"),
    ]
    assert guards_at(RFC, "kvm->arch.vcores[core]", nth=1) == [
        ("core < KVM_MAX_VCORES", True, "enclosing"),
        ("!vcore", True, "enclosing"),
    ]
    assert guards_at(RFC, "return vcpu;") == [("!vcore", False, "early-exit")]
    fn = function_named(parse(RFC.encode()).root_node, "kvmppc_core_vcpu_create_hv")
    (call,) = calls_in(fn, "kvmppc_pack_vcpu_id")
    assert summary(dominating_guards(call)) == [(ARCH300, True, "enclosing")]


XIVE_CONNECT = """
int kvmppc_xive_connect_vcpu(struct kvm_device *dev, struct kvm_vcpu *vcpu, u32 cpu)
{
	struct kvmppc_xive *xive = dev->private;
	struct kvmppc_xive_vcpu *xc;
	int i, r = -EBUSY;
	u32 vp_id;

	pr_devel("connect_vcpu(cpu=%d)\\n", cpu);

	if (dev->ops != &kvm_xive_ops) {
		pr_devel("Wrong ops !\\n");
		return -EPERM;
	}
	if (xive->kvm != vcpu->kvm)
		return -EPERM;
	if (vcpu->arch.irq_type != KVMPPC_IRQ_DEFAULT)
		return -EBUSY;
	if (cpu >= (KVM_MAX_VCPUS * vcpu->kvm->arch.emul_smt_mode)) {
		pr_devel("Out of bounds !\\n");
		return -EINVAL;
	}

	mutex_lock(&xive->lock);

	if (!kvmppc_xive_vcpu_id_valid(xive, cpu)) {
		pr_devel("Out of bounds !\\n");
		mutex_unlock(&xive->lock);
		return -EINVAL;
	}

	vp_id = kvmppc_xive_vp(xive, cpu);
	if (kvmppc_xive_vp_in_use(xive->kvm, vp_id)) {
		pr_devel("Duplicate !\\n");
		r = -EEXIST;
		goto bail;
	}

	xc = kzalloc(sizeof(*xc), GFP_KERNEL);
	if (!xc) {
		r = -ENOMEM;
		goto bail;
	}
	xc->vp_id = vp_id;
	r = 0;
bail:
	mutex_unlock(&xive->lock);
	return r;
}
"""


def test_xive_connect_shape():
    early = [
        ("dev->ops != &kvm_xive_ops", False, "early-exit"),
        ("xive->kvm != vcpu->kvm", False, "early-exit"),
        ("vcpu->arch.irq_type != KVMPPC_IRQ_DEFAULT", False, "early-exit"),
        ("cpu >= (KVM_MAX_VCPUS * vcpu->kvm->arch.emul_smt_mode)", False, "early-exit"),
        ("!kvmppc_xive_vcpu_id_valid(xive, cpu)", False, "early-exit"),
    ]
    fn = function_named(parse(XIVE_CONNECT.encode()).root_node, "kvmppc_xive_connect_vcpu")
    (call,) = calls_in(fn, "kvmppc_xive_vp")
    assert summary(dominating_guards(call)) == early
    assert guards_at(XIVE_CONNECT, "xc->vp_id = vp_id") == early + [
        ("kvmppc_xive_vp_in_use(xive->kvm, vp_id)", False, "early-exit"),
        ("!xc", False, "early-exit"),
    ]
    # after `bail:` only the returns dominate, not the gotos' ifs
    assert guards_at(XIVE_CONNECT, "mutex_unlock(&xive->lock)", nth=1) == early
    (valid,) = calls_in(fn, "kvmppc_xive_vcpu_id_valid")
    assert summary(dominating_guards(valid)) == early[:4]


def test_xive_reaching_assignments_through_goto():
    got = reaching(XIVE_CONNECT, "return r;", "r")
    assert [t for t, _ in got] == ["r = -EEXIST", "r = -ENOMEM", "r = 0"]
    assert got[0][1][-1] == ("kvmppc_xive_vp_in_use(xive->kvm, vp_id)", True, "enclosing")
    assert reaching(XIVE_CONNECT, "xc->vp_id = vp_id", "r") == [("r = -EBUSY", [])]


# --------------------------------------------------------------------------- reaching


def test_reaching_declaration_initialiser_and_partial_overwrite():
    src = """
int f(int a)
{
	int v = 1;
	if (a)
		v = 2;
	site(v);
	if (a > 3)
		v = 4;
	else
		v = 5;
	other(v);
	return v;
}
"""
    assert reaching(src, "site(v)", "v") == [
        ("v = 1", []),
        ("v = 2", [("a", True, "enclosing")]),
    ]
    assert [t for t, _ in reaching(src, "other(v)", "v")] == ["v = 4", "v = 5"]


def test_reaching_early_return_and_conditional_expression():
    src = """
int f(int a)
{
	int v = 0;
	if (a) {
		v = 1;
		return v;
	}
	ok() && (v = 7);
	site(v);
	return 0;
}
"""
    assert reaching(src, "site(v)", "v") == [
        ("v = 0", []),
        ("v = 7", [("a", False, "early-exit"), ("ok()", True, "enclosing")]),
    ]


def test_reaching_shadowed_and_loop():
    src = """
int f(int n)
{
	int v = 0;
	{
		int v = 3;
		use(v);
	}
	{
		int v;
		fresh(v);
	}
	for (i = 0; i < n; i++) {
		if (i == 2)
			v = i;
		site(v);
	}
	return v;
}
"""
    assert reaching(src, "use(v)", "v") == [("v = 3", [])]
    assert reaching(src, "fresh(v)", "v") == []
    assert reaching(src, "site(v)", "v") == [
        ("v = 0", []),
        ("v = i", [("i == 2", True, "enclosing")]),
    ]
    assert [t for t, _ in reaching(src, "return v;", "v")] == ["v = 0", "v = i"]


def test_reaching_backward_goto():
    src = """
int f(int a)
{
	int v = 0;
retry:
	site(v);
	if (busy(a)) {
		v = 1;
		goto retry;
	}
	v = 2;
	return v;
}
"""
    assert [t for t, _ in reaching(src, "site(v)", "v")] == ["v = 0", "v = 1"]
    assert [t for t, _ in reaching(src, "return v;", "v")] == ["v = 2"]


def test_calls_in_and_function_named():
    src = b"""
static u32 g(u32 x) { return x; }
int *f(int a)
{
	g(a);
	h(g(a + 1));
	obj->g(a);
	return 0;
}
"""
    root = parse(src).root_node
    assert function_named(root, "missing") is None
    fn = function_named(root, "f")
    assert fn is not None and fn.type == "function_definition"
    calls = calls_in(fn, "g")
    assert [text(c) for c in calls] == ["g(a)", "g(a + 1)"]
    assert [text(c) for c in calls_in(root, "g")] == ["g(a)", "g(a + 1)"]


# --------------------------------------------------------------------------- property

# Random structured programs over boolean inputs c0..c3: every guard reported for
# the site must hold on every execution that reaches it, and the assignment that
# actually reaches the site must be among reaching_assignments.

_CONDS = ["c0", "c1", "c2", "c3"]


def _programs():
    leaf = st.one_of(
        st.tuples(st.just("assign")),
        st.tuples(st.just("return")),
        st.tuples(st.just("nop")),
    )

    def extend(inner):
        block = st.lists(inner, min_size=1, max_size=3)
        return st.one_of(
            st.tuples(st.just("if"), st.sampled_from(_CONDS), block, st.none() | block),
            st.tuples(st.just("block"), block),
        )

    return st.recursive(leaf, extend, max_leaves=12)


def _render(stmts, site_at, out, counter, depth=1):
    """Render statements, placing `site();` before the statement index path ``site_at``."""
    pad = "\t" * depth
    for s in stmts:
        counter["n"] += 1
        if counter["n"] == site_at:
            out.append(f"{pad}site(v);")
        kind = s[0]
        if kind == "assign":
            counter["a"] += 1
            out.append(f"{pad}v = {counter['a']};")
        elif kind == "return":
            out.append(f"{pad}return 0;")
        elif kind == "nop":
            out.append(f"{pad}nop();")
        elif kind == "block":
            out.append(pad + "{")
            _render(s[1], site_at, out, counter, depth + 1)
            out.append(pad + "}")
        else:
            out.append(f"{pad}if ({s[1]}) {{")
            _render(s[2], site_at, out, counter, depth + 1)
            if s[3] is not None:
                out.append(pad + "} else {")
                _render(s[3], site_at, out, counter, depth + 1)
            out.append(pad + "}")


def _run(stmts, env, site_at, state, counter):
    """Execute; returns False when the function returned. Records the value of v at site."""
    for s in stmts:
        counter["n"] += 1
        if counter["n"] == site_at:
            state["seen"] = state["v"]
        kind = s[0]
        if kind == "assign":
            counter["a"] += 1
            state["v"] = counter["a"]
        elif kind == "return":
            return False
        elif kind == "block":
            if not _run(s[1], env, site_at, state, counter):
                return False
        elif kind == "if":
            taken = s[2] if env[s[1]] else (s[3] or [])
            if not env[s[1]]:
                _skip(s[2], counter)
            if not _run(taken, env, site_at, state, counter):
                return False
            if env[s[1]] and s[3] is not None:
                _skip(s[3], counter)
    return True


def _skip(stmts, counter):
    for s in stmts:
        counter["n"] += 1
        if s[0] == "assign":
            counter["a"] += 1
        elif s[0] == "block":
            _skip(s[1], counter)
        elif s[0] == "if":
            _skip(s[2], counter)
            _skip(s[3] or [], counter)


def _count(stmts):
    return sum(
        1
        + (_count(s[1]) if s[0] == "block" else 0)
        + (_count(s[2]) + _count(s[3] or []) if s[0] == "if" else 0)
        for s in stmts
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_programs(), min_size=1, max_size=4), st.data())
def test_guards_and_reaching_are_sound(prog, data):
    prog = [("assign",), *prog, ("nop",)]
    site_at = data.draw(st.integers(1, _count(prog)))
    lines = ["int f(int c0, int c1, int c2, int c3)", "{", "\tint v;"]
    _render(prog, site_at, lines, {"n": 0, "a": 0})
    lines += ["\treturn 0;", "}"]
    src = "\n".join(lines) + "\n"
    site = node_at(src, "site(v)")
    guards = dominating_guards(site)
    defs = {text(n) for n, _ in reaching_assignments(site, "v")}
    for values in itertools.product([False, True], repeat=len(_CONDS)):
        env = dict(zip(_CONDS, values, strict=True))
        state = {"v": None, "seen": "unreached"}
        _run(prog, env, site_at, state, {"n": 0, "a": 0})
        if state["seen"] == "unreached":
            continue
        for g in guards:
            assert env[g.text] == g.holds, (src, g, env)
        if state["seen"] is not None:  # None: uninitialised, not an assignment
            assert f"v = {state['seen']}" in defs, (src, defs, env)


SWITCH_SRC = """
int f(int id, int mode)
{
	switch (mode) {
	case 1:
	case 2:
		use(id);
		break;
	case 3:
		return -1;
	default:
		other(id);
	}
	switch (id >= 64) {
	case 1:
		return -22;
	default:
		break;
	}
	sink(id);
	return 0;
}
"""


def test_switch_case_guards_include_fallthrough_values():
    assert guards_at(SWITCH_SRC, "use(id)") == [("(mode) == (1) || (mode) == (2)", True,
                                                 "enclosing")]
    assert guards_at(SWITCH_SRC, "other(id)") == [
        ("(mode) == (1) || (mode) == (2) || (mode) == (3)", False, "enclosing")]


def test_switch_whose_cases_leave_is_an_early_exit():
    assert guards_at(SWITCH_SRC, "sink(id)") == [
        ("(mode) == (3)", False, "early-exit"), ("(id >= 64) == (1)", False, "early-exit")]


TRUST = """int f(struct kvm *kvm, u32 cpu)
{
	struct x *xc;

	%s
	use(cpu);
	return 0;
}
"""


def _trusted(check: str) -> bool:
    from analyzer.model import paths

    call = node_at(TRUST % check, "use(cpu)")
    fn = enclosing_function(call)
    lookups = paths._lookup_vars(fn, frozenset({"find"}), ("cpu",))
    return paths._trusted(call, frozenset({"find"}), ("cpu",), lookups)


def test_a_successful_lookup_is_trusted_whatever_shape_its_check_takes():
    """The sanitizer's guarantee does not depend on how the check is spelled."""
    for check in ("if (!find(kvm, cpu)) return -EINVAL;",
                  "if (unlikely(!find(kvm, cpu))) return -EINVAL;",
                  "if (!likely(find(kvm, cpu))) return -EINVAL;",
                  "if (find(kvm, cpu) == NULL) return -EINVAL;",
                  "xc = find(kvm, cpu); if (unlikely(xc == NULL)) return -EINVAL;"):
        assert _trusted(check), check
    for check in ("if (find(kvm, cpu)) return -EEXIST;",
                  "if (unlikely(find(kvm, cpu) != NULL)) return -EEXIST;",
                  "if (!find(kvm, 0)) return -EINVAL;"):
        assert not _trusted(check), check


def test_a_vp_helper_that_passes_its_parameter_through_a_local_is_still_one():
    """Recognised by its shape: ``P->vp_base + f(S)`` with S a parameter or a local
    computed from it; a local computed from nothing the caller passes is not."""
    from analyzer.c.facts import _vp_helpers

    src = """static inline u32 direct(struct kvmppc_xive *xive, u32 server)
{
	return xive->vp_base + pack(xive->kvm, server);
}
static inline u32 aliased(struct kvmppc_xive *xive, u32 server)
{
	u32 s = server;
	struct kvmppc_xive *x = xive;
	return x->vp_base + pack(x->kvm, s);
}
static inline u32 constant(struct kvmppc_xive *xive, u32 server)
{
	u32 s = 3;
	return xive->vp_base + pack(xive->kvm, s);
}
"""
    found = {(h.name, h.obj_param, h.offset_param)
             for h in _vp_helpers("x.h", parse(src.encode()).root_node, "vp_base")}
    assert found == {("direct", 0, 1), ("aliased", 0, 1)}
