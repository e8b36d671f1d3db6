"""The configuration space the model runs: builds, strides, layouts, nr_servers, IDs.

One place decides it for every rule, from the tree under check:

- ``NR_CPUS``: the range the tree's own Kconfig allows (the profile names the
  file; its ``range``/``default`` lines whose ``if`` the profile's build meets),
  else the profile's ``nr_cpus_range``. Tried: every power of two in it, the
  Kconfig default, and around every constant the code compares against (a value
  that does not move with ``NR_CPUS``, such as a VP block of constant size):
  ``c - 1``, ``c``, ``c + 1``, and ``c / stride``, ``c / stride + 1`` (where
  ``stride * NR_CPUS`` meets it).
- Builds whose constants stand in the same order (and that agree on being a
  power of two) take the same branches of every comparison between those
  constants: they are one class, and only its smallest build runs. On 6.12 this
  leaves five builds of the 30 candidates; a bug that needs a build above a
  constant is found at the smallest build above it.
- Every stride of the profile; every ``nr_servers`` the setter accepts (the
  boundaries only, beyond :data:`DENSE_SERVERS` values).
- IDs: every ID of the ID space up to :data:`EXHAUSTIVE_IDS`; beyond, the
  small IDs, the boundaries of the comparisons and their multiples (where a
  division or a check flips), and the largest value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..c import parse as cparse
from ..profile import Profile
from . import ceval

EXHAUSTIVE_IDS = 1024  # ID spaces up to this size are tried whole
DENSE_SERVERS = 64  # nr_servers ranges up to this size are tried whole
MULTIPLES = 64  # multiples of a boundary tried when the ID space is not tried whole
_EVAL_ERRORS = (ceval.Unsupported, ceval.ModelError, ceval.Unbound, ZeroDivisionError)


@dataclass(frozen=True)
class Range:
    """The builds the kernel allows: ``low..high`` and the default, and where it says so."""

    low: int
    high: int
    default: int | None
    source: str


# --- Kconfig ------------------------------------------------------------------

_STOP = re.compile(r"(?:config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|"
                   r"comment|mainmenu)\b")
_RANGE = re.compile(r"range\s+(\d+)\s+(\d+)(?:\s+if\s+(.+))?$")
_DEFAULT = re.compile(r"default\s+\"?(\d+)\"?(?:\s+if\s+(.+))?$")


def kconfig_range(files: Mapping[str, bytes], prof: Profile) -> Range:
    """The symbol's range in the tree's Kconfig when the tree has it, else the profile's."""
    data = files.get(prof.nr_cpus_kconfig) if prof.nr_cpus_kconfig else None
    found = data and parse_kconfig(data.decode("utf-8", "replace"), prof.nr_cpus,
                                   prof.kconfig)
    if found:
        return Range(*found, prof.nr_cpus_kconfig)
    low, high = prof.nr_cpus_range
    return Range(low, high, None, prof.source)


def parse_kconfig(text: str, symbol: str, enabled: frozenset[str]):
    """(low, high, default) of ``config SYMBOL``: the first ``range`` and ``default``
    whose condition the build meets; None without a range."""
    lines = iter(text.splitlines())
    head = re.compile(rf"config\s+{re.escape(symbol)}\s*(?:#.*)?$")
    for line in lines:
        if head.match(line):
            break
    else:
        return None
    rng = default = None
    for line in lines:
        line = line.split("#", 1)[0]
        if _STOP.match(line) or line.strip() in ("help", "---help---"):
            break  # the next entry, or the help text (which may say anything)
        line = line.strip()
        if (m := _RANGE.match(line)) and rng is None and _holds(m.group(3), enabled):
            rng = int(m.group(1)), int(m.group(2))
        elif (m := _DEFAULT.match(line)) and default is None and _holds(m.group(2), enabled):
            default = int(m.group(1))
    if rng is None or rng[0] > rng[1]:
        return None
    return rng[0], rng[1], default if default is not None and \
        rng[0] <= default <= rng[1] else None


def _holds(cond: str | None, enabled: frozenset[str]) -> bool:
    """A Kconfig condition of symbols, ``!``, ``&&``, ``||`` and parentheses; anything
    else (``=``, ``<``) does not hold, so that line is not used."""
    if cond is None:
        return True
    tokens = re.findall(r"\w+|&&|\|\||!|\(|\)|\S", cond)
    pos = 0

    def expr() -> bool:
        nonlocal pos
        out = term()
        while pos < len(tokens) and tokens[pos] == "||":
            pos += 1
            out = term() or out
        return out

    def term() -> bool:
        nonlocal pos
        out = factor()
        while pos < len(tokens) and tokens[pos] == "&&":
            pos += 1
            out = factor() and out
        return out

    def factor() -> bool:
        nonlocal pos
        tok = tokens[pos] if pos < len(tokens) else ""
        pos += 1
        if tok == "!":
            return not factor()
        if tok == "(":
            out = expr()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise ValueError(cond)
            pos += 1
            return out
        if not re.fullmatch(r"\w+", tok):
            raise ValueError(cond)
        return f"CONFIG_{tok}" in enabled

    try:
        out = expr()
    except (ValueError, IndexError):
        return False
    return out if pos == len(tokens) else False


# --- the constants the code compares against --------------------------------------


_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
_SCALE = frozenset({"/", "%", ">>", "<<", "&", "|", "^"})
_BITS = frozenset({">>", "<<", "&", "|", "^"})


def exprs(t) -> tuple[str, ...]:
    """Texts the configuration alone may decide, on the paths from the entry points: both
    sides of each comparison in the guards the ID passes (to the packing function, the
    VP helpers and the VCORE table) and in those functions' bodies, their divisors and
    shifts, the VP block allocation's size, and the profile's ID-space, count and
    table-size macros."""
    return t._once(("space-exprs",), lambda: _exprs(t))[0]


def _exprs(t) -> tuple[tuple[str, ...], bool]:
    from . import paths, roles

    prof = t.profile
    found = roles.find(t.facts, prof)
    targets = {n for n in (found.pack, *found.vp_helpers) if n in t.program.functions}
    out = dict.fromkeys([*prof.id_space, prof.count, prof.table_size])
    conds = []
    for e in prof.entries:
        if e.function not in t.program.functions:
            continue
        for group in ({found.pack}, set(found.vp_helpers)):
            for path in find(t, e, group & targets):
                conds += [g.cond for hop in path.hops for g in hop.guards]
        cp = paths.create_path(t, e)
        if cp is not None:
            conds += [g.cond for g in cp.site_guards]
            conds += [g.cond for gs, _, _, _ in cp.assignments for g in gs]
    conds += [t.program.functions[n][0] for n in sorted(_with_callees(t, targets))]
    bits = False
    for node in conds:
        for text, bit in _sides(node):
            out[text] = None
            bits |= bit and _config_only(text, _names(t))
    if found.allocation is not None:
        out[found.allocation.size_text] = None
    return tuple(e for e in out if _config_only(e, _names(t))), bits


def _with_callees(t, names: set[str], depth: int = 3) -> set[str]:
    """``names`` and the tree functions they call, ``depth`` calls deep: a comparison
    moved into a helper (``if (too_big(block))``) still bounds the packing function."""
    out, todo = set(names), set(names)
    for _ in range(depth):
        calls = {cparse.text(c) for n in todo for c in cparse.captures(
            "(call_expression function: (identifier) @f)", t.program.functions[n][0]
        ).get("f", [])}
        todo = {c for c in calls if c in t.program.functions} - out
        out |= todo
    return out


def _names(t) -> set[str]:
    """The names the configuration binds: macros, the profile's names and fields."""
    from . import roles

    def make():
        prof = t.profile
        names = set(t.program.defines) | set(t.program.macros) | {prof.nr_cpus, prof.stride}
        names |= {k for k, _ in prof.env if ":" not in k}
        return names | {prof.fields["block_count"], roles.vp_field(t.facts, prof)}
    return t._once(("space-names",), make)


# an identifier, and whether it is the object of a field access (``xive->``)
_WORD = re.compile(r"\b([A-Za-z_]\w*)\b(\s*(?:->|\.))?")
_C_WORDS = frozenset({"sizeof", "unsigned", "signed", "int", "long", "u8", "u16", "u32",
                      "u64"})


def _config_only(text: str, names: set[str]) -> bool:
    """Can ``text`` be evaluated from the configuration alone (macros, the profile's
    names and fields, literals)? A cheap filter before compiling it: no call, and every
    name a macro or a configuration name (the objects of field accesses aside)."""
    if not text or re.search(r"\w\s*\(", text):
        return False
    return all(w in names or w in _C_WORDS for w, obj in _WORD.findall(text) if not obj)


def config_decided(t, text: str) -> bool:
    """Does the configuration alone decide ``text`` (a macro, a field the configuration
    binds, a literal, arithmetic of those)?"""
    return _config_only(text, _names(t))


def find(t, entry, targets) -> tuple:
    """The paths from ``entry`` that hand its ID to one of ``targets`` (lookups by the
    profile's sanitizers trusted), once per tree: the space and the rules share them."""
    from . import paths

    if not targets:
        return ()
    return t._once(("paths", entry.function, frozenset(targets)), lambda: tuple(paths.find(
        t, entry.function, paths.entry_names_of(t, entry), set(targets),
        sanitizers=t.profile.sanitizers, id_field=entry.id_field)))


def _sides(node) -> Iterator[tuple[str, bool]]:
    """(text, whether a bit operation uses it) of both sides of each comparison in
    ``node``, and of each divisor, shift count and mask."""
    for b in cparse.captures("(binary_expression) @b", node).get("b", []):
        op = b.child_by_field_name("operator").type
        for side in ("left", "right") if op in _COMPARE else ("right",) if op in _SCALE else ():
            yield " ".join(cparse.text(b.child_by_field_name(side)).split()), op in _BITS


def values(t, nr_cpus: int, stride: int) -> tuple[int | None, ...]:
    """The value of each of :func:`exprs` in one build and stride (None: not decided by
    the configuration there), once per tree."""
    return t._once(("space-values", nr_cpus, stride), lambda: _values(t, nr_cpus, stride))


def _values(t, nr_cpus: int, stride: int) -> tuple[int | None, ...]:
    from . import packing as model

    prof = t.profile
    cfg = model.Config(nr_cpus, stride, 1, prof)
    env = cfg.env(**_fields(t, cfg))
    out = []
    for text in exprs(t):
        try:
            r = t.expr(text)(env=dict(env))
            out.append(None if r.crashed or r.events else r.value)
        except _EVAL_ERRORS:
            out.append(None)
    return tuple(out)


def _fields(t, cfg) -> dict[str, int]:
    """The VM fields the comparisons read: the block count at its largest, the base 0."""
    from . import roles

    prof = t.profile
    try:
        high = t.macro(prof.block_count_max, cfg)
    except _EVAL_ERRORS:
        high = cfg.nr_cpus
    return {prof.fields["block_count"]: high, roles.vp_field(t.facts, prof): 0}


# --- builds ----------------------------------------------------------------------


def builds(t) -> tuple[int, ...]:
    """Candidate ``NR_CPUS`` values, smallest first (before classes are merged)."""
    return t._once(("space-builds",), lambda: _builds(t))


def _builds(t) -> tuple[int, ...]:
    rng = kconfig_range(t.facts.snapshot.files, t.profile)
    out = {rng.low, rng.high} | ({rng.default} if rng.default else set())
    k = 1
    while k <= rng.high:
        out.add(k)
        k <<= 1
    for c in constants(t, rng):
        out |= {c - 1, c, c + 1}
        for s in t.profile.strides:
            out |= {c // s, c // s + 1}
    return tuple(sorted(v for v in out if rng.low <= v <= rng.high))


def constants(t, rng: Range) -> set[int]:
    """Values compared against that do not move with ``NR_CPUS`` (in some stride): equal
    in the two largest builds (half the top of the range, and its top)."""
    lo, hi = max(rng.low, rng.high // 2), rng.high
    out: set[int] = set()
    if lo == hi:
        return out
    for s in t.profile.strides:
        for a, b in zip(values(t, lo, s), values(t, hi, s), strict=True):
            if a is not None and a == b and 1 < a < 1 << 20:
                out.add(a)
    return out


def classes(t, nr_cpus: Iterable[int]) -> Iterator[tuple[int, int]]:
    """(build, stride), smallest build first, one per class: builds whose constants
    stand in the same order take the same branch of every comparison between them (when
    the path masks or shifts by a constant, builds must also agree on being a power of
    two) and leave the same remainders by the constants that do not move with the build
    (IDs are split by ``id / NR_CPUS`` and ``id % NR_CPUS``: NR_CPUS=2 and 3 order their
    constants alike but pack a stride-2 layout differently)."""
    seen: set[tuple] = set()
    bits = t._once(("space-exprs",), lambda: _exprs(t))[1]
    fixed = t._once(("space-fixed",), lambda: tuple(sorted(constants(
        t, kconfig_range(t.facts.snapshot.files, t.profile)))))
    for n in nr_cpus:
        for s in t.profile.strides:
            vals = [v for v in values(t, n, s) if v is not None] + [n]
            rank = sorted(set(vals))
            key = (s, bits and n & (n - 1) == 0, tuple(rank.index(v) for v in vals),
                   tuple(n % c for c in fixed))
            if key not in seen:
                seen.add(key)
                yield n, s


def configs(t, layouts: bool = False, among: tuple[int, ...] | None = None) -> list:
    """The tree's configuration space, smallest first, one build per class (``among``:
    only those builds, e.g. the profile's common ones, classed among themselves)."""
    from . import packing as model

    def make():
        out = []
        rng = kconfig_range(t.facts.snapshot.files, t.profile)
        wanted = builds(t) if among is None else [n for n in among if rng.low <= n <= rng.high]
        for n, s in classes(t, wanted):
            out.extend(t.config(n, s, th) for th in model.threads(n, s, True))
        return out

    full = t._once(("space-configs", among), make)
    return full if layouts else [c for c in full if c.threads == 1]


def block_counts(low: int, high: int, extra: Iterable[int] = ()) -> list[int]:
    """Values of the block count tried, smallest first: every value the setter accepts
    (``low..high``) when there are at most :data:`DENSE_SERVERS`; else the ends, their
    neighbours, the powers of two between (where a block sized by a shift or a
    power-of-two rounding changes) and the ``extra`` boundaries."""
    if high - low < DENSE_SERVERS:
        return list(range(low, high + 1))
    out = {low, low + 1, high - 1, high, *extra}
    k = 1
    while k < high:
        out.add(k)
        k <<= 1
    return sorted(v for v in out if low <= v <= high)


def ids(limit: int | None, cfg_values: Iterable[int] = (), boundaries: Iterable[int] = (),
        dense: int = EXHAUSTIVE_IDS, top: int = (1 << 31) - 1) -> list[int]:
    """IDs to try, smallest first. Every ID below ``limit`` (the ID space) when it has at
    most :data:`EXHAUSTIVE_IDS`; otherwise (or without a limit: a server number is any
    u32) every ID below ``dense``, and beyond it the ``boundaries`` of the comparisons on
    the path, the multiples of the configuration's constants (where a division or a check
    flips) with their neighbours, and ``top``, the largest value a guard read as ``int``
    keeps."""
    if limit is not None and limit <= EXHAUSTIVE_IDS:
        return list(range(limit))
    end = limit if limit is not None else top + 1
    dense = min(dense, EXHAUSTIVE_IDS, end)
    far = set(boundaries) | {end - 1}
    for v in cfg_values:
        if v is not None and v > 1 and end // v <= MULTIPLES:
            far |= {m * v + r for m in range(1, end // v + 1) for r in (-1, 0, 1)}
    return list(range(dense)) + sorted(v for v in far if dense <= v < end)
