"""The registry below the checks: each check module registers one function with
the schema of its rule's params and the inputs its verdict reads.

From the declared inputs the runner builds the verdict-cache key for series
mode, so the engine holds no list of rule names and a new rule whose inputs
are declared never reuses a stale verdict.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Check = Callable[[Any, Any], Iterable[Any]]  # (Rule, Facts) -> Findings

# Inputs a check may declare: roles the engine recognises by what the code does.
ROLES = ("entries", "pack", "vp_helpers", "allocation")


@dataclass(frozen=True)
class Spec:
    """A registered check: its function, the params it takes, the roles it reads."""

    name: str
    fn: Check
    params: Mapping[str, tuple[type, bool]] = field(default_factory=dict)
    reads: tuple[str, ...] = ()  # roles; empty: a cheap check, run every time

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if unknown := set(self.reads) - set(ROLES):
            raise ValueError(f"check {self.name}: unknown inputs {sorted(unknown)}")


CHECKS: dict[str, Spec] = {}


def check(name: str, params: Mapping[str, tuple[type, bool]] | None = None,
          reads: tuple[str, ...] = ()) -> Callable[[Check], Check]:
    """Register ``fn`` as the check ``name``; ``params``: key -> (type, required)."""
    def register(fn: Check) -> Check:
        CHECKS[name] = Spec(name, fn, params or {}, reads)
        return fn

    return register


_loaded = False


def discover() -> dict[str, Spec]:
    """Import every module of the checks package once (each registers itself)."""
    global _loaded
    if not _loaded:
        pkg = importlib.import_module(__package__)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name != "registry":
                importlib.import_module(f"{__package__}.{mod.name}")
        _loaded = True
    return CHECKS


def validate_params(source: str, spec: Spec, params: Mapping[str, Any]) -> str | None:
    """An error message naming ``source`` if ``params`` does not fit the schema."""
    for key in params:
        if key not in spec.params:
            return f"{source}: unknown param {key!r} for check {spec.name}"
    for key, (ty, required) in spec.params.items():
        if key not in params:
            if required:
                return f"{source}: missing param {key!r} for check {spec.name}"
            continue
        value = params[key]
        if not isinstance(value, ty) or (ty is int and isinstance(value, bool)):
            return f"{source}: param {key!r} must be a {ty.__name__}"
    return None
