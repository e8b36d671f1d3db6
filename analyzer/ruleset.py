"""Rule files: one TOML per rule id, shipped as package data (analyzer.rules)."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import profile as profile_mod
from .findings import SEVERITIES
from .profile import Profile, ProfileError

REQUIRED = {"id", "title", "severity", "confidence", "check", "message", "rationale"}
OPTIONAL = {"scope", "params", "fix", "profile", "variants"}
CONFIDENCES = ("high", "medium", "low")


class RuleFileError(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    """One rule file, bound to the profile whose names its check reads."""

    id: str
    title: str
    severity: str
    confidence: str
    check: str
    message: str
    rationale: str
    scope: tuple[str, ...] = ("arch/*",)
    params: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""
    profile: Profile = field(default_factory=profile_mod.load, compare=False)
    # a documented second case: name -> (severity, message), e.g. BUG vs WARN
    variants: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "variants", MappingProxyType(dict(self.variants)))

    def __hash__(self) -> int:
        return hash(self.id)

    def text(self, variant: str | None = None, **fields: object) -> tuple[str, str]:
        """(severity, message) of this rule or one of its declared variants."""
        severity, message = self.variants.get(variant, (self.severity, self.message)) \
            if variant else (self.severity, self.message)
        try:
            return severity, message.format(**fields)
        except (KeyError, IndexError) as e:
            raise RuleFileError(f"{self.id}.toml: message names unknown field {e}") from None


def _variants(name: str, raw: Mapping, default: str) -> dict[str, tuple[str, str]]:
    out = {}
    for key, v in raw.items():
        if not isinstance(v, Mapping) or set(v) - {"severity", "message"}:
            raise RuleFileError(f"{name}: [variants.{key}] takes severity and message")
        sev = v.get("severity", default)
        if sev not in SEVERITIES:
            raise RuleFileError(f"{name}: [variants.{key}] severity must be one of {SEVERITIES}")
        out[key] = (sev, v.get("message", ""))
    return out


def parse_rule(name: str, data: bytes, profile: Profile | None = None) -> Rule:
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
    if set(scope) - {"paths"}:
        raise RuleFileError(f"{name}: [scope] takes only paths")
    try:
        prof = profile or profile_mod.load(raw.pop("profile", profile_mod.DEFAULT))
    except ProfileError as e:
        raise RuleFileError(f"{name}: {e}") from None
    raw.pop("profile", None)
    variants = _variants(name, raw.pop("variants", {}), raw["severity"])
    rule = Rule(scope=tuple(scope.get("paths", ["arch/*"])), profile=prof, variants=variants,
                **raw)
    from . import checks

    if (err := checks.validate(name, rule)) is not None:
        raise RuleFileError(err)
    return rule


def tokens(rules: Iterable[Rule]) -> tuple[bytes, ...]:
    """Bytes a file must hold to matter: the names of the rules' profiles (entry points,
    ID-space and count macros, fields, the swept constants). Never the name of a
    function the engine recognises by its role, so renaming one changes nothing."""
    out: set[bytes] = set()
    for r in rules:
        out.update(n.encode() for n in profile_mod.tokens(r.profile))
    return tuple(sorted(out))


@functools.cache
def load_rules(profile: Profile | None = None) -> tuple[Rule, ...]:
    """Every shipped rule, bound to ``profile`` (default: each rule file's own)."""
    files = profile_mod.shipped()
    rules = [parse_rule(p.name, p.read_bytes(), profile)
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
