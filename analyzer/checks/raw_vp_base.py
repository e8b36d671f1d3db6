"""xive-raw-vp-base: ``X->VP_BASE + E`` outside the VP helper."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from ..c import defines
from ..c import parse as cparse
from ..c.facts import Facts, Macro, VpAddition, VpHelper, is_field
from ..errors import ModelLimit
from ..findings import Finding, Note
from ..fixes import replacement_diff
from ..model import paths, roles
from ._common import configs, record, tree
from .registry import check


def _visible_helper(helpers: list[VpHelper], facts: Facts, path: str) -> VpHelper | None:
    """The helper a fix in ``path`` should call: same file first, then an included header."""
    same = [h for h in helpers if h.path == path]
    if same:
        return same[0]
    includes = facts.files[path].includes
    for h in helpers:
        base = posixpath.basename(h.path)
        if any(inc == base or inc.endswith("/" + base) for inc in includes):
            return h
    return None


def _fix_args(helper: VpHelper, add: VpAddition) -> str | None:
    if {helper.obj_param, helper.offset_param} != {0, 1}:
        return None
    args = [add.obj, add.offset] if helper.obj_param == 0 else [add.offset, add.obj]
    return ", ".join(args)


@check("raw_block_base")
def raw_block_base(rule, facts: Facts) -> Iterator[Finding]:
    prof = rule.profile
    fld = roles.vp_field(facts, prof)
    macro_helpers, raw_macros = _vp_macros(facts, fld)
    helpers = list(facts.all("vp_helpers")) + macro_helpers
    if not helpers:
        return
    names = {h.name for h in helpers} | {m.name for m in raw_macros}
    examples: dict[str, tuple | None] = {}
    additions = list(facts.all("vp_additions")) + list(_macro_uses(facts, raw_macros))
    for add in sorted(additions, key=lambda a: (a.path, a.start_byte)):
        if add.function in names:
            continue
        if not defines.active(add.conds, prof.kconfig, prof.arch_defined):
            continue  # under #if 0 or a branch the profile's build leaves out
        visible = _visible_helper(helpers, facts, add.path)
        helper = visible or helpers[0]
        args = _fix_args(helper, add)
        fix = None
        if visible is not None and args is not None:
            new = rule.fix.format(helper=helper.name, args=args)
            data = facts.snapshot.files[add.path]
            fix = replacement_diff(add.path, data, add.start_byte, add.end_byte, new)
        message = rule.message.format(expr=" ".join(add.expr.split()), helper=helper.name)
        if visible is None:
            message += f" (defined in {helper.path}, not visible here)"
        if helper.name not in examples:
            examples[helper.name] = _example(rule, facts, helper, fld)
        tail, example, notes = _explain(examples[helper.name], add, helper, facts, fld)
        yield Finding(rule.id, rule.severity, add.path, add.line, add.column, add.function,
                      message + tail, key=add.expr, fix=fix, counterexample=example,
                      notes=notes)


def _explain(ex, add: VpAddition, helper: VpHelper, facts: Facts, fld: str):
    """The counterexample's part of a finding: the message's tail, the record and the
    note at the helper's return (nothing when the helper gave no example)."""
    if ex is None:
        return "", None, ()
    cfg, server, offset, count = ex
    tail = f": with {cfg.text()}, server {server} is VP base + {offset} ({helper.name}())"
    if _PLAIN.fullmatch(" ".join(add.offset.split())):  # the sum adds the number as is
        tail += f", not base + {server}" + (
            f", beyond the {count} VPs a VM's block holds" if server >= count else "")
    note = Note(helper.path, _return_line(facts, helper.name, fld),
                f"{helper.name}() gives VP base + {offset} for server {server}", helper.name)
    return tail, record(cfg, (server,), None, vp_offset=offset, count=count), (note,)


def _return_line(facts: Facts, name: str, fld: str) -> int:
    """The line of the helper's ``return`` that adds the VP base (else its first line)."""
    fn = facts.functions[name]
    body = facts.snapshot.files[fn.path][fn.start_byte:fn.end_byte].decode("utf-8", "replace")
    for k, text in enumerate(body.splitlines()):
        if "return" in text and fld in text:
            return fn.line + k
    return fn.line


# an offset that is the server number itself: a name or a field of one (``a.b``,
# ``a->b``), maybe cast to a one-word type, maybe in parentheses
_NAME = r"\s*[A-Za-z_]\w*\s*"
_PLAIN = re.compile(rf"\(*\s*(?:\({_NAME}\)\s*)?\(*{_NAME}(?:(?:\.|->){_NAME})*\)*")


def _example(rule, facts: Facts, helper: VpHelper, fld: str):
    """(configuration, server, the helper's offset, the count) of the smallest build and
    server number that the helper maps, without a WARN, to a VP other than its own
    number inside the count: a server a VM can connect, whose VP the raw sum misses.
    None when the helper is a macro or the model cannot run it."""
    if helper.name not in facts.functions:
        return None
    t = tree(rule, facts)
    try:
        fn = t.compiled(helper.name)
        for cfg in configs(rule, t):
            count = t.macro(rule.profile.count, cfg)
            servers = range(16 * cfg.nr_cpus)
            args = [0] * len(facts.functions[helper.name].params)
            results = fn.over(args, helper.offset_param, servers, cfg.env(**{fld: 0}))
            for server, r in zip(servers, results, strict=True):
                if not r.events and not r.crashed and r.value != server and \
                        0 <= r.value < count:
                    return cfg, server, r.value, count
    except (ModelLimit, *paths.EVAL_ERRORS):  # the finding stands without an example
        return None
    return None


def _vp_macros(facts: Facts, fld: str) -> tuple[list[VpHelper], list[Macro]]:
    """Function-like macros computing ``P->VP_BASE + E(S)``: with a call in E they
    are VP helpers; without one, a raw VP number computed through a macro."""
    helpers, raw = [], []
    for m in facts.all("macros"):
        if fld not in m.body or len(m.params) < 2:
            continue
        src = f"long long __m = ({m.body});".encode()
        expr = cparse.parse(src).root_node
        for add in cparse.captures('(binary_expression operator: "+") @a', expr).get("a", []):
            terms = [add.child_by_field_name("left"), add.child_by_field_name("right")]
            base = [t for t in terms if is_field(t, fld)]
            if len(base) != 1:
                continue
            obj = cparse.text(cparse.strip_parens(
                cparse.strip_parens(base[0]).child_by_field_name("argument")))
            rest = next(t for t in terms if t is not base[0])
            server = [i for i, p in enumerate(m.params) if p != obj and p in cparse.text(rest)]
            if obj not in m.params or len(server) != 1:
                continue
            if cparse.captures("(call_expression) @c", rest).get("c"):
                helpers.append(VpHelper(m.name, m.path, m.line, m.params.index(obj), server[0]))
            else:
                raw.append(m)
            break
    return helpers, raw


def _macro_uses(facts: Facts, macros: list[Macro]) -> Iterator[VpAddition]:
    """Each use of a raw-VP macro, as the addition it expands to."""
    if not macros:
        return
    by_name = {m.name: m for m in macros}
    for path in sorted(facts.files):
        data = facts.snapshot.files[path]
        if not facts.files[path].parsed or not any(n.encode() in data for n in by_name):
            continue
        root = cparse.parse(data, facts.files[path].blob).root_node
        for c in cparse.captures("(call_expression function: (identifier) @f) @c", root).get(
                "c", []):
            m = by_name.get(cparse.text(c.child_by_field_name("function")))
            args = [a for a in c.child_by_field_name("arguments").named_children
                    if a.type != "comment"]
            if m is None or len(args) != len(m.params) or c.has_error:
                continue
            fn = cparse.enclosing_function(c)
            obj = next(i for i, p in enumerate(m.params) if f"{p})->" in m.body or
                       f"{p}->" in m.body)
            offset = " + ".join(cparse.text(a) for i, a in enumerate(args) if i != obj)
            yield VpAddition(path, c.start_point.row + 1, c.start_point.column + 1,
                             cparse.function_name(fn) if fn is not None else None,
                             c.start_byte, c.end_byte, cparse.text(args[obj]), offset,
                             cparse.text(c))
