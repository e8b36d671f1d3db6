"""Sources: where the bytes of a kernel tree come from.

Every source yields a :class:`Snapshot`, an immutable map from the relevant
repository-relative paths to their bytes. Nothing here parses C: a snapshot is
cheap to build, and which files matter is decided by path alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .errors import InputError

# The files whose contents can affect a verdict. Kept short: arch/powerpc/kvm,
# the KVM and XIVE headers of powerpc, and generic KVM's vCPU-creation checks.
RELEVANT = re.compile(
    r"^(?:arch/powerpc/kvm/[^/]+\.[ch]"
    r"|arch/powerpc/include/asm/(?:kvm|xive)[^/]*\.h"
    r"|include/linux/kvm_host\.h"
    r"|virt/kvm/kvm_main\.c)$"
)
RELEVANT_DIRS = ("arch/powerpc/kvm", "arch/powerpc/include/asm", "include/linux", "virt/kvm")
KVM_DIR = "arch/powerpc/kvm"


def is_relevant(path: str) -> bool:
    return RELEVANT.match(path) is not None


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


def from_directory(root: str | os.PathLike) -> Snapshot:
    top = Path(root)
    if not top.exists():
        raise InputError(f"{root}: no such file or directory")
    if not top.is_dir():
        raise InputError(f"{root}: not a directory, git repository or kernel tarball")
    files: dict[str, bytes] = {}
    for d in RELEVANT_DIRS:
        try:
            names = sorted(os.listdir(top / d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise InputError(f"{top / d}: cannot read: {e.strerror}") from None
        for name in names:
            rel = f"{d}/{name}"
            if is_relevant(rel) and (top / rel).is_file():
                try:
                    files[rel] = (top / rel).read_bytes()
                except OSError as e:
                    raise InputError(f"{top / rel}: cannot read: {e.strerror}") from None
    snap = Snapshot(str(root), files)
    snap.require_kernel_tree()
    return snap


_TAR_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.zst")


def looks_like_tarball(path: str) -> bool:
    return path.endswith(_TAR_SUFFIXES)


def from_tarball(path: str | os.PathLike) -> Snapshot:
    """Stream a kernel tarball and keep only the relevant members.

    Members are read in stream mode (``r|*``): the archive is decompressed
    once, nothing is extracted to disk, and the leading ``linux-x.y/``
    directory is stripped.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    from .xztar import read_members  # a multi-block .xz: decompress only the blocks needed

    fast = read_members(str(p), lambda n: r if (r := _strip_top(n)) and is_relevant(r) else None)
    if fast is not None:
        snap = Snapshot(str(path), fast)
        snap.require_kernel_tree()
        return snap
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(p, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                rel = _strip_top(member.name)
                if rel is None or not is_relevant(rel):
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    files[rel] = fh.read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InputError(f"{path}: not a readable tarball ({e})") from None
    snap = Snapshot(str(path), files)
    snap.require_kernel_tree()
    return snap


def _strip_top(name: str) -> str | None:
    name = name.lstrip("./")
    if ".." in name.split("/"):
        return None
    head, sep, rest = name.partition("/")
    if rest.startswith(("arch/", "include/", "virt/")):
        return rest
    return name if name.startswith(("arch/", "include/", "virt/")) else None


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


def resolve_commit(repo, rev: str):
    import git

    if rev.startswith("-") or not rev.strip():
        raise InputError(f"{rev!r}: not a revision")
    try:
        return repo.commit(rev)
    except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
        raise InputError(f"{rev}: unknown revision in {repo.working_dir or repo.git_dir}") from None


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
                files[item.path] = item.data_stream.read()
    return files


def from_git(repo_path: str | os.PathLike, rev: str) -> Snapshot:
    repo = open_repo(repo_path)
    commit = resolve_commit(repo, rev)
    snap = Snapshot(f"{repo_path}@{rev}", tree_files(commit.tree))
    snap.require_kernel_tree()
    return snap


# --- remotes --------------------------------------------------------------

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^:]")
_SAFE_REF = re.compile(r"^[A-Za-z0-9._/+-]+$")


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


def from_remote(url: str, ref: str) -> Snapshot:
    """Fetch ``ref`` of ``url`` into a bare cache repository and read it."""
    import git

    url, local = check_remote_url(url)
    if not _SAFE_REF.match(ref) or ref.startswith("-") or ".." in ref:
        raise InputError(f"{ref!r}: unsafe ref name")
    key = hashlib.sha1(url.encode()).hexdigest()[:16]
    path = cache_dir() / "remotes" / f"{key}.git"
    path.parent.mkdir(parents=True, exist_ok=True)
    repo = git.Repo(path) if (path / "HEAD").exists() else git.Repo.init(path, bare=True)
    allow = ["-c", "protocol.allow=never"]
    for proto in ("https", "ssh", "git") + (("file",) if local else ()):
        allow += ["-c", f"protocol.{proto}.allow=always"]
    cmd = ["git", *allow, "fetch", "--quiet", "--no-tags", "--depth=1", "--",
           url, f"+{ref}:refs/vpcheck/fetched"]
    if local:
        cmd.remove("--depth=1")  # shallow fetch from a local repo needs uploadpack options
    try:
        repo.git.execute(cmd, env={**os.environ, **GIT_ENV})
    except git.GitCommandError as e:
        why = (e.stderr or "").strip().splitlines()
        raise InputError(f"{url}: cannot fetch {ref}: {why[-1] if why else e}") from None
    commit = repo.commit("refs/vpcheck/fetched")
    snap = Snapshot(f"{url}@{ref}", tree_files(commit.tree))
    snap.require_kernel_tree()
    return snap


def load(path: str | None, rev: str | None = None, remote: str | None = None,
         ref: str | None = None) -> Snapshot:
    """Pick the source from the command-line arguments."""
    if remote is not None:
        return from_remote(remote, ref or "HEAD")
    if rev is not None:
        return from_git(path or ".", rev)
    path = path or "."
    if os.path.isfile(path) or looks_like_tarball(path):
        return from_tarball(path)
    return from_directory(path)

