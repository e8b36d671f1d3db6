"""A patch series as a sequence of snapshots, without touching the user's repo.

Each patch is applied with plain ``git apply`` in a scratch directory outside
any repository, holding only the files the patches touch (read from the
base commit with ``cat-file``). No index and no object store is involved:
the user's work tree, index, HEAD, refs, stash and every file under ``.git``,
modification times included, are never written.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..errors import InputError
from ..findings import Finding, PatchRef
from .gitread import Repo, first_parent_history, is_zero, open_repo
from .patches import Patch, changes, check_paths
from .tree import GIT_ENV, RELEVANT_DIRS, Snapshot, is_relevant


@dataclass(frozen=True)
class Step:
    patch: Patch
    snapshot: Snapshot


@dataclass(frozen=True)
class Series:
    base: Snapshot
    steps: tuple[Step, ...]
    commit: str = ""  # the commit the series is applied on (with preimage overrides, HEAD)


BASE_SEARCH = 1000  # commits of HEAD's first-parent history searched for a patch's base


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
    m = re.search(r"(?P<path>\S+): (?P<why>does not exist|already exists) in (?:index|working "
                  r"directory)", err)
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


def base_constraints(patches: Sequence[Patch]) -> dict[str, str | None]:
    """What the series' base must hold: path -> preimage blob prefix, None = absent.

    The first patch touching a path says what the path was before the
    series: the ``index <pre>..`` blob, or nothing for a new file.
    """
    want: dict[str, str | None] = {}
    seen: set[str] = set()
    for p in patches:
        for ch in changes(p.diff):
            if ch.old is not None and ch.old not in seen:
                # "" = present, any blob (a pure rename or mode change names none)
                want[ch.old] = "" if ch.preimage is None else (
                    None if is_zero(ch.preimage) else ch.preimage)
            if ch.new is not None and ch.new != ch.old and ch.new not in seen:
                want[ch.new] = None  # created, or the target of a rename
            seen.update(x for x in (ch.old, ch.new) if x is not None)
    return want


def _matches(have: dict[str, str | None], want: dict[str, str | None]) -> bool:
    for path, pre in want.items():
        blob = have.get(path)
        if (pre is None) != (blob is None) or (pre is not None and not blob.startswith(pre)):
            return False
    return True


@dataclass(frozen=True)
class Base:
    """Where a series is applied: a commit, and files overridden by preimage blobs."""

    commit: str
    label: str  # for the snapshot's target and messages
    overrides: Mapping[str, str | None]  # path -> blob id (None: absent)


def find_base(repo: Repo, patches: Sequence[Patch], bound: int = BASE_SEARCH) -> Base:
    """The commit on HEAD's first-parent history that the series was written against.

    b4 and send-email hand over one patch at a time with HEAD at the tip of
    the series: checking a patch on HEAD would check it on top of the
    patches that follow it. When no commit within ``bound`` holds every
    preimage (a patch against another branch), HEAD is used with each
    touched file at its preimage blob when the repository has it, and new
    files removed.
    """
    want = base_constraints(patches)
    head = repo.commit("HEAD")
    if not want:
        return Base(head, "HEAD", {})
    for commit, have in first_parent_history(repo, head, sorted(want), bound):
        if _matches(have, want):
            return Base(commit, commit[:12], {})
    overrides: dict[str, str | None] = {}
    specs = sorted({pre for pre in want.values() if pre})
    found = dict(zip(specs, _resolve_blobs(repo, specs), strict=True))
    if repo.shallow and None in found.values():
        raise InputError(f"{patches[0].label}: its base is not in this shallow clone of "
                         f"{repo.path} (fetch more history, e.g. git fetch --deepen=100, or pass "
                         "--base)")
    for path, pre in want.items():
        if pre is None:
            overrides[path] = None
            continue
        if found.get(pre) is not None:  # else HEAD's file: the hunks may still apply
            overrides[path] = found[pre]
    return Base(head, "HEAD+preimages", overrides)


def _resolve_blobs(repo: Repo, prefixes: Sequence[str]) -> list[str | None]:
    out = []
    for pre in prefixes:
        got = repo.try_run("rev-parse", "--verify", "-q", "--end-of-options", f"{pre}^{{blob}}")
        out.append(got.decode().strip() if got else None)
    return out


class _Workdir:
    """A scratch directory outside any repository where ``git apply`` runs like patch(1).

    Only the files a patch touches are written there, from the base commit
    or the preimage blob; nothing is written to any object store, so the
    user's ``.git`` (object mtimes included) stays as it was.
    """

    def __init__(self, repo: Repo, base: Base, tmp: str) -> None:
        self.repo, self.base, self.tmp = repo, base, tmp
        self.root = os.path.join(tmp, "tree")
        os.mkdir(self.root)
        self.present: set[str] = set()  # paths already materialised (or created)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env = {**env, **GIT_ENV, "GIT_CEILING_DIRECTORIES": tmp, "LC_ALL": "C"}

    def materialise(self, patch: Patch) -> None:
        need = [c.old for c in changes(patch.diff)
                if c.old is not None and c.old not in self.present]
        need = list(dict.fromkeys(need))
        if not need:
            return
        modes = self.repo.ls_tree(self.base.commit, need)
        specs, kept = [], []
        for path in need:
            self.present.add(path)
            if path in self.base.overrides:
                sha = self.base.overrides[path]
            else:
                sha = modes.get(path, (None, None))[1]
            if sha is not None:
                specs.append(sha)
                kept.append(path)
        for path, data in zip(kept, self.repo.blobs(specs), strict=True):
            if data is None:
                continue
            dest = os.path.join(self.root, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as fh:
                fh.write(data)
            if modes.get(path, ("100644",))[0] == "100755":
                os.chmod(dest, 0o755)

    def apply(self, patch: Patch) -> dict[str, bytes | None]:
        """Apply ``patch``; the new bytes of every relevant path it touches."""
        self.materialise(patch)
        name = os.path.join(self.tmp, f"{patch.index:04d}.patch")
        with open(name, "wb") as fh:
            fh.write(patch.diff.encode() + (b"" if patch.diff.endswith("\n") else b"\n"))
        import git

        rc, _, err = git.Git(self.root).execute(
            ["git", "-c", "core.autocrlf=false", "-c", "core.symlinks=true", "apply",
             "--whitespace=nowarn", "--allow-empty", name], env=self.env,
            with_extended_output=True, with_exceptions=False, stdout_as_string=False)
        if rc != 0:
            raise _apply_error(patch, err if isinstance(err, str) else
                               err.decode("utf-8", "replace"))
        delta: dict[str, bytes | None] = {}
        for ch in changes(patch.diff):
            if ch.new is not None:
                self.present.add(ch.new)
            if ch.old is not None and ch.old != ch.new:
                delta[ch.old] = None
            if ch.new is not None and is_relevant(ch.new):
                delta[ch.new] = self._read(ch.new)
        return delta

    def _read(self, path: str) -> bytes | None:
        """A regular file's bytes; a symlink or anything else is not read."""
        try:
            fd = os.open(os.path.join(self.root, path), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            return fh.read()


def apply_series(repo_path: str, patches: Sequence[Patch], base: str | None,
                 bound: int = BASE_SEARCH) -> Series:
    """One snapshot per patch, applied on ``base`` (or on what the patches were made from)."""
    for p in patches:
        check_paths(p)
    repo = open_repo(repo_path)
    if base is None:
        trailer = next((p.base_commit for p in patches if p.base_commit), None)
        if trailer and repo.try_run("cat-file", "-e", f"{trailer}^{{commit}}") is not None:
            base = trailer
    where = Base(repo.commit(base), base, {}) if base else find_base(repo, patches, bound)
    files = _relevant_files(repo, where)
    target = f"{repo_path}@{where.label}"
    snap = base_snap = Snapshot(target, files)
    steps = []
    with tempfile.TemporaryDirectory(prefix="vpcheck-") as tmp:
        work = _Workdir(repo, where, tmp)
        for p in patches:
            snap = snap.with_files(work.apply(p), f"{target}+{p.index}")
            steps.append(Step(p, snap))
    return Series(base_snap, tuple(steps), where.commit)


def _relevant_files(repo: Repo, base: Base,
                    known: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """The relevant files of the base commit, with the preimage overrides applied.
    ``known``: blob id -> bytes already read (commits of a range share most files:
    each version is read, and held, once)."""
    out = repo.run("ls-tree", "-r", "-z", "--full-tree", base.commit, "--", *RELEVANT_DIRS)
    entries = {}
    for rec in out.split(b"\0"):
        if rec:
            meta, _, path = rec.partition(b"\t")
            mode, kind, sha = meta.split()
            if kind == b"blob" and is_relevant(path.decode()):
                entries[path.decode()] = sha.decode()
    for path, sha in base.overrides.items():
        if is_relevant(path):
            if sha is None:
                entries.pop(path, None)
            else:
                entries[path] = sha
    known = {} if known is None else known
    missing = list(dict.fromkeys(sha for sha in entries.values() if sha not in known))
    known.update(zip(missing, repo.blobs(missing), strict=True))
    return {p: known[entries[p]] for p in sorted(entries) if known[entries[p]] is not None}


def worktree_patch(repo_path: str, staged: bool) -> tuple[Patch, str]:
    """The uncommitted change (staged only, or the work tree) as one patch on HEAD."""
    repo = open_repo(repo_path)
    head = repo.commit("HEAD")
    args = ["diff", "--no-ext-diff", "--no-textconv", "--no-color", "--binary", "--full-index",
            "--no-renames", "--src-prefix=a/", "--dst-prefix=b/", "--no-relative"]
    args += ["--cached", head] if staged else [head]
    diff = repo.run(*args, "--").decode("utf-8", "replace")
    what = "staged changes" if staged else "uncommitted changes"
    return Patch(1, 1, what, "index" if staged else "work tree", diff), head


def range_series(repo_path: str, rev_range: str) -> Series:
    """``BASE..HEAD``: every commit is already a snapshot; nothing to apply."""
    repo = open_repo(repo_path)
    base_rev, _, head_rev = rev_range.partition("..")
    base = repo.commit(base_rev)
    head = repo.commit(head_rev or "HEAD")
    out = repo.run("log", "--first-parent", "--reverse", "--format=%H%x00%s",
                   f"{base}..{head}", "--").decode("utf-8", "replace")
    commits = [ln.split("\0", 1) for ln in out.splitlines() if ln]
    if not commits:
        raise InputError(f"{rev_range}: empty range")
    steps = []
    known: dict[str, bytes | None] = {}
    for i, (sha, subject) in enumerate(commits, 1):
        p = Patch(i, len(commits), subject, sha[:12], "")
        files = _relevant_files(repo, Base(sha, sha[:12], {}), known)
        steps.append(Step(p, Snapshot(f"{repo_path}@{sha[:12]}", files)))
    files = _relevant_files(repo, Base(base, base_rev, {}), known)
    return Series(Snapshot(f"{repo_path}@{base_rev}", files), tuple(steps), base)


# --- attribution ----------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    new: tuple[Finding, ...]  # in the result, not at the base; tagged with the patch
    fixed: tuple[Finding, ...]  # at the base, gone from the result
    all: tuple[Finding, ...]  # everything in the result
    per_patch: tuple[tuple[Finding, ...], ...]  # what each patch adds (when asked for)


class _Analyses:
    """Findings per snapshot, computed on first use; index -1 is the base.

    A snapshot whose relevant files equal its predecessor's shares its
    findings: a patch that touches no relevant file cannot change a verdict.
    """

    def __init__(self, series: Series, analyse: Callable[[Snapshot], list[Finding]]) -> None:
        self.snaps = [series.base, *(s.snapshot for s in series.steps)]
        self.analyse = analyse
        self.memo: dict[int, list[Finding]] = {}

    def at(self, i: int) -> list[Finding]:
        k = i + 1
        while k > 0 and self.snaps[k].files == self.snaps[k - 1].files:
            k -= 1
        if k not in self.memo:
            self.memo[k] = self.analyse(self.snaps[k])
        return self.memo[k]

    def prints(self, i: int) -> set[str]:
        return {f.fingerprint for f in self.at(i)}


def attribute(series: Series, analyse: Callable[[Snapshot], list[Finding]],
              per_patch: bool = False) -> Verdict:
    """Run the checks and say which patch brought each finding.

    Findings are matched across snapshots by fingerprint (rule, function,
    normalised text), so a finding that only moved is not new. Only the
    base and the result are needed to know what is new and what is fixed;
    intermediate snapshots are analysed from the end backwards, and only
    until every new finding's patch is known (all of them for ``per_patch``).
    """
    runs = _Analyses(series, analyse)
    n = len(series.steps)
    base, final = runs.at(-1), runs.at(n - 1)
    base_prints, final_prints = runs.prints(-1), runs.prints(n - 1)

    def ref(i: int) -> PatchRef:
        p = series.steps[i].patch
        return PatchRef(p.index, p.total, p.subject)

    fresh = [f for f in final if f.fingerprint not in base_prints]
    first: dict[str, int] = {}
    pending = {f.fingerprint for f in fresh}
    i = n - 2
    while pending and i >= 0:  # the first patch after which the finding stays
        present = runs.prints(i)
        first.update((fp, i + 1) for fp in pending - present)
        pending &= present
        i -= 1
    new = tuple(replace(f, patch=ref(first.get(f.fingerprint, 0))) for f in fresh)
    fixed = tuple(f for f in base if f.fingerprint not in final_prints) if n else ()
    steps: list[tuple[Finding, ...]] = []
    if per_patch:
        before = base_prints
        for i in range(n):
            steps.append(tuple(replace(f, patch=ref(i)) for f in runs.at(i)
                               if f.fingerprint not in before))
            before = runs.prints(i)
    return Verdict(new, fixed, tuple(final), tuple(steps))
