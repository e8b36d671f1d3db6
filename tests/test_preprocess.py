"""``parse.preprocess`` is what the profile's compiler sees, at the same offsets.

Two kinds of proof: what preprocessing must guarantee, checked on every bundled C file
and on generated sources full of directives (same length, every newline where it was,
the kept lines' bytes unchanged, the dropped ones blank); and byte identity with the
plain implementation it replaced (a ``bytes.find`` per annotation, a bytearray slice
store per blanked run), kept here as the reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import profile
from analyzer.c import parse as cparse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
C_FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".c", ".h") and p.is_file())
PROFILE = profile.load()


# --- the reference: the plain implementation ------------------------------------


def _old_blank_annotations(src: bytes) -> bytes:
    spans = []
    for w in cparse._annotations():
        i = src.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or src[i - 1] not in cparse._WORD_BYTES) and (
                    j == len(src) or src[j] not in cparse._WORD_BYTES):
                spans.append((i, j))
            i = src.find(w, j)
    out = bytearray(src)
    for i, j in spans:
        out[i:j] = b" " * (j - i)
    return bytes(out)


def _old_blank(out: bytearray, lo: int, hi: int) -> None:
    out[lo:hi] = bytes(out[lo:hi]).translate(cparse._SPACES)


def _old_branch(stack: list[list[bool]], active: bool, kw: str, rest: str) -> bool:
    if kw in ("if", "ifdef", "ifndef"):
        cond = rest if kw == "if" else f"{'!' if kw == 'ifndef' else ''}defined({rest.strip()})"
        taken = active and _old_holds(cond)
        stack.append([active, taken])
        return taken
    if not stack:
        return active
    outer, taken = stack[-1]
    if kw == "elif":
        now = outer and not taken and _old_holds(rest)
        stack[-1][1] = taken or now
        return now
    if kw == "else":
        stack[-1][1] = True
        return outer and not taken
    stack.pop()
    return outer


def _old_holds(cond: str) -> bool:
    import re

    from analyzer.c import defines

    cond = re.sub(r"/\*.*?\*/|//.*", " ", cond).strip()
    return defines.holds(cond, "", False, PROFILE.kconfig, PROFILE.arch_defined)


def _old_preprocess(data: bytes) -> bytes:
    src = _old_blank_annotations(data)
    if b"#" not in src:
        return src
    out = bytearray(src)
    stack: list[list[bool]] = []
    active, start = True, 0
    for m in cparse._DIRECTIVE.finditer(src):
        if not active:
            _old_blank(out, start, m.start())
        _old_blank(out, m.start(), m.end())
        active = _old_branch(stack, active, m.group(1).decode(), m.group(2).decode())
        start = m.end()
    if not active:
        _old_blank(out, start, len(src))
    return bytes(out)


# --- what preprocessing guarantees ---------------------------------------------


def _kept_lines(src: bytes) -> list[bool]:
    """Per line of ``src`` (annotations blanked): compiled by the profile's build (and
    not a directive), by a line-by-line reading of the conditionals, on its own."""
    from analyzer.c import defines

    def holds(kw: str, rest: str) -> bool:
        if kw in ("ifdef", "ifndef"):
            return (kw == "ifdef") == defines.holds(
                f"defined({rest.strip()})", "", False, PROFILE.kconfig, PROFILE.arch_defined)
        return _old_holds(rest)

    kept, stack, active = [], [], True  # stack: (outer active, a branch taken)
    lines = src.split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        n = 1  # a directive with continuation lines spans several
        while line.endswith(b"\\") and i + n < len(lines) and line.lstrip().startswith(b"#"):
            line = line + b"\n" + lines[i + n]
            n += 1
        m = cparse._DIRECTIVE.match(line)
        if m is None:
            kept.append(active)
            i += 1
            continue
        kw, rest = m.group(1).decode(), m.group(2).decode()
        if kw.startswith("if"):
            now = active and holds(kw, rest)
            stack.append([active, now])
            active = now
        elif stack and kw == "elif":
            outer, taken = stack[-1]
            active = outer and not taken and holds(kw, rest)
            stack[-1][1] = taken or active
        elif stack and kw == "else":
            outer, taken = stack[-1]
            active, stack[-1][1] = outer and not taken, True
        elif stack:
            active = stack.pop()[0]
        kept += [False] * n
        i += n
    return kept


def _check_guarantees(data: bytes) -> None:
    out = cparse.preprocess(data)
    assert len(out) == len(data)
    assert [i for i, b in enumerate(out) if b == 10] == [i for i, b in enumerate(data) if b == 10]
    src = cparse.blank_annotations(data)
    for keep, before, after in zip(_kept_lines(src), src.split(b"\n"), out.split(b"\n"),
                                   strict=True):
        assert after == (before if keep else b" " * len(before))


# --- generated sources ---------------------------------------------------------

_CONDS = ["0", "1", "CONFIG_KVM_XIVE", "defined(CONFIG_SMP)", "!defined(CONFIG_PPC_E500)",
          "defined(__KERNEL__) && CONFIG_PPC64", "CONFIG_FOO || 0 /* c */",
          "NR_CPUS > 8", "defined(X) // y"]
_NAMES = ["CONFIG_KVM_XIVE", "CONFIG_UNSET", "__powerpc64__", "_GUARD_H", "__KERNEL__"]
_LINE = st.one_of(
    st.sampled_from(_CONDS).map(lambda c: f"#if {c}"),
    st.sampled_from(_CONDS).map(lambda c: f"  #  elif {c}"),
    st.sampled_from(_NAMES).map(lambda n: f"#ifdef {n}"),
    st.sampled_from(_NAMES).map(lambda n: f"\t#ifndef {n}"),
    st.sampled_from(["#else", "#endif", "#endif /* X */", "# else", "#if 1 \\\n  && 0"]),
    st.sampled_from(["int a;", "__user x __iomem;", "x__user y", "noinline int f(void);",
                     "a # if 0", "#define Y #if", "__init__exit", "", "\t", "/* #else */",
                     "static __always_inline __must_check int g(void) { return 1; }"]),
    st.text(alphabet="ab_# \t\\(){};/*", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=30), st.booleans())
def test_generated_sources(lines: list[str], final_newline: bool) -> None:
    data = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    assert cparse.preprocess(data) == _old_preprocess(data)
    _check_guarantees(data)


@pytest.mark.parametrize("path", C_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_bundled_files(path: Path) -> None:
    data = path.read_bytes()
    assert cparse.preprocess(data) == _old_preprocess(data)
    _check_guarantees(data)


@pytest.mark.parametrize("data", [
    b"", b"__user", b"x__user", b"__user_x", b"(__user)", b"__user__user __iomem\n__rcu",
    b"__init__init __init\n", b"#if 0\n__user\n#endif\n", b"#if 0\nint a;\n",
    b"#else\nint a;\n#endif\n", b"#if 0\n#if 1\na\n#else\nb\n#endif\n#elif 1\nc\n#endif\n"])
def test_edges(data: bytes) -> None:
    assert cparse.preprocess(data) == _old_preprocess(data)
    _check_guarantees(data)


def test_dropped_branches_are_blank_and_kept_ones_are_not() -> None:
    """The guarantees are not vacuous: a known input, its known output."""
    data = b"a\n#ifdef CONFIG_KVM_XIVE\n__user b;\n#else\nc;\n#endif\n"
    assert cparse.preprocess(data) == b"a\n                      \n       b;\n     \n  \n      \n"
