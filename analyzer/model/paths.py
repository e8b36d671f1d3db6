"""Paths from a userspace entry point to a target function, and which IDs pass them.

An entry point (declared in rule data) is a function and the names that
hold the userspace-chosen ID in it (``id`` at vCPU creation, ``cpu`` or
``server_num`` at interrupt-device connect). The ID is followed through
calls that pass it on unchanged (``kvmppc_xive_compute_vp_id(xive, cpu, …)``
→ parameter ``cpu``) until a target is called with it. Each hop keeps the
guards that dominate its call; an ID *reaches* the target when every guard
along the path holds, evaluated with the tree's own code by the model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..c import guards
from ..c import macros as cmacros
from ..c import parse as cparse
from ..errors import ModelLimit
from ..profile import Entry
from . import ceval
from . import packing as model


@dataclass(frozen=True)
class Hop:
    """One call on the way from an entry point to the target, with the ID's names."""

    function: str
    path: str
    line: int  # of the call in this function
    callee: str
    arg_index: int  # the call's argument that carries the ID
    names: tuple[str, ...]  # names that hold the ID in this function
    guards: tuple  # guards.Guard that decide whether the ID gets to the call
    pointers: tuple[str, ...]
    flow: IdFlow | None = None
    in_check: bool = False  # the call's value is compared or decides a branch


_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


def _in_check(call) -> bool:
    node = call.parent
    while node is not None and not node.type.endswith("statement"):
        if node.type == "binary_expression" and \
                node.child_by_field_name("operator").type in _COMPARISONS:
            return True
        if node.type == "condition_clause" or node.type == "parenthesized_expression" and \
                node.parent is not None and node.parent.type == "if_statement":
            return True
        node = node.parent
    return False


@dataclass(frozen=True)
class Path:
    """The calls that carry an ID from an entry point to the target."""

    hops: tuple[Hop, ...]

    @property
    def target(self) -> str:
        return self.hops[-1].callee

    def primary(self) -> Hop:
        """Where the finding belongs: the last hop that checks the ID (its call is a
        comparison or it passed a guard on the ID), else the entry's own call."""
        for hop in reversed(self.hops):
            if hop.in_check or any(hop.flow and hop.flow.mentions(g.cond)
                                   for g in hop.guards):
                return hop
        return self.hops[0]

    def chain(self) -> str:
        return " → ".join([f"{h.function}()" for h in self.hops] + [f"{self.target}()"])


def _pointers(fn) -> tuple[str, ...]:
    objs = cparse.captures("(field_expression argument: (identifier) @o)", fn).get("o", [])
    return tuple(sorted({cparse.text(o) for o in objs}))


class Undecided(ModelLimit):
    """A guard the ID controls could not be evaluated: the verdict is undecided
    (never a guard silently dropped)."""

    def __init__(self, why: str, function: str | None, line: int) -> None:
        super().__init__(f"{why} at line {line}")
        self.function, self.line = function, line


def entry_names_of(t: model.Tree, entry: Entry) -> tuple[str, ...]:
    """Names that hold the entry's ID: the parameter at the declared position (when it
    is a scalar), and locals initialised from the declared field (``id = vcpu->F``)."""
    info = t.program.functions.get(entry.function)
    if info is None:
        return ()
    fn, _ = info
    out = []
    if entry.id_param is not None:
        params = _param_decls(fn)
        if entry.id_param < len(params) and params[entry.id_param][1]:
            out.append(params[entry.id_param][0])
    if entry.id_field:
        for left, right in _assignments(fn):
            if right.type == "field_expression" and cparse.text(
                    right.child_by_field_name("field")) == entry.id_field:
                out.append(cparse.text(left))
    return tuple(dict.fromkeys(out))


def id_holders(t: model.Tree, entry: Entry) -> list[tuple[str, tuple[str, ...]]]:
    """(function, names that hold the ID there) where the entry's ID first lives: the
    entry itself, or, when it reads none (a create function split in two), each function
    it hands the object on to that reads the ID from it."""
    names = entry_names_of(t, entry)
    info = t.program.functions.get(entry.function)
    if names or info is None or not entry.id_field:
        return [(entry.function, names)]
    out = []
    for call in cparse.captures("(call_expression function: (identifier) @f) @c", info[0]
                                ).get("c", []):
        callee = cparse.text(call.child_by_field_name("function"))
        args = [a for a in call.child_by_field_name("arguments").named_children
                if a.type != "comment"]
        if callee != entry.function and \
                _holder_passed(t, callee, args, entry.id_field) is not None:
            inner = Entry(callee, entry.what, None, entry.id_field)
            out.append((callee, entry_names_of(t, inner)))
    return out or [(entry.function, names)]


def _param_decls(fn) -> list[tuple[str, bool]]:
    """(name, is scalar) of each parameter of a function definition."""
    d = fn.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    out = []
    for p in d.child_by_field_name("parameters").named_children if d is not None else ():
        if p.type != "parameter_declaration":
            continue
        n = p.child_by_field_name("declarator")
        scalar = n is not None and n.type == "identifier" and \
            "struct" not in cparse.text(p.child_by_field_name("type"))
        while n is not None and n.type != "identifier":
            n = n.child_by_field_name("declarator")
        out.append((cparse.text(n) if n is not None else "", scalar))
    return out


def _assignments(fn):
    """(left identifier, right expression) of every assignment and initialiser."""
    for a in cparse.captures("(assignment_expression) @a (init_declarator) @a", fn).get("a", []):
        left = a.child_by_field_name("left") or a.child_by_field_name("declarator")
        right = a.child_by_field_name("right") or a.child_by_field_name("value")
        if left is not None and right is not None and left.type == "identifier":
            yield left, cparse.strip_parens(right)


@dataclass(frozen=True)
class IdFlow:
    """Where the ID flows in one function: the names that hold it, and the locals
    computed from it (name -> its one assignment's text, or None if assigned twice)."""

    names: frozenset[str]
    derived: tuple[tuple[str, str | None], ...]
    field: str | None = None
    # lookups (profile: runtime.sanitizers): whether they find the ID is the VMM's choice
    lookups: frozenset[str] = frozenset()
    succeed: frozenset[str] = frozenset()  # runtime calls whose result is not the ID's

    def mentions(self, cond) -> bool:
        """Does ``cond`` read the ID, or a local whose value reaching ``cond`` was
        computed from it (outside a lookup)?"""
        derived = {n for n, _ in self.derived}
        for node in cparse.captures("(identifier) @i", cond).get("i", []):
            name = cparse.text(node)
            if name not in self.names | derived or self._in_lookup(node, cond):
                continue
            if name in self.names or any(self.carries(rhs)
                                         for rhs in reaching(node, name, through_calls=False)):
                return True
        return self.field is not None and any(
            cparse.text(f) == self.field
            for f in cparse.captures("(field_identifier) @f", cond).get("f", []))

    def carries(self, rhs) -> bool:
        """Is the assigned value computed from the ID? (None: ``x++``, it is)"""
        if rhs is None:
            return True
        if _opaque(rhs, self.succeed):
            return False
        tainted = self.names | {n for n, _ in self.derived}
        return any(cparse.text(i) in tainted
                   for i in cparse.captures("(identifier) @i", rhs).get("i", [])) or \
            cparse.text(rhs) in tainted or (self.field is not None and any(
                cparse.text(f) == self.field
                for f in cparse.captures("(field_identifier) @f", rhs).get("f", [])))

    def _in_lookup(self, node, top) -> bool:
        while node is not None and node != top.parent:
            if node.type == "call_expression" and cparse.text(
                    node.child_by_field_name("function")) in self.lookups:
                return True
            node = node.parent
        return False


def id_flow(fn, names: tuple[str, ...], id_field: str | None = None,
            lookups: frozenset[str] = frozenset(), succeed: frozenset[str] = frozenset()
            ) -> IdFlow:
    """Taint the ID through the function's assignments, to a fixed point."""
    tainted = set(names)
    assigns: dict[str, list[str]] = {}
    pairs = [(left, right) for left, right in _assignments(fn) if not _opaque(right, succeed)]
    for left, right in pairs:
        assigns.setdefault(cparse.text(left), []).append(" ".join(cparse.text(right).split()))
    changed = True
    while changed:
        changed = False
        for left, right in pairs:
            name = cparse.text(left)
            if name in tainted:
                continue
            idents = {cparse.text(i) for i in cparse.captures("(identifier) @i", right).get(
                "i", [])} | {cparse.text(right)}
            fields = {cparse.text(f) for f in cparse.captures(
                "(field_identifier) @f", right).get("f", [])}
            if idents & tainted or (id_field and id_field in fields):
                tainted.add(name)
                changed = True
    derived = tuple(sorted((n, a[0] if len(set(a)) == 1 else None)
                           for n, a in assigns.items() if n in tainted - set(names)))
    return IdFlow(frozenset(names), derived, id_field, frozenset(lookups), frozenset(succeed))


def reaching(site, name: str, through_calls: bool = True) -> list:
    """The right-hand sides of the assignments of ``name`` that reach ``site`` (None
    for an update such as ``x++``). A parameter never assigned in its function, of a
    function called from exactly one place in its file (a ``static`` helper or the
    second half of a function split in two), reads as the argument of that call."""
    return list(_reaching(site, name, through_calls))


# A guard or an index that reads a local asks this for every ID and build it runs
# (a data-flow analysis of the function each time). A node keeps its tree alive, so
# the cache is kept small.
@functools.lru_cache(maxsize=256)
def _reaching(site, name: str, through_calls: bool) -> tuple:
    out = []
    for node, _ in guards.reaching_assignments(site, name):
        if node.type == "update_expression":
            out.append(None)
            continue
        rhs = node.child_by_field_name("right") or node.child_by_field_name("value")
        out.append(cparse.strip_parens(rhs) if rhs is not None else None)
    if not out and through_calls:
        arg = _argument_of_only_call(site, name)
        if arg is not None:
            return (arg,)
    return tuple(out)


def _argument_of_only_call(site, name: str):
    fn = cparse.enclosing_function(site)
    if fn is None:
        return None
    params = [n for n, _ in _param_decls(fn)]
    if name not in params:
        return None
    calls = _calls_of(_root(fn), cparse.function_name(fn))
    calls = [c for c in calls if cparse.enclosing_function(c) not in (None, fn)]
    if len(calls) != 1:
        return None
    args = [a for a in calls[0].child_by_field_name("arguments").named_children
            if a.type != "comment"]
    k = params.index(name)
    return cparse.strip_parens(args[k]) if k < len(args) and len(args) == len(params) else None


def _root(node):
    while node.parent is not None:
        node = node.parent
    return node


_CALLS: dict = {}  # root node id -> (root, {callee: calls}); filled name by name


def _calls_of(root, fname: str) -> tuple:
    """Calls of ``fname`` by name in one parsed file, in order."""
    hit = _CALLS.get(root.id)
    if hit is None or hit[0] != root:
        if len(_CALLS) > 64:
            _CALLS.clear()
        hit = _CALLS[root.id] = (root, {})
    got = hit[1].get(fname)
    if got is None:
        got = hit[1][fname] = _find_calls(root, fname)
    return got


def _find_calls(root, fname: str) -> tuple:
    """The calls whose function is the identifier ``fname``: looked for where the name
    is written in the text, not by a query over every call of the file (a whole-file
    query of ``book3s_hv.c`` cost more than the rest of the rule)."""
    out = []
    data, base, size = root.text, root.start_byte, len(fname.encode())
    for m in re.finditer(rb"(?<!\w)" + re.escape(fname.encode()) + rb"(?!\w)", data):
        ident = root.descendant_for_byte_range(base + m.start(), base + m.start() + size)
        call = ident.parent if ident is not None else None
        if call is not None and ident.type == "identifier" and \
                call.type == "call_expression" and call.child_by_field_name("function") == ident:
            out.append(call)
    return tuple(out)


def _opaque(right, succeed: frozenset[str]) -> bool:
    """A value that does not carry the ID although the ID is mentioned: what a runtime
    call that succeeds for every ID returns, or what memory holds at an index (the
    VMM's state, e.g. whether a table slot is taken)."""
    if right.type == "call_expression":
        return cparse.text(right.child_by_field_name("function")) in succeed
    return right.type == "subscript_expression" and \
        cparse.strip_parens(right.child_by_field_name("argument")).type == "field_expression"


def relevant(gs, flow: IdFlow, t: model.Tree) -> tuple:
    """The guards that decide which IDs pass: those the ID controls, and those the
    configuration decides (``cpu_has_feature(…)``). A guard on something else (a
    pointer, the device's state) is the VMM's to satisfy: it is left to the VMM."""
    return tuple(g for g in gs if g.kind != "sentinel" and (
        flow.mentions(g.cond) or (not _reads_locals(g.cond) and
                                  _configuration_decides(t, g.text))))


def _reads_locals(cond) -> bool:
    """Does ``cond`` read a parameter or local of its function (``helper(vcpu)``)? Such a
    guard is about the function's own state, whatever the model can evaluate of it."""
    fn = cparse.enclosing_function(cond)
    if fn is None:
        return False
    declared = {n for n, _ in _param_decls(fn)}
    for d in cparse.captures("(declaration) @d", fn).get("d", []):
        for decl in d.children_by_field_name("declarator"):
            while decl is not None and decl.type != "identifier":
                decl = decl.child_by_field_name("declarator")
            if decl is not None:
                declared.add(cparse.text(decl))
    return any(cparse.text(i) in declared
               for i in cparse.captures("(identifier) @i", cond).get("i", []))


def _configuration_decides(t: model.Tree, text: str) -> bool:
    p = t.profile
    env = model.Config(p.nr_cpus_values[0], p.strides[0], 1, p).env()
    try:
        t.expr(text)(env=env)
    except (ceval.Unsupported, ceval.ModelError, ceval.Unbound):
        return False
    return True


EVAL_ERRORS = (ceval.Unsupported, ceval.ModelError, ceval.Unbound)


@dataclass(frozen=True)
class Loop:
    """``for (var = 0; var < bound; var++)`` around a table access; ``hops`` are the
    (function, line, callee) calls from the loop's function down to the access."""

    var: str
    bound: str
    inclusive: bool
    function: str
    line: int
    hops: tuple[tuple[str, int, str], ...] = ()


def loop_bound(t: model.Tree, sub) -> Loop | None:
    """The loop whose variable indexes the access ``sub`` (facts.Subscript), also from
    the caller of a helper called once with the loop variable."""
    info = t.program.functions.get(sub.function or "")
    if info is None:
        return None
    site = _node_at(info[0], sub.line, sub.column, "subscript_expression")
    index = site and cparse.strip_parens(site.child_by_field_name("index"))
    if index is None or index.type != "identifier":
        return None
    hops: list[tuple[str, int, str]] = []
    for _ in range(4):  # through helpers called once, with the loop in their caller
        var = cparse.text(index)
        found = _enclosing_loop(site, var)
        if found is not None:
            return Loop(*found, tuple(reversed(hops)))
        arg = _argument_of_only_call(site, var)
        if arg is None or arg.type != "identifier":
            return None
        hops.append((cparse.function_name(cparse.enclosing_function(arg)),
                     arg.start_point[0] + 1, cparse.function_name(cparse.enclosing_function(site))))
        site, index = arg, arg
    return None


def _enclosing_loop(site, var: str) -> tuple[str, str, bool, str, int] | None:
    node = site.parent
    while node is not None and node.type != "function_definition":
        if node.type == "for_statement":
            cond = node.child_by_field_name("condition")
            cond = cond and cparse.strip_parens(cond)
            if cond is not None and cond.type == "binary_expression" and cparse.text(
                    cond.child_by_field_name("left")) == var:
                op = cond.child_by_field_name("operator").type
                if op in ("<", "<="):
                    bound = " ".join(cparse.text(cond.child_by_field_name("right")).split())
                    return (var, bound, op == "<=",
                            cparse.function_name(cparse.enclosing_function(site)),
                            cond.start_point[0] + 1)
        node = node.parent
    return None


_COMPARE_OPS = frozenset({"<", "<=", ">", ">=", "==", "!="})


def boundaries(t: model.Tree, path: Path, env: dict) -> set[int]:
    """Candidate IDs from the comparisons on the path: for each side of a comparison in
    a guard that the configuration alone decides, its value and the values around it
    (where a check flips)."""
    out: set[int] = set()
    for hop in path.hops:
        for g in hop.guards:
            for cmp in cparse.captures("(binary_expression) @b", g.cond).get("b", []):
                if cmp.child_by_field_name("operator").type not in _COMPARE_OPS:
                    continue
                for side in ("left", "right"):
                    text = " ".join(cparse.text(cmp.child_by_field_name(side)).split())
                    try:
                        v = t.expr(text)(env=dict(env)).value
                    except EVAL_ERRORS:
                        continue
                    if v is not None:
                        out.update(x for x in (v - 1, v, v + 1) if 0 <= x < 1 << 32)
    return out


def holds(t: model.Tree, guard, env: dict, flow: IdFlow, function: str) -> bool:
    """Does the guard hold? The one exception policy: C the model cannot evaluate makes
    the verdict undecided; bugs of the evaluator itself propagate."""
    return passes(evaluate(t, guard, env, function), guard)


def passes(r, guard) -> bool:
    """Does the evaluated condition ``r`` let the path through ``guard``?"""
    return not r.crashed and bool(r.value) == guard.holds


def evaluate(t: model.Tree, guard, env: dict, function: str):
    """The guard's condition evaluated (:func:`value`), or :class:`Undecided`."""
    try:
        try:  # the common case, a guard that reads no local: value()'s first step
            return t.expr(guard.text).value_of(env)
        except ceval.Unbound:
            return value(t, guard.cond, guard.text, env, function, guard.line)
    except EVAL_ERRORS as e:
        raise Undecided(f"{function}(): cannot evaluate '{guard.text}' ({e})", function,
                        guard.line) from None


MAX_LOCALS = 16  # locals one guard may pull in through their assignments


def value(t: model.Tree, site, text: str, env: dict, function: str, line: int,
          depth: int = 0):
    """Evaluate ``text`` (the expression at ``site``); a local it reads gets the value
    of the one assignment that reaches ``site``, evaluated the same way. Several
    reaching assignments, or too many locals, make the verdict undecided. What computing
    a local did (a WARN, a crash) is part of the result: it ran before ``text``."""
    before: tuple = ()
    for _ in range(MAX_LOCALS):
        try:
            r = t.expr(text)(env=env)
            return r if not before else ceval.Result(r.value, before + tuple(r.events),
                                                     r.crashed)
        except ceval.Unbound as e:
            name = e.name
            rhss = reaching(site, name)
            if not rhss:
                raise
            if len(rhss) != 1 or rhss[0] is None or depth > 8:
                raise Undecided(f"{function}(): '{name}' has {len(rhss)} values reaching "
                                f"'{text}'", function, line) from None
            rhs = " ".join(cparse.text(rhss[0]).split())
            local = value(t, rhss[0], rhs, env, function, line, depth + 1)
            before += tuple(local.events)
            if local.crashed:
                return ceval.Result(None, before, True)
            env[name] = local.value
    raise Undecided(f"{function}(): '{text}' reads more than {MAX_LOCALS} locals",
                    function, line)


def _reads(text: str, name: str) -> bool:
    import re

    return re.search(rf"(?<![\w>.]){re.escape(name)}\b", text) is not None


def find(t: model.Tree, entry: str, names: tuple[str, ...], targets: set[str],
         depth: int = 4, sanitizers: frozenset[str] = frozenset(),
         id_field: str | None = None) -> list[Path]:
    """Every call path from ``entry`` that hands the ID to one of ``targets``.

    A call that only runs when a sanitizer found the ID (a successful lookup
    such as ``kvmppc_xive_find_server``: the ID is the server of an existing
    vCPU) is trusted and not followed. A lookup used the other way round
    (``if (find(…)) return -EEXIST;``) trusts nothing.
    """
    out: list[Path] = []

    def walk(fname: str, names: tuple[str, ...], hops: tuple[Hop, ...], seen: frozenset,
             field: str | None):
        info = t.program.functions.get(fname)
        fact = t.facts.functions.get(fname)
        if info is None or fact is None:
            return
        fn, _ = info
        pointers = _pointers(fn)
        flow = id_flow(fn, names, field, lookup_calls(t, sanitizers), t.profile.succeed)
        names = names + tuple(n for n, rhs in flow.derived if rhs in names or (
            field and rhs is not None and rhs.endswith(f"->{field}")))
        holders = _field_holders(fn, field)
        lookups = _lookup_vars(fn, sanitizers, names, t)
        for call in cparse.captures("(call_expression function: (identifier) @f) @c", fn
                                    ).get("c", []):
            callee = cparse.text(call.child_by_field_name("function"))
            args = [a for a in call.child_by_field_name("arguments").named_children
                    if a.type != "comment"]
            idx, by_pointer = _id_argument(args, names, field, holders)
            if idx is None and field:
                idx, by_pointer = _holder_passed(t, callee, args, field), True
            if idx is None or callee in sanitizers:
                continue
            dominating = guards.dominating_guards(call) if sanitizers else None
            if sanitizers and _trusted(call, sanitizers, names, lookups, t, dominating):
                continue
            is_target = callee in targets and not by_pointer
            callee_fact = t.facts.functions.get(callee)
            if not is_target and (callee_fact is None or callee in seen or
                                  len(hops) + 1 >= depth or idx >= len(callee_fact.params)):
                continue
            gs = relevant(guards.dominating_guards(call) if dominating is None else dominating,
                          flow, t)
            hop = Hop(fname, fact.path, call.start_point.row + 1, callee, idx, names, gs,
                      pointers, flow, _in_check(call))
            if is_target:
                out.append(Path((*hops, hop)))
            elif by_pointer:
                walk(callee, (), (*hops, hop), seen | {callee}, field)
            else:
                walk(callee, (callee_fact.params[idx],), (*hops, hop), seen | {callee}, None)

    walk(entry, names, (), frozenset({entry}), id_field)
    return out


def _field_holders(fn, field: str | None) -> set[str]:
    """Pointers whose ``->FIELD`` holds the ID in this function (``vcpu``)."""
    if not field:
        return set()
    out = set()
    for f in cparse.captures("(field_expression) @f", fn).get("f", []):
        name = f.child_by_field_name("field")
        arg = cparse.strip_parens(f.child_by_field_name("argument"))
        if name is not None and cparse.text(name) == field and arg.type == "identifier":
            out.add(cparse.text(arg))
    return out


def _holder_passed(t: model.Tree, callee: str, args, field: str) -> int | None:
    """The argument that is the pointer whose ``->FIELD`` the callee reads as the ID, when
    the caller only hands the object on (a create function split in two)."""
    info = t.program.functions.get(callee)
    fact = t.facts.functions.get(callee)
    if info is None or fact is None:
        return None
    held = _field_holders(info[0], field)
    for i, a in enumerate(args):
        if i < len(fact.params) and cparse.strip_parens(a).type == "identifier" and \
                fact.params[i] in held:
            return i
    return None


def _id_argument(args, names, field: str | None, holders: set[str]):
    """(index of the argument that carries the ID, whether by the pointer whose field
    holds it), or (None, False)."""
    for i, a in enumerate(args):
        a = cparse.strip_parens(a)
        if a.type == "identifier" and cparse.text(a) in names:
            return i, False
        if field and a.type == "field_expression" and \
                cparse.text(a.child_by_field_name("field")) == field:
            return i, False
    for i, a in enumerate(args):
        a = cparse.strip_parens(a)
        if a.type == "identifier" and cparse.text(a) in holders:
            return i, True
    return None, False


def _is_lookup(node, sanitizers, names, t: model.Tree | None = None) -> bool:
    """``sanitizer(…, ID, …)``, written directly or in a helper of the tree that
    returns it (``static bool known(…) { return sanitizer(…); }``)."""
    node = cparse.strip_parens(node)
    if node.type != "call_expression":
        return False
    fn = node.child_by_field_name("function")
    if fn.type != "identifier":
        return False
    if cparse.text(fn) not in sanitizers:
        inner = _unfold(t, node)
        return inner is not None and _is_lookup(inner, sanitizers, names, t)
    return any(cparse.text(cparse.strip_parens(a)) in names
               for a in node.child_by_field_name("arguments").named_children)


def lookup_calls(t: model.Tree, sanitizers: frozenset[str]) -> frozenset[str]:
    """The sanitizers and the one-statement helpers of the tree that return one of their
    calls: whether such a call finds the ID is the VMM's choice, whatever it is named."""
    if not sanitizers:
        return frozenset()

    def make():
        out = set(sanitizers)
        functions = t.program.functions
        unexpanded = getattr(functions, "unexpanded", lambda n: functions[n][0])
        for name in functions:
            # expanding macros changes no statement: only a one-statement body is expanded
            if _only_return(unexpanded(name)) is None:
                continue
            ret = _only_return(functions[name][0])
            if ret is not None and any(
                    cparse.text(c.child_by_field_name("function")) in sanitizers
                    for c in cparse.captures("(call_expression function: (identifier)) @c",
                                             ret).get("c", [])):
                out.add(name)
        return frozenset(out)
    return t._once(("lookup_calls", sanitizers), make)


def _only_return(fn):
    """The expression of a body that is exactly ``return E;`` (asked of every function of
    the tree: the statements are looked at up to the second one only)."""
    body = fn.child_by_field_name("body")
    stmt = None
    for i in range(body.named_child_count):
        c = body.named_child(i)
        if c.type == "comment":
            continue
        if stmt is not None or c.type != "return_statement":
            return None  # a second statement, or a first that is not a return
        stmt = c
    if stmt is None or not stmt.named_children:
        return None
    return stmt.named_children[0]


def _unfold(t: model.Tree | None, call):
    """The expression a call of a one-statement helper of the tree (``{ return E; }``)
    computes, its parameters replaced by the call's arguments; None otherwise."""
    if t is None or call.type != "call_expression":
        return None
    name = cparse.text(call.child_by_field_name("function"))
    info = t.program.functions.get(name)
    if info is None:
        return None
    ret = _only_return(info[0])
    if ret is None:
        return None
    params = [n for n, _ in _param_decls(info[0])]
    args = [cparse.text(a) for a in call.child_by_field_name("arguments").named_children
            if a.type != "comment"]
    text = cmacros.expansion(name, (tuple(params), cparse.text(ret)), args)
    return cmacros.parse_expression(text) if text is not None else None


def _lookup_vars(fn, sanitizers, names, t: model.Tree | None = None) -> set[str]:
    """Locals assigned the result of a lookup of the ID: ``xc = find(kvm, cpu);``."""
    out = set()
    for a in cparse.captures("(assignment_expression) @a (init_declarator) @a", fn).get("a", []):
        left = a.child_by_field_name("left") or a.child_by_field_name("declarator")
        right = a.child_by_field_name("right") or a.child_by_field_name("value")
        if left is not None and right is not None and left.type == "identifier" and \
                _is_lookup(right, sanitizers, names, t):
            out.add(cparse.text(left))
    return out


def _trusted(call, sanitizers, names, lookups, t: model.Tree | None = None,
             dominating: tuple | None = None) -> bool:
    """Is ``call`` reached only when a lookup of the ID succeeded? (``dominating``: its
    guards, when the caller has them.)"""
    for g in guards.dominating_guards(call) if dominating is None else dominating:
        cond, truthy = _truth_of(g.cond, g.holds, t)
        found = _is_lookup(cond, sanitizers, names, t) or (
            cond.type == "identifier" and cparse.text(cond) in lookups)
        if found and truthy:
            return True
    return False


def _truth_of(cond, holds: bool, t: model.Tree | None = None):
    """(the operand whose truth decides ``cond``, whether it holds): through ``!``,
    ``likely``/``unlikely``, a comparison with 0/NULL and one-statement helpers of the
    tree, so that the shape a developer writes a lookup's check in does not change what
    it guarantees."""
    cond = cparse.strip_parens(cond)
    for _ in range(32):
        if cond.type == "unary_expression" and \
                cond.child_by_field_name("operator").type == "!":
            cond, holds = cond.child_by_field_name("argument"), not holds
        elif cond.type == "call_expression" and \
                cparse.text(cond.child_by_field_name("function")) in ("likely", "unlikely") and \
                cond.child_by_field_name("arguments").named_child_count == 1:
            cond = cond.child_by_field_name("arguments").named_children[0]
        elif cond.type == "binary_expression" and \
                cond.child_by_field_name("operator").type in ("==", "!=") and \
                cparse.text(cond.child_by_field_name("right")) in ("0", "NULL"):
            op = cond.child_by_field_name("operator").type
            cond, holds = cond.child_by_field_name("left"), holds == (op == "!=")
        elif (inner := _unfold(t, cond)) is not None:
            cond = inner
        else:
            break
        cond = cparse.strip_parens(cond)
    return cond, holds


@dataclass(frozen=True)
class Outcome:
    """What one ID does on a path: refused at a guard, or what the target did."""

    reached: bool
    refused_at: tuple[str, int] | None  # (function, guard line)
    result: ceval.Result | None  # the target's result when reached


def run(t: model.Tree, path: Path, config: model.Config, vid: int,
        **extra: int) -> Outcome:
    """Does ``vid`` get through every hop's guards, and what does the target do with it?"""
    return runner(t, path, config, **extra)(vid)


def runner(t: model.Tree, path: Path, config: model.Config,
           **extra: int) -> Callable[[int], Outcome]:
    """:func:`run` of one configuration as a function of the ID: a sweep runs thousands
    of IDs through one path, and what does not depend on the ID (the bindings of each
    hop) is looked up once. A hop without guards only hands the ID on: nothing of it
    is evaluated."""
    extra_key = tuple(sorted(extra.items())) if extra else ()
    hops = tuple((hop, _base_env(hop.pointers, config, extra_key),
                  hop.flow.field if hop.flow is not None else None)
                 for hop in path.hops if hop.guards)
    last = path.hops[-1]
    final = _base_env((), config, extra_key)
    target: list = []  # compiled when an ID first gets through (it may not compile)

    def run_one(vid: int) -> Outcome:
        for hop, base, field_ in hops:
            env = dict(base)
            for n in hop.names:
                env[n] = vid
            if field_:
                env[field_] = vid
            for g in hop.guards:
                if not holds(t, g, env, hop.flow, hop.function):
                    return Outcome(False, (hop.function, g.line), None)
        if not target:
            target[:] = t.compiled(last.callee), len(t.facts.functions[last.callee].params)
        args = [0] * target[1]
        args[last.arg_index] = vid
        return Outcome(True, None, target[0](*args, env=final))
    return run_one


@functools.lru_cache(maxsize=1024)
def _base_env(pointers: tuple[str, ...], config: model.Config,
              extra: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """The configuration's bindings, pointers (never dereferenced) as 0. Callers copy it."""
    return config.env(**{p: 0 for p in pointers}, **dict(extra))


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
    """``vcore = kvm->arch.vcores[core]`` on the create path: the guards that dominate
    it and the assignments of ``core`` that reach it, as compiled C. When the create
    function hands the work on to a function of the tree (a function split in two),
    the guards of the entry before that call come first (``prefix``), and an index
    the entry computes and passes on is followed back to the entry's assignments."""

    tree: model.Tree
    function: str  # the function that accesses the table
    site_line: int
    index_var: str
    entry_names: tuple[str, ...]
    assignments: tuple  # ((guards, rhs text, line, rhs node), ...)
    site_guards: tuple  # guards.Guard
    pointers: tuple[str, ...] = ()  # kvm, vcpu: passed on, never dereferenced by the model
    flow: IdFlow | None = None
    prefix: tuple = ()  # guards.Guard of the entry before it hands the ID on
    index_names: tuple[str, ...] = ()  # other names of the index (the callee's parameter)
    # Slots already computed, per (config, ID): capacity, vcore-index, id-bound-mismatch
    # and collision-crash sweep the same IDs of the same builds on one shared path, and
    # the paths to two accesses after the same guards and index share them (create_path).
    slots: dict = field(default_factory=dict, repr=False, compare=False)

    def slot(self, config: model.Config, vid: int) -> Slot:
        key = (config, vid)
        got = self.slots.get(key)
        if got is None:
            got = self.slots[key] = self._slot(config, vid)
        return got

    def slot_inputs(self) -> tuple:
        """Everything :meth:`slot` reads (the access's own line is not among them)."""
        return (self.function, self.index_var, self.entry_names, self.assignments,
                self.site_guards, self.pointers, self.flow.field, self.prefix,
                self.index_names)

    def _slot(self, config: model.Config, vid: int) -> Slot:
        env = dict(_base_env(self.pointers, config, ()))
        for n in self.entry_names:
            env[n] = vid
        if self.flow.field:
            env[self.flow.field] = vid
        # The assignments of the index sit under the same guards (``if (P9) { if (id >=
        # max) … else … }``): each condition is evaluated once per ID. Exact while
        # ``env`` only grows (value() binds a missing local, never rebinds one), that
        # is until the index is bound below.
        known: dict[str, object] = {}
        for g in self.prefix:
            if not self._holds(g, env, known):
                return Slot(False, None, (), g.line)
        index, events = None, ()
        for guards_, rhs, line, node in self.assignments:
            for g in guards_:
                if not self._holds(g, env, known):
                    break
            else:
                r = value(self.tree, node, rhs, env, self.function, line)
                events = tuple(r.events)
                if r.crashed:
                    return Slot(False, None, events)
                index = r.value
                break
        if index is None:
            return Slot(False, None, events,
                        self._refusing(env, known) if not events else None)
        for name in (self.index_var, *self.index_names):
            env[name] = index
        for g in self.site_guards:
            if not self._holds(g, env):
                return Slot(False, index, events, g.line)
        return Slot(True, index, events)

    def _holds(self, guard, env, known: dict | None = None) -> bool:
        if known is None:
            return holds(self.tree, guard, env, self.flow, self.function)
        r = known.get(guard.text)
        if r is None:
            r = known[guard.text] = evaluate(self.tree, guard, env, self.function)
        return passes(r, guard)

    def _refusing(self, env, known: dict | None = None) -> int | None:
        """The line of the first guard that every assignment of the index sits under
        and that the ID fails (an early return before them all), if there is one."""
        common = set.intersection(*({(g.line, g.text) for g in a[0]}
                                    for a in self.assignments)) if self.assignments else ()
        for g in self.assignments[0][0] if common else ():
            if (g.line, g.text) in common and not self._holds(g, env, known):
                return g.line
        return None


def _own_sites(t: model.Tree, function: str) -> list:
    subs = [s for s in t.facts.all("subscripts") if s.function == function]
    return sorted(subs, key=lambda s: (s.is_write, s.line, s.column))


def table_sites(t: model.Tree, function: str) -> list:
    """The accesses of the VCORE table on ``function``'s create path (facts.Subscript),
    reads first: its own, or, for an entry point that accesses none, those of the
    function it hands the work on to."""
    own = _own_sites(t, function)
    entry = next((e for e in t.profile.entries if e.function == function), None)
    if entry is None:
        return own
    hand = handoff(t, entry, {s.function for s in t.facts.all("subscripts")
                              if s.function and s.function != function})
    return own + (_own_sites(t, hand.callee) if hand is not None else [])


@dataclass(frozen=True, eq=False)
class Handoff:
    """The call by which an entry point hands the creation on to a tree function."""

    call: object  # the call_expression node in the entry
    callee: str
    names: tuple[str, ...]  # the callee's parameters that receive the ID by value
    field: str | None  # the ID's field, when the callee reads it from an object it gets
    guards: tuple  # the entry's guards (on the ID or the configuration) before the call
    flow: IdFlow  # the ID in the entry


def handoff(t: model.Tree, entry: Entry, targets: set[str]) -> Handoff | None:
    """The first call of the entry to one of ``targets`` (functions of the tree)."""
    info = t.program.functions.get(entry.function)
    if info is None:
        return None
    fn = info[0]
    names = entry_names_of(t, entry)
    flow = id_flow(fn, names, entry.id_field, lookup_calls(t, t.profile.sanitizers),
                   t.profile.succeed)
    names = names + tuple(n for n, rhs in flow.derived if rhs in names or (
        entry.id_field and rhs is not None and rhs.endswith(f"->{entry.id_field}")))
    for call in cparse.captures("(call_expression function: (identifier) @f) @c", fn
                                ).get("c", []):
        callee = cparse.text(call.child_by_field_name("function"))
        fact = t.facts.functions.get(callee)
        if callee not in targets or callee == entry.function or fact is None or \
                callee not in t.program.functions:
            continue
        args = [cparse.strip_parens(a) for a in call.child_by_field_name("arguments"
                                                                         ).named_children
                if a.type != "comment"]
        byval = tuple(fact.params[i] for i, a in enumerate(args) if i < len(fact.params) and (
            (a.type == "identifier" and cparse.text(a) in names) or (
                entry.id_field and a.type == "field_expression" and
                cparse.text(a.child_by_field_name("field")) == entry.id_field)))
        field = None
        if entry.id_field and _holder_passed(t, callee, args, entry.id_field) is not None:
            field = entry.id_field
        return Handoff(call, callee, byval, field,
                       relevant(guards.dominating_guards(call), flow, t), flow)
    return None


def create_path(t: model.Tree, entry: Entry, site_fact=None) -> CreatePath | None:
    """Slice the create path at an access of the VCORE table (default: its first read),
    in the entry point or in the function it hands the work on to. Sliced once per tree:
    the rules that ask for the same path share it and the slots it has computed."""
    def make():
        cp = _create_path(t, entry, site_fact)
        if cp is None:
            return None
        shared = t._once(("slots", cp.slot_inputs()), dict)
        return cp if shared is cp.slots else replace(cp, slots=shared)
    return t._once(("create_path", entry, site_fact), make)


def _create_path(t: model.Tree, entry: Entry, site_fact=None) -> CreatePath | None:
    hand = None
    own = _own_sites(t, entry.function)
    if site_fact is None and not any(not s.is_write for s in own):
        readers = {s.function for s in t.facts.all("subscripts") if not s.is_write}
        hand = handoff(t, entry, {r for r in readers if r})
    elif site_fact is not None and site_fact.function != entry.function:
        hand = handoff(t, entry, {site_fact.function})
    function = hand.callee if hand is not None else entry.function
    info = t.program.functions.get(function)
    if info is None:
        return None
    fn, _ = info
    if site_fact is None:
        reads = [s for s in _own_sites(t, function) if not s.is_write]
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
    if hand is None:
        entry_names, field = entry_names_of(t, entry), entry.id_field
    else:
        entry_names = tuple(dict.fromkeys(entry_names_of(t, entry) + hand.names))
        field = hand.field or (entry.id_field if not hand.names else None)
    tainted = entry_names + (_tainted_params(t, hand, fn) if hand is not None else ())
    flow = id_flow(fn, tainted, field, lookup_calls(t, t.profile.sanitizers),
                   t.profile.succeed)
    assigns = _assignments_at(t, site, var, flow)
    site_guards = relevant(guards.dominating_guards(site), flow, t)
    prefix, index_names = (hand.guards if hand else ()), ()
    if hand is not None and not assigns:
        lifted = _lift(t, hand, fn, var)
        if lifted is not None:  # the index is the entry's, passed on
            assigns, index_names = lifted
            site_guards, prefix = hand.guards + site_guards, ()
    if not assigns:  # never "no ID gets a slot" from an index the engine cannot follow
        raise Undecided(f"{function}(): no assignment of the index '{var}' of "
                        f"'{cparse.text(site)}' to follow", function, site_fact.line)
    objs = cparse.captures("(field_expression argument: (identifier) @obj)", fn).get("obj", [])
    if hand is not None:
        objs += cparse.captures("(field_expression argument: (identifier) @obj)",
                                cparse.enclosing_function(hand.call)).get("obj", [])
    pointers = tuple(sorted({cparse.text(o) for o in objs} - set(entry_names)))
    return CreatePath(t, function, site_fact.line, var, entry_names, tuple(assigns),
                      site_guards, pointers, flow, prefix, index_names)


def _tainted_params(t: model.Tree, hand: Handoff, fn) -> tuple[str, ...]:
    """The callee's parameters that the entry passes a value computed from the ID."""
    params = [n for n, _ in _param_decls(fn)]
    args = [a for a in hand.call.child_by_field_name("arguments").named_children
            if a.type != "comment"]
    return tuple(p for p, a in zip(params, args, strict=False)
                 if hand.flow.carries(cparse.strip_parens(a)))


def _assignments_at(t: model.Tree, site, var: str, flow: IdFlow) -> list:
    out = []
    for node, gs in guards.reaching_assignments(site, var):
        rhs = node.child_by_field_name("right") if node.type == "assignment_expression" else \
            node.child_by_field_name("value")
        if rhs is not None:
            out.append((relevant(gs, flow, t), " ".join(cparse.text(rhs).split()),
                        node.start_point.row + 1, cparse.strip_parens(rhs)))
    return out


def _lift(t: model.Tree, hand: Handoff, fn, var: str):
    """(the entry's assignments of the index, its names) when ``var`` is a parameter of
    the callee that the entry passes its own local (or an expression) for."""
    params = [n for n, _ in _param_decls(fn)]
    if var not in params:
        return None
    args = [a for a in hand.call.child_by_field_name("arguments").named_children
            if a.type != "comment"]
    k = params.index(var)
    if k >= len(args):
        return None
    arg = cparse.strip_parens(args[k])
    if arg.type != "identifier":
        return [((), " ".join(cparse.text(arg).split()), arg.start_point.row + 1, arg)], ()
    name = cparse.text(arg)
    return _assignments_at(t, hand.call, name, hand.flow), (name,)


def _node_at(fn, line: int, column: int, kind: str):
    """The node at (line, column); else the only one of its kind on that line (a macro
    expanded earlier on the line moves the columns, never the lines)."""
    on_line = [n for n in cparse.captures(f"({kind}) @n", fn).get("n", [])
               if n.start_point.row + 1 == line]
    for n in on_line:
        if n.start_point.column + 1 == column:
            return n
    return on_line[0] if len(on_line) == 1 else None
