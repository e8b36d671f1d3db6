"""Conditions that dominate a site inside a C function body.

A *guard* is a condition whose truth value is known whenever control reaches a
site: the site sits in a branch of an ``if`` / ``?:`` / ``&&`` / ``||``
("enclosing"), or an earlier ``if`` in an enclosing block leaves the function
(``return`` / ``goto`` / ``break`` / ``continue``) on one of its branches
("early-exit"). The analysis is structural (if/else, compound statements,
labels and gotos); loops contribute nothing and are never entered for
early exits.

"sentinel" guards are opt-in (``dominating_guards(site, sentinels=True)``) and
*conditional*: for ``if (core < MAX) site`` where one branch of an earlier
``if (c)`` always sets ``core = MAX``, the site implies that *if* ``c`` was
evaluated, it took the other branch. Such a guard holds only on paths where its
own guards (``dominating_guards(guard.cond)``) hold.

``reaching_assignments(site, var)`` gives the assignments of a variable that may
reach a site, each with the guards under which it executes.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from analyzer.c.parse import captures, enclosing_function, function_name, strip_parens, text

__all__ = [
    "Guard",
    "calls_in",
    "dominating_guards",
    "function_named",
    "reaching_assignments",
]


@dataclass(frozen=True)
class Guard:
    """A condition that decides whether a site is reached, and which way."""

    cond: Node  # the condition expression (parentheses stripped)
    holds: bool  # True: cond is true whenever the site is reached; False: it is false
    line: int  # 1-based line of the condition
    kind: str  # "enclosing" | "early-exit" | "sentinel"
    text: str  # source text of cond, whitespace normalised ("!" not applied)

    def __repr__(self) -> str:  # readable in test failures
        return f"Guard({'' if self.holds else 'NOT '}{self.text!r}, {self.kind}, line {self.line})"


_LOOPS = frozenset({"for_statement", "while_statement", "do_statement"})
_BLOCKS = frozenset({"compound_statement", "case_statement"})
_LEAVE = frozenset({"return_statement", "break_statement", "continue_statement"})
_COMPARE = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


def _norm(node: Node) -> str:
    return " ".join(text(node).split())


def _guard(cond: Node, holds: bool, kind: str) -> Guard:
    cond = strip_parens(cond)
    return Guard(cond, holds, cond.start_point[0] + 1, kind, _norm(cond))


def _contains(outer: Node, inner: Node) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def _statements(node: Node) -> list[Node]:
    """Statements directly inside a compound or case statement."""
    kids = [c for c in node.named_children if c.type != "comment"]
    if node.type == "case_statement":
        value = node.child_by_field_name("value")
        kids = [c for c in kids if value is None or c != value]
    return kids


def _alternative_stmt(ifs: Node) -> Node | None:
    alt = ifs.child_by_field_name("alternative")
    if alt is None:
        return None
    if alt.type == "else_clause":
        inner = [c for c in alt.named_children if c.type != "comment"]
        return inner[0] if inner else None
    return alt


# ---------------------------------------------------------------------------
# labels and gotos


class _Jumps:
    """Labels and gotos of one function."""

    def __init__(self, fn: Node) -> None:
        self.fn = fn
        caps = captures(
            "(labeled_statement label: (statement_identifier) @label) @lstmt"
            " (goto_statement label: (statement_identifier) @target) @goto",
            fn,
        )
        self.labels: dict[str, Node] = {}
        for stmt in caps.get("lstmt", []):
            self.labels.setdefault(text(stmt.child_by_field_name("label")), stmt)
        self.gotos: dict[str, list[Node]] = {}
        for g in caps.get("goto", []):
            self.gotos.setdefault(text(g.child_by_field_name("label")), []).append(g)

    def labels_in(self, lo: int, hi: int) -> list[str]:
        """Names of labels whose statement starts in ``(lo, hi]``."""
        return [n for n, s in self.labels.items() if lo < s.start_byte <= hi]

    def entries_ok(self, lo: int, hi: int, ok) -> bool:
        """Every goto to a label in ``(lo, hi]`` satisfies ``ok``."""
        return all(ok(g) for n in self.labels_in(lo, hi) for g in self.gotos.get(n, []))


def _leaves(stmt: Node | None) -> bool:
    """``stmt`` never completes normally: every path through it returns or jumps.

    A goto counts as leaving; gotos to a label between the ``if`` and the site are
    caught by ``_Jumps.entries_ok`` (the goto itself then enters around the if).
    Loops, switches and anything else not understood count as "may complete"."""
    if stmt is None:
        return False
    t = stmt.type
    if t in _LEAVE or t == "goto_statement":
        return True
    if t == "compound_statement":
        return any(_leaves(s) for s in _statements(stmt))
    if t == "if_statement":
        return _leaves(stmt.child_by_field_name("consequence")) and _leaves(_alternative_stmt(stmt))
    return False


# ---------------------------------------------------------------------------
# dominating guards


def _structural_guards(site: Node, fn: Node, jumps: _Jumps) -> list[Guard]:
    out: list[Guard] = []
    child, node = site, site.parent
    while node is not None and node != fn:
        t = node.type
        if t == "if_statement":
            cond = node.child_by_field_name("condition")
            cons = node.child_by_field_name("consequence")
            alt = node.child_by_field_name("alternative")
            branch, holds = (cons, True) if child == cons else (alt, False)
            # A label inside the branch, before the site, that is entered by a goto
            # from outside the branch lets control bypass the condition.
            if (
                child in (cons, alt)
                and cond is not None
                and jumps.entries_ok(
                    branch.start_byte - 1, site.start_byte, lambda g, b=branch: _contains(b, g)
                )
            ):
                out.append(_guard(cond, holds, "enclosing"))
        elif t == "conditional_expression":
            cond = node.child_by_field_name("condition")
            if child == node.child_by_field_name("consequence"):
                out.append(_guard(cond, True, "enclosing"))
            elif child == node.child_by_field_name("alternative"):
                out.append(_guard(cond, False, "enclosing"))
        elif t == "binary_expression" and child == node.child_by_field_name("right"):
            op = node.child_by_field_name("operator").type
            if op in ("&&", "||"):
                out.append(_guard(node.child_by_field_name("left"), op == "&&", "enclosing"))
        elif t in _BLOCKS:
            if t == "case_statement":
                out.extend(_case_guards(node))
            out.extend(_early_exits(node, child, site, jumps))
        elif t in _LOOPS or t == "switch_statement":
            pass  # no guard from loop or switch conditions
        child, node = node, node.parent
    return out


def _early_exits(block: Node, child: Node, site: Node, jumps: _Jumps) -> list[Guard]:
    out: list[Guard] = []
    for stmt in _statements(block):
        if stmt.start_byte >= child.start_byte:
            break
        if stmt.type == "switch_statement":
            if jumps.entries_ok(stmt.end_byte, site.start_byte,
                                lambda g, e=stmt.end_byte: _contains(block, g) and
                                g.start_byte >= e):
                out.extend(_switch_exits(stmt))
            continue
        if stmt.type != "if_statement":
            continue
        cond = stmt.child_by_field_name("condition")
        end = stmt.end_byte
        then_leaves = _leaves(stmt.child_by_field_name("consequence"))
        else_leaves = _leaves(_alternative_stmt(stmt))
        if then_leaves == else_leaves:
            continue  # neither leaves, or the site is unreachable past it
        # A label between the if and the site, entered by a goto from before the if
        # or from outside this block, lets control reach the site around the if.
        if not jumps.entries_ok(
            end, site.start_byte, lambda g, e=end: _contains(block, g) and g.start_byte >= e
        ):
            continue
        out.append(_guard(cond, else_leaves, "early-exit"))
    return out


def _cases(switch: Node) -> list[tuple[Node | None, list[Node]]]:
    """(value or None for default, statements) of each case of a switch."""
    body = switch.child_by_field_name("body")
    out = []
    for case in (c for c in body.named_children if c.type == "case_statement"):
        value = case.child_by_field_name("value")
        out.append((value, _statements(case)))
    return out


def _ends(stmts: list[Node]) -> str:
    """How a case's statements end: "leave" (return/goto), "break", or "falls"."""
    for st in stmts:
        if st.type == "break_statement":
            return "break"
        if _leaves(st):
            return "leave"
    return "falls"


def _equal(switch: Node, values: list[Node], holds: bool, kind: str) -> Guard:
    cond = strip_parens(switch.child_by_field_name("condition"))
    text_ = " || ".join(f"({_norm(cond)}) == ({_norm(v)})" for v in values)
    return Guard(cond, holds, cond.start_point[0] + 1, kind, text_)


def _switch_exits(switch: Node) -> list[Guard]:
    """After a switch: the values whose cases leave the function were not taken (if
    the default leaves, the value was one of the cases that do not)."""
    leaving, staying, pending, default_leaves = [], [], [], False
    for value, stmts in _cases(switch):
        end = _ends(stmts)
        if value is None:
            default_leaves = end == "leave" and not pending
            if end != "falls":
                pending = []
            continue
        pending.append(value)
        if end == "falls":
            continue
        (leaving if end == "leave" else staying).extend(pending)
        pending = []
    staying.extend(pending)
    if default_leaves:
        return [_equal(switch, staying, True, "early-exit")] if staying else []
    return [_equal(switch, leaving, False, "early-exit")] if leaving else []


def _case_guards(case: Node) -> list[Guard]:
    """Inside a case: the switch's value is one of the values that lead here (its
    own and those of cases that fall through into it)."""
    switch = case.parent.parent if case.parent is not None else None
    if switch is None or switch.type != "switch_statement":
        return []
    cases = _cases(switch)
    idx = _named_cases(switch).index(case)
    value = cases[idx][0]
    values = [value] if value is not None else []
    j = idx - 1
    while j >= 0 and _ends(cases[j][1]) == "falls":
        if cases[j][0] is None:
            return []  # the default falls in: any value
        values.append(cases[j][0])
        j -= 1
    if value is None:
        if j != idx - 1:
            return []
        others = [v for v, _ in cases if v is not None]
        return [_equal(switch, others, False, "enclosing")] if others else []
    return [_equal(switch, values[::-1], True, "enclosing")]


def _named_cases(switch: Node) -> list[Node]:
    return [c for c in switch.child_by_field_name("body").named_children
            if c.type == "case_statement"]


def dominating_guards(site: Node, *, sentinels: bool = False) -> tuple[Guard, ...]:
    """Guards in source order, outermost first, for the function that contains site.

    With ``sentinels=True`` also the conditional "sentinel" guards (module doc)."""
    fn = enclosing_function(site)
    if fn is None:
        return ()
    jumps = _Jumps(fn)
    guards = _structural_guards(site, fn, jumps)
    if sentinels:
        guards += _sentinel_guards(site, fn, guards, jumps)
    guards.sort(key=lambda g: (g.cond.start_byte, g.cond.end_byte))
    return tuple(guards)


# ---------------------------------------------------------------------------
# reaching assignments


def _def_target(node: Node, var: str) -> bool:
    return node is not None and node.type == "identifier" and text(node) == var


def _conditional_part(n: Node, c: Node) -> bool:
    """Child ``c`` of expression ``n`` is evaluated only on some paths through ``n``."""
    if n.type == "conditional_expression":
        return c != n.child_by_field_name("condition")
    return (
        n.type == "binary_expression"
        and c == n.child_by_field_name("right")
        and n.child_by_field_name("operator").type in ("&&", "||")
    )


def _expr_defs(expr: Node | None, var: str) -> list[tuple[Node, bool]]:
    """Assignments of ``var`` inside an expression/declaration: (node, always executed)."""
    if expr is None:
        return []
    out: list[tuple[Node, bool]] = []

    def walk(n: Node, definite: bool) -> None:
        t = n.type
        if t == "assignment_expression" and _def_target(n.child_by_field_name("left"), var):
            walk(n.child_by_field_name("right"), definite)
            out.append((n, definite))
            return
        if t == "update_expression" and _def_target(n.child_by_field_name("argument"), var):
            out.append((n, definite))
            return
        if t == "init_declarator" and _def_target(n.child_by_field_name("declarator"), var):
            walk(n.child_by_field_name("value"), definite)
            out.append((n, definite))
            return
        if t in ("compound_statement", "function_definition"):
            return  # statement expressions etc.: not followed
        for c in n.named_children:
            walk(c, definite and not _conditional_part(n, c))

    walk(expr, True)
    return out


def _declares(stmt: Node, var: str) -> bool:
    """``stmt`` is a declaration of ``var`` (with or without initialiser)."""
    if stmt.type != "declaration":
        return False
    for d in stmt.children_by_field_name("declarator"):
        while d is not None and d.type not in ("identifier",):
            d = d.child_by_field_name("declarator")
        if d is not None and text(d) == var:
            return True
    return False


class _Flow:
    """Forward reaching-definitions of one variable, structural, up to one site."""

    def __init__(self, site: Node, var: str, jumps: _Jumps) -> None:
        self.site, self.var, self.jumps = site, var, jumps
        self.pending: dict[str, set[int]] = {}
        self.nodes: dict[int, Node] = {}

    def _add(self, state: set[int], nodes) -> set[int]:
        for n in nodes:
            self.nodes[n.id] = n
            state = state | {n.id}
        return state

    def expr(self, state: set[int] | None, node: Node | None) -> set[int] | None:
        if state is None or node is None:
            return state
        for n, definite in _expr_defs(node, self.var):
            state = self._add(set() if definite else state, [n])
        return state

    def may(self, state: set[int] | None, node: Node) -> set[int] | None:
        """Everything in ``node`` may or may not execute, any number of times."""
        if state is None:
            return None
        return self._add(state, sorted(self._every_def(node), key=lambda n: n.start_byte))

    def _every_def(self, node: Node) -> list[Node]:
        out: list[Node] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in ("assignment_expression", "update_expression", "init_declarator"):
                out.extend(d for d, _ in _expr_defs(n, self.var) if d == n)
            stack.extend(n.named_children)
        return out

    def stmt(self, state: set[int] | None, s: Node | None) -> set[int] | None:
        """State after ``s`` (which does not contain the site); None: never completes."""
        if s is None:
            return state
        t = s.type
        if t == "labeled_statement":
            state = self._enter_label(state, s)
            inner = [c for c in s.named_children if c.type not in ("statement_identifier",)]
            return self.stmt(state, inner[0] if inner else None)
        if t == "compound_statement":
            if any(_declares(c, self.var) for c in _statements(s)):
                return state  # shadowed inside: no effect outside
            for c in _statements(s):  # even when dead: a label may revive it
                state = self.stmt(state, c)
            return state
        if state is None:
            return None
        if t == "if_statement":
            state = self.expr(state, s.child_by_field_name("condition"))
            a = self.stmt(set(state), s.child_by_field_name("consequence"))
            b = self.stmt(set(state), _alternative_stmt(s))
            return self._join(a, b)
        if t in ("return_statement", "break_statement", "continue_statement"):
            self.expr(state, s.named_children[0] if s.named_children else None)
            return None
        if t == "goto_statement":
            name = text(s.child_by_field_name("label"))
            label = self.jumps.labels.get(name)
            if label is not None and s.end_byte <= label.start_byte <= self.site.start_byte:
                self.pending[name] = self._join(self.pending.get(name), state)
            return None
        if t in _LOOPS or t == "switch_statement":
            return self.may(state, s)
        if t == "declaration" and _declares(s, self.var) and not _expr_defs(s, self.var):
            return set()  # fresh, uninitialised
        return self.expr(state, s)

    def descend(self, state: set[int] | None, s: Node) -> set[int] | None:
        """State just before the site, ``s`` containing it."""
        t = s.type
        if state is None and t not in _BLOCKS and t != "labeled_statement":
            return None
        if t in _BLOCKS:
            for c in _statements(s):
                if _contains(c, self.site):
                    return self.descend(state, c)
                state = self.stmt(state, c)
            return state
        if t == "labeled_statement":
            state = self._enter_label(state, s)
            for c in s.named_children:
                if _contains(c, self.site) and c.type != "statement_identifier":
                    return self.descend(state, c)
            return state
        if t == "if_statement":
            cond = s.child_by_field_name("condition")
            if _contains(cond, self.site):
                return state
            state = self.expr(state, cond)
            cons = s.child_by_field_name("consequence")
            branch = cons if _contains(cons, self.site) else _alternative_stmt(s)
            return self.descend(state, branch)
        if t in _LOOPS:
            state = self.may(state, s)
            body = s.child_by_field_name("body")
            if body is not None and _contains(body, self.site):
                return self.descend(state, body)
            return state
        if t == "switch_statement":
            body = s.child_by_field_name("body")
            if body is None or not _contains(body, self.site):
                return state
            for case in _statements(body):
                if _contains(case, self.site):
                    return self.descend(state, case)
                state = self.may(state if state is not None else set(), case)
            return state
        return state  # an expression statement etc.: the state before it

    def _enter_label(self, state: set[int] | None, s: Node) -> set[int] | None:
        """State at labeled statement ``s``: fall-through, forward gotos, and (conservatively,
        as "may") every assignment between the label and a backward goto to it."""
        name = text(s.child_by_field_name("label"))
        state = self._join(state, self.pending.pop(name, None))
        back = [g for g in self.jumps.gotos.get(name, []) if g.start_byte > s.start_byte]
        if back:
            end = max(g.end_byte for g in back)
            defs = [d for d in self._every_def(self.jumps.fn) if s.start_byte < d.start_byte < end]
            state = self._add(state or set(), sorted(defs, key=lambda n: n.start_byte))
        return state

    @staticmethod
    def _join(a: set[int] | None, b: set[int] | None) -> set[int] | None:
        if a is None:
            return b
        if b is None:
            return a
        return a | b


def _reaching(site: Node, var: str, fn: Node, jumps: _Jumps) -> list[Node]:
    body = fn.child_by_field_name("body")
    if body is None or not _contains(body, site):
        return []
    flow = _Flow(site, var, jumps)
    state = flow.descend(set(), body) or set()
    return sorted((flow.nodes[i] for i in state), key=lambda n: n.start_byte)


def reaching_assignments(site: Node, var: str) -> tuple[tuple[Node, tuple[Guard, ...]], ...]:
    """Each assignment/declaration-initialiser of ``var`` that may reach ``site``
    (in source order), with the guards under which that assignment executes.

    Nodes are ``assignment_expression``, ``update_expression`` or ``init_declarator``.
    Parameters and other values from before the function are not listed."""
    fn = enclosing_function(site)
    if fn is None:
        return ()
    jumps = _Jumps(fn)
    out = []
    for n in _reaching(site, var, fn, jumps):
        gs = _structural_guards(n, fn, jumps)
        gs.sort(key=lambda g: (g.cond.start_byte, g.cond.end_byte))
        out.append((n, tuple(gs)))
    return tuple(out)


# ---------------------------------------------------------------------------
# sentinel guards


def _assigned_value(node: Node) -> Node | None:
    if node.type == "assignment_expression" and text(node.child_by_field_name("operator")) == "=":
        return node.child_by_field_name("right")
    if node.type == "init_declarator":
        return node.child_by_field_name("value")
    return None


def _comparison(g: Guard) -> tuple[str, str, bool] | None:
    """(var, bound text, value of the guard when var == bound) for ``var OP bound``."""
    c = g.cond
    if c.type != "binary_expression":
        return None
    op = c.child_by_field_name("operator").type
    if op not in _COMPARE:
        return None
    left = strip_parens(c.child_by_field_name("left"))
    right = strip_parens(c.child_by_field_name("right"))
    if left.type != "identifier":
        if right.type != "identifier":
            return None
        left, right = right, left
    return text(left), _norm(right), op in ("==", "<=", ">=")


def _sentinel_guards(site: Node, fn: Node, guards: list[Guard], jumps: _Jumps) -> list[Guard]:
    out: list[Guard] = []
    seen: set[tuple[int, bool]] = set()
    for g in guards:
        cmp = _comparison(g)
        if cmp is None:
            continue
        var, bound, at_bound = cmp
        if at_bound == g.holds:
            continue  # var == bound would satisfy the guard: no sentinel
        defs = _reaching(g.cond, var, fn, jumps)
        sentinel = _sentinel_test(bound)
        for d in defs:
            if not sentinel(d):
                continue
            # The innermost if-branch around the sentinel assignment whose reaching
            # assignments (at the guard) are all sentinels and that always assigns.
            child, node = d, d.parent
            while node is not None and node != fn:
                if node.type == "if_statement" and child in (
                    node.child_by_field_name("consequence"),
                    node.child_by_field_name("alternative"),
                ):
                    branch = child
                    inside = [x for x in defs if _contains(branch, x)]
                    if not all(sentinel(x) for x in inside):
                        break
                    if _always_assigns(branch, var, d, jumps, g.cond):
                        holds = child != node.child_by_field_name("consequence")
                        key = (node.child_by_field_name("condition").id, holds)
                        if key not in seen:
                            seen.add(key)
                            out.append(
                                _guard(node.child_by_field_name("condition"), holds, "sentinel")
                            )
                        break
                child, node = node, node.parent
    return out


def _sentinel_test(bound: str):
    def sentinel(n: Node) -> bool:
        v = _assigned_value(n)
        return v is not None and _norm(strip_parens(v)) == bound

    return sentinel


def _always_assigns(branch: Node, var: str, d: Node, jumps: _Jumps, site: Node) -> bool:
    """Every path through ``branch`` that completes assigns ``var`` (structurally)."""
    flow = _Flow(site, var, jumps)
    marker = -1
    stmt = branch.named_children[0] if branch.type == "else_clause" else branch
    out = flow.stmt({marker}, stmt)
    return out is not None and marker not in out and not flow.pending


# ---------------------------------------------------------------------------
# lookups


def function_named(root: Node, name: str) -> Node | None:
    """The first ``function_definition`` under ``root`` that defines ``name``."""
    for fn in captures("(function_definition) @f", root).get("f", []):
        if function_name(fn) == name:
            return fn
    return None


def calls_in(fn: Node, name: str) -> list[Node]:
    """``call_expression`` nodes calling ``name`` directly, in document order."""
    caps = captures("(call_expression function: (identifier) @name) @call", fn)
    return [c for c in caps.get("call", []) if text(c.child_by_field_name("function")) == name]
