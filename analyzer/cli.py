"""Command line. Thin: argument parsing and one trampoline per subcommand.

Analysis modules are imported inside the subcommands so that ``vpcheck
rules`` or a usage error costs no tree-sitter or GitPython start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence

# Exit statuses (README "Exit status"): a hook or CI must never read a crash
# as "findings". Signals exit 128 + the signal number, as shells report them.
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 128 + signal.SIGINT

USER_HELP = """\
Find VCPU-ID packing, VCORE and XIVE VP numbering bugs in a KVM-on-POWER
kernel tree (check) or in the patches you are about to send (series).
Your repository is only read: nothing under .git or in the work tree changes."""
USER_EPILOG = """\
examples:
  vpcheck check ~/linux                       the tree as it is on disk
  vpcheck check ~/linux --rev v6.12           a revision, without checking it out
  vpcheck series outgoing/*.patch             what a series brings, patch by patch
  git format-patch -3 --stdout | vpcheck series -
  vpcheck series --staged                     the change you are about to commit
  vpcheck hook install sendemail-validate     check every patch git send-email sends
  vpcheck explain xive-raw-vp-base            why a rule exists, and how to fix it

exit status: 0 clean, 1 findings, 2 bad input or usage, 3 internal error"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is an InputError: one line through main's boundary.

    Every parser, the top one and each subcommand's, takes ``--debug``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="on an internal error, print the traceback")

    def error(self, message: str) -> None:  # type: ignore[override]
        from .errors import InputError

        sub = self.prog.partition(" ")[2]
        raise InputError(f"{sub + ': ' if sub else ''}{message} (see '{self.prog} --help')")


def _fail(message: str) -> int:
    text = " ".join(str(message).split()) or "failed"
    with contextlib.suppress(OSError):  # stderr itself may be a closed pipe
        sys.stderr.write(f"vpcheck: error: {text}\n")
    return EXIT_ERROR


def _common(p: argparse.ArgumentParser) -> None:
    from .report import FORMATS

    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (default, for people), json, gcc (editors), checkpatch (b4, "
                   "checkpatch.pl's layout), sarif (code scanning), github (Actions annotations)")
    p.add_argument("--rule", action="append", metavar="RULE", help="run only this rule (repeat)")
    p.add_argument("--skip", action="append", metavar="RULE", help="do not run this rule")
    p.add_argument("--severity", choices=("info", "warning", "error"), default="warning",
                   help="report findings at or above this severity (default: warning)")
    p.add_argument("--terse", action="store_true",
                   help="checkpatch format: one line per finding, no total (for b4)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress on stderr, and no total line when clean")
    p.add_argument("--no-fix", action="store_true",
                   help="text format: do not print the suggested fix under each finding")


def _style(args: argparse.Namespace):
    """Colour only on a terminal, never with NO_COLOR (no-color.org)."""
    import os

    from .report import Style

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and \
        os.environ.get("TERM") != "dumb"
    return Style(color=bool(color), fixes=not args.no_fix, quiet=args.quiet)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given the ``argv`` it will parse, when that names a
    command first (after ``--debug``), only that command's parser is built: the others
    serve the top-level help and an unknown command's message, and building all of them
    (77 arguments, each with a help formatter) costs some 2.5 ms of every run."""
    ap = _Parser(prog="vpcheck", description=USER_HELP, epilog=USER_EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    ap.add_argument("--version", action="version", version=f"vpcheck {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    first = next((a for a in argv or () if a != "--debug"), None)
    commands = ((("check",), _add_check), (("series",), _add_series), (("hook",), _add_hook),
                (("model",), _add_model), (("history",), _add_history),
                (("rules", "explain"), _add_rules))
    named = any(first in names for names, _ in commands)
    for names, add in commands:
        if not named or first in names:
            add(sub)
    return ap


def _add_check(sub) -> None:
    c = sub.add_parser("check", help="check a kernel tree (directory, revision, tarball, remote)")
    c.add_argument("path", nargs="?", help="kernel tree, git repo (with --rev) or tarball")
    c.add_argument("--rev", help="read this revision from the git objects (no checkout)")
    c.add_argument("--remote", metavar="URL", help="fetch from this remote into a cache")
    c.add_argument("--ref", default="HEAD", help="ref to fetch with --remote (default: HEAD)")
    _common(c)
    c.set_defaults(func=cmd_check)


def _add_series(sub) -> None:
    s = sub.add_parser(
        "series", help="check a patch series against its base, patch by patch",
        description="Apply each patch on the commit it was written against (nothing is "
        "written to the repository) and report the findings the series brings, each on the "
        "patch that introduced it.",
        epilog="base: --base, else a base-commit: line, else the commit of HEAD's first-parent "
        "history holding every preimage blob the diffs name, else HEAD with those blobs.")
    s.add_argument("series", nargs="*", metavar="SERIES",
                   help="mbox, patch file, directory of patches, '-' (stdin) or BASE..HEAD; "
                        "with --inbox, a Message-ID")
    s.add_argument("--repo", default=".",
                   help="the kernel git repository, or any directory in it (default: .)")
    s.add_argument("--base", help="apply on this revision instead of finding the base")
    what = s.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true",
                      help="check the staged change (the next commit) against HEAD")
    what.add_argument("--worktree", action="store_true",
                      help="check every uncommitted change against HEAD")
    s.add_argument("--all", action="store_true", help="also show findings already at the base")
    s.add_argument("--fixes-tag", action="store_true",
                   help="under each finding the series fixes, the Fixes: line of the commit "
                        "that introduced it (walks the base's history)")
    s.add_argument("--per-patch", action="store_true",
                   help="show what each patch adds, even if a later patch removes it")
    s.add_argument("--inbox", action="append", metavar="URL",
                   help="public-inbox archive to fetch the thread of SERIES (a Message-ID) "
                        "from; repeat for several epochs")
    s.add_argument("--revision", type=_positive, metavar="N",
                   help="with --inbox: check vN (default: the newest posted in the thread)")
    s.add_argument("--remote", metavar="URL", help="fetch --range from this remote")
    s.add_argument("--range", metavar="BASE..HEAD", help="with --remote: refs of the remote")
    _common(s)
    s.set_defaults(func=cmd_series, series_meta=None)


def _add_hook(sub) -> None:
    h = sub.add_parser("hook", help="install git hooks (send-email, pre-commit) that run vpcheck",
                       description="Install a git hook that runs this installation of vpcheck "
                       "(by absolute path: no PATH or activated virtualenv needed).")
    hsub = h.add_subparsers(dest="action", required=True, parser_class=_Parser)
    hi = hsub.add_parser("install", help="write the hook into the repository's hooks directory")
    hi.add_argument("name", choices=("sendemail-validate", "pre-commit"))
    hi.add_argument("--repo", default=".", help="the repository (default: .)")
    hi.add_argument("--force", action="store_true", help="replace an existing hook")
    hr = hsub.add_parser("run", help="what an installed hook runs")
    hr.add_argument("name", choices=("sendemail-validate",))
    hr.add_argument("message", help="the e-mail git send-email is about to send")
    hr.add_argument("headers", nargs="?", help="its SMTP headers (newer git)")
    hr.add_argument("--repo", default=".", help="the repository (default: .)")
    h.set_defaults(func=cmd_hook)


def _add_model(sub) -> None:
    m = sub.add_parser("model", help="the ID -> packed slot table of one configuration")
    m.add_argument("--tree", help="kernel tree (default: the bundled example, the RFC applied)")
    m.add_argument("--rev", help="read the tree at this git revision")
    m.add_argument("--nr-cpus", type=_positive, default=16)
    m.add_argument("--stride", type=int, choices=(1, 2, 4, 8), default=8,
                   help="the guest's core stride, kvm->arch.emul_smt_mode")
    m.add_argument("--threads", type=_positive, default=1, help="guest threads per core")
    m.add_argument("--vcpus", type=_positive, help="number of vCPUs (default: NR_CPUS)")
    m.add_argument("--threads-per-subcore", type=int, choices=(1, 2, 4, 8), default=None,
                   help="threads per subcore of the host (default: the profile's)")
    m.add_argument("--format", choices=("text", "json"), default="text")
    m.add_argument("--svg", metavar="FILE", help="also write the occupancy picture")
    m.set_defaults(func=cmd_model)


def _add_history(sub) -> None:
    h = sub.add_parser("history", help="which commit introduced, and which fixed, each finding")
    h.add_argument("range", nargs="?", metavar="REV_RANGE",
                   help="BASE..HEAD, or REV for its whole history (default: HEAD)")
    h.add_argument("--repo", default=".", help="the kernel git repository (default: .)")
    h.add_argument("--jobs", type=_positive, default=1, help="analyse in N processes")
    h.add_argument("--fixes-tag", action="store_true",
                   help="print the Fixes: line of each finding still present, nothing else")
    h.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    h.add_argument("--rule", action="append", metavar="RULE", help="run only this rule (repeat)")
    h.add_argument("--skip", action="append", metavar="RULE", help="do not run this rule")
    h.add_argument("--severity", choices=("info", "warning", "error"), default="warning",
                   help="report findings at or above this severity (default: warning)")
    h.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    h.set_defaults(func=cmd_history)


def _add_rules(sub) -> None:
    r = sub.add_parser("rules", help="list the rules")
    r.set_defaults(func=cmd_rules)
    e = sub.add_parser("explain", help="show a rule's rationale")
    e.add_argument("rule_id")
    e.set_defaults(func=cmd_explain)

def _threshold(findings, severity: str):
    from .findings import severity_rank

    return [f for f in findings if severity_rank(f.severity) >= severity_rank(severity)]


def cmd_check(args: argparse.Namespace) -> int:
    from . import checks, ruleset
    from .c import facts
    from .report import Result, render
    from .sources import tree as source

    if args.remote is not None and (args.path or args.rev):
        raise SystemExit(_fail("check: --remote cannot be combined with PATH or --rev"))
    selected = ruleset.select(args.rule, args.skip)
    t0 = time.perf_counter()
    if args.remote is not None:
        from .sources import gitread  # only a remote needs it at start-up

        snap = gitread.from_remote(args.remote, args.ref or "HEAD")
    else:
        snap = source.load(args.path, rev=args.rev)
    fx = facts.extract(snap, ruleset.tokens(selected))
    found = _threshold(checks.run(selected, fx), args.severity)
    summary = {"files": len(snap.files), "parsed": fx.parsed_files,
               "error_nodes": fx.error_nodes, "findings": len(found),
               "seconds": round(time.perf_counter() - t0, 3)}
    result = Result(snap.target, found, summary)
    sys.stdout.write(render(args.format, result, selected, terse=args.terse, style=_style(args)))
    return EXIT_FINDINGS if found else EXIT_CLEAN


def _series_input(args: argparse.Namespace):
    """(patches, series) from the command line: a range, the uncommitted change, or mail."""
    from . import limits
    from .sources import patches, series

    if args.staged or args.worktree:
        if args.series:
            raise SystemExit(_fail("series: --staged/--worktree take no SERIES"))
        patch, head = series.worktree_patch(args.repo, staged=args.staged)
        plist = [patch] if patch.diff.strip() else []
        return plist, series.apply_series(args.repo, plist, args.base or head)
    if not args.series:
        raise SystemExit(_fail("series: give SERIES (mbox, patch, directory, '-', BASE..HEAD), "
                               "--staged or --worktree"))
    ranges = [s for s in args.series if ".." in s and not _is_path(s)]
    if ranges:
        if len(args.series) != 1:
            raise SystemExit(_fail("series: a BASE..HEAD range cannot be mixed with other input"))
        ser = series.range_series(args.repo, ranges[0])
        limits.check_patches(len(ser.steps), ranges[0])
        return [s.patch for s in ser.steps], ser
    stdin = (limits.read_capped(sys.stdin.buffer, "series_bytes", "stdin")
             if "-" in args.series else None)
    plist = patches.read_series(args.series, stdin)
    limits.check_patches(len(plist), " ".join(args.series))
    return plist, series.apply_series(args.repo, plist, args.base)


def _after(ser):
    """The text of a file as patch ``index`` left it (for checkpatch's #N)."""
    files = {s.patch.index: s.snapshot.files for s in ser.steps}

    def text(index: int, path: str) -> str | None:
        data = files.get(index, {}).get(path)
        return data.decode("utf-8", "replace") if data is not None else None
    return text


class _Progress:
    """``patch 12/300`` on stderr, only on a terminal and only once a run takes > 1 s."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.on = enabled and sys.stderr.isatty()
        self.total, self.done, self.t0, self.shown = total, 0, time.perf_counter(), False

    def step(self) -> None:
        self.done += 1
        if self.on and time.perf_counter() - self.t0 > 1.0:
            sys.stderr.write(f"\rvpcheck: checked {self.done}/{self.total} snapshots")
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def cmd_series(args: argparse.Namespace) -> int:
    from . import checks, ruleset
    from .c import facts
    from .report import Result, render
    from .sources import patches, series

    local = args.staged or args.worktree
    if args.inbox or args.remote or args.range or args.revision or not (args.series or local):
        return _fetched_series(args)
    selected = ruleset.select(args.rule, args.skip)
    tokens = ruleset.tokens(selected)
    t0 = time.perf_counter()
    plist, ser = _series_input(args)
    progress = _Progress(not args.quiet, len(ser.steps) + 1)

    def analyse(snap):
        found = checks.run(selected, facts.extract(snap, tokens), reuse=True)
        progress.step()
        return found

    try:
        verdict = series.attribute(ser, analyse, per_patch=args.per_patch)
    finally:
        progress.close()
    if args.per_patch:
        shown = [f for step in verdict.per_patch for f in step]
    elif args.all:
        new = {f.fingerprint: f for f in verdict.new}
        shown = [new.get(f.fingerprint, f) for f in verdict.all]
    else:
        shown = list(verdict.new)
    shown = _threshold(shown, args.severity)
    lines = sum(p.diff.count("\n") for p in plist)
    summary = {"patches": len(plist), "files": len(ser.steps[-1].snapshot.files)
               if ser.steps else len(ser.base.files), "lines": lines,
               "findings": len(shown), "fixed": len(verdict.fixed),
               "seconds": round(time.perf_counter() - t0, 3)}
    fixes = {}
    if args.fixes_tag and verdict.fixed and ser.commit:
        from .history import fixes_tags

        fixes = fixes_tags(args.repo, ser.commit, [f.fingerprint for f in verdict.fixed],
                           selected)
    result = Result(ser.base.target, shown, summary, fixed=verdict.fixed,
                    patch_lines=patches.added_lines(plist, _after(ser)), mode="series",
                    fixes=fixes, series=args.series_meta)
    sys.stdout.write(render(args.format, result, selected, terse=args.terse, style=_style(args)))
    return EXIT_FINDINGS if shown else EXIT_CLEAN


def _inbox_patches(args: argparse.Namespace) -> tuple[argparse.Namespace, dict]:
    """--inbox/--remote: fetch into the cache; the same arguments pointing at what came."""
    from .sources import inbox
    from .sources import tree as source

    def warn(message: str) -> None:
        if args.format != "checkpatch":  # b4 counts every stderr line as a failure
            sys.stderr.write(f"vpcheck: warning: {message}\n")

    if args.inbox:
        if len(args.series) != 1 or args.remote or args.range:
            raise SystemExit(_fail("series: --inbox URL takes one Message-ID, nothing else"))
        source.open_repo(args.repo).close()  # a bad --repo before any fetch
        picked, mbox = inbox.series_from_inbox(args.inbox, args.series[0], args.revision, warn)
        base = args.base or inbox.known_base(args.repo, picked.base_commit)
        return argparse.Namespace(**{**vars(args), "series": [str(mbox)], "base": base}), \
            picked.meta.as_dict()
    if not (args.remote and args.range) or args.series or args.revision or args.base:
        raise SystemExit(_fail("series: give SERIES, --inbox URL MSGID, or "
                               "--remote URL --range BASE..HEAD (without --base)"))
    repo, rev_range, meta = inbox.range_from_remote(args.remote, args.range)
    return argparse.Namespace(**{**vars(args), "series": [rev_range], "repo": repo}), \
        {"subject": None, "author": None, "message_id": None, "revision": None, **meta}


def _fetched_series(args: argparse.Namespace) -> int:
    """Check what --inbox/--remote fetched as a local series; name the series in the output."""
    local, meta = _inbox_patches(args)
    local.series_meta = meta
    local.inbox = local.remote = local.range = local.revision = None
    return cmd_series(local)


def cmd_history(args: argparse.Namespace) -> int:
    from . import history, ruleset
    from .findings import severity_rank
    from .report import history as historyreport

    selected = ruleset.select(args.rule, args.skip)
    t0 = time.perf_counter()
    progress = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        def progress(total: int):
            return tqdm(total=total, unit="snapshot", file=sys.stderr, leave=False)

    h = history.run(args.repo, args.range, selected, args.jobs, progress)
    for sha, why in h.stats.skipped:
        sys.stderr.write(f"vpcheck: warning: {sha[:12]} not checked: {why}\n")
    rank = severity_rank(args.severity)
    shown = [e for e in h.entries if severity_rank(e.finding.severity) >= rank]
    if args.fixes_tag:
        sys.stdout.write(historyreport.fixes_lines(shown))
        if older := sum(e.present and e.current.at_base for e in shown):
            sys.stderr.write(f"vpcheck: note: {older} findings were already present at the "
                             f"range's base; widen the range for their Fixes: lines\n")
    else:
        sys.stdout.write(historyreport.render_history(args.format, h, shown, selected,
                                                      time.perf_counter() - t0))
    return EXIT_FINDINGS if any(e.present for e in shown) else EXIT_CLEAN


def cmd_hook(args: argparse.Namespace) -> int:
    from . import hooks

    if args.action == "install":
        dest = hooks.install(args.name, args.repo, args.force)
        sys.stdout.write(f"installed {dest}\n")
        return EXIT_CLEAN
    # sendemail-validate: findings go to stderr (git shows them), non-zero blocks the send
    if not hooks.is_patch_mail(args.message) or not hooks.is_kvm_tree(args.repo):
        return EXIT_CLEAN
    sub = build_parser().parse_args(["series", args.message, "--repo", args.repo,
                                     "--format", "text", "--no-fix", "-q"])
    import io

    out, sys.stdout = sys.stdout, io.StringIO()
    try:
        rc = cmd_series(sub)
        report = sys.stdout.getvalue()
    finally:
        sys.stdout = out
    if rc == EXIT_FINDINGS:  # quiet when clean: git prints whatever a hook says
        sys.stderr.write(report + f"vpcheck: {args.message}: new findings; fix them, or send "
                         "anyway with git send-email --no-validate\n")
    return rc


def _is_path(s: str) -> bool:
    import os

    return os.path.exists(s)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def bundled_example() -> str:
    from pathlib import Path

    from .errors import InputError

    here = Path(__file__).resolve().parent.parent / "fixtures" / "trees" / "rfc-applied"
    if not here.is_dir():
        raise InputError("no bundled example tree in this installation: pass --tree PATH")
    return str(here)


def cmd_model(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from . import profile, ruleset
    from .c import facts
    from .errors import InputError, ModelLimit
    from .limits import check
    from .model import occupancy, roles, space
    from .model import packing as model
    from .sources import tree as source

    if args.threads > args.stride:
        raise InputError(f"model: --threads {args.threads} exceeds --stride {args.stride}")
    prof = profile.load()
    if args.threads_per_subcore is not None:
        env = {**dict(prof.env), "threads_per_subcore": args.threads_per_subcore}
        prof = replace(prof, env=tuple(sorted(env.items())))
    tree_path = args.tree or (None if args.rev else bundled_example())
    snap = source.load(tree_path, rev=args.rev)
    allowed = space.kconfig_range(snap.files, prof)  # the tree's own Kconfig, if it has it
    if not allowed.low <= args.nr_cpus <= allowed.high:
        raise InputError(f"model: --nr-cpus {args.nr_cpus} is outside what the kernel's "
                         f"configuration allows ({allowed.low}..{allowed.high}, "
                         f"{allowed.source})")
    if (args.vcpus or 0) > args.stride * args.nr_cpus:
        raise InputError(f"model: --vcpus {args.vcpus} exceeds stride * NR_CPUS")
    # the table has one row per ID and the grid one cell per slot: bound both
    check("model_ids", args.nr_cpus, f"model: --nr-cpus {args.nr_cpus}")
    if args.vcpus:
        check("model_ids", args.vcpus, f"model: --vcpus {args.vcpus}")
    fx = facts.extract(snap, profile=prof)
    t = model.tree(fx, prof)
    pack = roles.find(fx, prof).pack
    if pack is None:
        raise InputError("model: the packing function is not in this tree (a tree before packing?)")
    cfg = model.Config(args.nr_cpus, args.stride, args.threads, prof)
    try:
        (rule,) = ruleset.select(["pack-table"])
        m = occupancy.mapping(t, pack, cfg, args.vcpus or args.nr_cpus, rule)
    except ModelLimit as e:
        raise InputError(f"model: cannot evaluate {e.function or pack}(): {e}") from None
    check("model_ids", m.size, f"model: {prof.count}={m.size} for --nr-cpus {args.nr_cpus}")
    if args.svg:
        try:
            with open(args.svg, "w", encoding="utf-8") as fh:
                fh.write(occupancy.render_svg(m))
        except OSError as e:
            raise InputError(f"{args.svg}: cannot write: {e.strerror}") from None
    out = occupancy.render_json(m) if args.format == "json" else occupancy.render_text(m)
    sys.stdout.write(out)
    return EXIT_FINDINGS if m.problems() else EXIT_CLEAN


def cmd_rules(args: argparse.Namespace) -> int:
    from .ruleset import load_rules

    for r in load_rules():
        sys.stdout.write(f"{r.id:20s} {r.severity:8s} {r.title}\n")
    return EXIT_CLEAN


def cmd_explain(args: argparse.Namespace) -> int:
    from .ruleset import select

    (r,) = select([args.rule_id])
    sys.stdout.write(f"{r.id} ({r.severity}, confidence {r.confidence})\n{r.title}\n\n"
                     f"{r.rationale.strip()}\n")
    return EXIT_CLEAN


def main(argv: Sequence[str] | None = None) -> int:
    """The one boundary: every outcome becomes one exit status and at most one stderr line.

    InputError (bad input, a limit) is exit 2; a signal is 128 + its number
    after every temporary file is gone; anything else is a bug in vpcheck:
    exit 3, with the traceback only under ``--debug``.
    """
    from .errors import InputError, Interrupted

    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    with _signals_raise(), _pipe_guard():
        try:
            args = build_parser(argv).parse_args(argv)
            return args.func(args)
        except InputError as e:
            return _fail(str(e))
        except Interrupted as e:
            return 128 + e.signum
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except OSError as e:  # stdout's broken pipe never gets here: _pipe_guard
            if e.filename is None:
                return _internal(e, argv, args)
            return _fail(f"{e.filename}: {e.strerror or e}")
        except Exception as e:  # noqa: BLE001 - the boundary: a bug must not look like findings
            return _internal(e, argv, args)


def _internal(e: BaseException, argv: list[str], args) -> int:
    import traceback

    debug = getattr(args, "debug", False) or (args is None and "--debug" in argv)
    if debug:
        with contextlib.suppress(OSError):
            traceback.print_exception(e, file=sys.stderr)
    first = (str(e).strip().splitlines() or [""])[0][:300]
    hint = "" if debug else "; --debug shows the traceback"
    with contextlib.suppress(OSError):
        sys.stderr.write(f"vpcheck: internal error: {type(e).__name__}"
                         f"{': ' + first if first else ''} (please report{hint})\n")
    return EXIT_INTERNAL


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Interrupted, so ``with``/``finally`` blocks unwind.

    Temporary directories are removed by the code that made them, on the way
    out. Child processes (git) are stopped first so none writes into a
    directory being removed. A second signal during the clean-up is ignored;
    a signal the parent ignores (``nohup``) stays ignored. Outside the main thread
    (which alone receives signals) nothing is installed: ``signal.signal`` refuses, so
    the question needs no ``threading`` at start-up.
    """
    from .errors import Interrupted

    fired: list[int] = []

    def handler(signum: int, frame) -> None:
        if fired:
            return
        fired.append(signum)
        _stop_children()
        raise Interrupted(signum)

    old = {}
    with contextlib.suppress(ValueError):  # not the main thread: the first one refuses
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _stop_children(grace: float = 2.0) -> None:
    """Terminate our direct children (git), waiting at most ``grace`` seconds."""
    pids = set()
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as fh:
                pids.update(int(p) for p in fh.read().split())
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            except ChildProcessError:
                pass
            pids.discard(pid)
        time.sleep(0.01)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class _GuardedStdout:
    """stdout that notes a closed pipe (``vpcheck check | head``) instead of raising.

    The command then ends normally and returns its own status, so findings
    still exit 1; the real descriptor is pointed at /dev/null so the
    interpreter's final flush stays quiet.
    """

    def __init__(self, inner) -> None:
        self.inner, self.broken = inner, False

    def _broke(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.inner.fileno())
            os.close(null)

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.inner.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self._broke()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@contextlib.contextmanager
def _pipe_guard() -> Iterator[None]:
    inner = sys.stdout
    guarded = _GuardedStdout(inner)
    sys.stdout = guarded
    try:
        yield
        guarded.flush()
    finally:
        if sys.stdout is guarded:
            sys.stdout = inner


def entry() -> None:
    """The process's entry point (the ``vpcheck`` script, ``python -m analyzer.cli``).

    After ``main`` returns, every object is frozen out of the garbage collector: the
    interpreter's collections at exit would walk all that the run built (parse trees,
    caches, facts) only to free memory the process gives back anyway, about 15 ms of
    a check on 6.12. Objects are still released, and atexit handlers still run."""
    code = main()
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
