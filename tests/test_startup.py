"""Start-up a check does not need stays out of it: modules only some runs use are
imported by those runs (each figure is a millisecond or two of every check; timing is
measured by benchmarks/bench_check.py, never asserted here)."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from analyzer import cli

ROOT = Path(__file__).resolve().parent.parent
LAZY = ("difflib", "threading", "zipfile", "importlib.readers")


def _check_imports(tree: Path) -> tuple[bool, set[str]]:
    """(whether a suggested fix was printed, which of LAZY a fresh ``check`` imported)."""
    code = ("import sys, io, contextlib\nfrom analyzer import cli\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    cli.main(['check', {str(tree)!r}])\n"
            "print('diff --git' in out.getvalue(), "
            f"*[m for m in {LAZY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    return out[0] == "True", set(out[1:])


@pytest.mark.parametrize("tree", ["pre-rfc", "rfc-applied"])
def test_check_imports_difflib_only_for_a_fix(tree: str) -> None:
    fixed, imported = _check_imports(ROOT / "fixtures" / "trees" / tree)
    assert imported == ({"difflib"} if fixed else set())
    assert fixed == (tree == "rfc-applied")


def test_main_outside_the_main_thread_installs_no_handler() -> None:
    """Only the main thread receives signals: elsewhere ``main`` runs without them."""
    before = signal.getsignal(signal.SIGTERM)
    seen: list = []

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            seen.append(cli.main(["rules"]))
        seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [cli.EXIT_CLEAN, before]


def _timeless(text: str) -> list[str]:
    return [line for line in text.splitlines() if '"seconds"' not in line]


def test_the_process_entry_exits_with_mains_status_and_output() -> None:
    """``python -m analyzer.cli`` (``entry``: main, then no garbage collection at exit)
    prints what ``main`` prints and exits with its status."""
    tree = str(ROOT / "fixtures" / "trees" / "pre-rfc")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["check", tree, "--format", "json"])
    proc = subprocess.run([sys.executable, "-m", "analyzer.cli", "check", tree, "--format",
                           "json"], capture_output=True, text=True, cwd=ROOT)
    assert (proc.returncode, _timeless(proc.stdout), proc.stderr) == (
        rc, _timeless(out.getvalue()), "")
    assert rc == cli.EXIT_FINDINGS


@pytest.mark.parametrize(("argv", "every_command"), [
    (["--help"], True), (["chek", "x"], True), (["--debug", "check", "--help"], False)])
def test_help_and_errors_name_what_the_full_parser_names(argv: list[str],
                                                        every_command: bool) -> None:
    """``main`` builds only the parser of the command it is given; the top-level help and
    an unknown command's message still list every command, and a command's own help is
    what the full parser prints."""
    def printed(parser) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                parser.parse_args(argv)
                code = 0
            except SystemExit as e:
                code = e.code
            except Exception as e:  # noqa: BLE001 - the InputError main turns into one line
                code, _ = 2, out.write(str(e))
        return code, out.getvalue()

    full, lazy = printed(cli.build_parser()), printed(cli.build_parser(argv))
    assert lazy == full
    names = ("check", "series", "hook", "model", "history", "explain")
    assert all(c in full[1] for c in names) == every_command
