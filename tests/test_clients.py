"""The real clients drive vpcheck: b4 prep --check, git send-email's validate hook, and
the pre-commit framework. Each test asserts the client's own verdict and output."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .fsstate import tree_state
from .gitutil import ENV, git
from .seriesutil import NATIVE, NOTES, SUBJECTS, base_repo, commit_series, format_series

BIN = Path(sys.executable).parent
VPCHECK = [sys.executable, "-m", "analyzer.cli"]
FINDING = f"{NATIVE}:12: WARNING: raw 'xive->vp_base + server' bypasses kvmppc_xive_vp()"


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(path)


def client_env(home: Path) -> dict[str, str]:
    """A private HOME: the clients read and write their config and caches there."""
    home.mkdir(exist_ok=True)
    # b4 looks for its cover letter among the commits of the last year: real dates
    env = {k: v for k, v in ENV.items() if not k.endswith("_DATE")}
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"), "NO_COLOR": "1", "TERM": "dumb"}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_b4_prep_check(tmp_path: Path) -> None:
    b4 = tool("b4")
    env = client_env(tmp_path / "home")
    repo = base_repo(tmp_path / "repo")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.invalid")
    r = run([b4, "prep", "-n", "vp", "--fork-point", "main"], repo, env)
    assert r.returncode == 0, r.stderr
    commit_series(repo, dated=False)
    git(repo, "config", "b4.prep-perpatch-check-cmd",
        shlex.join([*VPCHECK, "series", "-", "--format", "checkpatch", "--terse"]))
    before = tree_state(repo / ".git" / "objects", repo / NATIVE)
    r = run([b4, "prep", "--check", "--no-cache"], repo, env)
    out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert tree_state(repo / ".git" / "objects", repo / NATIVE) == before
    assert "Success: 2, Warning: 1, Error: 0" in out, out
    # the finding is shown once, under the patch that introduced it
    lines = out.splitlines()
    assert sum(FINDING in ln for ln in lines) == 1, out
    where = next(i for i, ln in enumerate(lines) if FINDING in ln)
    header = next(ln for ln in reversed(lines[:where]) if not ln.startswith("  "))
    assert header.endswith(SUBJECTS[1]), out


def _send_email(repo: Path, env: dict[str, str], files: list[Path], sink: Path
                ) -> subprocess.CompletedProcess:
    sendmail = sink.parent / "fake-sendmail"
    sendmail.write_text(f"#!/bin/sh\ncat > {shlex.quote(str(sink))}/mail.$$\n")
    sendmail.chmod(0o755)
    return run(["git", "send-email", "--to=maintainer@example.invalid",
                "--from=Test <test@example.invalid>", f"--smtp-server={sendmail}",
                "--confirm=never", "--quiet", "--no-annotate", *map(str, files)], repo, env)


@pytest.fixture
def sendemail_repo(tmp_path: Path) -> tuple[Path, list[Path], dict[str, str]]:
    env = client_env(tmp_path / "home")
    probe = run(["git", "send-email", "--help"], tmp_path, {**env, "GIT_PAGER": "cat",
                                                            "MANPAGER": "cat", "PAGER": "cat"})
    if "is not a git command" in probe.stderr:
        pytest.skip("git send-email is not installed (Debian: apt-get install git-email)")
    repo = base_repo(tmp_path / "repo")
    commit_series(repo)
    files = format_series(repo, tmp_path / "out", "--cover-letter")
    r = run([*VPCHECK, "hook", "install", "sendemail-validate", "--repo", str(repo)], repo,
            {**env, "PATH": "/usr/bin:/bin"})  # no vpcheck on PATH: the hook must not need it
    assert r.returncode == 0 and "sendemail-validate" in r.stdout, r.stderr
    return repo, files, {**env, "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("which", [1, 3], ids=["clean-patch", "patch-adding-a-file"])
def test_send_email_passes_clean_patches(sendemail_repo, tmp_path: Path, which: int) -> None:
    repo, files, env = sendemail_repo
    sink = tmp_path / "sent"
    sink.mkdir()
    before = tree_state(repo)
    r = _send_email(repo, env, [files[which]], sink)
    assert r.returncode == 0, r.stderr
    assert tree_state(repo) == before
    (mail,) = sink.iterdir()
    assert SUBJECTS[which - 1] in mail.read_text()
    if which == 3:
        assert f"+++ b/{NOTES}" in mail.read_text()


def test_send_email_blocks_a_bad_patch_and_the_series(sendemail_repo, tmp_path: Path) -> None:
    repo, files, env = sendemail_repo
    sink = tmp_path / "sent"
    sink.mkdir()
    before = tree_state(repo)
    for batch in ([files[2]], files):
        r = _send_email(repo, env, batch, sink)
        assert r.returncode != 0
        assert "rejected by sendemail-validate hook" in r.stderr, r.stderr
        assert f"{NATIVE}:12: warning: raw 'xive->vp_base + server'" in r.stderr, r.stderr
        assert list(sink.iterdir()) == []  # nothing left before the hook said no
    assert tree_state(repo) == before


@pytest.fixture(scope="session")
def precommit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def test_pre_commit_framework(tmp_path: Path, precommit_home: Path) -> None:
    precommit = tool("pre-commit")
    if not (ROOT / ".git").exists():
        pytest.skip("this checkout is not a git repository: pre-commit needs a rev")
    rev = git(ROOT, "rev-parse", "HEAD").strip()
    env = {**client_env(tmp_path / "home"), "PRE_COMMIT_HOME": str(precommit_home)}
    env["PATH"] = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    repo = base_repo(tmp_path / "repo")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {ROOT}\n  rev: {rev}\n  hooks:\n  - id: vpcheck-staged\n"
        "  - id: vpcheck-tree\n")
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "-m", "pre-commit config")
    r = run([precommit, "install"], repo, env)
    assert r.returncode == 0, r.stderr

    commit_series_step = (repo / "arch/powerpc/kvm/book3s_xive.h")
    commit_series_step.write_text(commit_series_step.read_text().replace(
        "#endif", "/* a comment */\n#endif"))
    git(repo, "add", "-A")
    head = git(repo, "rev-parse", "HEAD")
    r = run(["git", "commit", "-m", "clean change"], repo, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"vpcheck \(new .*\)\.+Passed", r.stdout + r.stderr), r.stdout
    assert git(repo, "rev-parse", "HEAD~1") == head

    p = repo / NATIVE
    p.write_text(p.read_text().replace("\treturn 0;\n", "\treturn xive->vp_base + server;\n"))
    (repo / "arch/powerpc/kvm/book3s_xive.h").write_text(
        (repo / "arch/powerpc/kvm/book3s_xive.h").read_text().replace(
            "#endif", "static inline u32 kvmppc_xive_vp(struct kvmppc_xive *x, u32 s)\n"
            "{\n\treturn x->vp_base + kvmppc_pack_vcpu_id(x->kvm, s);\n}\n#endif"))
    git(repo, "add", "-A")
    head = git(repo, "rev-parse", "HEAD")
    r = run(["git", "commit", "-m", "bad change"], repo, env)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and re.search(r"vpcheck \(new .*\)\.+Failed", out), out
    assert f"{NATIVE}:12: warning: raw 'xive->vp_base + server'" in out, out
    assert git(repo, "rev-parse", "HEAD") == head  # the commit was refused

    # the whole-tree hook, on demand: the work tree still holds the refused change
    r = run([precommit, "run", "--hook-stage", "manual", "vpcheck-tree"], repo, env)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and re.search(r"vpcheck \(whole tree\)\.+Failed", out), out
    assert f"{NATIVE}:12: warning: raw 'xive->vp_base + server'" in out, out
