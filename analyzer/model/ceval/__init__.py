"""A small evaluator for the C these functions are written in.

A function definition from the tree is compiled once into nested Python
closures (no tree walking at run time) with C integer semantics for
powerpc64 (LP64: ``int`` 32 bits, ``long`` and pointers 64): fixed-width
types, integer promotion and the usual arithmetic conversions, unsigned
wrap-around, division truncating toward zero, assignment converting to the
target's declared type. Subtrees made of constants (literals, macros that
expand to literals) are folded at compile time.

Choices where C leaves room or the kernel needs a stand-in:

- ``BUG_ON(c)``/``BUG()`` record an event of kind ``"bug"`` and stop the whole
  evaluation (``Result.crashed``, ``value`` None). ``WARN_ON``,
  ``WARN_ON_ONCE``, ``WARN``, ``WARN_ONCE`` record ``"warn"`` (every time: one
  evaluation is one boot) and evaluate to ``!!c``.
- Division or remainder by zero, and a shift count that is negative or not
  below the width of the promoted left operand, raise :class:`ModelError`
  (undefined behaviour: the model has no answer). Signed overflow wraps (the
  kernel is built with ``-fno-strict-overflow``).
- Reading a local array out of its bounds records an event of kind ``"oob"``
  (``macro`` is ``"name[index]"``) and reads 0. Local arrays are read-only:
  writing an element is :class:`Unsupported`.
- Names that are neither locals, parameters nor macros (``Program.defines``,
  expanded recursively; a self-referential macro stays a name, as in cpp) are
  read at run time from ``env`` as ``int`` (``NR_CPUS``,
  ``threads_per_subcore``). A field read ``a->b.c`` reads ``env["c"]``. A
  missing key raises :class:`Unbound` (a ``KeyError``) naming it. Where a
  pointer is only passed on (an argument for a pointer parameter of a
  function in the program, such as ``xive->kvm``), a missing name or field,
  or an expression the model cannot evaluate (``&x``), passes 0.
- A call of a function outside the program reads
  ``env["name:ARG,ARG"]`` (argument texts with whitespace collapsed), e.g.
  ``env["cpu_has_feature:CPU_FTR_ARCH_300"] = 1``; its arguments are not
  evaluated. ``likely``/``unlikely`` are the identity, ``pr_*``/``printk``
  do nothing; ``min``/``max``/``min_t``/``max_t``, ``ARRAY_SIZE`` (of a local
  array) and ``array_index_nospec`` are built in.
- Writes to fields or through pointers are :class:`Unsupported`, as are loops,
  ``goto``, ``switch``, ``sizeof``, strings used as values and unknown types.
  ``Unsupported`` is raised at compile time only and names the construct and
  its 1-based line.
- ``(u32)-1`` (which tree-sitter reads as ``(u32) - 1`` for want of a symbol
  table) is read as the cast of ``-1`` when the parenthesised name is a known
  integer type and not a variable or macro.
- Uninitialised locals read 0; a non-void function that falls off its end
  returns 0; a ``void`` function's ``Result.value`` is None. Calling a
  compiled function from Python with fewer arguments than parameters passes 0
  for the rest.

Layout: ``types`` (C types and conversions), ``limits`` (what it raises),
``runtime`` (events, results, compiled closures and functions), ``expressions``
(the dispatcher, one ``e_<node type>`` handler per expression node: names,
literals, operators), ``operators`` (the closures of C's binary operators),
``access`` (fields, local arrays, assignments, pointers passed on), ``calls``
(calls, macros, ``BUG_ON``/``WARN``), ``statements`` (one ``s_<node type>``
handler per statement, and ``compile_function``).
"""

from __future__ import annotations

from .expressions import MAX_DEPTH
from .limits import ModelError, Unbound, Unsupported
from .runtime import MAX_STEPS, Compiled, Event, Program, Result
from .statements import _Compiler, compile_function
from .types import BOOL, INT, LONG, PTR, UINT, ULONG, VOID, Type, common, conv, parse_type, promote

__all__ = [
    "BOOL", "INT", "LONG", "MAX_DEPTH", "MAX_STEPS", "PTR", "UINT", "ULONG", "VOID", "Compiled",
    "Event", "ModelError", "Program", "Result", "Type", "Unbound", "Unsupported", "_Compiler",
    "common", "compile_function", "conv", "parse_type", "promote",
]
