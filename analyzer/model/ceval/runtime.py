"""What compiled code runs with: events, results, the errors it raises, the program,
compiled closures and statements, and a compiled function."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tree_sitter import Node

from .limits import ModelError, Unbound
from .types import INT, VOID, Type, _preserves, _range, conv


@dataclass(frozen=True)
class Event:
    """A sink the execution hit (BUG_ON, WARN, an out-of-bounds index)."""

    kind: str  # "bug" (stops), "warn", "oob"
    macro: str  # "BUG_ON", "WARN_ONCE", ...; "name[index]" for "oob"
    line: int  # 1-based, in the file of ``function``
    function: str


@dataclass(frozen=True)
class Result:
    """How one call ended: its value and the sinks hit on the way."""

    value: int | None  # None when crashed, or for a void function
    events: tuple[Event, ...]
    crashed: bool


@dataclass(frozen=True)
class Program:
    """Everything compile needs from the tree: function definitions and
    object-like ``#define``s (name -> replacement text)."""

    functions: Mapping[str, tuple[Node, bytes]]
    defines: Mapping[str, str] = field(default_factory=dict)
    # function-like macros: name -> (parameters, replacement text)
    macros: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)


# --- compiled expressions -------------------------------------------------------
#
# A frame is a list: [env, events, slot0, slot1, ...]; parameters take the first
# slots. Every value held in a slot or returned by an expression closure is in
# the range of its C type (comparisons may yield Python bools, which are ints).

Fn = Callable[[list], int]


@dataclass(frozen=True)
class _E:
    """A compiled expression: its closure, its C type, its value if constant."""

    fn: Fn
    ty: Type
    const: int | None = None
    # What ``fn`` computes as Python source (see _src), when it is made of operators
    # that Python has: the closure of the whole expression is then generated as one
    # function (``fast``) instead of a closure per operator.
    src: tuple | None = None

    @functools.cached_property
    def fast(self) -> Fn:
        """``fn``, as one generated function where ``src`` says what it computes: the
        sweeps run the same expressions hundreds of thousands of times, and a closure
        call per operator was most of a run. Asked for where an expression is used (a
        statement, a condition, an argument), never of its operands."""
        node = _src(self)
        if node[0] != "fmt":
            return self.fn
        params: list = []
        text = _render(node, params)
        maker = _MAKERS.get(text)
        if maker is None:
            args = ", ".join(f"c{i}" for i in range(len(params)))
            code = f"def make({args}):\n    return lambda f: {text}\n"
            scope: dict = {}
            exec(compile(code, "<vpcheck expr>", "exec"), scope)
            maker = _MAKERS[text] = scope["make"]
        return maker(*params)


# Source nodes: ("val", x) a constant (or a function the text calls), ("slot", n) a
# local (``f[n]``), ("obj", fn) a call of a closure, ("tmp",) a name the text assigns
# (``:=``) and reads, ("fmt", depth, template, *parts) an operator: ``template`` is
# fully parenthesised and names its parts ``{0}``, ``{1}``, ...
MAX_SRC_DEPTH = 24  # deeper operands are called as closures (Python's parser nests ~200)
_MAKERS: dict[str, Callable] = {}


def _src(e: _E) -> tuple:
    """``e`` as a source node."""
    if e.const is not None:
        return ("val", e.const)
    s = e.src
    if s is None:
        read = getattr(e.fn, "env_read", None)
        return ("obj", e.fn) if read is None else _read_src(e.fn, read[2])
    if s[0] == "fmt" and s[1] > MAX_SRC_DEPTH:
        return ("obj", e.fn)
    return s


def _read_src(read: Fn, ty: Type) -> tuple:
    """A configuration read (:func:`_env_read`) in line: a bound value in the range of
    its type is the value; anything else (unbound, None, out of range) is what the
    closure gives."""
    bits, signed = ty
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    return _mk("({0} if ({0} := f[0].get({1})) is not None and {2} <= {0} < {3} else {4}(f))",
               ("tmp",), ("val", read.env_read[0]), ("val", lo), ("val", hi), ("val", read))


def _mk(template: str, *parts) -> tuple:
    """An operator's source node; ``parts`` are operands (_E) or source nodes."""
    nodes = tuple(_src(p) if isinstance(p, _E) else p for p in parts)
    return ("fmt", 1 + max((n[1] for n in nodes if n[0] == "fmt"), default=0), template,
            *nodes)


def _render(node: tuple, params: list) -> str:
    """The source text of ``node``; its constants and closures become parameters
    ``c0``, ``c1``, ... (so that expressions of one shape share the generated code)."""
    kind = node[0]
    if kind == "fmt":
        return node[2].format(*(_render(p, params) for p in node[3:]))
    params.append(node[1] if kind != "tmp" else None)  # ("tmp",): a local of the lambda
    name = f"c{len(params) - 1}"
    return f"{name}(f)" if kind == "obj" else f"f[{name}]" if kind == "slot" else name


def _wrap_src(ty: Type, e) -> tuple:
    """The source of ``_wrapper(ty)`` applied to ``e`` (an _E or a source node)."""
    bits, signed = ty
    if bits <= 1:
        return _mk("(1 if {0} else 0)", e)
    mask = (1 << bits) - 1
    if not signed:
        return _mk("({0} & {1})", e, ("val", mask))
    return _mk("((({0} + {2}) & {1}) - {2})", e, ("val", mask), ("val", 1 << (bits - 1)))


class _Crash(Exception):
    pass


class _Void:
    """What ``return;`` gives: a statement's result that is not None and not a value."""


_VOID = _Void()


class _Break:
    """What ``break`` gives: ends the enclosing switch."""


_BREAK = _Break()
MAX_STEPS = 10_000  # jumps per call (a backward goto is a loop): beyond, no answer


@dataclass(frozen=True, eq=False)
class _Goto:
    """What ``goto LABEL`` gives: the function body resumes at the label."""

    label: str


def _const(v: int, ty: Type) -> _E:
    return _E(lambda f: v, ty, v)


def _wrapper(ty: Type) -> Callable[[Fn], Fn]:
    """Closure transformer: wrap a closure's (unbounded) result into ``ty``."""
    bits, signed = ty
    if bits <= 1:
        return lambda a: (lambda f: 1 if a(f) else 0)
    mask = (1 << bits) - 1
    if not signed:
        return lambda a: (lambda f: a(f) & mask)
    half = 1 << (bits - 1)
    return lambda a: (lambda f: ((a(f) + half) & mask) - half)


def _convert(e: _E, dst: Type) -> _E:
    """``e`` converted to ``dst`` (as by assignment or a cast)."""
    if dst == VOID:
        return _E(e.fn, VOID, None, e.src)
    if _preserves(e.ty, dst):
        return _E(e.fn, dst, e.const, e.src)
    read = getattr(e.fn, "env_read", None)
    if read is not None and read[3] is None and 1 < dst[0] <= read[2][0]:
        # a name read as a type at least as wide: read it as ``dst`` (one closure, not two;
        # v mod 2**src taken mod 2**dst is v mod 2**dst)
        return _E(_env_read(read[0], read[1], dst), dst, None)
    fn = _wrapper(dst)(e.fn)
    return _E(fn, dst, None if e.const is None else conv(e.const, dst), _wrap_src(dst, e))


def _line(n: Node) -> int:
    return n.start_point.row + 1


def _named(n: Node) -> list[Node]:
    return [c for c in n.named_children if c.type != "comment"]


def _env_read(key: str, fname: str, ty: Type = INT, default: int | None = None) -> Fn:
    """Read ``key`` from the run-time configuration, as a value of ``ty``."""
    bits, signed = ty
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)

    def read(f):
        try:
            v = f[0][key]
        except KeyError:
            if default is not None:
                return default
            raise Unbound(key, fname) from None
        if v is None:
            return 0
        if lo <= v < hi:
            return v
        return conv(v, ty)
    read.env_read = (key, fname, ty, default)  # what _convert needs to fuse a conversion
    return read


def _nothing(f):
    return None


@dataclass(frozen=True)
class _S:
    """A compiled statement, with what it does when a block can inline it."""

    fn: Callable[[list], object]
    returns: bool  # may give the function's value (else its result is ignored)
    # What ``fn`` does, for a block to do it in place of a call (see _straight):
    # ("store", slot, value fn), ("const", value returned), ("if", condition fn, then _S)
    inline: tuple | None = None


def _quiet(fn: Callable[[list], object]) -> Callable[[list], object]:
    def stmt(f):
        fn(f)
    return stmt


def _block(parts: list[_S]) -> _S | None:
    """Statements in sequence, as runs of plain ones each ended by one that may return."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if len(parts) <= MAX_STRAIGHT:
        steps = [_step(p) for p in parts]
        maker = _straight(tuple(kind for kind, _ in steps))
        return _S(maker(*(a for _, args in steps for a in args)), any(p.returns for p in parts))
    segments: list[tuple[tuple, Callable | None]] = []
    run: list = []
    for p in parts:
        if p.returns:
            segments.append((tuple(run), p.fn))
            run = []
        else:
            run.append(p.fn)
    if run:
        segments.append((tuple(run), None))
    segs = tuple(segments)

    def block(f):
        for run, ret in segs:
            for p in run:
                p(f)
            if ret is not None:
                r = ret(f)
                if r is not None:
                    return r
        return None
    return _S(block, any(p.returns for p in parts))


MAX_STRAIGHT = 64  # statements of a block run as straight-line code; longer ones loop
_STRAIGHT: dict[tuple[str, ...], Callable] = {}

# One statement of a straight-line block, per kind: the lines run (``f`` the frame,
# ``{a}``/``{b}`` the step's arguments) and the number of arguments.
_LINES = {
    "plain": (["{a}(f)"], 1),
    "store": (["f[{a}] = {b}(f)"], 2),
    "returns": (["r = {a}(f)", "if r is not None:", "    return r"], 1),
    "const": (["return {a}"], 1),
    "if-const": (["if {a}(f):", "    return {b}"], 2),
    "if-returns": (["if {a}(f):", "    r = {b}(f)", "    if r is not None:", "        return r"],
                   2),
    "if-plain": (["if {a}(f):", "    {b}(f)"], 2),
}


def _step(p: _S) -> tuple[str, tuple]:
    """(kind, arguments) of one statement in a straight-line block: what ``p.fn`` does,
    done in place where the statement says what it is."""
    kind = p.inline[0] if p.inline else None
    if kind == "store":
        return "store", p.inline[1:]
    if kind == "const":
        return "const", p.inline[1:]
    if kind == "if":
        cond, then = p.inline[1], p.inline[2]
        if then.returns and then.inline and then.inline[0] == "const":
            return "if-const", (cond, then.inline[1])
        return ("if-returns" if then.returns else "if-plain"), (cond, then.fn)
    return ("returns" if p.returns else "plain"), (p.fn,)


def _straight(shape: tuple[str, ...]) -> Callable:
    """A maker of a block's closure with no loop in it: per statement its call (or what
    the call would do: store a local, test a condition, return a constant) and a test
    after each that may return. The code depends only on the kinds of the statements,
    so it is generated once per shape from the fixed lines of :data:`_LINES`; looping
    over the statements instead cost a fifth of a packing function's run."""
    maker = _STRAIGHT.get(shape)
    if maker is None:
        names, body = [], []
        for kind in shape:
            lines, nargs = _LINES[kind]
            args = [f"x{len(names) + i}" for i in range(nargs)]
            names += args
            body += [line.format(a=args[0], b=args[-1]) for line in lines]
        src = "def make({}):\n    def block(f):\n{}\n        return None\n    return block\n"
        code = src.format(", ".join(names), "\n".join(" " * 8 + line for line in body))
        scope: dict = {}
        exec(compile(code, "<vpcheck block>", "exec"), scope)
        maker = _STRAIGHT[shape] = scope["make"]
    return maker


class Compiled:
    """A compiled function: ``fn(*args, env=...) -> Result``."""

    def __init__(self, name: str, rtype: Type, params: list[tuple[str, Type]]) -> None:
        self.name, self.rtype, self.params = name, rtype, params
        self.body: Callable[[list], object] = _nothing
        self.zeros: list[int] = []
        self._bounds = [_range(ty) for _, ty in params]
        self._results: dict[int, Result] = {}  # value -> Result without events: shared

    def enter(self, env: Mapping[str, int], events: list[Event], args: list[int]) -> int:
        """Run with arguments already converted to the parameter types."""
        f = [env, events, *args]
        if self.zeros:
            f += self.zeros
        r = self.body(f)
        return 0 if r is None or r is _VOID else r

    def __call__(self, *args: int | None, env: Mapping[str, int] | None = None) -> Result:
        events: list[Event] = []
        if args or self._bounds:
            args = self._normalised(args)
        return self._run([{} if env is None else env, events, *args, *self.zeros], events)

    def value_of(self, env: Mapping[str, int]) -> Result:
        """``self(env=env)`` of a function without parameters (a compiled expression:
        the path engine asks one per guard and ID)."""
        events: list[Event] = []
        return self._run([env, events, *self.zeros], events)

    def _run(self, frame: list, events: list[Event]) -> Result:
        """Run the body on ``frame`` (whose second cell is ``events``)."""
        try:
            r = self.body(frame)
            value = 0 if r is None or r is _VOID else r
        except _Crash:
            return Result(None, tuple(events), True)
        except RecursionError:
            raise ModelError(f"recursion too deep in {self.name}()", self.name) from None
        got = None if events else self._results.get(value)  # the common case, inline
        return got if got is not None else self._result(value, events)

    def over(self, args: Sequence[int | None], at: int, values: Iterable[int | None],
             env: Mapping[str, int] | None = None) -> list[Result]:
        """``self(*args, env=env)`` with the argument at ``at`` replaced by each of
        ``values``, in order, for the price of one Python call: a sweep runs one function
        over thousands of IDs (their range is checked once, not per call)."""
        env = {} if env is None else env
        base = self._normalised(args)
        lo, hi, ty = self._bounds[at]
        values = list(values)
        if None in values or values and not (lo <= min(values) and max(values) < hi):
            values = [0 if v is None else v if lo <= v < hi else conv(v, ty) for v in values]
        head, tail = base[:at], [*base[at + 1:], *self.zeros]
        body, results, out = self.body, self._results, []
        for v in values:
            events: list[Event] = []
            try:
                r = body([env, events, *head, v, *tail])
            except _Crash:
                out.append(Result(None, tuple(events), True))
                continue
            except RecursionError:
                raise ModelError(f"recursion too deep in {self.name}()", self.name) from None
            value = 0 if r is None or r is _VOID else r
            got = None if events else results.get(value)
            out.append(got if got is not None else self._result(value, events))
        return out

    def _normalised(self, args: Sequence[int | None]) -> list[int]:
        """The arguments as the parameters take them: missing or None ones are 0, the
        others converted to the parameter's type, extra ones dropped."""
        vals = list(args)
        for i, (lo, hi, ty) in enumerate(self._bounds):
            if i >= len(vals):
                vals.append(0)
                continue
            v = vals[i]
            if v is None:
                vals[i] = 0
            elif not lo <= v < hi:
                vals[i] = conv(v, ty)
        del vals[len(self._bounds):]
        return vals

    def _result(self, value: int, events: list[Event]) -> Result:
        if events:
            return Result(None if self.rtype == VOID else int(value), tuple(events), False)
        r = self._results.get(value)
        if r is None:
            if len(self._results) > 4096:
                self._results.clear()
            r = self._results[value] = Result(None if self.rtype == VOID else int(value), (),
                                              False)
        return r
