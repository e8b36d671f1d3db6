"""A patch series as a sequence of snapshots, without touching the user's repo.

Patches are applied with ``git apply --cached`` to a temporary index whose new
objects go to a temporary object directory (the repository's own objects are
an alternate). The user's work tree, index, HEAD, refs, stash and
``.git/objects`` are never written.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .errors import InputError
from .findings import Finding, PatchRef
from .patches import Patch, changes, check_paths
from .source import GIT_ENV, Snapshot, is_relevant, open_repo, resolve_commit, tree_files


@dataclass(frozen=True)
class Step:
    patch: Patch
    snapshot: Snapshot


@dataclass(frozen=True)
class Series:
    base: Snapshot
    steps: tuple[Step, ...]


class _TempGit:
    """git commands against a throwaway index and object directory."""

    def __init__(self, repo, tmp: str) -> None:
        self.repo = repo
        objects = os.path.join(tmp, "objects")
        os.makedirs(objects)
        self.env = {
            **os.environ, **GIT_ENV,
            "GIT_INDEX_FILE": os.path.join(tmp, "index"),
            "GIT_OBJECT_DIRECTORY": objects,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": os.path.join(repo.git_dir, "objects"),
        }
        self.tmp = tmp

    def _git(self, args: list[str]) -> tuple[int, bytes, str]:
        """One git command through GitPython, in the temporary index/object store."""
        rc, out, err = self.repo.git.execute(
            ["git", "-c", "core.hooksPath=/dev/null", *args], env=self.env,
            with_extended_output=True, with_exceptions=False, stdout_as_string=False,
            strip_newline_in_stdout=False)
        return rc, out, err.decode("utf-8", "replace") if isinstance(err, bytes) else err

    def run(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self._git(list(args))
        if check and rc != 0:
            raise RuntimeError(f"git {args[0]} failed: {err.strip()}")
        return rc, out.decode("utf-8", "replace"), err

    def blob(self, spec: str) -> bytes:
        rc, out, err = self._git(["cat-file", "blob", spec])
        if rc != 0:
            raise RuntimeError(f"git cat-file blob {spec}: {err.strip()}")
        return out

    def index_entry(self, path: str) -> tuple[str, str] | None:
        _, out, _ = self.run("ls-files", "-s", "--", path)
        if not out.strip():
            return None
        mode, sha, _ = out.split(None, 2)
        return mode, sha

    def resolve_blob(self, abbrev: str) -> str | None:
        rc, out, _ = self.run("rev-parse", "--verify", "-q", f"{abbrev}^{{blob}}", check=False)
        return out.strip() if rc == 0 else None


def _apply_error(patch: Patch, err: str) -> InputError:
    m = re.search(r"patch failed: (?P<path>.+):(?P<line>\d+)", err)
    if m:
        path, line = m.group("path"), int(m.group("line"))
        hunk = _hunk_header(patch.diff, path, line)
        where = f"{path}: hunk {hunk}" if hunk else f"{path}:{line}"
        return InputError(f"{patch.label} does not apply: {where}")
    m = re.search(r"corrupt patch at line (\d+)", err)
    if m:
        return InputError(f"{patch.label} is malformed: corrupt patch at line {m.group(1)} "
                          "of its diff")
    m = re.search(r"(?P<path>\S+): (?P<why>does not exist in index|already exists in index)", err)
    if m:
        return InputError(f"{patch.label} does not apply: {m.group('path')} {m.group('why')}")
    first = next((ln.removeprefix("error: ") for ln in err.splitlines() if ln.strip()), "")
    return InputError(f"{patch.label} does not apply: {first or 'git apply failed'}")


def _hunk_header(diff: str, path: str, line: int) -> str | None:
    section = re.search(rf"^diff --git a/{re.escape(path)} .*?(?=^diff --git |\Z)", diff,
                        re.M | re.S)
    body = section.group(0) if section else diff
    for m in re.finditer(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@", body, re.M):
        if int(m.group(1)) == line:
            return m.group(0)
    return None


def apply_series(repo_path: str, patches: Sequence[Patch], base: str | None) -> Series:
    """One snapshot per patch, applied on ``base`` (or on what the patches were made from)."""
    for p in patches:
        check_paths(p)
    repo = open_repo(repo_path)
    explicit = base is not None
    if base is None:
        trailer = next((p.base_commit for p in patches if p.base_commit), None)
        base = trailer if trailer and _exists(repo, trailer) else "HEAD"
    commit = resolve_commit(repo, base)
    files = tree_files(commit.tree)
    with tempfile.TemporaryDirectory(prefix="vpcheck-") as tmp:
        git = _TempGit(repo, tmp)
        git.run("read-tree", commit.hexsha)
        if not explicit:
            files.update(_use_preimages(git, patches))
        snap = Snapshot(f"{repo_path}@{base}", files)
        base_snap = snap
        steps = []
        for p in patches:
            path = os.path.join(tmp, f"{p.index:04d}.patch")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(p.diff if p.diff.endswith("\n") else p.diff + "\n")
            rc, _, err = git.run("apply", "--cached", "--check", "--allow-empty", path,
                                 check=False)
            if rc != 0:
                raise _apply_error(p, err)
            git.run("apply", "--cached", "--allow-empty", path)
            tree = git.run("write-tree")[1].strip()
            delta: dict[str, bytes | None] = {}
            for ch in changes(p.diff):
                if ch.old is not None and ch.old != ch.new:
                    delta[ch.old] = None
                if ch.new is not None and is_relevant(ch.new):
                    delta[ch.new] = git.blob(f"{tree}:{ch.new}")
            snap = snap.with_files(delta, f"{repo_path}@{base}+{p.index}")
            steps.append(Step(p, snap))
    return Series(base_snap, tuple(steps))


def _exists(repo, rev: str) -> bool:
    try:
        resolve_commit(repo, rev)
        return True
    except InputError:
        return False


def _use_preimages(git: _TempGit, patches: Sequence[Patch]) -> dict[str, bytes]:
    """Start each file from the blob the series was made against.

    A series checked before sending is usually already committed: HEAD holds
    its result, not its base. The ``index <pre>..<post>`` lines name the
    preimage blobs, which exist in the repository; put them in the temporary
    index so the series applies to what it was written against.
    """
    seen: set[str] = set()
    out: dict[str, bytes] = {}
    for p in patches:
        for ch in changes(p.diff):
            if ch.old is None or ch.old in seen:
                continue
            seen.add(ch.old)
            if ch.preimage is None or set(ch.preimage) == {"0"}:
                continue
            entry = git.index_entry(ch.old)
            if entry is not None and entry[1].startswith(ch.preimage):
                continue
            sha = git.resolve_blob(ch.preimage)
            if sha is None:
                continue
            mode = entry[0] if entry else "100644"
            git.run("update-index", "--add", "--cacheinfo", f"{mode},{sha},{ch.old}")
            if is_relevant(ch.old):
                out[ch.old] = git.blob(sha)
    return out


def range_series(repo_path: str, rev_range: str) -> Series:
    """``BASE..HEAD``: every commit is already a snapshot; nothing to apply."""
    repo = open_repo(repo_path)
    base_rev, _, head_rev = rev_range.partition("..")
    base = resolve_commit(repo, base_rev)
    head = resolve_commit(repo, head_rev or "HEAD")
    commits = list(repo.iter_commits(f"{base.hexsha}..{head.hexsha}", first_parent=True,
                                     reverse=True))
    if not commits:
        raise InputError(f"{rev_range}: empty range")
    steps = []
    for i, c in enumerate(commits, 1):
        p = Patch(i, len(commits), c.summary, c.hexsha[:12], "")
        steps.append(Step(p, Snapshot(f"{repo_path}@{c.hexsha[:12]}", tree_files(c.tree))))
    return Series(Snapshot(f"{repo_path}@{base_rev}", tree_files(base.tree)), tuple(steps))


# --- attribution ----------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    new: tuple[Finding, ...]  # in the result, not at the base; tagged with the patch
    fixed: tuple[Finding, ...]  # at the base, gone from the result
    all: tuple[Finding, ...]  # everything in the result
    per_patch: tuple[tuple[Finding, ...], ...]  # what each patch adds to its predecessor


def attribute(series: Series, analyse: Callable[[Snapshot], list[Finding]]) -> Verdict:
    """Run the checks on every snapshot and say which patch brought each finding.

    Findings are matched across snapshots by fingerprint (rule, function,
    normalised text), so a finding that only moved is not new.
    """
    base = analyse(series.base)
    results = [analyse(s.snapshot) for s in series.steps]
    prints = [{f.fingerprint for f in r} for r in results]
    base_prints = {f.fingerprint for f in base}
    final = results[-1] if results else base

    def ref(i: int) -> PatchRef:
        p = series.steps[i].patch
        return PatchRef(p.index, p.total, p.subject)

    per_patch = []
    before = base_prints
    for i, r in enumerate(results):
        per_patch.append(tuple(replace(f, patch=ref(i)) for f in r if f.fingerprint not in before))
        before = prints[i]
    new = []
    for f in final:
        if f.fingerprint in base_prints:
            continue
        first = len(results) - 1
        while first > 0 and f.fingerprint in prints[first - 1]:
            first -= 1
        new.append(replace(f, patch=ref(first)))
    fixed = tuple(f for f in base if f.fingerprint not in prints[-1]) if results else ()
    return Verdict(tuple(new), fixed, tuple(final), tuple(per_patch))
