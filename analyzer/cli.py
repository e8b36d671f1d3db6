"""Command line. Thin: argument parsing and one trampoline per subcommand.

Analysis modules are imported inside the subcommands so that ``vpcheck
rules`` or a usage error costs no tree-sitter or GitPython start-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every input error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SystemExit(_fail(f"{self.prog}: {message}"))


def _fail(message: str) -> int:
    sys.stderr.write(f"vpcheck: error: {message}\n")
    return EXIT_ERROR


def _common(p: argparse.ArgumentParser) -> None:
    from .report import FORMATS

    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--rule", action="append", metavar="RULE", help="run only this rule (repeat)")
    p.add_argument("--skip", action="append", metavar="RULE", help="do not run this rule")
    p.add_argument("--severity", choices=("info", "warning", "error"), default="warning",
                   help="report findings at or above this severity (default: warning)")
    p.add_argument("--terse", action="store_true",
                   help="checkpatch format: one line per finding, no total (for b4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="vpcheck", description=__doc__.splitlines()[0] if __doc__ else None)
    from . import __version__

    ap.add_argument("--version", action="version", version=f"vpcheck {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="check a kernel tree (directory, revision, tarball, remote)")
    c.add_argument("path", nargs="?", help="kernel tree, git repo (with --rev) or tarball")
    c.add_argument("--rev", help="read this revision from the git objects (no checkout)")
    c.add_argument("--remote", metavar="URL", help="fetch from this remote into a cache")
    c.add_argument("--ref", default="HEAD", help="ref to fetch with --remote (default: HEAD)")
    _common(c)
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("series", help="check a patch series against its base, patch by patch")
    s.add_argument("series", nargs="+", metavar="SERIES",
                   help="mbox, patch file, directory of patches, '-' (stdin) or BASE..HEAD")
    s.add_argument("--repo", default=".", help="the kernel git repository (default: .)")
    s.add_argument("--base", help="apply on this revision (default: the base-commit: trailer, "
                                  "else HEAD with each file's preimage from the diff's index line)")
    s.add_argument("--all", action="store_true", help="also show findings already at the base")
    s.add_argument("--per-patch", action="store_true",
                   help="show what each patch adds, even if a later patch removes it")
    _common(s)
    s.set_defaults(func=cmd_series)

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

    r = sub.add_parser("rules", help="list the rules")
    r.set_defaults(func=cmd_rules)
    e = sub.add_parser("explain", help="show a rule's rationale")
    e.add_argument("rule_id")
    e.set_defaults(func=cmd_explain)
    return ap


def _threshold(findings, severity: str):
    from .findings import severity_rank

    return [f for f in findings if severity_rank(f.severity) >= severity_rank(severity)]


def cmd_check(args: argparse.Namespace) -> int:
    from . import checks, facts, ruleset, source
    from .report import Result, render

    if args.remote is not None and (args.path or args.rev):
        raise SystemExit(_fail("check: --remote cannot be combined with PATH or --rev"))
    selected = ruleset.select(args.rule, args.skip)
    t0 = time.perf_counter()
    snap = source.load(args.path, rev=args.rev, remote=args.remote, ref=args.ref)
    fx = facts.extract(snap, ruleset.tokens(selected))
    found = _threshold(checks.run(selected, fx), args.severity)
    summary = {"files": len(snap.files), "parsed": fx.parsed_files,
               "error_nodes": fx.error_nodes, "findings": len(found),
               "seconds": round(time.perf_counter() - t0, 3)}
    result = Result(snap.target, found, summary)
    sys.stdout.write(render(args.format, result, selected, terse=args.terse))
    return EXIT_FINDINGS if found else EXIT_CLEAN


def cmd_series(args: argparse.Namespace) -> int:
    from . import checks, facts, patches, ruleset, series
    from .report import Result, render

    selected = ruleset.select(args.rule, args.skip)
    tokens = ruleset.tokens(selected)
    t0 = time.perf_counter()
    ranges = [s for s in args.series if ".." in s and not _is_path(s)]
    if ranges:
        if len(args.series) != 1:
            raise SystemExit(_fail("series: a BASE..HEAD range cannot be mixed with other input"))
        ser = series.range_series(args.repo, ranges[0])
        plist = [s.patch for s in ser.steps]
    else:
        stdin = sys.stdin.buffer.read() if "-" in args.series else None
        plist = patches.read_series(args.series, stdin)
        ser = series.apply_series(args.repo, plist, args.base)

    def analyse(snap):
        return checks.run(selected, facts.extract(snap, tokens), reuse=True)

    verdict = series.attribute(ser, analyse)
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
    result = Result(ser.base.target, shown, summary, fixed=verdict.fixed,
                    patch_lines=patches.added_lines(plist))
    sys.stdout.write(render(args.format, result, selected, terse=args.terse))
    return EXIT_FINDINGS if shown else EXIT_CLEAN


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

    from . import facts, model, occupancy, profile, roles, ruleset, source
    from .errors import InputError, ModelLimit

    if args.threads > args.stride:
        raise SystemExit(_fail(f"model: --threads {args.threads} exceeds --stride {args.stride}"))
    prof = profile.load()
    if args.threads_per_subcore is not None:
        env = {**dict(prof.env), "threads_per_subcore": args.threads_per_subcore}
        prof = replace(prof, env=tuple(sorted(env.items())))
    low, high = prof.nr_cpus_range
    if not low <= args.nr_cpus <= high:
        raise InputError(f"model: --nr-cpus {args.nr_cpus} is outside what the kernel's "
                         f"configuration allows ({low}..{high})")
    if (args.vcpus or 0) > args.stride * args.nr_cpus:
        raise InputError(f"model: --vcpus {args.vcpus} exceeds stride * NR_CPUS")
    tree_path = args.tree or (None if args.rev else bundled_example())
    snap = source.load(tree_path, rev=args.rev)
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
    if args.svg:
        try:
            with open(args.svg, "w", encoding="utf-8") as fh:
                fh.write(occupancy.render_svg(m))
        except OSError as e:
            raise SystemExit(_fail(f"{args.svg}: cannot write: {e.strerror}")) from None
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
    from .errors import InputError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except InputError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN
    except OSError as e:
        return _fail(f"{getattr(e, 'filename', None) or ''}: {e.strerror or e}".lstrip(": "))


if __name__ == "__main__":
    sys.exit(main())
