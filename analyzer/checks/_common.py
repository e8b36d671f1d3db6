"""What the model-backed checks share: the tree, the roles, one counterexample
record and one way to turn a path into notes."""

from __future__ import annotations

from collections.abc import Iterator

from ..c.facts import Facts
from ..errors import ModelLimit
from ..findings import Counterexample, Finding, Note, without_lines
from ..model import packing as model
from ..model import paths, roles, space
from ..profile import Entry


def tree(rule, facts: Facts) -> model.Tree:
    return model.tree(facts, rule.profile)


def found_roles(rule, facts: Facts) -> roles.Roles:
    return roles.find(facts, rule.profile)


def table_field(rule, facts: Facts) -> str:
    """The VCORE table's field in this snapshot (found by its role, else the profile's)."""
    return facts.fields.table if facts.fields is not None else rule.profile.fields["table"]


def configs(rule, t: model.Tree, layouts: bool = False) -> list[model.Config]:
    """The configurations a rule sweeps, smallest first: the tree's configuration space
    (analyzer/model/space.py), or the builds the rule file lists in ``nr_cpus``."""
    if "nr_cpus" in rule.params:
        return t.configs(tuple(rule.params["nr_cpus"]), layouts)
    return space.configs(t, layouts)


def entries(rule, facts: Facts) -> Iterator[Entry]:
    for e in rule.profile.entries:
        if e.function in facts.functions:
            yield e


def record(cfg: model.Config, ids, entry: str | None = None, **values) -> dict:
    return Counterexample(cfg.as_dict(), tuple(ids), entry, values).as_dict()


def run_signature(path: paths.Path) -> tuple:
    """What :func:`paths.run` reads of ``path``: each hop that has guards (its function,
    the names, field and flow that hold the ID, the pointers, the guards) and the call at
    the end. A hop without guards only hands the ID on, so two paths with one signature
    (two entry points that call one checking helper) give the same outcome for every
    configuration, ID and binding: a sweep of one answers for the other."""
    last = path.hops[-1]
    return tuple((h.function, h.names, h.pointers, h.flow, h.guards)
                 for h in path.hops if h.guards), last.callee, last.arg_index


def path_notes(facts: Facts, path: paths.Path, vid: int) -> tuple[Note, ...]:
    """The path from the entry point as notes: each call, with the guards it passed."""
    out = []
    for hop in path.hops:
        fact = facts.functions[hop.function]
        for g in hop.guards:
            out.append(Note(fact.path, g.line, f"'{g.text}' is "
                            f"{'true' if g.holds else 'false'} for {vid}", hop.function))
        out.append(Note(fact.path, hop.line, f"{hop.callee}() called with {vid}",
                        hop.function))
    return tuple(out)


def refused_notes(facts: Facts, path: paths.Path, vid: int,
                  refused_at: tuple[str, int]) -> tuple[Note, ...]:
    """The path from the entry point to the guard that turns ``vid`` away, as notes."""
    fn_name, line = refused_at
    out: list[Note] = []
    for hop in path.hops:
        fact = facts.functions[hop.function]
        for g in hop.guards:
            if hop.function == fn_name and g.line == line:
                out.append(Note(fact.path, g.line, f"'{g.text}' refuses {vid}", hop.function))
                return tuple(out)
            out.append(Note(fact.path, g.line, f"'{g.text}' is "
                            f"{'true' if g.holds else 'false'} for {vid}", hop.function))
        out.append(Note(fact.path, hop.line, f"{hop.callee}() called with {vid}",
                        hop.function))
    return tuple(out)


def create_notes(t: model.Tree, cp: paths.CreatePath, cfg: model.Config,
                 vid: int) -> tuple[Note, ...]:
    """How the create path gives ``vid`` its VCORE slot, as notes: the guards that choose
    the assignment of the index, the assignment with its value, the guards of the
    table access (all of which ``vid`` passed)."""
    fact = t.facts.functions[cp.function]
    env = cfg.env(**{p: 0 for p in cp.pointers}, **{n: vid for n in cp.entry_names})
    if cp.flow is not None and cp.flow.field:
        env[cp.flow.field] = vid
    out: list[Note] = []

    def passed(g) -> Note:
        return Note(fact.path, g.line, f"'{g.text}' is {'true' if g.holds else 'false'} "
                    f"for {vid}", cp.function)

    for gs, rhs, line, _ in cp.assignments:
        if all(paths.holds(t, g, dict(env), cp.flow, cp.function) for g in gs):
            slot = cp.slot(cfg, vid).index
            out += [passed(g) for g in gs]
            out.append(Note(fact.path, line, f"{cp.index_var} = {rhs} is {slot} for {vid}",
                            cp.function))
            break
    return tuple(out + [passed(g) for g in cp.site_guards])


def undecided(rule, facts: Facts, e: ModelLimit, at: tuple[str, int] | None = None) -> Finding:
    """The model could not decide: say what and where, at info severity. ``at``
    (function, line) places it when the construct is not a tree function's (a call of
    a function the tree does not define), so that it is never out of every scope."""
    fn = facts.functions.get(e.function or "")
    if fn is None and at is not None:
        fn, e_line = facts.functions.get(at[0]), at[1]
    else:
        e_line = e.line
    path, line = (fn.path, e_line or fn.line) if fn else ("", 0)
    name = fn.name if fn else e.function
    return Finding(rule.id, "info", path, line, 1, name,
                   f"undecided: the model could not evaluate {name}(): {e}; "
                   f"{rule.id} not checked on this path",
                   key=f"model-limit:{without_lines(str(e))}")
