"""xive-raw-vp-base: ``X->VP_BASE + E`` outside the VP helper."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from ..facts import Facts, VpAddition, VpHelper
from ..findings import Finding
from ..fixes import replacement_diff
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


@check("raw_vp_base")
def raw_vp_base(rule, facts: Facts) -> Iterator[Finding]:
    helpers = list(facts.all("vp_helpers"))
    if not helpers:
        return
    names = {h.name for h in helpers}
    for add in facts.all("vp_additions"):
        if add.function in names:
            continue
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
        yield Finding(rule.id, rule.severity, add.path, add.line, add.column, add.function,
                      message, key=add.expr, fix=fix)
