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
from dataclasses import dataclass

from . import ceval, cparse, guards, model


@dataclass(frozen=True)
class Hop:
    function: str
    path: str
    line: int  # of the call in this function
    callee: str
    arg_index: int  # the call's argument that carries the ID
    names: tuple[str, ...]  # names that hold the ID in this function
    guards: tuple  # guards.Guard that decide whether the ID gets to the call
    pointers: tuple[str, ...]


@dataclass(frozen=True)
class Path:
    hops: tuple[Hop, ...]

    @property
    def target(self) -> str:
        return self.hops[-1].callee

    def chain(self) -> str:
        return " → ".join([f"{h.function}()" for h in self.hops] + [f"{self.target}()"])


def _pointers(fn) -> tuple[str, ...]:
    objs = cparse.captures("(field_expression argument: (identifier) @o)", fn).get("o", [])
    return tuple(sorted({cparse.text(o) for o in objs}))


def _relevant(gs, known: set[str], pointers: tuple[str, ...]) -> tuple:
    out = []
    for g in gs:
        if g.kind == "sentinel":
            continue
        if _depends_only_on(g.cond, known, pointers):
            out.append(g)
    return tuple(out)


def _depends_only_on(cond, known: set[str], pointers: tuple[str, ...]) -> bool:
    """Conditions on the ID, the configuration and macros; pointers only passed on."""
    for ident in cparse.captures("(identifier) @i", cond).get("i", []):
        parent = ident.parent
        name = cparse.text(ident)
        if parent.type == "field_expression" and parent.child_by_field_name("argument") == ident:
            continue
        if parent.type == "call_expression" and parent.child_by_field_name("function") == ident:
            continue
        if parent.type == "argument_list" and (name in pointers or name.startswith("CPU_FTR_")):
            continue
        if name not in known:
            return False
    return True


def find(t: model.Tree, entry: str, names: tuple[str, ...], targets: set[str],
         depth: int = 4, sanitizers: frozenset[str] = frozenset()) -> list[Path]:
    """Every call path from ``entry`` that hands the ID to one of ``targets``.

    A call that only runs when a sanitizer found the ID (a successful lookup
    such as ``kvmppc_xive_find_server``: the ID is the server of an existing
    vCPU) is trusted and not followed. A lookup used the other way round
    (``if (find(…)) return -EEXIST;``) trusts nothing.
    """
    known_base = set(t.program.defines) | set(model.Config(1, 1, 1).env())
    out: list[Path] = []

    def walk(fname: str, names: tuple[str, ...], hops: tuple[Hop, ...], seen: frozenset):
        info = t.program.functions.get(fname)
        fact = t.facts.functions.get(fname)
        if info is None or fact is None:
            return
        fn, _ = info
        pointers = _pointers(fn)
        lookups = _lookup_vars(fn, sanitizers, names)
        for call in cparse.captures("(call_expression function: (identifier) @f) @c", fn
                                    ).get("c", []):
            callee = cparse.text(call.child_by_field_name("function"))
            args = [a for a in call.child_by_field_name("arguments").named_children
                    if a.type != "comment"]
            idx = next((i for i, a in enumerate(args) if cparse.strip_parens(a).type ==
                        "identifier" and cparse.text(cparse.strip_parens(a)) in names), None)
            if idx is None or callee in sanitizers:
                continue
            if sanitizers and _trusted(call, sanitizers, names, lookups):
                continue
            is_target = callee in targets
            callee_fact = t.facts.functions.get(callee)
            if not is_target and (callee_fact is None or callee in seen or
                                  len(hops) + 1 >= depth or idx >= len(callee_fact.params)):
                continue
            gs = _relevant(guards.dominating_guards(call), known_base | set(names), pointers)
            hop = Hop(fname, fact.path, call.start_point.row + 1, callee, idx, names, gs,
                      pointers)
            if is_target:
                out.append(Path((*hops, hop)))
            else:
                walk(callee, (callee_fact.params[idx],), (*hops, hop), seen | {callee})

    walk(entry, names, (), frozenset({entry}))
    return out


def _is_lookup(node, sanitizers, names) -> bool:
    """``sanitizer(…, ID, …)``."""
    node = cparse.strip_parens(node)
    if node.type != "call_expression":
        return False
    fn = node.child_by_field_name("function")
    if fn.type != "identifier" or cparse.text(fn) not in sanitizers:
        return False
    return any(cparse.text(cparse.strip_parens(a)) in names
               for a in node.child_by_field_name("arguments").named_children)


def _lookup_vars(fn, sanitizers, names) -> set[str]:
    """Locals assigned the result of a lookup of the ID: ``xc = find(kvm, cpu);``."""
    out = set()
    for a in cparse.captures("(assignment_expression) @a (init_declarator) @a", fn).get("a", []):
        left = a.child_by_field_name("left") or a.child_by_field_name("declarator")
        right = a.child_by_field_name("right") or a.child_by_field_name("value")
        if left is not None and right is not None and left.type == "identifier" and \
                _is_lookup(right, sanitizers, names):
            out.add(cparse.text(left))
    return out


def _trusted(call, sanitizers, names, lookups) -> bool:
    """Is ``call`` reached only when a lookup of the ID succeeded?"""
    for g in guards.dominating_guards(call):
        cond, truthy = cparse.strip_parens(g.cond), g.holds
        while cond.type == "unary_expression" and \
                cond.child_by_field_name("operator").type == "!":
            cond, truthy = cparse.strip_parens(cond.child_by_field_name("argument")), not truthy
        found = _is_lookup(cond, sanitizers, names) or (
            cond.type == "identifier" and cparse.text(cond) in lookups)
        if found and truthy:
            return True
    return False


@dataclass(frozen=True)
class Outcome:
    reached: bool
    refused_at: tuple[str, int] | None  # (function, guard line)
    result: ceval.Result | None  # the target's result when reached


def run(t: model.Tree, path: Path, config: model.Config, vid: int,
        **extra: int) -> Outcome:
    """Does ``vid`` get through every hop's guards, and what does the target do with it?"""
    extra_key = tuple(sorted(extra.items()))
    for hop in path.hops:
        env = dict(_base_env(hop.pointers, config, extra_key))
        for n in hop.names:
            env[n] = vid
        for g in hop.guards:
            try:
                r = t.expr(g.text)(env=env)
            except (ceval.Unsupported, ceval.ModelError, KeyError):
                continue  # outside the model: does not refuse IDs
            if r.crashed or bool(r.value) != g.holds:
                return Outcome(False, (hop.function, g.line), None)
    last = path.hops[-1]
    fact = t.facts.functions[last.callee]
    args = [0] * len(fact.params)
    args[last.arg_index] = vid
    env = _base_env((), config, extra_key)
    return Outcome(True, None, t.compiled(last.callee)(*args, env=env))


@functools.lru_cache(maxsize=1024)
def _base_env(pointers: tuple[str, ...], config: model.Config,
              extra: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """The configuration's bindings, pointers (never dereferenced) as 0. Callers copy it."""
    return config.env(**{p: 0 for p in pointers}, **dict(extra))
