"""Checks: each rule file names one of these functions in its ``check`` key.

A check takes the rule (its data) and the facts of one snapshot and yields
Findings. Checks never print and never read files: everything comes from
Facts, so the same check runs on a directory, a git revision or a patch.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from .errors import ModelLimit
from .facts import Facts, VpAddition, VpHelper
from .findings import Finding, fingerprinted
from .fixes import replacement_diff
from .ruleset import Rule

Check = Callable[[Rule, Facts], Iterable[Finding]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return register


def in_scope(rule: Rule, path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, pat) for pat in rule.scope)


def run(rules: Iterable[Rule], facts: Facts, reuse: bool = False) -> list[Finding]:
    """Findings of ``rules`` on one snapshot. ``reuse``: keep model verdicts for the
    next snapshot of a series (costs a digest per rule, pays off from the second)."""
    found: list[Finding] = []
    for rule in rules:
        if rule.check not in CHECKS:
            from . import domainchecks, modelchecks  # noqa: F401 - register model checks
        fn = CHECKS.get(rule.check)
        if fn is None:
            raise KeyError(f"rule {rule.id}: no check named {rule.check!r}")
        found.extend(f for f in _run_one(rule, fn, facts, reuse) if in_scope(rule, f.path))
    return fingerprinted(replace(f, snippet=_line_text(facts, f.path, f.line)) for f in found)


MODEL_CHECKS = {"pack_table", "collision_crash", "capacity", "pack_domain", "vp_block_bound",
                "vcore_index", "id_bound_mismatch"}
_VERDICTS: dict[tuple[str, str], list[Finding]] = {}


def _run_one(rule: Rule, fn: Check, facts: Facts, reuse: bool) -> list[Finding]:
    """Run one check; model sweeps are reused while nothing they read changes."""
    key = None
    if reuse and rule.check in MODEL_CHECKS:
        from . import model

        p = rule.params
        roots = set(_names(p))
        if rule.check in ("vp_block_bound", "id_bound_mismatch"):
            roots |= {h.name for h in facts.all("vp_helpers")}
        mentioned = {p["allocator"]} if "allocator" in p else set()
        key = (rule.id, model.signature(model.tree(facts), roots,
                                        mentioned | set(p.get("sanitizers", ()))))
        if key in _VERDICTS:
            return _VERDICTS[key]
    try:
        out = list(fn(rule, facts))
    except ModelLimit as e:
        out = [_model_limit(rule, facts, e)]
    if key is not None:
        if len(_VERDICTS) > 256:
            _VERDICTS.clear()
        _VERDICTS[key] = out
    return out


def _names(params) -> Iterator[str]:
    """The functions a rule's verdict starts from: packing function, create path
    and entry points."""
    for key in ("function", "create_function"):
        if key in params:
            yield params[key]
    for entry in params.get("entries", ()):
        yield entry["function"]


def _model_limit(rule: Rule, facts: Facts, e: ModelLimit) -> Finding:
    """The model could not evaluate the tree's code: say where, at info severity."""
    fn = facts.functions.get(e.function or "")
    path, line = (fn.path, e.line or fn.line) if fn else ("", 0)
    return Finding(rule.id, "info", path, line, 1, e.function,
                   f"model could not evaluate {e.function}(): {e}; {rule.id} not checked",
                   key=f"model-limit:{e}")


def _line_text(facts: Facts, path: str, line: int) -> str:
    data = facts.snapshot.files.get(path, b"")
    lines = data.split(b"\n")
    return lines[line - 1].decode("utf-8", "replace") if 0 < line <= len(lines) else ""


# --- xive-raw-vp-base ------------------------------------------------------


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
def raw_vp_base(rule: Rule, facts: Facts) -> Iterator[Finding]:
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
