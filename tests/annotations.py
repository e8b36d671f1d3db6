"""Inline expectations in fixtures: ``/* expect: RULE */`` and ``/* ok: RULE */``.

Annotations sit on the offending line itself. Comparison uses ast-grep's
vocabulary: *noisy* (reported on a line nobody expected) and *missing*
(expected but not reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MARK = re.compile(r"/\*\s*(expect|ok):\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*\*/")


def annotations(files: Mapping[str, bytes]) -> dict[str, set[tuple[str, int]]]:
    """{"expect": {(path, line)...}, "ok": {...}} per rule id: {(rule, kind): set}."""
    out: dict[str, set[tuple[str, int]]] = {}
    for path, data in files.items():
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
            for kind, rules in MARK.findall(line):
                for rule in re.split(r"\s*,\s*", rules):
                    out.setdefault(f"{kind}:{rule}", set()).add((path, lineno))
    return out


def compare(expected: set, reported: Iterable[tuple[str, int]]) -> tuple[set, set]:
    """(noisy, missing)."""
    got = set(reported)
    return got - expected, expected - got
