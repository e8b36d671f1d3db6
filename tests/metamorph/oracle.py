"""Run ``vpcheck check --format json`` in-process on a rewritten tree and judge the result.

The metamorphic oracle: the multiset of (rule, function, severity), with the
functions a rewrite introduced mapped back to the original, is unchanged.
Known failures live in TOML files under tests/data/ so that a fix shows up as
an XPASS that forces the list to be updated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .csrc import RELEVANT, RELEVANT_DIRS
from .transforms import InvalidRewrite, Site, Variant

Signature = Counter  # Counter[(rule, function, severity)]


class EngineError(Exception):
    """vpcheck exited 2 or 3 (or printed no JSON) on a tree: always a failure."""


@dataclass(frozen=True)
class Outcome:
    tree: str
    transform: str
    site: str
    ok: bool
    symptom: str = ""

    @property
    def case(self) -> tuple[str, str, str]:
        return self.tree, self.transform, self.site


def run_check(files: Mapping[str, bytes], base: Path | None = None) -> list[dict]:
    """Findings of vpcheck on ``files`` (unchanged files hard-linked from ``base``)."""
    from tests.conftest import run_cli

    with tempfile.TemporaryDirectory(prefix="vpm-") as tmp:
        root = Path(tmp)
        if base is not None:
            _link_tree(base, root, set(files))
        for rel, data in files.items():
            out = root / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        rc, out, err = run_cli("check", str(root), "--format", "json", "--severity", "info")
    if rc not in (0, 1):
        raise EngineError(f"exit {rc}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    try:
        return json.loads(out)["findings"]
    except (ValueError, KeyError) as e:
        raise EngineError(f"no JSON findings: {e}") from None


def _link_tree(base: Path, root: Path, skip: set[str]) -> None:
    """Hard-link the files vpcheck reads (and only those: 6.12 has 2,000 others)."""
    for d in RELEVANT_DIRS:
        if not (base / d).is_dir():
            continue
        for name in os.listdir(base / d):
            rel = f"{d}/{name}"
            if rel in skip or not RELEVANT.match(rel):
                continue
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(base / rel, dest)
            except OSError:
                shutil.copyfile(base / rel, dest)


def signature(findings: Iterable[dict], renames: Mapping[str, str] | None = None) -> Signature:
    renames = renames or {}
    return Counter((f["rule"], renames.get(f.get("function"), f.get("function")), f["severity"])
                   for f in findings)


def describe(base: Signature, got: Signature) -> str:
    """'lost …; gained …' between two signatures ('' when equal)."""
    def fmt(c: Counter) -> str:
        return ", ".join(f"{r}/{fn}/{s}" + (f" x{n}" if n > 1 else "")
                         for (r, fn, s), n in sorted(c.items(), key=str))
    lost, gained = base - got, got - base
    parts = ([f"lost {fmt(lost)}"] if lost else []) + ([f"gained {fmt(gained)}"] if gained else [])
    return "; ".join(parts)


def judge(tree: str, site: Site, base: Signature, base_dir: Path | None) -> Outcome:
    """Apply one rewrite, run vpcheck, compare with the unrewritten tree."""
    try:
        variant: Variant = site.make()
    except InvalidRewrite as e:
        return Outcome(tree, site.transform, site.key, False, f"invalid rewrite: {e}")
    try:
        got = signature(run_check(variant.files, base_dir), variant.renames)
    except EngineError as e:
        return Outcome(tree, site.transform, site.key, False, str(e))
    symptom = describe(base, got)
    return Outcome(tree, site.transform, site.key, not symptom, symptom)


def load_known(path: Path, kind: str = "transform") -> dict[tuple[str, str, str], str]:
    """(tree, transform or operator, site) -> recorded symptom."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    return {(c["tree"], c[kind], c["site"]): c.get("symptom", "")
            for c in data.get("case", [])}


def write_known(path: Path, outcomes: Iterable[Outcome], header: str,
                kind: str = "transform") -> int:
    """Write the failing outcomes as [[case]] tables; returns how many."""
    bad = sorted((o for o in outcomes if not o.ok), key=lambda o: o.case)
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()] + [""]
    for o in bad:
        lines += ["[[case]]", f"tree = {json.dumps(o.tree)}",
                  f"{kind} = {json.dumps(o.transform)}", f"site = {json.dumps(o.site)}",
                  f"symptom = {json.dumps(o.symptom)}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return len(bad)


def judge_mutant(tree: str, m, base: list[dict], base_dir: Path | None) -> Outcome:
    """found / missed / wrong-line / bad-counterexample; equivalent mutants: unchanged.

    Only findings the mutant adds count (rule, path and message not in the unmutated
    tree's findings, or at the expected line where the unmutated tree had none with that
    message): a finding that was already there proves nothing about the bug.
    """
    try:
        got = run_check(m.files, base_dir)
    except EngineError as e:
        return Outcome(tree, m.operator, m.key, False, f"error: {e}")
    if m.equivalent:
        change = describe(signature(base), signature(got))
        return Outcome(tree, m.operator, m.key, not change,
                       f"equivalent-changed: {change}" if change else "equivalent")
    old = {(f["rule"], f["path"], f.get("message")) for f in base}
    new = [f for f in got if f["rule"] in m.rules
           and (f["rule"], f["path"], f.get("message")) not in old]
    # a finding at the expected line is new unless the tree had it at that line already:
    # a second sink on a path reported before gets the same message at a new line
    there = Counter((f["rule"], f.get("message")) for f in base
                    if f["path"] == m.path and f["line"] == m.base_line)
    at = [f for f in got if f["rule"] in m.rules and f["path"] == m.path
          and f["line"] == m.line]
    now = Counter((f["rule"], f.get("message")) for f in at)
    hits = [f for f in at if now[f["rule"], f.get("message")] > there[f["rule"], f.get(
        "message")]]
    new += [f for f in hits if f not in new]
    if hits:
        why = [_verify(m, f) for f in hits]
        if any(w is None for w in why):
            return Outcome(tree, m.operator, m.key, True, "found")
    site = _same_site(m, base, got)
    if site:
        return Outcome(tree, m.operator, m.key, True, f"same-site: {site}")
    if hits:
        return Outcome(tree, m.operator, m.key, False, f"bad-counterexample: {why[0]}")
    undecided = _undecided(m, got)
    if undecided:
        return Outcome(tree, m.operator, m.key, True, f"undecided: {undecided}")
    if new:
        where = ", ".join(f"{f['rule']} at {f['path']}:{f['line']}" for f in new[:3])
        return Outcome(tree, m.operator, m.key, False,
                       f"wrong-line: expected {m.path}:{m.line}, reported {where}")
    return Outcome(tree, m.operator, m.key, False, f"missed: no {'/'.join(m.rules)} finding")


def _verify(m, finding: dict) -> str | None:
    try:
        return m.verify(finding)
    except Exception as e:  # noqa: BLE001 - an underivable counterexample is not verified
        return f"cannot re-derive: {type(e).__name__}: {e}"


def _same_site(m, base: list[dict], got: list[dict]) -> str:
    """The mutated line was reported by one of the mutant's rules before the mutation (the
    site is already faulty: a weakened guard that already admitted a faulty ID, a block
    already too small), and the mutated tree still has a finding of that rule there whose
    counterexample re-derives as a fault of the mutated code (``m.verify_site``). One
    site, one finding: a second one at the same line would repeat the first, and the
    fix the finding asks for (that check, that allocation) removes both bugs."""
    if m.verify_site is None:
        return ""
    before = {f["rule"] for f in base if f["rule"] in m.rules and f["path"] == m.path
              and f["line"] == m.base_line and f["severity"] != "info"}
    for f in got:
        if f["rule"] in before and f["path"] == m.path and f["line"] == m.line:
            with contextlib.suppress(Exception):
                if m.verify_site(f) is None:
                    return f"{f['rule']} at {m.path}:{m.line} already reported, its " \
                        f"counterexample {f.get('counterexample', {}).get('ids')} holds " \
                        "on the mutated code"
    return ""


def _undecided(m, got: list[dict]) -> str:
    """The engine reports the mutated function's path as undecided for one of the
    mutant's rules: an info naming the construct it cannot run, in (or named as) a
    function the mutated function calls (a packing function that is absent, or that has
    a loop). By design it neither guesses nor drops the path, so the bug behind it is
    not a finding; the info is what the user gets, and it must be there."""
    for f in got:
        if f["rule"] in m.rules and f["severity"] == "info" and \
                f.get("message", "").startswith("undecided:") and (
                    f.get("function") in m.calls or
                    any(f"{c}:" in f["message"] or f"{c}()" in f["message"] for c in m.calls)):
            return f"{f['rule']} at {f['path']}:{f['line']}: {f['message']}"
    return ""
