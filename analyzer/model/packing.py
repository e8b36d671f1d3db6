"""The packing model: the tree's own C, executed over the configuration space.

Everything here comes from the snapshot: the packing function's body, the
macros it uses (``KVM_MAX_VCPUS`` → ``NR_CPUS`` …) and the ID-space bound
(``KVM_MAX_VCPU_ID`` or ``KVM_MAX_VCPU_IDS``). Only the configuration is
supplied: ``NR_CPUS``, ``threads_per_subcore``, the guest's stride
(``emul_smt_mode``) and threads per core. The POWER9 path is modelled
(``CPU_FTR_ARCH_300`` set, ``smt_mode`` 1): it is the only one that packs.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .. import profile as profile_mod
from ..c import defines
from ..c import macros as cmacros
from ..c import parse as cparse
from ..c.defines import Define
from ..c.facts import Facts, Function
from ..profile import Profile
from . import ceval, roles

SMALL_BUILD = 32  # up to here every threads-per-core count is swept; above, the extremes


@dataclass(frozen=True)
class Config:
    """One point of the configuration space: the swept build constant (``NR_CPUS``),
    the guest's stride and threads per core; the rest is the profile's host."""

    nr_cpus: int
    stride: int
    threads: int = 1
    profile: Profile = field(default_factory=profile_mod.load, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.nr_cpus, self.stride, self.threads,
                                                self.profile)))

    def __hash__(self) -> int:
        """The dataclass hash, computed once: a configuration keys the path engine's
        caches on every execution."""
        return self._hash

    def env(self, **extra: int) -> dict[str, int]:
        p = self.profile
        return {p.nr_cpus: self.nr_cpus, p.stride: self.stride, **dict(p.env), **extra}

    def as_dict(self) -> dict[str, int]:
        """The configuration as the counterexample record shows it."""
        p = self.profile
        fixed = {k: v for k, v in p.env if ":" not in k}
        return {p.nr_cpus: self.nr_cpus, **fixed, p.stride: self.stride,
                "threads_per_core": self.threads}

    def text(self) -> str:
        """The one way a configuration is written in a message."""
        p = self.profile
        out = f"{p.nr_cpus}={self.nr_cpus}, {p.stride}={self.stride}"
        if self.threads > 1:
            out += f", {self.threads} threads per core"
        return out

    @property
    def qemu_like(self) -> bool:
        """QEMU requires a power-of-two number of threads per core, at most the stride."""
        return self.threads & (self.threads - 1) == 0 and self.threads <= self.stride


def layout(stride: int, threads: int, count: int, id_limit: int | None = None) -> list[int]:
    """IDs a VMM numbering ``core * stride + thread`` uses for ``count`` vCPUs (up to
    the first ID at or beyond ``id_limit``)."""
    if threads < 1 or count < 1:
        return _layout_slow(stride, threads, count, id_limit)
    out = [c * stride + t for c in range(-(-count // threads)) for t in range(threads)]
    del out[count:]
    if id_limit is not None:
        if 0 < threads <= stride:  # increasing: the first one beyond is found by bisection
            del out[bisect.bisect_left(out, id_limit):]
        else:
            cut = next((i for i, vid in enumerate(out) if vid >= id_limit), None)
            if cut is not None:
                del out[cut:]
    return out


def _layout_slow(stride: int, threads: int, count: int, id_limit: int | None) -> list[int]:
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


def sweep(prof: Profile, nr_cpus=None, layouts: bool = True) -> Iterator[Config]:
    """The profile's space (no tree; a tree's is :func:`.space.configs`): every ``NR_CPUS``
    of the profile (or ``nr_cpus``), every stride, and with ``layouts`` every
    threads-per-core count up to :data:`SMALL_BUILD`, then the two extreme layouts."""
    for n in nr_cpus or prof.nr_cpus_values:
        for s in prof.strides:
            for th in threads(n, s, layouts):
                yield Config(n, s, th, prof)


def threads(n: int, stride: int, layouts: bool):
    """The threads-per-core counts swept for one build and stride."""
    if not layouts:
        return (1,)
    return range(1, stride + 1) if n <= SMALL_BUILD else sorted({1, stride})


@dataclass(frozen=True, eq=False)  # identity hash: compiled code is cached per Tree
class Tree:
    """What the model needs from a snapshot, compiled once."""

    facts: Facts
    program: ceval.Program
    defines: Mapping[str, Define] = field(default_factory=dict)
    profile: Profile = field(default_factory=profile_mod.load)

    # Compiled code, per Tree and dropped with it (a functools.cache on a method
    # would keep every snapshot's Tree, facts and parse trees alive for good).
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _once(self, key: tuple, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def function(self, name: str) -> Function | None:
        return self.facts.functions.get(name)

    def compiled(self, name: str):
        return self._once(("fn", name), lambda: ceval.compile_function(self.program, name))

    def expr(self, text: str):
        """A C expression of the tree, compiled; free names are read from ``env``.
        (The path engine asks for one per guard it evaluates: looked up directly.)"""
        got = self._memo.get(("expr", text))
        if got is None:
            got = self._memo["expr", text] = self._expr(text)
        return got

    def _expr(self, text: str):
        src = f"long long __vpcheck_expr(void) {{ return ({text}); }}\n".encode()
        fn = cparse.parse(src).root_node.children[0]
        functions = self.program.functions | {"__vpcheck_expr": (fn, src)}
        prog = ceval.Program(functions, self.program.defines, self.program.macros)
        return ceval.compile_function(prog, "__vpcheck_expr")

    def macro(self, name: str, config: Config) -> int:
        return self.expr(name)(env=config.env()).value

    def first_macro(self, names) -> str | None:
        return next((n for n in names if n in self.defines), None)

    def id_space(self, config: Config) -> int | None:
        """The ID-space bound of the profile, evaluated; None if the tree defines none."""
        name = self.first_macro(self.profile.id_space)
        return self.macro(name, config) if name else None

    def configs(self, nr_cpus=None, layouts: bool = True) -> list[Config]:
        """The sweep, built once per tree: every rule then holds the same Config objects,
        which the path engine's caches find by identity."""
        key = ("configs", None if nr_cpus is None else tuple(nr_cpus), layouts)
        return list(self._once(key, lambda: tuple(
            self.config(c.nr_cpus, c.stride, c.threads)
            for c in sweep(self.profile, nr_cpus, layouts))))

    def config(self, nr_cpus: int, stride: int, threads: int = 1) -> Config:
        """One object per configuration of this tree, whichever sweep asks: the path
        engine's caches are keyed by configurations, and a key found by identity is
        not compared field by field (profile included)."""
        key = ("config", nr_cpus, stride, threads)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = Config(nr_cpus, stride, threads, self.profile)
        return got


class Expanded(Mapping):
    """name -> (function_definition, source) of the build's functions, the tree's
    function-like macros expanded as cpp would, each on first use: a check reads a
    few dozen of a snapshot's ~800 functions, and expanding (re-parsing) the others
    was a fifth of a check's model set-up. The names are known up front, so ``in``
    and ``len`` do not expand anything."""

    def __init__(self, facts: Facts, raw: dict, macros: Mapping,
                 done: dict | None = None, extra: Mapping | None = None) -> None:
        self._facts, self._raw, self._macros = facts, raw, macros
        self._done = {} if done is None else done  # shared with overlays
        self._extra = dict(extra or {})  # functions given as they are (overlays)

    def __getitem__(self, name: str):
        if name in self._extra:
            return self._extra[name]
        got = self._done.get(name)
        if got is None:
            node = self._raw[name]  # KeyError for a name the build does not define
            data = self._facts.snapshot.files[self._facts.functions[name].path]
            got = self._done[name] = cmacros.expand_function(node, data, self._macros,
                                                             self._facts.functions)
        return got

    def unexpanded(self, name: str):
        """The function's node as the file has it (no expansion, no parse)."""
        return self._extra[name][0] if name in self._extra else self._raw[name]

    def __iter__(self):
        yield from self._raw
        yield from (n for n in self._extra if n not in self._raw)

    def __len__(self) -> int:
        return len(self._raw) + sum(n not in self._raw for n in self._extra)

    def __contains__(self, name: object) -> bool:
        return name in self._raw or name in self._extra

    def __or__(self, other: Mapping) -> Expanded:
        """These functions with ``other``'s added or replacing them (expansions shared)."""
        return Expanded(self._facts, self._raw, self._macros, self._done,
                        {**self._extra, **other})


@functools.lru_cache(maxsize=2)
def tree(facts: Facts, prof: Profile | None = None) -> Tree:
    """The model of one snapshot's facts (shared by every model-backed rule)."""
    prof = prof or profile_mod.load()
    chosen = defines.select(facts.all("defines"), prof.kconfig, prof.arch_defined)
    macros = cmacros.function_macros(facts.all("macros"), prof.kconfig, prof.arch_defined)
    raw = {}
    for f in facts.functions.values():
        if not defines.active(f.conds, prof.kconfig, prof.arch_defined):
            continue  # under #if 0 or a branch the profile's build leaves out
        node = facts.node(f.name)
        if node is not None:
            raw[f.name] = node
    functions = Expanded(facts, raw, macros)
    return Tree(facts, ceval.Program(functions, defines.values(chosen), macros), chosen, prof)


def signature(facts: Facts, prof: Profile, roots: set[str],
              mentioned: set[str] = frozenset()) -> str:
    """A digest of everything a model-backed verdict can depend on: the text and
    file of every function reachable through calls from ``roots`` or from a
    function that calls one of ``mentioned`` (the allocator, the sanitizers),
    the chosen macro values, object-like and function-like, and what checks read
    of the whole tree (see :func:`_index`).

    A patch that touches none of it leaves the verdict unchanged, so series
    mode reuses it instead of sweeping again. Line numbers are left out: a
    function that only moved gives the same verdict at new lines, which the
    runner re-locates (:mod:`analyzer.relocate`). Read from the facts and the
    file bytes, not from parse trees: a reused verdict needs none.
    """
    import hashlib

    graph, values, wide = _index(facts, prof)
    todo = {n for n in roots if n in graph}
    todo |= {f for f, (_, callees) in graph.items() if callees & mentioned}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= {c for c in graph[name][1] if c in graph and c not in seen}
    h = hashlib.sha1()
    for name in sorted(seen):
        h.update(f"{name}\0{facts.functions[name].path}\0{graph[name][0]}\0".encode())
    for name, value in values:
        h.update(f"{name}={value}\0".encode())
    h.update(wide.encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=2)
def _index(facts: Facts, prof: Profile) -> tuple[dict, tuple, str]:
    """Per snapshot, shared by its rules: the active functions -> (digest of their
    text, the names they call); the chosen macro values, function-like macros as
    ``NAME(PARAMS)=BODY`` (a guard or an index may be written through one); and what
    checks read outside any call graph: every function, built or not, that names an
    ID-space macro (capacity notes generic KVM's comparison with it), and the sizes
    the table field is declared with in headers (id-bound-mismatch's counts)."""
    graph = {}
    space = tuple(n.encode() for n in prof.id_space)
    wide = []
    for f in facts.functions.values():
        text = facts.snapshot.files[f.path][f.start_byte:f.end_byte]
        active = defines.active(f.conds, prof.kconfig, prof.arch_defined)
        if active:
            graph[f.name] = _calls_in(text.decode("utf-8", "replace"))
        if any(n in text for n in space):
            digest = graph[f.name][0] if active else _calls_in(text.decode("utf-8",
                                                                            "replace"))[0]
            wide.append(f"{f.name}\0{f.path}\0{digest}")
    wide.extend(f"{path}:{size}" for path, size in roles.table_sizes(facts, prof))
    chosen = defines.select(facts.all("defines"), prof.kconfig, prof.arch_defined)
    macros = cmacros.function_macros(facts.all("macros"), prof.kconfig, prof.arch_defined)
    values = sorted(defines.values(chosen).items()) + sorted(
        (f"{name}({','.join(params)})", body) for name, (params, body) in macros.items())
    return graph, tuple(values), "\0".join(wide)


_CALL = re.compile(r"\b(\w+)\s*\(")


@functools.lru_cache(maxsize=16384)
def _calls_in(text: str) -> tuple[str, frozenset[str]]:
    """(digest, names called) of one function's text: shared by every snapshot
    in which the function is unchanged, so a series scans each version once."""
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest(), frozenset(_CALL.findall(text))


def pack_problems(t: Tree, pack, cfg: Config, ids, known: dict | None = None):
    """(kind, text, ids, packed) for the first problem of each kind ("event": a BUG/WARN
    fires, "range": packed beyond the count, "collision": two IDs share a value) when
    the packing function ``pack`` (compiled) packs ``ids`` in ``cfg``. ``known``:
    results already computed for this build and stride (layouts share IDs)."""
    env = cfg.env()
    count = t.profile.count
    n = t.macro(count, cfg)
    known = {} if known is None else known
    todo = [vid for vid in dict.fromkeys(ids) if vid not in known]
    known.update(zip(todo, pack.over((0, 0), 1, todo, env), strict=True))
    seen: dict[int, int] = {}
    kinds: set[str] = set()
    for vid in ids:
        r = known[vid]
        if r.events:
            kind, text, both, packed = "event", f"ID {vid} hits {r.events[0].macro} at line " \
                f"{r.events[0].line}", [vid], None
        elif r.value >= n:
            kind, text, both, packed = "range", f"ID {vid} packs to {r.value}, beyond " \
                f"{count}={n}", [vid], r.value
        elif r.value in seen:
            kind, both, packed = "collision", [seen[r.value], vid], r.value
            text = f"IDs {seen[r.value]} and {vid} both pack to {r.value}"
        else:
            seen[r.value] = vid
            continue
        if kind not in kinds:
            kinds.add(kind)
            yield kind, text, both, packed
