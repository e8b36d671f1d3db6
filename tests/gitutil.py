"""Helpers for tests that need throwaway git repositories, and for proving
that vpcheck left a repository exactly as it found it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_AUTHOR_DATE": "2018-04-12T17:02:06+10:00",
    "GIT_COMMITTER_DATE": "2018-04-12T17:02:06+10:00",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/tmp"),
}


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], env=ENV, input=input,
                       capture_output=True, check=True)
    return r.stdout.decode()


def make_repo(tree: Path, dest: Path, message: str = "base") -> Path:
    shutil.copytree(tree, dest, dirs_exist_ok=True)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", message)
    return dest


def repo_state(repo: Path) -> dict[str, str]:
    """Everything a run must not change: every file under the work tree and .git, hashed."""
    state = {}
    for p in sorted(repo.rglob("*")):
        if p.is_file() or p.is_symlink():
            data = p.read_bytes() if p.is_file() else os.readlink(p).encode()
            state[p.relative_to(repo).as_posix()] = hashlib.sha1(data).hexdigest()
    state["<HEAD>"] = git(repo, "rev-parse", "HEAD")
    state["<status>"] = git(repo, "status", "--porcelain=v1", "--untracked-files=all")
    state["<stash>"] = git(repo, "stash", "list")
    state["<refs>"] = git(repo, "for-each-ref")
    return state
