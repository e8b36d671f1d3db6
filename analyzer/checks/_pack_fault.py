"""Where a pack-table finding goes: the table entry, the index computation or the
value computation of the packing function, whichever the fix has to change.

The packing function reads one local table (``block_offsets[block]``). It is run
again with the table's entries read from the configuration, which gives, for each
ID, the value computed before the table (``base``: the run with every entry 0) and
the entry it reads (the one entry whose change changes the result). Over every
QEMU-like layout of the small builds:

- two IDs of one layout with the same base that read the same entry cannot be told
  apart by any table: the index computation is at fault (``block = …``);
- a base at or beyond the count, or a BUG/WARN that fires with every entry 0,
  cannot be fixed by a table of non-negative entries either: the statement that
  reads the table (``packed_id = …``), or the index computation when the check
  that fires comes before the read;
- otherwise the index computation separates every pair the table must separate,
  and the finding goes to the table entry the counterexample's (last) ID reads.

A function whose index computation is at fault can have a faulty entry besides: an
ID that packs in range and without a BUG/WARN with every entry 0 (the index and the
read are fine for it) but leaves the count, or warns, with the one entry it reads as
the table holds it. No index computation makes that entry right for that remainder,
so it is a second site, reported at the entry (:func:`entry_fault`), as clang's
analyzer reports each distinct bug location rather than the smallest one alone.

A packing function of another shape (no table, several tables, an entry that is
not read linearly) keeps the function's first line.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..c import guards
from ..c import parse as cparse
from ..model import ceval, space
from ..model import packing as model

PREFIX = "__vpcheck_t"
_TABLE = ("(declaration declarator: (init_declarator declarator: (array_declarator"
          " declarator: (identifier) @name) value: (initializer_list) @init))")


@dataclass(frozen=True)
class Shape:
    """The packing function's table and the lines a finding can go to."""

    entry_lines: tuple[int, ...]
    index_line: int  # the assignment of the table's index (or the read's line)
    read_line: int  # the statement that reads the table
    first_line: int  # the function's, in the file: its events' lines count from it
    compiled: object  # the packing function with entry i read from env[PREFIX + i]


def shape(t: model.Tree, name: str) -> Shape | None:
    fn = t.facts.node(name)
    if fn is None:
        return None
    tables = cparse.matches(_TABLE, fn)
    if len(tables) != 1:
        return None
    table, init = cparse.text(tables[0]["name"][0]), tables[0]["init"][0]
    reads = [s for s in cparse.captures("(subscript_expression) @s", fn).get("s", [])
             if cparse.text(cparse.strip_parens(s.child_by_field_name("argument"))) == table]
    entries = [e for e in init.named_children if e.type != "comment"]
    if len(reads) != 1 or not entries:
        return None
    read = reads[0]
    index = cparse.strip_parens(read.child_by_field_name("index"))
    index_line = read.start_point.row + 1
    if index.type == "identifier":
        defs = guards.reaching_assignments(read, cparse.text(index))
        if len(defs) == 1:
            index_line = defs[0][0].start_point.row + 1
    stmt = read
    while stmt.parent is not None and not (stmt.type.endswith("statement") or
                                           stmt.type == "declaration"):
        stmt = stmt.parent
    src = t.facts.snapshot.files[t.facts.functions[name].path]
    body = src[fn.start_byte:init.start_byte] + ("{" + ", ".join(
        f"{PREFIX}{i}" for i in range(len(entries))) + "}").encode() + \
        src[init.end_byte:fn.end_byte]
    node = cparse.parse(body).root_node.children[0]
    if node.type != "function_definition":
        return None
    program = ceval.Program(t.program.functions | {name: (node, body)},
                            t.program.defines, t.program.macros)
    try:
        compiled = ceval.compile_function(program, name)
    except (ceval.Unsupported, ceval.ModelError):
        return None
    return Shape(tuple(e.start_point.row + 1 for e in entries), index_line,
                 stmt.start_point.row + 1, fn.start_point.row + 1, compiled)


def _outcome(r) -> tuple:
    return r.value, r.crashed, tuple((e.macro, e.line) for e in r.events)


def probe(s: Shape, cfg: model.Config, vid: int):
    """(base, entry read or None, line of a BUG/WARN that fires with every entry 0)
    for one ID; None when the table is not read as one entry."""
    zero = {f"{PREFIX}{i}": 0 for i in range(len(s.entry_lines))}
    env = cfg.env(**zero)
    r0 = s.compiled(0, vid, env=env)
    read = []
    for i in range(len(s.entry_lines)):
        env[f"{PREFIX}{i}"] = 1
        if _outcome(s.compiled(0, vid, env=env)) != _outcome(r0):
            read.append(i)
        env[f"{PREFIX}{i}"] = 0
    if len(read) > 1:
        return None
    fired = r0.events[0].line + s.first_line - 1 if r0.events else (0 if r0.crashed else None)
    return r0.value, (read[0] if read else None), fired


def fault_line(t: model.Tree, s: Shape, n_max: int) -> tuple[int, str] | None:
    """(the index or read line, why) when no table can fix the QEMU-like layouts up
    to ``n_max`` CPUs; None when the table can be where the fix goes."""
    count = t.profile.count
    # the layouts of one build and stride share IDs, and a probe reads only the build's
    # bindings (cfg.env), never the threads per core: each ID is probed once per build
    known: dict[tuple, tuple | None] = {}
    # one build per class of the configuration space (analyzer/model/space.py), as the
    # rule's own sweep: the smallest build of a class speaks for it
    for cfg in space.configs(t, True, tuple(v for v in t.profile.nr_cpus_values if v <= n_max)):
        if not cfg.qemu_like:
            continue
        n = t.macro(count, cfg)
        seen: dict[tuple, int] = {}
        for vid in model.layout(cfg.stride, cfg.threads, n, t.id_space(cfg)):
            key = (cfg.nr_cpus, cfg.stride, vid)
            p = known[key] if key in known else known.setdefault(key, probe(s, cfg, vid))
            if p is None:
                return None
            base, entry, fired = p
            if fired is not None:
                return (s.index_line if fired and fired < s.read_line else s.read_line,
                        f"ID {vid} fails ({cfg.text()}) whatever the table holds")
            if base >= n:
                return s.read_line, f"ID {vid} is at {base} before the table is added " \
                    f"({cfg.text()}): beyond {count}={n} whatever the table holds"
            if (base, entry) in seen:
                return s.index_line, f"IDs {seen[base, entry]} and {vid} read the same " \
                    f"table entry with the same remainder ({cfg.text()}): no table " \
                    "separates them"
            seen[base, entry] = vid
    return None


def entry_line(s: Shape, cfg: model.Config, vid: int) -> int | None:
    p = probe(s, cfg, vid)
    return s.entry_lines[p[1]] if p is not None and p[1] is not None else None


@dataclass(frozen=True)
class EntryFault:
    """An ID the index handles cleanly that the table entry it reads sends out of range."""

    cfg: model.Config
    vid: int
    line: int  # the entry's
    problem: str
    packed: int | None


def entry_fault_of(t: model.Tree, s: Shape, pack, cfg: model.Config,
                   vid: int) -> EntryFault | None:
    """The fault of the entry ``vid`` reads, when its probe is clean (with every entry 0:
    below the count, no BUG/WARN) but the real table sends it beyond the count or into
    a BUG/WARN; None otherwise."""
    count = t.profile.count
    n = t.macro(count, cfg)
    p = probe(s, cfg, vid)
    if p is None or p[1] is None or p[2] is not None or p[0] >= n:
        return None
    r = pack(0, vid, env=cfg.env())
    if r.events:
        problem = f"ID {vid} hits {r.events[0].macro} at line {r.events[0].line}"
    elif r.crashed or r.value >= n:
        problem = f"ID {vid} packs to {r.value}, beyond {count}={n}"
    else:
        return None
    return EntryFault(cfg, vid, s.entry_lines[p[1]], problem,
                      None if r.events or r.crashed else r.value)


def entry_fault(t: model.Tree, s: Shape, pack, n_max: int) -> EntryFault | None:
    """The first (smallest build, smallest ID) QEMU-like layout ID whose entry is at
    fault (:func:`entry_fault_of`); None when every entry is right for the IDs that read
    it. Asked only once the index is at fault (:func:`fault_line`)."""
    done: set[tuple] = set()
    for cfg in space.configs(t, True, tuple(v for v in t.profile.nr_cpus_values if v <= n_max)):
        if not cfg.qemu_like:
            continue
        for vid in model.layout(cfg.stride, cfg.threads, t.macro(t.profile.count, cfg),
                                t.id_space(cfg)):
            if (cfg.nr_cpus, cfg.stride, vid) not in done:
                done.add((cfg.nr_cpus, cfg.stride, vid))
                e = entry_fault_of(t, s, pack, cfg, vid)
                if e is not None:
                    return e
    return None
