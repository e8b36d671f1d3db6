"""History: which commit brought each finding in, and which took it out.

The first-parent commits of a range that touch a relevant path are listed by
one ``git log --raw`` (the blob ids each commit changes, against its first
parent), so the relevant files of every commit are known without reading a
tree: a kernel repository's 90k files are never walked. Each commit's
*snapshot key* is its tuple of relevant (path, blob id) pairs; commits with
a key already seen cost nothing. Findings per key are cached on disk
(:mod:`analyzer.sources.cache`), parse trees and facts by blob id in memory, and the
snapshots left to analyse may be spread over processes.

A finding is followed by its fingerprint (rule, function, normalised text:
no line numbers, no path), so it survives line shifts and file renames. It
may be present over several intervals: a finding fixed and later brought
back is a regression, and its current interval names the commit to put in
``Fixes:``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .findings import Finding
from .ruleset import Rule
from .sources import cache
from .sources.tree import GIT_ENV, RELEVANT_DIRS, Snapshot, is_relevant, open_repo, resolve_commit

CACHE_SPACE = "history"
_REGULAR = (b"100644", b"100755")  # file modes read; symlinks and submodules are not files


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    date: str  # author date, ISO 8601


@dataclass(frozen=True)
class State:
    """The relevant files at one commit: sorted (path, blob id) pairs."""

    commit: Commit
    blobs: tuple[tuple[str, str], ...]
    at_base: bool = False  # the range's base, not a commit of the range


@dataclass(frozen=True)
class Interval:
    introduced: Commit
    fixed: Commit | None  # None: still present at the end of the range
    at_base: bool = False  # already present at the range's base: introduced earlier


@dataclass(frozen=True)
class Entry:
    finding: Finding  # as it stands in the last snapshot that has it
    intervals: tuple[Interval, ...]

    @property
    def current(self) -> Interval:
        return self.intervals[-1]

    @property
    def present(self) -> bool:
        return self.current.fixed is None

    @property
    def regression(self) -> bool:
        return len(self.intervals) > 1


@dataclass(frozen=True)
class Stats:
    commits: int  # first-parent commits of the range touching a relevant path
    snapshots: int  # distinct snapshot keys among them
    analysed: int  # snapshots the checks actually ran on
    cached: int  # snapshots whose findings came from the disk cache
    skipped: tuple[tuple[str, str], ...] = ()  # (commit, why) for unreadable snapshots


@dataclass(frozen=True)
class History:
    target: str
    entries: tuple[Entry, ...]
    stats: Stats


def fixes_tag(c: Commit) -> str:
    """The kernel's ``Fixes:`` line: 12 hex digits and the subject in ("…")."""
    return f'Fixes: {c.sha[:12]} ("{c.subject}")'


# --- the walk -------------------------------------------------------------


def _git(repo, *args: str) -> bytes:
    import git

    try:
        return repo.git.execute(["git", *args], env={**os.environ, **GIT_ENV},
                                stdout_as_string=False, strip_newline_in_stdout=False)
    except git.GitCommandError as e:
        why = (e.stderr or "").strip().splitlines()
        raise InputError(f"git {args[0]}: {why[-1] if why else e}") from None


def parse_range(repo, rev_range: str | None) -> tuple[str | None, str]:
    """(base sha or None, head sha) of ``A..B``, ``B`` or nothing (HEAD)."""
    if rev_range is None:
        return None, resolve_commit(repo, "HEAD").hexsha
    if "..." in rev_range:
        raise InputError(f"{rev_range}: symmetric ranges are not supported; use A..B")
    base, dots, head = rev_range.partition("..")
    if not dots:
        return None, resolve_commit(repo, rev_range).hexsha
    return resolve_commit(repo, base or "HEAD").hexsha, resolve_commit(repo, head or "HEAD").hexsha


def _log(repo, base: str | None, head: str) -> list[tuple[Commit, dict[str, str | None]]]:
    """First-parent commits touching a relevant directory, oldest first, each with the
    relevant paths it changes against its first parent (None: deleted)."""
    spec = f"{base}..{head}" if base else head
    out = _git(repo, "log", "--first-parent", "--diff-merges=first-parent", "--no-renames",
               "--raw", "--no-abbrev", "-z", "--reverse", "--format=%x01%H%x00%s%x00%aI",
               spec, "--", *RELEVANT_DIRS)
    commits = []
    for rec in out.split(b"\x01")[1:]:
        fields = rec.split(b"\0")
        sha, subject, date = (f.decode("utf-8", "replace") for f in fields[:3])
        changes: dict[str, str | None] = {}
        raw = fields[3:]
        for meta, path in zip(raw[0::2], raw[1::2], strict=False):
            parts = meta.strip().split()
            if len(parts) < 5:
                continue
            p = path.decode("utf-8", "surrogateescape")
            if is_relevant(p):
                blob = parts[3].decode()
                gone = parts[4].startswith(b"D") or parts[1] not in _REGULAR
                changes[p] = None if gone else blob
        commits.append((Commit(sha, subject, date), changes))
    return commits


def tree_blobs(repo, rev: str) -> dict[str, str]:
    """Relevant (path → blob id) of a commit, by path with ``git ls-tree``: no tree walk."""
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", rev, "--", *RELEVANT_DIRS)
    blobs = {}
    for rec in out.split(b"\0"):
        meta, _, path = rec.partition(b"\t")
        parts = meta.split()
        p = path.decode("utf-8", "surrogateescape")
        if len(parts) == 3 and parts[0] in _REGULAR and is_relevant(p):
            blobs[p] = parts[2].decode()
    return blobs


def _commit_info(repo, sha: str) -> Commit:
    out = _git(repo, "log", "-1", "--format=%H%x00%s%x00%aI", sha, "--").rstrip(b"\n")
    fields = out.decode("utf-8", "replace").split("\0")
    return Commit(*fields[:3])


def walk(repo, rev_range: str | None) -> list[State]:
    """The states to check: the base (if any), then every commit that changes a relevant
    path. Commits that change nothing relevant are left out."""
    base, head = parse_range(repo, rev_range)
    files: dict[str, str] = tree_blobs(repo, base) if base else {}
    states = [State(_commit_info(repo, base), tuple(sorted(files.items())), at_base=True)
              ] if base else []
    for commit, changes in _log(repo, base, head):
        for path, blob in changes.items():
            if blob is None:
                files.pop(path, None)
            else:
                files[path] = blob
        states.append(State(commit, tuple(sorted(files.items()))))
    return states


# --- analysing snapshots ----------------------------------------------------


def _rule_data():
    """The shipped rule files and profiles (``rules/`` of the checkout)."""
    from .profile import shipped

    return shipped()


def rules_digest(rules: Sequence[Rule]) -> str:
    """Digest of the data a verdict depends on besides the code: every shipped rule file
    (``*.toml``) and profile (``profiles/*.toml``), and the file of a profile a rule was
    bound to from elsewhere. A changed profile must not reuse a cached verdict."""
    root = _rule_data()
    files = [(p.name, p) for p in root.iterdir() if p.name.endswith(".toml")]
    files += [(f"profiles/{p.name}", p) for p in (root / "profiles").iterdir()
              if p.name.endswith(".toml")]
    parts = [f"{name}:{cache.digest(p.read_bytes())}" for name, p in sorted(files)]
    for source in sorted({r.profile.source for r in rules}):
        path = Path(source)
        if not source.startswith("profiles/") and path.is_file():
            parts.append(f"{source}:{cache.digest(path.read_bytes())}")
    return cache.digest(*parts)


def snapshot_key(blobs: tuple[tuple[str, str], ...], rule_ids: Sequence[str],
                 rules_key: str) -> str:
    """What a snapshot's verdicts depend on: the code, the rules selected and their data
    (:func:`rules_digest`), and the blobs the checks read."""
    return cache.digest(cache.code_version(), ",".join(rule_ids), rules_key,
                        *(f"{p}:{b}" for p, b in blobs))


def _keys(repo_path: str, states: Sequence[State], rules: Sequence[Rule]) -> list[str]:
    """Each state's snapshot key: the blobs the checks can read. A ``.c`` file holding
    none of the rules' tokens is not parsed (facts.extract's prefilter) and cannot change
    a finding, so most commits to arch/powerpc/kvm cost one blob read, not an analysis.
    Every other file counts whatever it holds: a header is parsed for the macros the
    parsed files use (``MAX_SMT_THREADS``), and the Kconfig gives NR_CPUS's range."""
    from .ruleset import tokens

    toks, repo = tokens(rules), _repo(repo_path)
    rule_ids, rules_key = tuple(r.id for r in rules), rules_digest(rules)
    read: dict[str, bool] = {}

    def matters(path: str, blob: str) -> bool:
        if not path.endswith(".c"):
            return True
        if blob not in read:
            data = _read_blob(repo, blob)
            read[blob] = any(t in data for t in toks)
        return read[blob]

    keys = []
    for s in states:
        kernel = any(p.startswith("arch/powerpc/kvm/") for p, _ in s.blobs)
        kept = tuple((p, b) for p, b in s.blobs if matters(p, b))
        keys.append(snapshot_key((("<kvm>", str(kernel)), *kept), rule_ids, rules_key))
    return keys


@functools.cache
def _repo(path: str):
    return open_repo(path)


def _read_blob(repo, blob: str) -> bytes:
    return repo.odb.stream(bytes.fromhex(blob)).read()


def analyse_chunk(job: tuple[str, tuple[str, ...], list[tuple[str, tuple]]]
                  ) -> list[tuple[str, list | str]]:
    """Findings (as JSON) of each (key, blobs) of one contiguous stretch of history, or
    the reason it could not be read. Top level: runs in spawned worker processes."""
    return list(_analyse_items(*job))


def _analyse_items(repo_path: str, rule_ids: tuple[str, ...], items: Iterable[tuple[str, tuple]]):
    from . import checks, ruleset
    from .c import facts

    rules = ruleset.select(list(rule_ids))
    tokens = ruleset.tokens(rules)
    repo = _repo(repo_path)
    data: dict[str, bytes] = {}
    for key, blobs in items:
        # keep only the previous snapshot's blobs: neighbours share almost all of them
        data = {b: data[b] if b in data else _read_blob(repo, b) for _, b in blobs}
        if not any(p.startswith("arch/powerpc/kvm/") for p, _ in blobs):
            yield key, []
            continue
        snap = Snapshot(f"{repo_path}@{key[:12]}", {p: data[b] for p, b in blobs})
        try:
            found = checks.run(rules, facts.extract(snap, tokens), reuse=True)
        except InputError as e:
            yield key, str(e)
            continue
        except Exception as e:  # one old snapshot the engine trips on must not end the walk
            yield key, f"internal error ({type(e).__name__}: {e})"
            continue
        yield key, cache.findings_to_json(found)


def _chunks(items: list, n: int) -> list[list]:
    """``n`` contiguous stretches: neighbours share most blobs, so each worker's
    parse, facts and verdict caches keep paying off."""
    size = -(-len(items) // n) if items else 1
    return [items[i:i + size] for i in range(0, len(items), size)]


def analyse(repo_path: str, states: Sequence[State], rules: Sequence[Rule], jobs: int = 1,
            progress: Callable[[int], Iterable] | None = None
            ) -> tuple[list[list[Finding] | str], Stats]:
    """Findings of every state (or why it could not be read), using the caches."""
    rule_ids = tuple(r.id for r in rules)
    keys = _keys(repo_path, states, rules)
    by_key: dict[str, list[Finding] | str] = {}
    todo: dict[str, tuple] = {}
    cached = 0
    for key, s in zip(keys, states, strict=True):
        if key in by_key or key in todo:
            continue
        hit = cache.load(CACHE_SPACE, key)
        found = cache.findings_from_json(hit) if isinstance(hit, list) else None
        if found is not None:
            by_key[key] = found
            cached += 1
        else:
            todo[key] = s.blobs
    items = list(todo.items())
    for key, value in _run(repo_path, rule_ids, items, jobs, progress):
        if isinstance(value, str):
            by_key[key] = value
            continue
        cache.store(CACHE_SPACE, key, value)
        by_key[key] = cache.findings_from_json(value) or []
    if items:
        cache.prune(CACHE_SPACE)
    skipped = tuple((s.commit.sha, by_key[k]) for k, s in zip(keys, states, strict=True)
                    if isinstance(by_key[k], str))
    stats = Stats(len([s for s in states if not s.at_base]), len(set(keys)), len(items), cached,
                  skipped)
    return [by_key[k] for k in keys], stats


def _run(repo_path: str, rule_ids: tuple[str, ...], items: list, jobs: int,
         progress: Callable[[int], Iterable] | None):
    """Run :func:`analyse_chunk` here (one job) or in ``jobs`` spawned processes."""
    if not items:
        return
    bar = progress(len(items)) if progress else None
    if jobs <= 1 or len(items) < 2:
        for pair in _analyse_items(repo_path, rule_ids, items):
            yield pair
            _tick(bar, 1)
    else:
        chunks = _chunks(items, min(jobs * 2, len(items)))
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(jobs, len(chunks))) as pool:
            for part in pool.imap(analyse_chunk,
                                  [(repo_path, rule_ids, c) for c in chunks]):
                yield from part
                _tick(bar, len(part))
    if bar is not None:
        bar.close()


def _tick(bar, n: int) -> None:
    if bar is not None:
        bar.update(n)


# --- attribution -----------------------------------------------------------


def attribute(states: Sequence[State], results: Sequence[list[Finding] | str]
              ) -> tuple[Entry, ...]:
    """Intervals of presence per fingerprint. An unreadable snapshot changes nothing."""
    open_at: dict[str, tuple[State, Finding]] = {}
    closed: dict[str, list[Interval]] = {}
    last: dict[str, Finding] = {}
    order: list[str] = []
    for state, found in zip(states, results, strict=True):
        if isinstance(found, str):
            continue
        now = {f.fingerprint: f for f in found}
        for fp, f in now.items():
            last[fp] = f
            if fp not in open_at:
                open_at[fp] = (state, f)
                if fp not in closed:
                    closed[fp] = []
                    order.append(fp)
        for fp in [fp for fp in open_at if fp not in now]:
            start, _ = open_at.pop(fp)
            closed[fp].append(Interval(start.commit, state.commit, start.at_base))
    for fp, (start, _) in open_at.items():
        closed[fp].append(Interval(start.commit, None, start.at_base))
    entries = [Entry(last[fp], tuple(closed[fp])) for fp in order]
    return tuple(sorted(entries, key=lambda e: (not e.present, e.finding.sort_key())))


def run(repo_path: str, rev_range: str | None, rules: Sequence[Rule], jobs: int = 1,
        progress: Callable[[int], Iterable] | None = None) -> History:
    states = walk(_repo(repo_path), rev_range)
    if not states:
        raise InputError(f"{rev_range or 'HEAD'}: no commit in the range touches "
                         f"{', '.join(RELEVANT_DIRS)}")
    results, stats = analyse(repo_path, states, rules, jobs, progress)
    return History(f"{repo_path}@{rev_range or 'HEAD'}", attribute(states, results), stats)


def fixes_tags(repo_path: str, rev: str, fingerprints: Iterable[str],
               rules: Sequence[Rule] | None = None) -> dict[str, str]:
    """``Fixes:`` lines of the findings ``fingerprints`` present at ``rev``, found in the
    first-parent history of ``rev``. A fingerprint not present at ``rev`` has no line."""
    from . import ruleset

    rules = tuple(rules) if rules is not None else ruleset.select()
    h = run(repo_path, rev, rules)
    wanted = set(fingerprints)
    return {e.finding.fingerprint: fixes_tag(e.current.introduced) for e in h.entries
            if e.present and e.finding.fingerprint in wanted}


def fixes_line(repo_path: str, rev: str, fingerprint: str,
               rules: Sequence[Rule] | None = None) -> str | None:
    """The ``Fixes:`` line a patch removing the finding ``fingerprint`` at ``rev`` carries."""
    return fixes_tags(repo_path, rev, [fingerprint], rules).get(fingerprint)
