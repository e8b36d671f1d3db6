"""What the model-backed checks share: the tree, the roles, one counterexample
record and one way to turn a path into notes."""

from __future__ import annotations

from collections.abc import Iterator

from ..c.facts import Facts
from ..findings import Counterexample, Note
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

