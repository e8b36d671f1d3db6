"""Sources: where the bytes of a kernel tree come from.

Every source yields a :class:`Snapshot`, an immutable map from the relevant
repository-relative paths to their bytes. Nothing here parses C: a snapshot is
cheap to build, and which files matter is decided by path alone.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType

from .. import limits
from ..errors import InputError

# Decompressors, tarfile, tempfile and shutil are imported where a tarball or a remote
# is read: a directory check (the common case) does not pay for them at start-up.


def _profile_globs() -> tuple[str, ...]:
    """What a tree source reads: the kernel profile's ``[files] read`` globs (the files
    whose contents can affect a verdict), as (directory, name pattern)."""
    from .. import profile

    return profile.load().files


_GLOBS = tuple(posixpath.split(g) for g in _profile_globs())
# A directory tree is read by listing these directories only, never by walking the tree.
RELEVANT_DIRS = tuple(dict.fromkeys(d for d, _ in _GLOBS))
KVM_DIR = RELEVANT_DIRS[0]  # the profile's first directory: a kernel tree has sources there
# the tarball reader's runs: each glob up to its first wildcard (members sharing a prefix
# are contiguous in a tarball, so only the xz blocks holding them are decompressed)
TAR_RUNS = tuple(dict.fromkeys(re.split(r"[*?[]", g, maxsplit=1)[0] for g in _profile_globs()))
_TOP_DIRS = tuple(dict.fromkeys(d.partition("/")[0] for d in RELEVANT_DIRS))


def is_relevant(path: str) -> bool:
    d, name = posixpath.split(path)
    return any(d == gd and fnmatchcase(name, gn) for gd, gn in _GLOBS)


@dataclass(frozen=True)
class Snapshot:
    """The relevant files of one kernel tree state, as bytes."""

    target: str
    files: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))

    def require_kernel_tree(self) -> None:
        if not any(p.startswith(KVM_DIR + "/") for p in self.files):
            raise InputError(f"{self.target}: not a kernel tree (no {KVM_DIR}/ sources)")

    def with_files(self, changes: Mapping[str, bytes | None], target: str) -> Snapshot:
        """A new snapshot with ``changes`` applied (None deletes a path)."""
        files = dict(self.files)
        for path, data in changes.items():
            if data is None:
                files.pop(path, None)
            elif is_relevant(path):
                files[path] = data
        return Snapshot(target, files)


def check_utf8(path: str, data: bytes) -> None:
    """C sources must be UTF-8: line/column reporting and messages rely on it."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None


# --- directories ----------------------------------------------------------


def from_directory(root: str | os.PathLike) -> Snapshot:
    """The relevant files of a work tree, read without leaving it.

    Only the directories of the profile's globs (:data:`RELEVANT_DIRS`) are listed. A symbolic
    link (of a file or of a directory on the way) is followed only when its
    target stays inside the tree; one leading out is refused, as is a
    relevant name that is not a regular file (FIFO, device, socket). Each
    file is opened once, without following links, and read up to the
    ``file_bytes`` limit.
    """
    top = Path(root)
    if not top.exists():
        raise InputError(f"{root}: no such file or directory")
    if not top.is_dir():
        raise InputError(f"{root}: not a directory, git repository or kernel tarball")
    real_top = os.path.realpath(top)
    files: dict[str, bytes] = {}
    for d in RELEVANT_DIRS:
        try:
            names = sorted(os.listdir(top / d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise InputError(f"{top / d}: cannot read: {e.strerror}") from None
        rels = [rel for name in names if is_relevant(rel := f"{d}/{name}")]
        dfd = _plain_directory(real_top, d) if rels else None
        try:
            for rel in rels:
                shown = f"{top}/{rel}"
                data = _read_inside(real_top, rel, shown) if dfd is None else \
                    _read_plain(dfd, real_top, rel, shown)
                if data is not None:
                    files[rel] = data
        finally:
            if dfd is not None:
                os.close(dfd)
    snap = Snapshot(str(root), files)
    snap.require_kernel_tree()
    return snap


def _read_inside(real_top: str, rel: str, shown: str) -> bytes | None:
    """``rel``'s bytes, refusing links out of ``real_top`` and non-regular files.

    None for a name that vanished or is a directory (``foo.c/``): not a source.
    """
    real = os.path.realpath(os.path.join(real_top, rel))
    if os.path.commonpath([real_top, real]) != real_top:
        raise InputError(f"{shown}: symbolic link leads out of the tree (to {real})")
    inner = os.path.relpath(real, real_top)
    try:
        st = os.lstat(real)
        if stat.S_ISDIR(st.st_mode):
            return None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{shown}: not a regular file")
        limits.check("file_bytes", st.st_size, shown)
        fd = _open_beneath(real_top, inner)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror}") from None
    try:
        return _read_capped(fd, shown)
    finally:
        os.close(fd)


def _plain_directory(real_top: str, d: str) -> int | None:
    """A descriptor of ``real_top/d`` when no link stands on the way (opened component by
    component without following any), else None: its files are then read one by one
    the careful way (:func:`_read_inside`), each link resolved and checked."""
    path = os.path.join(real_top, d)
    if os.path.realpath(path) != path:
        return None
    fd = os.open(real_top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in d.split("/"):
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
            os.close(fd)
            fd = nfd
    except OSError:
        os.close(fd)
        return None
    return fd


def _read_plain(dfd: int, real_top: str, rel: str, shown: str) -> bytes | None:
    """What :func:`_read_inside` reads, for a name in a directory reached without links
    (``dfd``): a name that is not a link is its own real path, so one ``lstat`` and one
    ``open`` beside the directory replace resolving and reopening every component."""
    name = posixpath.basename(rel)
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        return _read_inside(real_top, rel, shown)
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{shown}: not a regular file")
    limits.check("file_bytes", st.st_size, shown)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{shown}: cannot read: not a regular file")
        return _read_capped(fd, shown)
    finally:
        os.close(fd)


def _open_beneath(top: str, rel: str) -> int:
    """Open ``top/rel`` component by component, following no link at all.

    ``rel`` is already resolved, so a link here means the tree changed under
    us: refused (ELOOP/ENOTDIR) rather than followed. Non-blocking, so a FIFO
    swapped in cannot hang the run; fstat then proves it is a regular file.
    """
    parts = rel.split(os.sep)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
            os.close(fd)
            fd = nfd
        f = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                    dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(f).st_mode):
        os.close(f)
        raise OSError(0, "not a regular file")
    return f


def _read_capped(fd: int, shown: str) -> bytes:
    """Read at most the ``file_bytes`` limit (a file may grow after fstat)."""
    cap = limits.get("file_bytes")
    chunks, total = [], 0
    while chunk := os.read(fd, min(1 << 20, cap + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise limits.exceeded("file_bytes", shown)
    return b"".join(chunks)


# --- tarballs --------------------------------------------------------------

_TAR_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.zst")
_RATIO_AFTER = 64 << 20  # the ratio limit applies once this much is decompressed


def looks_like_tarball(path: str) -> bool:
    return path.endswith(_TAR_SUFFIXES)


def member_path(name: str, archive: str) -> str | None:
    """The tree-relative path of tarball member ``name``, or None if outside arch/include/virt.

    The name is normalised with ``posixpath.normpath``; an absolute name or
    one that climbs out of the archive (``../arch/…``) makes the whole
    archive refused: it was built to write or shadow files elsewhere. The
    leading ``linux-x.y/`` directory is stripped. Any reader of tarball
    members (streaming, or by xz block index) goes through this function.
    """
    if name.startswith("/") or "\0" in name:
        raise InputError(f"{archive}: member {name!r} has an absolute path: refused")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise InputError(f"{archive}: member {name!r} escapes the archive: refused")
    head, _, rest = norm.partition("/")
    if head in _TOP_DIRS:
        return norm
    top, _, _ = rest.partition("/")
    return rest if top in _TOP_DIRS else None


def _decompressor(raw, archive: str):
    """A reader of ``raw``'s decompressed bytes, chosen by magic number, not by name.

    The decompressor holds no resource of its own: closing ``raw`` is enough.
    """
    magic = raw.peek(6)[:6]
    if magic.startswith(b"\xfd7zXZ\x00"):
        import lzma

        return lzma.LZMAFile(raw)  # noqa: SIM115
    if magic.startswith(b"\x1f\x8b"):
        import gzip

        return gzip.GzipFile(fileobj=raw)  # noqa: SIM115
    if magic.startswith(b"BZh"):
        import bz2

        return bz2.BZ2File(raw)  # noqa: SIM115
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        raise InputError(f"{archive}: zstd-compressed tarballs are not supported "
                         "(decompress it with unzstd first)")
    return raw


class _Counted:
    """A decompressed stream that enforces the tarball limits while it is read.

    Counting happens below tarfile, so bytes skipped between wanted members
    count too: a small archive that inflates to gigabytes is refused after
    at most 64 MiB, in bounded memory, whatever the member headers claim.
    """

    CHUNK = 1 << 18  # decompress in 256 KiB pieces: tarfile asks for 10 KiB at a time

    def __init__(self, raw, archive: str) -> None:
        self.raw, self.archive, self.total = raw, archive, 0
        self.max_bytes, self.ratio = limits.get("tar_bytes"), limits.get("tar_ratio")
        self.dec = _decompressor(raw, archive)
        self.buf, self.off = b"", 0

    def read(self, n: int = -1) -> bytes:
        if self.off >= len(self.buf):
            self.buf, self.off = self.dec.read(self.CHUNK), 0
            self._count(len(self.buf))
        n = n if n and n > 0 else self.CHUNK
        out = self.buf[self.off:self.off + n]
        self.off += len(out)
        return out

    def _count(self, got: int) -> None:
        self.total += got
        if self.total > self.max_bytes:
            raise limits.exceeded("tar_bytes", self.archive, self.total, self.max_bytes)
        if self.total > _RATIO_AFTER and self.total > self.ratio * max(1, self.raw.tell()):
            raise limits.exceeded("tar_ratio", self.archive,
                                  self.total // max(1, self.raw.tell()), self.ratio)


def tar_members(path: str | os.PathLike,
                wanted: Callable[[str], bool] = is_relevant) -> Iterator[tuple[str, bytes]]:
    """Stream a tarball once and yield (tree path, bytes) of the wanted regular files.

    Nothing is extracted to disk; links, devices and directories are never
    resolved. Every member name is checked by :func:`member_path`; member
    count, decompressed bytes and compression ratio are bounded
    (:mod:`analyzer.limits`), and a wanted member larger than the
    ``file_bytes`` limit is refused from its header, before it is read.
    """
    import lzma
    import tarfile
    import zlib

    archive = str(path)
    max_members = limits.get("tar_members")
    try:
        with open(path, "rb") as raw, tarfile.open(
                fileobj=_Counted(raw, archive), mode="r|") as tar:
            for count, member in enumerate(tar, 1):
                if count > max_members:
                    raise limits.exceeded("tar_members", archive, count, max_members)
                rel = member_path(member.name, archive)
                if rel is None or not member.isfile() or not wanted(rel):
                    continue
                limits.check("file_bytes", member.size, f"{archive}: {member.name}")
                fh = tar.extractfile(member)
                yield rel, fh.read() if fh is not None else b""
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as e:
        raise InputError(f"{archive}: not a readable tarball ({e})") from None
    except OSError as e:  # gzip.BadGzipFile, a truncated stream, EIO
        raise InputError(f"{archive}: not a readable tarball ({e.strerror or e})") from None


def from_tarball(path: str | os.PathLike) -> Snapshot:
    """A kernel tarball's relevant files; a path given twice is refused (which one wins?)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    from .xztar import read_members  # a multi-block .xz: decompress only the blocks needed

    fast = read_members(
        str(p), lambda n: r if (r := member_path(n, str(p))) and is_relevant(r) else None,
        TAR_RUNS)
    if fast is not None:
        snap = Snapshot(str(path), fast)
        snap.require_kernel_tree()
        return snap
    files: dict[str, bytes] = {}
    for rel, data in tar_members(p):
        if rel in files:
            raise InputError(f"{path}: {rel} appears twice in the archive: refused")
        files[rel] = data
    snap = Snapshot(str(path), files)
    snap.require_kernel_tree()
    return snap


# --- git ------------------------------------------------------------------

# Environment for every git command we run: no system config, no prompts, and
# protocols restricted to what the user explicitly allowed.
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PROTOCOL_FROM_USER": "0",
    "GIT_ASKPASS": "/bin/true",
    "SSH_ASKPASS": "/bin/true",
}


def open_repo(path: str | os.PathLike):
    import git  # lazy: GitPython costs ~0.15 s of start-up

    try:
        return git.Repo(path, search_parent_directories=False)
    except git.NoSuchPathError:
        raise InputError(f"{path}: no such file or directory") from None
    except (git.InvalidGitRepositoryError, git.GitCommandError):
        raise InputError(f"{path}: not a git repository") from None


def git_message(stderr: str) -> str:
    """The line of git's stderr that says why: the first ``fatal:``/``error:`` one.

    git ends many failures with generic advice ("Please make sure you have
    the correct access rights and the repository exists."); the cause comes
    first.
    """
    text = stderr.strip()
    if text.startswith("stderr: '") and text.endswith("'"):  # GitCommandError's wrapping
        text = text[len("stderr: '"):-1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        for prefix in ("fatal: ", "error: "):
            if ln.startswith(prefix):
                return ln[len(prefix):]
    return lines[0] if lines else ""


def _refusal(repo) -> str | None:
    """Why git itself refuses this repository (``safe.directory``), if it does."""
    import git

    try:
        repo.git.execute(["git", "rev-parse", "--git-dir"], env={**os.environ, **GIT_ENV})
    except git.GitCommandError as e:
        return git_message(str(e.stderr)) or f"git exit {e.status}"
    return None


def _revision_error(repo, rev: str, err: Exception) -> InputError:
    where = repo.working_dir or repo.git_dir
    why = _refusal(repo)
    if why is not None:
        return InputError(f"{where}: git refuses to read this repository: {why} "
                          "(see 'git help config', safe.directory)")
    missing = re.search(r"([0-9a-f]{40,64}) missing", str(err))
    if missing and os.path.exists(os.path.join(repo.git_dir, "shallow")):
        return InputError(f"{rev}: commit {missing.group(1)[:12]} is not in this shallow clone "
                          f"of {where} (git fetch --deepen=N or --unshallow)")
    if missing:
        return InputError(f"{rev}: object {missing.group(1)[:12]} is missing from {where}")
    return InputError(f"{rev}: unknown revision in {where}")


def resolve_commit(repo, rev: str):
    """The commit ``rev`` names, its tree loaded (so a missing object fails here)."""
    import git

    if rev.startswith("-") or not rev.strip():
        raise InputError(f"{rev!r}: not a revision")
    try:
        commit = repo.commit(rev)
        commit.tree  # noqa: B018 - reads the commit object: fails if it is absent
        return commit
    except (git.BadName, git.BadObject, ValueError, git.GitCommandError, BrokenPipeError) as e:
        # BrokenPipeError: git exited before reading (it refuses the repository)
        raise _revision_error(repo, rev, e) from None


def tree_files(tree, wanted=is_relevant) -> dict[str, bytes]:
    """Relevant blobs of a git tree, read straight from the object store."""
    files: dict[str, bytes] = {}
    for top in RELEVANT_DIRS:
        try:
            sub = tree / top
        except KeyError:
            continue
        for item in sub:
            if item.type == "blob" and wanted(item.path):
                limits.check("file_bytes", item.size, f"{item.path} ({item.hexsha[:12]})")
                files[item.path] = item.data_stream.read()
    return files


def from_git(repo_path: str | os.PathLike, rev: str) -> Snapshot:
    import git

    repo = open_repo(repo_path)
    commit = resolve_commit(repo, rev)
    try:
        files = tree_files(commit.tree)
    except (ValueError, git.GitCommandError, BrokenPipeError) as e:
        raise _revision_error(repo, rev, e) from None
    snap = Snapshot(f"{repo_path}@{rev}", files)
    snap.require_kernel_tree()
    return snap


# --- remotes --------------------------------------------------------------

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^:]")


def check_remote_url(url: str) -> tuple[str, bool]:
    """Return (url, is_local) or raise for anything that could run code.

    Allowed: https://, ssh://, git://, ``user@host:path`` and local paths
    (plain or file://). Refused: options (``-…``), transport helpers
    (``ext::``, ``fd::``, any ``foo::``), and every other scheme.
    """
    if not url or url.startswith("-") or any(c in url for c in "\n\r\0"):
        raise InputError(f"{url!r}: unsafe remote URL")
    if "::" in url:
        raise InputError(f"{url}: unsafe remote URL (transport helpers are refused)")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("https", "ssh", "git"):
        return url, False
    if scheme == "file":
        return url, True
    if scheme:
        raise InputError(f"{url}: unsupported remote URL scheme {scheme!r}")
    if _SCP_LIKE.match(url):
        return url, False
    if Path(url).exists():
        return str(Path(url).resolve()), True
    raise InputError(f"{url}: not a URL or an existing path")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "vpcheck"


def load(path: str | None, rev: str | None = None) -> Snapshot:
    """Pick the source from the command-line arguments (a remote: gitread.from_remote)."""
    if rev is not None:
        return from_git(path or ".", rev)
    path = path or "."
    if not os.path.isdir(path) and (os.path.isfile(path) or looks_like_tarball(path)):
        return from_tarball(path)
    return from_directory(path)
