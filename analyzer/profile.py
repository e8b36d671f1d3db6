"""Kernel profiles: the names one kernel family contributes (entry points, ID
space, fields, configuration space), read from ``rules/profiles/NAME.toml``.

The engine and the checks take every kernel name from here, so a second
kernel family is a new data file, not new Python. The file is validated
against :data:`SCHEMA` when it loads: an unknown key or a missing value is
one :class:`~analyzer.ruleset.RuleFileError`-style message naming the file.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from types import MappingProxyType

DEFAULT = "powerpc-kvm-hv"


class ProfileError(Exception):
    """A profile file that does not match the schema."""


# table -> key -> (type, required). A type of ``list`` means a list of str.
SCHEMA: dict[str, dict[str, tuple[type, bool]]] = {
    "": {"name": (str, True), "description": (str, False)},
    "files": {"read": (list, True), "annotations": (list, False)},
    "ids": {"space": (list, True), "count": (str, True), "table_size": (str, True)},
    "fields": {"block_base": (str, True), "table": (str, True), "block_count": (str, True)},
    "config": {"kconfig": (list, True), "arch_defined": (list, False), "nr_cpus": (str, True),
               "stride": (str, True), "nr_cpus_values": (list, True), "strides": (list, True),
               "nr_cpus_range": (list, False), "nr_cpus_kconfig": (str, False),
               "block_count_min": (int, True), "block_count_max": (str, True)},
    "config.variant": {"guard": (str, True)},
    "runtime": {"sanitizers": (list, False), "succeed": (list, False),
                "vp_block_alloc": (list, False)},
}
ENTRY = {"function": (str, True), "what": (str, True), "id_param": (int, False),
         "id_field": (str, False), "bounded_by_id_space": (bool, False)}
TABLES = {"files", "ids", "fields", "config", "runtime", "entries"}


@dataclass(frozen=True)
class Entry:
    """A userspace entry point and where its userspace-chosen ID comes from."""

    function: str
    what: str
    id_param: int | None = None  # 0-based position of the parameter that carries the ID
    id_field: str | None = None  # or the field it is read from (``vcpu->FIELD``)
    bounded_by_id_space: bool = False  # generic code checks the ID space before the call


@dataclass(frozen=True)
class Profile:
    """One kernel family's names and configuration space, as its profile file gives them."""

    name: str
    source: str  # the file it came from, for messages
    files: tuple[str, ...]
    annotations: tuple[str, ...]
    id_space: tuple[str, ...]
    count: str
    table_size: str
    fields: Mapping[str, str]
    kconfig: frozenset[str]
    arch_defined: frozenset[str]
    nr_cpus: str
    stride: str
    nr_cpus_values: tuple[int, ...]
    nr_cpus_range: tuple[int, int]
    strides: tuple[int, ...]
    block_count_min: int
    block_count_max: str
    env: tuple[tuple[str, int], ...]  # fixed names and runtime calls of the modelled host
    variant_guard: str
    entries: tuple[Entry, ...]
    sanitizers: frozenset[str] = field(default_factory=frozenset)
    succeed: frozenset[str] = field(default_factory=frozenset)  # runtime calls: any ID works
    vp_block_alloc: tuple[str, ...] = ()  # runtime calls allocating the VP block
    nr_cpus_kconfig: str | None = None  # the tree's Kconfig file that bounds nr_cpus

    def __hash__(self) -> int:
        return hash((self.name, self.source))

    def __eq__(self, other: object) -> bool:
        """Every field: a profile keys the model's caches (the tree, the roles, the
        engine's bindings), and one that differs only in its host (``replace(p, env=…)``)
        or configuration must not be served another's. The same object is equal at once."""
        if self is other:
            return True
        if not isinstance(other, Profile):
            return False
        return all(getattr(self, f.name) == getattr(other, f.name) for f in dataclass_fields(self))

    def field_name(self, role: str) -> str:
        return self.fields[role]

    def resolve(self, ref: str) -> str:
        """A rule's reference into the profile (``"ids.count"``) -> the name it holds."""
        table, _, key = ref.partition(".")
        value = {"ids": {"count": self.count, "table_size": self.table_size},
                 "fields": dict(self.fields)}.get(table, {}).get(key)
        if value is None:
            raise ProfileError(f"{self.source}: rule refers to unknown profile entry {ref!r}")
        return value


def _check(source: str, where: str, raw: Mapping, schema: Mapping) -> None:
    label = f"[{where}]" if where else "top level"
    for key in set(raw) - set(schema) - (TABLES if not where else {"env", "variant"}):
        raise ProfileError(f"{source}: unknown key {key!r} in {label}")
    for key, (ty, required) in schema.items():
        if key not in raw:
            if required:
                raise ProfileError(f"{source}: missing {key!r} in {label}")
            continue
        value = raw[key]
        ok = isinstance(value, ty) and not (ty is int and isinstance(value, bool))
        if ok and ty is list:
            ok = all(isinstance(v, str | int) and not isinstance(v, bool) for v in value)
        if not ok:
            raise ProfileError(f"{source}: {label} {key} must be a {ty.__name__}")


def _table(source: str, raw: Mapping, dotted: str) -> Mapping:
    node = raw
    for part in dotted.split("."):
        node = node.get(part, {}) if part else node
        if not isinstance(node, Mapping):
            raise ProfileError(f"{source}: [{dotted}] must be a table")
    _check(source, dotted, node, SCHEMA[dotted])
    return node


def _pair(source: str, value: list) -> tuple[int, int]:
    if len(value) != 2 or not all(isinstance(v, int) for v in value) or value[0] > value[1]:
        raise ProfileError(f"{source}: [config] nr_cpus_range must be [low, high]")
    return value[0], value[1]


def _entries(source: str, raw: list) -> tuple[Entry, ...]:
    out = []
    for e in raw:
        _check(source, "entries", e, ENTRY)
        if "id_param" not in e and "id_field" not in e:
            raise ProfileError(f"{source}: entry {e['function']} needs id_param or id_field")
        out.append(Entry(**e))
    if not out:
        raise ProfileError(f"{source}: missing [[entries]]")
    return tuple(out)


def parse(source: str, data: bytes) -> Profile:
    """A profile from TOML bytes; ``source`` names the file in every error."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProfileError(f"{source}: {e}") from None
    top = _table(source, raw, "")
    files, ids, flds = (_table(source, raw, t) for t in ("files", "ids", "fields"))
    cfg, variant = _table(source, raw, "config"), _table(source, raw, "config.variant")
    runtime = _table(source, raw, "runtime")
    env = cfg.get("env", {})
    if not all(isinstance(v, int) for v in env.values()):
        raise ProfileError(f"{source}: [config.env] values must be integers")
    return Profile(
        name=top["name"], source=source, files=tuple(files["read"]),
        annotations=tuple(files.get("annotations", ())), id_space=tuple(ids["space"]),
        count=ids["count"], table_size=ids["table_size"],
        fields=MappingProxyType(dict(flds)), kconfig=frozenset(cfg["kconfig"]),
        arch_defined=frozenset(cfg.get("arch_defined", ())), nr_cpus=cfg["nr_cpus"],
        stride=cfg["stride"], nr_cpus_values=tuple(cfg["nr_cpus_values"]),
        nr_cpus_range=_pair(source, cfg.get("nr_cpus_range", [1, 1 << 20])),
        strides=tuple(cfg["strides"]), block_count_min=cfg["block_count_min"],
        block_count_max=cfg["block_count_max"], env=tuple(sorted(env.items())),
        variant_guard=variant["guard"], entries=_entries(source, raw.get("entries", [])),
        sanitizers=frozenset(runtime.get("sanitizers", ())),
        succeed=frozenset(runtime.get("succeed", ())),
        vp_block_alloc=tuple(runtime.get("vp_block_alloc", ())),
        nr_cpus_kconfig=cfg.get("nr_cpus_kconfig"))


@functools.cache
def shipped():
    """The rule files and profiles shipped as the package ``analyzer.rules``: the
    directory of its ``__init__.py``, which is what ``importlib.resources`` answers for
    a package on disk, without the start-up of its readers (zipfile and more). Through
    ``importlib.resources`` only when the package is not on disk (a zip)."""
    from . import rules

    origin = getattr(rules, "__file__", None)
    if origin and os.path.isfile(origin):
        return Path(origin).parent
    import importlib.resources

    return importlib.resources.files(rules.__name__)


@functools.cache
def load(name: str = DEFAULT) -> Profile:
    """A profile shipped with the package (``analyzer/rules/profiles/NAME.toml``)."""
    res = shipped() / "profiles" / f"{name}.toml"
    if not res.is_file():
        raise ProfileError(f"profiles/{name}.toml: no such profile")
    return parse(f"profiles/{name}.toml", res.read_bytes())


def load_file(path: Path) -> Profile:
    """A profile from any file (a user's own kernel family)."""
    return parse(str(path), path.read_bytes())


def tokens(p: Profile) -> tuple[str, ...]:
    """Names whose presence makes a file worth parsing: the entry points, the ID-space
    and count macros, the fields (headers defining macros those files use follow)."""
    names = {e.function for e in p.entries} | set(p.id_space) | {p.count, p.table_size}
    names |= set(p.fields.values()) | set(p.vp_block_alloc)
    return tuple(sorted(names))
