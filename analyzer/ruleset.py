"""Rule files: one TOML per rule id, shipped as package data (analyzer.rules)."""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .findings import SEVERITIES

REQUIRED = {"id", "title", "severity", "confidence", "check", "message", "rationale"}
OPTIONAL = {"scope", "params", "fix", "references"}
CONFIDENCES = ("high", "medium", "low")


class RuleFileError(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    confidence: str
    check: str
    message: str
    rationale: str
    scope: tuple[str, ...] = ("arch/powerpc/kvm/*",)
    tokens: tuple[str, ...] = ()  # a file without any of these cannot matter to the rule
    params: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


def parse_rule(name: str, data: bytes) -> Rule:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RuleFileError(f"{name}: {e}") from None
    keys = set(raw)
    if missing := REQUIRED - keys:
        raise RuleFileError(f"{name}: missing {', '.join(sorted(missing))}")
    if unknown := keys - REQUIRED - OPTIONAL:
        raise RuleFileError(f"{name}: unknown keys {', '.join(sorted(unknown))}")
    if raw["severity"] not in SEVERITIES:
        raise RuleFileError(f"{name}: severity must be one of {SEVERITIES}")
    if raw["confidence"] not in CONFIDENCES:
        raise RuleFileError(f"{name}: confidence must be one of {CONFIDENCES}")
    if name != f"{raw['id']}.toml":
        raise RuleFileError(f"{name}: file name does not match id {raw['id']!r}")
    scope = raw.pop("scope", {})
    return Rule(scope=tuple(scope.get("paths", ["arch/powerpc/kvm/*"])),
                tokens=tuple(scope.get("tokens", ())),
                references=tuple(raw.pop("references", ())), **raw)


def tokens(rules: Iterable[Rule]) -> tuple[bytes, ...]:
    """The union of the rules' prefilter tokens (all of facts.TOKENS if one has none)."""
    from .facts import TOKENS

    out: set[bytes] = set()
    for r in rules:
        if not r.tokens:
            return TOKENS
        out.update(t.encode() for t in r.tokens)
    return tuple(sorted(out))


@functools.cache
def load_rules() -> tuple[Rule, ...]:
    files = importlib.resources.files("analyzer.rules")
    rules = [parse_rule(p.name, p.read_bytes())
             for p in files.iterdir() if p.name.endswith(".toml")]
    return tuple(sorted(rules, key=lambda r: r.id))


def select(only: list[str] | None = None, skip: list[str] | None = None) -> tuple[Rule, ...]:
    from .errors import InputError

    rules = load_rules()
    known = {r.id for r in rules}
    for rid in (only or []) + (skip or []):
        if rid not in known:
            raise InputError(f"{rid}: unknown rule (see 'vpcheck rules')")
    return tuple(r for r in rules if (not only or r.id in only) and r.id not in (skip or []))
