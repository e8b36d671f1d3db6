"""The on-disk cache under ``$XDG_CACHE_HOME/vpcheck``: content-addressed, bounded, shared.

Entries are addressed by a digest of what produced them (the tool's code and
rules, the rule selection, the blob ids read), so an entry is never stale: a
changed input is a different key. Several vpcheck processes may use the cache
at once: writes go to a temporary file in the same directory and are moved
into place with ``os.replace`` (atomic on POSIX), readers treat a missing,
half-pruned or unreadable entry as a miss, and pruning tolerates entries that
vanish under it. The cache is bounded by size; the least recently written
entries go first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..findings import Finding, Note, PatchRef

DEFAULT_LIMIT = 256 * 1024 * 1024  # bytes; VPCHECK_CACHE_MB overrides


def root() -> Path:
    from .tree import cache_dir

    return cache_dir()


def limit() -> int:
    try:
        return int(os.environ["VPCHECK_CACHE_MB"]) * 1024 * 1024
    except (KeyError, ValueError):
        return DEFAULT_LIMIT


def digest(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


@functools.cache
def code_version() -> str:
    """Digest of the analyzer's sources and rule files: any change is a new cache."""
    from .. import __version__

    h = hashlib.sha256(__version__.encode())
    pkg = Path(__file__).resolve().parents[1]
    for p in sorted(pkg.rglob("*.py")):
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0" + p.read_bytes())
    from ..profile import shipped

    rules = shipped()
    for p in sorted((r for r in rules.iterdir() if r.name.endswith(".toml")),
                    key=lambda r: r.name):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    for p in _parser_binaries():
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:32]


def _parser_binaries() -> list[Path]:
    """The compiled tree-sitter runtime and C grammar: the parse trees every finding is
    read from are theirs, and ``pip install -U tree-sitter-c`` keeps the cache."""
    import tree_sitter
    import tree_sitter_c

    return [p for mod in (tree_sitter, tree_sitter_c)
            for p in sorted(Path(mod.__file__).resolve().parent.iterdir())
            if p.suffix in (".so", ".pyd", ".dylib")]


def _path(space: str, key: str) -> Path:
    return root() / space / key[:2] / f"{key}.json"


def load(space: str, key: str) -> Any | None:
    """The JSON value stored under ``key``, or None (miss, unreadable, or corrupt)."""
    try:
        return json.loads(_path(space, key).read_bytes())
    except (OSError, ValueError):
        return None


def store(space: str, key: str, value: Any) -> None:
    """Write atomically; a cache that cannot be written is not an error."""
    path = _path(space, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(value, separators=(",", ":")).encode())
            os.replace(tmp, path)
        except BaseException:
            _unlink(Path(tmp))
            raise
    except OSError:
        return


def prune(space: str, max_bytes: int | None = None) -> int:
    """Delete the oldest entries until ``space`` fits in ``max_bytes``; returns bytes freed."""
    max_bytes = limit() if max_bytes is None else max_bytes
    entries = []
    for p in (root() / space).glob("*/*.json"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    freed = 0
    for _, size, p in sorted(entries):
        if total - freed <= max_bytes:
            break
        if _unlink(p):
            freed += size
    return freed


def _unlink(p: Path) -> bool:
    try:
        p.unlink()
        return True
    except OSError:
        return False


# --- findings as JSON -----------------------------------------------------


def finding_to_json(f: Finding) -> dict[str, Any]:
    d = asdict(f)
    d["counterexample"] = dict(f.counterexample) if f.counterexample is not None else None
    return d


def finding_from_json(d: dict[str, Any]) -> Finding:
    d = dict(d)
    d["notes"] = tuple(Note(**n) for n in d.get("notes") or ())
    d["patch"] = PatchRef(**d["patch"]) if d.get("patch") else None
    return Finding(**d)


def findings_to_json(fs: Iterable[Finding]) -> list[dict[str, Any]]:
    return [finding_to_json(f) for f in fs]


def findings_from_json(ds: Sequence[dict[str, Any]]) -> list[Finding] | None:
    """None when an entry no longer fits the Finding record (read as a miss)."""
    try:
        return [finding_from_json(d) for d in ds]
    except (TypeError, KeyError, AttributeError):
        return None
