"""Git: read-only access to the user's repository, and fetches into vpcheck's cache.

Linked worktrees, bare repositories, submodules (a ``.git`` file), a
subdirectory of the work tree and shallow clones all go through ``git``
itself, so every layout git understands works here. Only reading commands
run (``rev-parse``, ``ls-tree``, ``log``, ``cat-file``, ``diff``) and
``GIT_OPTIONAL_LOCKS=0`` stops ``diff`` from refreshing the index: nothing
under ``.git`` is written, modification times included.

What comes from elsewhere (a public-inbox archive, a remote's range) is
fetched by :func:`fetch_to_cache` only, into a bare repository of the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .tree import GIT_ENV, cache_dir, check_remote_url, git_message

_ZERO = re.compile(r"^0+$")


def _env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


@dataclass(frozen=True)
class Repo:
    """One repository, opened by the path the user gave (any directory inside it)."""

    path: str  # what the user passed, for messages
    top: str  # the work tree's top, or the git dir of a bare repository
    handle: object  # the GitPython Repo

    def run(self, *args: str, ok: Sequence[int] = (0,)) -> bytes:
        """Run a read-only git command; failures become one-line InputErrors."""
        rc, out, err = self.handle.git.execute(  # type: ignore[attr-defined]
            ["git", *args], env=_env(), with_extended_output=True, with_exceptions=False,
            stdout_as_string=False, strip_newline_in_stdout=False)
        if rc not in ok:
            raise InputError(f"{self.path}: git {args[0]}: {_last_words(err)}")
        return out

    def try_run(self, *args: str) -> bytes | None:
        rc, out, _ = self.handle.git.execute(  # type: ignore[attr-defined]
            ["git", *args], env=_env(), with_extended_output=True, with_exceptions=False,
            stdout_as_string=False, strip_newline_in_stdout=False)
        return out if rc == 0 else None

    @property
    def shallow(self) -> bool:
        return self.run("rev-parse", "--is-shallow-repository").strip() == b"true"

    def commit(self, rev: str) -> str:
        """The full id of commit ``rev``; one clear line when it is not there."""
        if not rev.strip() or rev.startswith("-"):
            raise InputError(f"{rev!r}: not a revision")
        out = self.try_run("rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}")
        sha = out.decode().strip() if out else ""
        if sha and self.try_run("cat-file", "-e", sha) is not None:
            return sha
        if self.shallow:
            raise InputError(f"{rev}: not in this shallow clone of {self.path} (fetch more "
                             "history, e.g. git fetch --deepen=100, or pass --base)")
        raise InputError(f"{rev}: unknown revision in {self.path}")

    def blobs(self, shas: Iterable[str]) -> list[bytes | None]:
        """Contents of blobs by full id, through GitPython's ``cat-file --batch`` process."""
        import gitdb.exc

        out: list[bytes | None] = []
        odb = self.handle.odb  # type: ignore[attr-defined]
        for sha in shas:
            try:
                stream = odb.stream(bytes.fromhex(sha))
            except (gitdb.exc.BadObject, ValueError):
                out.append(None)
                continue
            out.append(stream.read() if stream.type == b"blob" else None)
        return out

    def ls_tree(self, rev: str, paths: Iterable[str]) -> dict[str, tuple[str, str]]:
        """path -> (mode, blob id) at ``rev`` for those of ``paths`` that exist."""
        paths = sorted(set(paths))
        if not paths:
            return {}
        out = self.run("ls-tree", "-z", "--full-tree", rev, "--", *paths)
        entries = {}
        for rec in out.split(b"\0"):
            if rec:
                meta, _, path = rec.partition(b"\t")
                mode, kind, sha = meta.split()
                if kind == b"blob":
                    entries[path.decode()] = (mode.decode(), sha.decode())
        return entries


def _last_words(err: bytes | str) -> str:
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else err
    lines = [ln.removeprefix("fatal: ").removeprefix("error: ").strip()
             for ln in text.splitlines() if ln.strip()]
    if any("dubious ownership" in ln for ln in lines):
        return ("git refuses to read it: it belongs to another user (see git's "
                "safe.directory setting)")
    return "; ".join(lines[:2]) or "failed"


def open_repo(path: str) -> Repo:
    """Open the repository holding ``path`` (any directory inside a work tree works)."""
    import git  # lazy: GitPython costs ~0.15 s of start-up

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    try:
        handle = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        raise InputError(f"{path}: not a git repository") from None
    top = handle.working_tree_dir or handle.git_dir
    repo = Repo(path, str(top), handle)
    # the first command tells a safe.directory refusal from everything else
    repo.run("rev-parse", "--git-dir")
    return repo


def is_zero(sha: str | None) -> bool:
    return sha is None or _ZERO.match(sha) is not None


def first_parent_history(repo: Repo, head: str, paths: Sequence[str], bound: int
                         ) -> list[tuple[str, dict[str, str | None]]]:
    """``(commit, {path: blob or None})`` for ``head`` and its first parents, newest first.

    One ``ls-tree`` and one ``log --raw`` for the whole walk: the blobs of
    each older commit are derived from the raw diffs of the newer ones.
    """
    state: dict[str, str | None] = {p: None for p in paths}
    for p, (_, sha) in repo.ls_tree(head, paths).items():
        state[p] = sha
    commits = repo.run("rev-list", "--first-parent", f"--max-count={bound}", head,
                       "--").decode().split()
    changes: dict[str, list[tuple[str, str]]] = {}
    if paths:
        # the walk ends with the oldest commit listed: its own diff is not needed, and
        # without the stop a path-limited log would search the whole history
        stop = [f"^{commits[-1]}"] if len(commits) == bound else []
        log = repo.run("log", "--first-parent", "--format=%x01%H", "--raw", "--no-abbrev",
                       "--no-renames", "-z", head, *stop, "--", *paths)
        for chunk in log.split(b"\x01")[1:]:
            # "<sha>\0\n:<old mode> <new mode> <old> <new> <st>\0<path>\0:..."
            fields = [f.strip(b"\n") for f in chunk.split(b"\0")]
            pairs = zip(fields[1::2], fields[2::2], strict=False)
            changes[fields[0].decode()] = [(path.decode(), meta.split()[2].decode())
                                           for meta, path in pairs if meta.startswith(b":")]
    out = []
    for c in commits:
        out.append((c, dict(state)))
        for path, old in changes.get(c, ()):
            state[path] = None if is_zero(old) else old
    return out


# --- fetching into the cache ------------------------------------------------

_SAFE_REF = re.compile(r"^[A-Za-z0-9._/+-]+$")


def is_safe_ref(ref: str) -> bool:
    """A ref name git can read neither as an option nor as a range or a path trick."""
    return bool(_SAFE_REF.match(ref)) and not ref.startswith(("-", ".")) and ".." not in ref


def cache_path(kind: str, url: str) -> Path:
    """Where ``url`` is kept: one bare repository per URL under ``cache_dir()/kind``."""
    return cache_dir() / kind / f"{hashlib.sha1(url.encode()).hexdigest()[:16]}.git"


def cache_repo(path: Path, init: bool = False):
    """The cache repository at ``path``, every git command pinned to it.

    vpcheck may run from a git hook, where GIT_DIR and friends point at the
    user's repository: without the pinning, ``git init``/``fetch`` would write
    there and objects would be read from there.
    """
    import git

    pinned = {**GIT_ENV, "GIT_DIR": str(path), "GIT_COMMON_DIR": str(path),
              "GIT_OBJECT_DIRECTORY": str(path / "objects"),
              "GIT_ALTERNATE_OBJECT_DIRECTORIES": "", "GIT_INDEX_FILE": str(path / "index")}
    try:
        if init:
            git.Git(str(path)).execute(["git", "init", "--quiet", "--bare", str(path)],
                                       env={**os.environ, **pinned})
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        raise InputError(f"{path}: broken cache repository (remove it)") from None
    repo.git.update_environment(**pinned)
    return repo


@contextlib.contextmanager
def _locked(directory: Path):
    """An exclusive ``flock`` on a cache directory itself: one fetch at a time.

    Locking the directory leaves no lock file behind, and the kernel drops the
    lock when the process dies, so a killed run never blocks the next.
    """
    import fcntl

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fetch(repo, url: str, local: bool, refspecs: Sequence[str],
           options: Sequence[str]) -> tuple[str, ...]:
    """One ``git fetch`` restricted to the allowed protocols (file only for a local URL);
    the commits the refspecs' destinations name afterwards."""
    import git

    allow = ["-c", "protocol.allow=never"]
    for proto in ("https", "ssh", "git") + (("file",) if local else ()):
        allow += ["-c", f"protocol.{proto}.allow=always"]
    cmd = ["git", *allow, "-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60",
           "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", *options,
           "--", url, *refspecs]
    what = ", ".join(r.lstrip("+").partition(":")[0] for r in refspecs)
    try:
        repo.git.execute(cmd)
    except git.GitCommandError as e:
        why = git_message(e.stderr if isinstance(e.stderr, str) else "") or f"git exit {e.status}"
        raise InputError(f"{url}: cannot fetch {what}: {why}") from None
    try:
        return tuple(repo.git.rev_parse("--verify", "-q", f"{r.partition(':')[2]}^{{commit}}")
                     for r in refspecs)
    except git.GitCommandError:
        raise InputError(f"{url}: fetched {what} but it is not a commit") from None


def _fetch_into(path: Path, init: bool, url: str, local: bool, refspecs: Sequence[str],
                options: Sequence[str]) -> tuple[str, ...]:
    repo = cache_repo(path, init)
    try:
        return _fetch(repo, url, local, refspecs, options)
    finally:
        repo.close()


@dataclass(frozen=True)
class Fetched:
    url: str  # as checked (a local path resolved)
    path: Path  # the bare cache repository: open it with cache_repo()
    commits: tuple[str, ...]  # what each refspec's destination named, read under the lock


def fetch_to_cache(url: str, refspecs: Sequence[str], kind: str,
                   options: Sequence[str] = ()) -> Fetched:
    """Fetch ``refspecs`` (``+SRC:DST``) of ``url`` into the cache's bare repository
    for ``url`` under ``kind``.

    The URL must pass :func:`~analyzer.sources.tree.check_remote_url`; only https,
    ssh, git (and file, for a local path) may be spoken, without prompts or system
    configuration. Runs sharing ``kind`` take turns (a lock on its directory), and
    the commits fetched are read before the lock is released, so a concurrent fetch
    cannot swap them. A new repository is initialised and fetched in a private
    directory and renamed into place only once the fetch succeeded, so a failed or
    interrupted first fetch leaves nothing in the cache.
    """
    url, local = check_remote_url(url)
    path = cache_path(kind, url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path.parent}: cannot create the cache: {e.strerror}") from None
    with _locked(path.parent):
        if (path / "HEAD").exists():
            return Fetched(url, path, _fetch_into(path, False, url, local, refspecs, options))
        new = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
        try:
            commits = _fetch_into(new, True, url, local, refspecs, options)
            shutil.rmtree(path, ignore_errors=True)  # a leftover without HEAD
            os.rename(new, path)
        finally:
            shutil.rmtree(new, ignore_errors=True)
    return Fetched(url, path, commits)


def from_remote(url: str, ref: str):
    """The relevant files of ``ref`` of ``url`` (``check --remote``), fetched shallow
    into the cache and read from its objects."""
    from .tree import Snapshot, resolve_commit, tree_files

    if not is_safe_ref(ref):
        raise InputError(f"{ref!r}: unsafe ref name")
    url, local = check_remote_url(url)
    # a shallow fetch from a local repository would need upload-pack options
    fetched = fetch_to_cache(url, [f"+{ref}:refs/vpcheck/fetched"], "remotes",
                             [] if local else ["--depth=1"])
    repo = cache_repo(fetched.path)
    try:
        snap = Snapshot(f"{url}@{ref}", tree_files(resolve_commit(repo, fetched.commits[0]).tree))
    finally:
        repo.close()
    snap.require_kernel_tree()
    return snap
