"""The packing model: the tree's own C, executed over the configuration space.

Everything here comes from the snapshot: the packing function's body, the
macros it uses (``KVM_MAX_VCPUS`` → ``NR_CPUS`` …) and the ID-space bound
(``KVM_MAX_VCPU_ID`` or ``KVM_MAX_VCPU_IDS``). Only the configuration is
supplied: ``NR_CPUS``, ``threads_per_subcore``, the guest's stride
(``emul_smt_mode``) and threads per core. The POWER9 path is modelled
(``CPU_FTR_ARCH_300`` set, ``smt_mode`` 1): it is the only one that packs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from . import ceval, cparse, defines
from .facts import Define, Facts, Function

NR_CPUS_SWEEP = (8, 16, 32)
NR_CPUS_REAL = 2048
STRIDES = (1, 2, 4, 8)
POWER9_TPS = 4  # threads_per_subcore on a POWER9 host


@dataclass(frozen=True)
class Config:
    nr_cpus: int
    stride: int  # kvm->arch.emul_smt_mode
    threads: int  # guest threads per core
    threads_per_subcore: int = POWER9_TPS

    def env(self, **extra: int) -> dict[str, int]:
        return {"NR_CPUS": self.nr_cpus, "threads_per_subcore": self.threads_per_subcore,
                "emul_smt_mode": self.stride, "smt_mode": 1,
                "cpu_has_feature:CPU_FTR_ARCH_300": 1, **extra}

    def as_dict(self) -> dict[str, int]:
        return {"NR_CPUS": self.nr_cpus, "threads_per_subcore": self.threads_per_subcore,
                "emul_smt_mode": self.stride, "threads_per_core": self.threads}

    @property
    def qemu_like(self) -> bool:
        """QEMU requires a power-of-two number of threads per core, at most the stride."""
        return self.threads & (self.threads - 1) == 0 and self.threads <= self.stride


def layout(stride: int, threads: int, count: int, id_limit: int | None = None) -> list[int]:
    """IDs a VMM numbering ``core * stride + thread`` uses for ``count`` vCPUs."""
    out: list[int] = []
    core = 0
    while len(out) < count:
        for t in range(threads):
            vid = core * stride + t
            if id_limit is not None and vid >= id_limit:
                return out
            out.append(vid)
            if len(out) == count:
                break
        core += 1
    return out


def configs(nr_cpus=NR_CPUS_SWEEP, strides=STRIDES, spot=(NR_CPUS_REAL,)) -> Iterator[Config]:
    """Small NR_CPUS with every threads-per-core count; the real size (2048) with
    the two extreme layouts per stride (1 thread per core, full cores)."""
    for n in nr_cpus:
        for s in strides:
            for t in range(1, s + 1):
                yield Config(n, s, t)
    for n in spot:
        for s in strides:
            for t in sorted({1, s}):
                yield Config(n, s, t)


@dataclass(frozen=True, eq=False)  # identity hash: compiled code is cached per Tree
class Tree:
    """What the model needs from a snapshot, compiled once."""

    facts: Facts
    program: ceval.Program
    defines: Mapping[str, Define] = field(default_factory=dict)

    def function(self, name: str) -> Function | None:
        return self.facts.functions.get(name)

    @functools.cache  # noqa: B019 - Tree is immutable and lives as long as its facts
    def compiled(self, name: str):
        return ceval.compile_function(self.program, name)

    @functools.cache  # noqa: B019
    def expr(self, text: str):
        """A C expression of the tree, compiled; free names are read from ``env``."""
        src = f"long long __vpcheck_expr(void) {{ return ({text}); }}\n".encode()
        fn = cparse.parse(src).root_node.children[0]
        functions = dict(self.program.functions)
        functions["__vpcheck_expr"] = (fn, src)
        prog = ceval.Program(functions, self.program.defines)
        return ceval.compile_function(prog, "__vpcheck_expr")

    def macro(self, name: str, config: Config) -> int:
        return self.expr(name)(env=config.env()).value

    def first_macro(self, names) -> str | None:
        return next((n for n in names if n in self.defines), None)


@functools.lru_cache(maxsize=8)
def tree(facts: Facts) -> Tree:
    """The model of one snapshot's facts (shared by every model-backed rule)."""
    chosen = defines.select(facts.all("defines"))
    functions = {}
    for f in facts.functions.values():
        data = facts.snapshot.files[f.path]
        node = cparse.parse(data).root_node.descendant_for_byte_range(f.start_byte, f.end_byte)
        while node is not None and node.type != "function_definition":
            node = node.parent
        if node is not None:
            functions[f.name] = (node, data)
    return Tree(facts, ceval.Program(functions, defines.values(chosen)), chosen)


def signature(t: Tree, roots: set[str], mentioned: set[str] = frozenset()) -> str:
    """A digest of everything a model-backed verdict can depend on: the text and
    place of every function reachable through calls from ``roots`` or from a
    function that calls one of ``mentioned`` (the allocator, the sanitizers),
    and the chosen macro values.

    A patch that touches none of it leaves the verdict unchanged, so series
    mode reuses it instead of sweeping again.
    """
    import hashlib
    import re

    texts = {name: cparse.text(node) for name, (node, _) in t.program.functions.items()}
    todo = {n for n in roots if n in texts}
    todo |= {f for f, body in texts.items()
             if any(re.search(rf"\b{re.escape(n)}\s*\(", body) for n in mentioned)}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        seen.add(name)
        for callee in re.findall(r"\b(\w+)\s*\(", texts[name]):
            if callee in texts and callee not in seen:
                todo.add(callee)
    h = hashlib.sha1()
    for name in sorted(seen):
        f = t.facts.functions[name]
        h.update(f"{name}\0{f.path}\0{f.line}\0{texts[name]}\0".encode())
    for name, value in sorted(t.program.defines.items()):
        h.update(f"{name}={value}\0".encode())
    return h.hexdigest()


# --- the vCPU-creation path, sliced at the vcores[] access ---------------------


@dataclass(frozen=True)
class Slot:
    """What the create path does with one ID: the VCORE index it computes, if admitted."""

    admitted: bool
    index: int | None
    events: tuple  # ceval.Event: BUG_ON/WARN fired on the way
    refused_by: int | None = None  # line of the guard that turned the ID away


@dataclass(frozen=True, eq=False)
class CreatePath:
    """``vcore = kvm->arch.vcores[core]`` in the create function: the guards that
    dominate it and the assignments of ``core`` that reach it, as compiled C."""

    tree: Tree
    function: str
    site_line: int
    index_var: str
    entry_names: tuple[str, ...]
    assignments: tuple  # ((guards, rhs text, line), ...)
    site_guards: tuple  # guards.Guard
    pointers: tuple[str, ...] = ()  # kvm, vcpu: passed on, never dereferenced by the model

    def slot(self, config: Config, vid: int) -> Slot:
        env = dict(self._base_env(config))
        for n in self.entry_names:
            env[n] = vid
        value, events = None, ()
        for guards_, rhs, _line in self.assignments:
            if all(self._holds(g, env) for g in guards_):
                r = self.tree.expr(rhs)(env=env)
                events = tuple(r.events)
                if r.crashed:
                    return Slot(False, None, events)
                value = r.value
                break
        if value is None:
            return Slot(False, None, events)
        env[self.index_var] = value
        for g in self.site_guards:
            if not self._holds(g, env):
                return Slot(False, value, events, g.line)
        return Slot(True, value, events)

    @functools.cache  # noqa: B019 - CreatePath is immutable
    def _base_env(self, config: Config) -> dict[str, int]:
        return config.env(**{p: 0 for p in self.pointers})

    def _holds(self, guard, env) -> bool:
        try:
            r = self.tree.expr(guard.text)(env=env)
        except (ceval.Unsupported, KeyError):
            return True  # a condition on something outside the model does not refuse IDs
        return bool(r.value) == guard.holds


def create_path(t: Tree, function: str, entry_names: tuple[str, ...]) -> CreatePath | None:
    """Slice the create function at its ``vcores[INDEX]`` read."""
    from . import guards

    info = t.program.functions.get(function)
    if info is None:
        return None
    fn, _ = info
    reads = [s for s in t.facts.all("subscripts") if s.function == function and not s.is_write]
    if not reads:
        return None
    site_fact = reads[0]
    site = _node_at(fn, site_fact.line, site_fact.column, "subscript_expression")
    if site is None:
        return None
    index = cparse.strip_parens(site.child_by_field_name("index"))
    if index.type != "identifier":
        return None
    var = cparse.text(index)
    known = set(entry_names) | {var} | set(t.program.defines) | set(Config(1, 1, 1).env())

    def relevant(gs):
        return tuple(g for g in gs if g.kind != "sentinel" and _mentions_only(g.cond, known))

    assigns = []
    for node, gs in guards.reaching_assignments(site, var):
        rhs = node.child_by_field_name("right") if node.type == "assignment_expression" else \
            node.child_by_field_name("value")
        if rhs is not None:
            assigns.append((relevant(gs), " ".join(cparse.text(rhs).split()),
                            node.start_point.row + 1))
    site_guards = relevant(guards.dominating_guards(site))
    objs = cparse.captures("(field_expression argument: (identifier) @obj)", fn).get("obj", [])
    pointers = tuple(sorted({cparse.text(o) for o in objs} - set(entry_names)))
    return CreatePath(t, function, site_fact.line, var, entry_names, tuple(assigns), site_guards,
                      pointers)


def _mentions_only(cond, known: set[str]) -> bool:
    """Does ``cond`` depend only on the ID, the configuration and macros?

    Conditions on pointers (``!vcpu``) or on locals the model does not track
    (``err``) say nothing about which IDs pass; they are left out.
    """
    for ident in cparse.captures("(identifier) @i", cond).get("i", []):
        parent = ident.parent
        if parent.type == "field_expression" and parent.child_by_field_name("argument") == ident:
            continue  # kvm->arch.x: read from the configuration by field name
        if parent.type == "call_expression" and parent.child_by_field_name("function") == ident:
            continue
        if parent.type == "argument_list" and parent.parent.type == "call_expression":
            name = cparse.text(parent.parent.child_by_field_name("function"))
            if name == "cpu_has_feature":
                continue
        if cparse.text(ident) not in known:
            return False
    return True


def _node_at(fn, line: int, column: int, kind: str):
    for n in cparse.captures(f"({kind}) @n", fn).get("n", []):
        if n.start_point.row + 1 == line and n.start_point.column + 1 == column:
            return n
    return None
