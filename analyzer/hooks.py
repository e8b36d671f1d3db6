"""git hooks that call this installation of vpcheck, wherever it is installed.

A hook that runs ``vpcheck`` from ``PATH`` breaks as soon as vpcheck lives
in a virtualenv that is not activated (every send-email is then refused
with "command not found"); the hooks written here name this interpreter and
this package's directory instead.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from .errors import InputError
from .sources.gitread import open_repo

HOOKS = {
    "sendemail-validate": ("checks every patch git send-email is about to send; "
                           "skip once with git send-email --no-validate",
                           "hook run sendemail-validate \"$@\""),
    "pre-commit": ("checks the staged change for new findings; skip once with "
                   "git commit --no-verify",
                   "series --staged --format text --no-fix -q"),
}


def script(name: str) -> str:
    """The hook's text: this interpreter, this package, the subcommand."""
    why, command = HOOKS[name]
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    py = shlex.quote(sys.executable)
    return (f"#!/bin/sh\n# Installed by `vpcheck hook install {name}`: {why}.\n"
            f"PYTHONPATH={shlex.quote(pkg_parent)}${{PYTHONPATH:+:$PYTHONPATH}}\n"
            f"export PYTHONPATH\nexec {py} -m analyzer.cli {command}\n")


def install(name: str, repo_path: str, force: bool) -> str:
    """Write hook ``name`` into the repository's hooks directory; return its path."""
    repo = open_repo(repo_path)
    rel = repo.run("rev-parse", "--git-path", f"hooks/{name}").decode().strip()
    dest = Path(repo.top, rel) if not os.path.isabs(rel) else Path(rel)
    if (dest.exists() or dest.is_symlink()) and not force:
        raise InputError(f"{dest} already exists; pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{name}.vpcheck-tmp")
    tmp.write_text(script(name))
    tmp.chmod(0o755)
    os.replace(tmp, dest)
    return str(dest)


def is_patch_mail(path: str) -> bool:
    """Whether the file send-email hands over carries a diff (else: a cover letter)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    return b"\ndiff --git " in data or data.startswith(b"diff --git ")


def is_kvm_tree(repo_path: str) -> bool:
    repo = open_repo(repo_path)
    return bool(repo.try_run("rev-parse", "--verify", "-q", "HEAD:arch/powerpc/kvm"))
