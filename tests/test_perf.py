"""The shortcuts taken for speed give the answers of the plain ways they replace:
the profile decides which files are read, text searches find what whole-tree
queries found, the query cache hands out fresh lists, and preprocessing is the
same bytes as the regular expressions it replaced. (Timing is measured by
benchmarks/bench_check.py, never asserted here.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tree_sitter import QueryCursor

from analyzer import profile
from analyzer.c import facts
from analyzer.c import parse as cparse
from analyzer.model import packing
from analyzer.sources import tree as source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
C_FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".c", ".h") and p.is_file())


# --- which files a tree source reads ------------------------------------------


def test_source_reads_what_the_profile_declares(tmp_path: Path) -> None:
    """Every file a directory source keeps matches one of the profile's ``[files] read``
    globs, and every file that does is kept."""
    from fnmatch import fnmatchcase

    globs = profile.load().files
    names = ["arch/powerpc/kvm/a.c", "arch/powerpc/kvm/a.h", "arch/powerpc/kvm/notes.txt",
             "arch/powerpc/include/asm/kvm_x.h", "arch/powerpc/include/asm/xive-y.h",
             "arch/powerpc/include/asm/other.h", "include/linux/kvm_host.h",
             "include/linux/kvm_types.h", "virt/kvm/kvm_main.c", "virt/kvm/eventfd.c"]
    for rel in names:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("int x;\n")
    snap = source.from_directory(tmp_path)
    wanted = {n for n in names if any(fnmatchcase(n, g) for g in globs)}
    assert set(snap.files) == wanted
    assert {"arch/powerpc/kvm/notes.txt", "virt/kvm/eventfd.c"}.isdisjoint(snap.files)
    assert tuple(dict.fromkeys(g.rpartition("/")[0] for g in globs)) == source.RELEVANT_DIRS


# --- facts found around a word, against the whole-tree queries -------------------


def _subscripts_by_query(path: str, root, fld: str) -> tuple:
    out = []
    q = "(subscript_expression argument: (_) @array index: (_) @index) @sub"
    for m in cparse.matches(q, root):
        arr = cparse.strip_parens(m["array"][0])
        name = arr.child_by_field_name("field") if arr.type == "field_expression" else arr
        if name is None or cparse.text(name) != fld:
            continue
        sub = m["sub"][0]
        parent = sub.parent
        is_write = (parent is not None and parent.type == "assignment_expression"
                    and parent.child_by_field_name("left") == sub)
        out.append(facts.Subscript(path, sub.start_point.row + 1, sub.start_point.column + 1,
                                   facts._fname(sub), cparse.text(arr),
                                   cparse.text(m["index"][0]), is_write))
    return tuple(out)


def _additions_by_query(root, fld: str) -> list[tuple[int, int]]:
    """(start, end) of every ``+`` expression with exactly one ``X->fld`` term."""
    out = []
    for add in cparse.captures('(binary_expression operator: "+") @add', root).get("add", []):
        terms = facts._terms(add)
        if len(terms) >= 2 and sum(facts.is_field(t, fld) for t in terms) == 1:
            out.append(facts._additive_chain(add).start_byte)
    return sorted(set(out))


SOURCES = [p for p in C_FILES if re.search(rb"\bvcores\b|\bvp_base\b", p.read_bytes())]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_text_search_finds_what_the_query_found(path: Path) -> None:
    data = path.read_bytes()
    root = cparse.parse(data).root_node
    rel = str(path)
    assert facts._subscripts(rel, root, "vcores") == _subscripts_by_query(rel, root, "vcores")
    found = sorted(a.start_byte for a in facts._vp_additions(rel, root, "vp_base"))
    assert found == _additions_by_query(root, "vp_base")


def test_around_sees_every_enclosing_node() -> None:
    src = b"int f(struct k *k, int i) { return k->vcores[i] + (k)->vcores[(i)] + vcores; }\n"
    root = cparse.parse(src).root_node
    subs = facts._around(root, "vcores", frozenset({"subscript_expression"}))
    assert [cparse.text(s) for s in subs] == ["k->vcores[i]", "(k)->vcores[(i)]"]
    assert facts._around(root, "vcore", frozenset({"subscript_expression"})) == []


def test_extracted_facts_do_not_depend_on_the_scan_cache() -> None:
    """Facts extracted with the per-blob scan cache warm are the facts extracted cold."""
    tree = FIXTURES / "trees" / "rfc-applied"
    warm = facts.extract(source.from_directory(tree))
    facts._SCANS.clear()
    facts._extract_cached.cache_clear()
    cold = facts.extract(source.from_directory(tree))
    assert dict(warm.files) == dict(cold.files)
    assert warm.parsed_files == cold.parsed_files > 0


# Odd spellings the scans must agree on, beside every fixture file.
_SCAN_CASES = [b"x < SIZE < SIZE", b"a<<SIZE; b <SIZE_X; c\t<\nSIZE", b"SIZE<SIZE", b"<SIZE",
               b"a <= SIZE; _a1<SIZE", b"#define\n#define FOO\n  # define BAR 1\n##define Z\n"
               b"x #define Q\n\f#define V\n#define\tW(x)\n/* #define C */"]


@pytest.mark.parametrize("data", [p.read_bytes() for p in C_FILES] + _SCAN_CASES,
                         ids=[str(p.relative_to(FIXTURES)) for p in C_FILES] +
                         [f"case{i}" for i in range(len(_SCAN_CASES))])
def test_scans_from_a_literal_find_what_the_regular_expressions_found(data: bytes) -> None:
    """The ``#define`` names and the ``V < SIZE`` comparisons, searched from their ``#``
    and ``<``, are what the regular expressions anchored at every line or word found."""
    assert facts.defined_names(data) == re.findall(rb"^\s*#\s*define\s+(\w+)", data, re.M)
    for size in (b"SIZE", b"KVM_MAX_VCORES", b"KVM_MAX_VCPUS"):
        plain = [(m.start(), m.end(), m.group(1)) for m in re.finditer(
            rb"\b(\w+)\s*<\s*" + size + rb"\b", data)]
        below = re.compile(rb"<\s*" + size + rb"\b")
        assert list(facts._compared_below(data, below)) == plain
    assert facts.defined_names(b"#define A\n x #define B\n") == [b"A"]  # the test can fail


# --- the query cache ------------------------------------------------------------


def test_captures_cache_hands_out_fresh_lists() -> None:
    src = b"int f(int a) { if (a) return 1; return 2; }\n"
    root = cparse.parse(src).root_node
    first = cparse.captures("(return_statement) @r", root)
    first["r"].clear()
    again = cparse.captures("(return_statement) @r", root)
    plain = QueryCursor(cparse.query("(return_statement) @r")).captures(root)
    assert [cparse.text(n) for n in again["r"]] == ["return 1;", "return 2;"]
    assert sorted(n.start_byte for n in plain["r"]) == [n.start_byte for n in again["r"]]


def test_captures_cache_tells_trees_apart() -> None:
    """Two parses of different text never share an answer (nodes of different trees)."""
    a = cparse.parse(b"int f(void) { return 1; }\n").root_node
    b = cparse.parse(b"int g(void) { return 2; return 3; }\n").root_node
    assert len(cparse.captures("(return_statement) @r", a)["r"]) == 1
    assert len(cparse.captures("(return_statement) @r", b)["r"]) == 2


# --- preprocessing --------------------------------------------------------------


def _annotations_by_regex(src: bytes) -> bytes:
    words = profile.load().annotations
    pat = re.compile(rb"\b(?:" + b"|".join(re.escape(w.encode()) for w in words) + rb")\b")
    return pat.sub(lambda m: b" " * len(m.group(0)), src)


EDGES = [b"__user", b"x__user", b"__user_x", b"(__user)", b"__user__user __iomem\n__rcu",
         b"noinline int f(void);\n", b"", b"#if 0\n__user\n#endif\n"]


@pytest.mark.parametrize("data", [p.read_bytes() for p in C_FILES] + EDGES)
def test_preprocessing_matches_the_regular_expressions(data: bytes) -> None:
    assert cparse.blank_annotations(data) == _annotations_by_regex(data)
    src = _annotations_by_regex(data)
    assert [m.span() for m in cparse._directives(src)] == \
        [m.span() for m in cparse._DIRECTIVE.finditer(src)]


def test_directives_only_at_line_starts() -> None:
    src = b"a # if 0\n  #  if X \\\n  #endif\nb\n\t#else\n#define Y #if\n#endif"
    spans = [src[slice(*m.span())] for m in cparse._directives(src)]
    assert spans == [b"  #  if X \\\n  #endif", b"\t#else", b"#endif"]


# --- the model's configuration helpers --------------------------------------------


def _layout_by_loop(stride: int, threads: int, count: int, id_limit: int | None) -> list[int]:
    out: list[int] = []
    core = 0
    while len(out) < count:
        for t in range(threads):
            vid = core * stride + t
            if id_limit is not None and vid >= id_limit:
                return out
            out.append(vid)
            if len(out) == count:
                break
        core += 1
    return out


def test_layout_is_the_vmm_numbering() -> None:
    for stride in range(0, 9):
        for threads in range(1, 10):
            for count in range(0, 30):
                for limit in (None, 0, 1, 7, 8, 13, 40):
                    assert packing.layout(stride, threads, count, limit) == \
                        _layout_by_loop(stride, threads, count, limit), \
                        (stride, threads, count, limit)


def test_configuration_hash_and_shared_sweep() -> None:
    prof = profile.load()
    a, b = packing.Config(16, 4, 2, prof), packing.Config(16, 4, 2, prof)
    assert a == b and hash(a) == hash(b) == hash((16, 4, 2, prof))
    assert packing.Config(16, 4, 1, prof) != a
    fx = facts.extract(source.from_directory(FIXTURES / "trees" / "rfc-applied"))
    t = packing.tree(fx, prof)
    first, again = t.configs(), t.configs()
    assert first == list(packing.sweep(prof)) and all(x is y for x, y in zip(first, again,
                                                                             strict=True))
    first.clear()
    assert t.configs() == again


# --- straight-line blocks -----------------------------------------------------------

_LONG = "\n".join(f"    x = x + {i};\n    if (x == {i * 7}) return -{i};" for i in range(1, 40))
BLOCKS = {
    "mixed": """int f(int a, int b) { int x = a; int y = b; if (x > y) return x;
                  x = x + y; y = 2; if (x == 3) return 7; x = x * y; return x - 1; }""",
    "plain": "int f(int a, int b) { int x = a; { x = x + b; x = x * 3; } return x; }",
    "tail-plain": "int f(int a, int b) { int r = 5; { if (a > 9) return 1; r = a + b; }"
                  " return r; }",
    "switch": """int f(int a, int b) { int r = 0; switch (a) { case 1: r = 2; b = 3;
                  case 2: r = r + b; break; default: r = 9; } return r; }""",
    "goto": """int f(int a, int b) { int r = 0; if (a > 3) goto out; r = a + b; r = r * 2;
               out: r = r + 1; return r; }""",
    "long": f"int f(int a, int b) {{ int x = a;\n{_LONG}\n    return x + b; }}",
    "warn": """int f(int a, int b) { if (WARN_ON(a > 5)) return 3; int x = a * b;
               if (WARN_ONCE(x > 30, "big")) return x; if (x < 0) { x = -x; b = 1; }
               return x + b; }""",
    "const": "int f(int a, int b) { if (a > 2) { b = a; return 4; } return b; }",
    "void": "void f(int a, int b) { int x = a; if (x > b) return; x = b; if (WARN_ON(x)) return; }",
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_straight_line_blocks_run_like_the_loop(name: str, monkeypatch) -> None:
    """A block compiled to straight-line code gives what the statement loop gives."""
    from analyzer.model import ceval
    from analyzer.model.ceval import runtime

    def run_all() -> list:
        src = BLOCKS[name].encode()
        node = cparse.parse(src).root_node.children[0]
        fn = ceval.compile_function(ceval.Program({"f": (node, src)}), "f")
        return [fn(a, b) for a in range(-3, 40) for b in (-1, 0, 2)]

    straight = run_all()
    monkeypatch.setattr(runtime, "MAX_STRAIGHT", 0)
    assert run_all() == straight
    assert {r.value for r in straight} != {0}


def test_converted_env_reads_are_read_then_converted() -> None:
    """A configuration name read as one type and converted to another gives what reading
    it and converting the result gives, for every pair of integer types and edge values
    (the conversion may be done in the read)."""
    from analyzer.model.ceval import runtime, types

    ints = [(b, s) for b in (8, 16, 32, 64) for s in (True, False)]
    values = [None, 0, 1, -1, 127, 128, 255, 256, -129, 2**15, 2**31 - 1, 2**31, -2**31 - 1,
              2**32 - 1, 2**32, 2**40 + 5, 2**63, -2**63 - 1, 2**64 + 3, -2**70]
    for src in ints:
        for dst in ints + [types.BOOL]:
            fn = runtime._convert(runtime._E(runtime._env_read("k", "f", src), src), dst).fn
            for v in values:
                read = 0 if v is None else types.conv(v, src)
                assert fn([{"k": v}, []]) == types.conv(read, dst), (src, dst, v)
            with pytest.raises(runtime.Unbound):
                fn([{}, []])


def test_over_is_one_call_per_value() -> None:
    """``Compiled.over`` gives, value by value, what calling the function gives: in range,
    out of range (converted), None, events and a crash."""
    from analyzer.model import ceval

    src = b"""int f(int k, unsigned char v) { if (WARN_ON(v > 200)) return -1;
              BUG_ON(v == 7); return k * 1000 + v; }"""
    node = cparse.parse(src).root_node.children[0]
    fn = ceval.compile_function(ceval.Program({"f": (node, src)}), "f")
    for values in ([0, 1, 2, 255], [0, 7, 201, 300, -1, None, 2**40], []):
        got = fn.over((3, 0), 1, values, {})
        assert got == [fn(3, v, env={}) for v in values]
    assert [r.crashed for r in fn.over((3, 0), 1, [6, 7], {})] == [False, True]


def test_text_search_counts_from_the_root_start_when_a_file_begins_blank() -> None:
    """A file whose first lines are blanked (an inactive ``#if``, a guard the tests
    prepend) has a translation unit that starts after them: offsets found in its text
    must be shifted, or every vcores[] access of the file is missed."""
    from analyzer.c import facts as facts_mod
    from analyzer.c import parse as cparse

    body = b"int f(struct kvm *kvm, int core)\n{\n\treturn kvm->arch.vcores[core] != 0;\n}\n"
    for prefix in (b"", b"#if 0\nint x;\n#endif\n", b"\n\n\n"):
        root = cparse.parse(prefix + body).root_node
        subs = facts_mod._subscripts("a.c", root, "vcores")
        assert [(s.line, s.index) for s in subs] == [(prefix.count(b"\n") + 3, "core")], prefix


def test_shared_slots_are_the_slots() -> None:
    """The create path's slot memo, shared by the rules and by the paths to accesses after
    the same guards and index, gives what a path sliced and run afresh gives."""
    from analyzer.model import paths

    prof = profile.load()
    checked = shared = 0
    for name in ("pre-rfc", "rfc-applied"):
        t = packing.tree(facts.extract(source.from_directory(FIXTURES / "trees" / name)), prof)
        for entry in prof.entries:
            if entry.function not in t.program.functions:
                continue
            cp = paths.create_path(t, entry)
            if cp is None:
                continue
            assert paths.create_path(t, entry) is cp
            sites = [(s, paths.create_path(t, entry, s))
                     for s in paths.table_sites(t, entry.function)]
            shared += sum(p is not None and p.slots is cp.slots for _, p in sites)
            for site, path in [(None, cp), *sites]:
                if path is None:
                    continue
                fresh = paths._create_path(t, entry, site)
                for cfg in t.configs()[::7]:
                    for vid in range(0, 4 * cfg.nr_cpus, 3):
                        assert path.slot(cfg, vid) == fresh._slot(cfg, vid), (cfg, vid)
                        checked += 1
    assert checked and shared


# --- macros expanded in a function on first use ---------------------------------------


def _mini_tree(tmp_path: Path):
    src = tmp_path / "arch/powerpc/kvm/book3s_hv.c"
    src.parent.mkdir(parents=True)
    src.write_text("#define KVM_MAX_VCPUS 8\n#define TWICE(x) ((x) * 2)\n"
                   "static int f(int id)\n{\n\treturn TWICE(id) < KVM_MAX_VCPUS;\n}\n"
                   "static int g(int id)\n{\n\treturn id;\n}\n")
    return packing.tree(facts.extract(source.from_directory(tmp_path)), profile.load())


def test_macros_are_expanded_on_first_use_once(tmp_path: Path) -> None:
    """The program knows every function without expanding any; a function is expanded
    (re-parsed) when first read, once, and what it reads as is cpp's expansion."""
    t = _mini_tree(tmp_path)
    fns = t.program.functions
    assert set(fns) == {"f", "g"} and len(fns) == 2 and "f" in fns and "h" not in fns
    assert not fns._done  # nothing expanded yet
    node, _ = fns["f"]
    assert b"TWICE" not in node.text and b"((id) * 2)" in node.text
    assert fns["f"][0] is node  # the second read is the cached expansion
    assert set(fns._done) == {"f"}
    assert t.compiled("f")(3).value == 1 and t.compiled("f")(4).value == 0
    assert set(fns._done) == {"f"}  # compiling f did not expand g
    added = fns | {"h": fns["g"]}  # an overlay (an expression compiled in the program)
    assert set(added) == {"f", "g", "h"} and added["f"][0] is node and "h" not in fns


def test_expanded_on_use_is_expanded_up_front() -> None:
    """On the bundled trees, after every check ran, each function the checks read is what
    expanding every function up front (the former model) gave, and most were never read."""
    from analyzer import checks, ruleset
    from analyzer.c import defines, macros

    prof = profile.load()
    for name in ("pre-rfc", "rfc-applied"):
        fx = facts.extract(source.from_directory(FIXTURES / "trees" / name))
        t = packing.tree(fx, prof)
        checks.run(ruleset.select(), fx)
        fns = t.program.functions
        active = {f.name for f in fx.functions.values()
                  if defines.active(f.conds, prof.kconfig, prof.arch_defined)}
        assert set(fns) == active
        assert 0 < len(fns._done) < len(fns) / 2
        for fname, (node, src) in fns._done.items():
            f = fx.functions[fname]
            eager = macros.expand_function(fx.node(fname), fx.snapshot.files[f.path],
                                           t.program.macros, fx.functions)
            assert (node.text, node.start_point, src) == (eager[0].text, eager[0].start_point,
                                                         eager[1])


def test_reaching_assignments_are_remembered_and_handed_out_fresh() -> None:
    """A guard's local asks for the assignments that reach it once per node, not once per
    ID and build; each caller gets its own list, equal to a fresh analysis."""
    from analyzer.c import guards
    from analyzer.model import paths

    src = (b"int f(int id)\n{\n\tint core = id * 2;\n\tif (core < 8)\n\t\treturn core;\n"
           b"\treturn 0;\n}\n")
    root = cparse.parse(src).root_node
    site = cparse.captures("(return_statement) @r", root)["r"][0]
    paths._reaching.cache_clear()
    first = paths.reaching(site, "core")
    assert [cparse.text(r) for r in first] == ["id * 2"]
    assert [cparse.text(n.child_by_field_name("value")) for n, _ in
            guards.reaching_assignments(site, "core")] == ["id * 2"]
    first.append(None)  # a caller's list is its own
    again = paths.reaching(site, "core")
    assert [cparse.text(r) for r in again] == ["id * 2"]
    assert paths._reaching.cache_info().hits == 1


# --- id-bound-mismatch's counts: only headers that name the table are searched ------


@pytest.mark.parametrize("table", ["vcores", "core_table"])
def test_table_size_count_is_found_by_the_table_role(tmp_path: Path, table: str) -> None:
    """The size a header declares the VCORE table with is a count, also when the table
    field is renamed (the headers searched are those that name the table found by its
    role, not the profile's name)."""
    import shutil

    from analyzer.checks import _common
    from analyzer.checks.id_bound_mismatch import count_roles
    from analyzer.ruleset import select

    tree = tmp_path / "t"
    shutil.copytree(FIXTURES / "trees" / "rfc-applied", tree)
    for path in tree.rglob("*"):
        if path.suffix in (".c", ".h"):
            path.write_bytes(path.read_bytes().replace(b"vcores", table.encode()))
    rule = next(r for r in select(["id-bound-mismatch"]))
    fx = facts.extract(source.from_directory(tree))
    assert fx.fields.table == table
    counts = count_roles(_common.tree(rule, fx), _common.found_roles(rule, fx))
    assert counts.get("KVM_MAX_VCORES", "").startswith(f"it sizes {table}[] (arch/powerpc/")


# --- pack-table's fault location: one build per class --------------------------------


def test_fault_line_per_class_is_the_full_sweeps(monkeypatch) -> None:
    """Where a pack-table finding goes, swept one build per class, is where the sweep of
    every common build put it, on every fixture whose packing function has a table;
    and the reduced sweep probes fewer IDs."""
    from analyzer.checks import _pack_fault
    from analyzer.model import roles, space

    from .test_rule_fixtures import fixture_snapshot
    from .test_snapshot import _cases

    reduced = space.configs

    def full(t, layouts=False, among=None):
        return t.configs(among, layouts)

    probes = {"full": 0, "reduced": 0}
    plain_probe = _pack_fault.probe
    compared = 0
    for case in _cases():
        fx = facts.extract(fixture_snapshot(case))
        name = roles.find(fx, profile.load()).pack
        t = packing.tree(fx, profile.load())
        s = _pack_fault.shape(t, name) if name in fx.functions else None
        if s is None:
            continue
        got = {}
        for how, sweep in (("full", full), ("reduced", reduced)):
            def counted(*a, how=how):
                probes[how] += 1
                return plain_probe(*a)
            monkeypatch.setattr(space, "configs", sweep)
            monkeypatch.setattr(_pack_fault, "probe", counted)
            got[how] = [_pack_fault.fault_line(t, s, n) for n in (32, 64)]
        assert got["reduced"] == got["full"], case
        compared += 1
    assert compared >= 3
    assert probes["reduced"] < probes["full"]


# --- start-up: a format imports its own formatter only -------------------------------


@pytest.mark.parametrize("fmt,wanted", [("text", "text"), ("json", "jsonout"),
                                        ("sarif", "sarif"), ("checkpatch", "checkpatch")])
def test_render_imports_only_the_formatter_asked_for(fmt: str, wanted: str) -> None:
    """Rendering one format (in a fresh interpreter) imports that formatter and none of
    the others: json, sarif and textwrap are start-up a plain check does not need."""
    import subprocess
    import sys

    code = ("import sys\nfrom analyzer.report import Result, render\n"
            f"render({fmt!r}, Result('t', [], {{}}), ())\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('analyzer.report.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent).stdout.split()
    assert out == sorted(["analyzer.report.result", f"analyzer.report.{wanted}"])


def test_plain_check_does_not_import_what_only_a_series_needs() -> None:
    """``check`` (in a fresh interpreter) runs without importing the verdict relocation a
    series reuses, or the formatters of other formats; the run still finds what it finds."""
    import subprocess
    import sys

    tree = FIXTURES / "trees" / "rfc-applied"
    code = ("import sys, io, contextlib\nfrom analyzer import cli\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    rc = cli.main(['check', {str(tree)!r}, '--format', 'json'])\n"
            "print(rc, 'analyzer.relocate' in sys.modules, 'analyzer.report.text' in sys.modules,"
            " '\"rule\"' in out.getvalue())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent).stdout.split()
    assert out == ["1", "False", "False", "True"]


# --- paths that read the same share a sweep ------------------------------------------

_HELPER = b"""
int kvmppc_xive_compute_vp_id(struct kvmppc_xive *xive, u32 cpu, u32 *vp)
{
	if (cpu >= KVM_MAX_VCPU_ID)
		return -EINVAL;
	*vp = xive_vp(xive, cpu);
	return 0;
}

int kvmppc_xive_connect_vcpu("""
_NATIVE = b"""#include "book3s_xive.h"

int kvmppc_xive_native_connect_vcpu(struct kvm_device *dev, struct kvm_vcpu *vcpu, u32 server_num)
{
	struct kvmppc_xive *xive = dev->private;
	u32 vp_id;

	return kvmppc_xive_compute_vp_id(xive, server_num, &vp_id);
}
"""


def _two_connects(tmp_path: Path, native_check: bytes = b"") -> Path:
    """The bundled tree with both interrupt-device connects handing the server number to
    one checking helper (as 6.12 does), no check of their own before it (the native one:
    ``native_check`` before it)."""
    import shutil

    tree = tmp_path / f"two-connects{len(native_check)}"
    shutil.copytree(FIXTURES / "trees" / "rfc-applied", tree)
    xive = tree / "arch/powerpc/kvm/book3s_xive.c"
    src = xive.read_bytes()
    check = src.index(b"\tif (cpu >= KVM_MAX_VCPU_ID) {")
    src = src[:check] + src[src.index(b"\txc = kzalloc", check):]
    src = src.replace(b"\txc->vp_id = xive_vp(xive, cpu);\n",
                      b"\tr = kvmppc_xive_compute_vp_id(xive, cpu, &xc->vp_id);\n"
                      b"\tif (r)\n\t\tgoto bail;\n")
    xive.write_bytes(src.replace(b"\nint kvmppc_xive_connect_vcpu(", _HELPER, 1))
    (tree / "arch/powerpc/kvm/book3s_xive_native.c").write_bytes(
        _NATIVE.replace(b"\n\treturn kvmppc", b"\n" + native_check + b"\treturn kvmppc"))
    return tree


def test_paths_with_one_run_signature_share_a_sweep(tmp_path: Path, monkeypatch) -> None:
    """vp-block-bound and id-bound-mismatch sweep once for entry points whose paths read
    the same (guardless hops aside): their findings, on every fixture and on a tree whose
    two connects call one checking helper, are those of a sweep per path, and on that
    tree the VP block is swept once instead of twice."""
    from analyzer import checks
    from analyzer.checks import _common, vp_block_bound
    from analyzer.ruleset import select

    from .test_rule_fixtures import fixture_snapshot
    from .test_snapshot import _cases

    rules = select(["vp-block-bound", "id-bound-mismatch"])
    plain_signature, plain_overflow = _common.run_signature, vp_block_bound._overflow
    sweeps: dict[tuple, int] = {}

    def findings(snap, name: str, shared: bool) -> list:
        def overflow(*a):
            sweeps[name, shared] = sweeps.get((name, shared), 0) + 1
            return plain_overflow(*a)
        signature = plain_signature if shared else (lambda path: (object(),))
        monkeypatch.setattr(_common, "run_signature", signature)
        monkeypatch.setattr(vp_block_bound, "run_signature", signature)
        monkeypatch.setattr(vp_block_bound, "_overflow", overflow)
        fx = facts.extract(snap)  # a new Facts: the model's caches start empty
        return [(f.rule, f.path, f.line, f.message, f.counterexample, f.notes)
                for f in checks.run(rules, fx)]

    cases = [(fixture_snapshot(c), c.name) for c in _cases()]
    cases.append((source.from_directory(_two_connects(tmp_path)), "two-connects"))
    checked = _two_connects(tmp_path, b"\tif (server_num >= 4)\n\t\treturn -EINVAL;\n")
    cases.append((source.from_directory(checked), "native-checks-more"))
    for snap, name in cases:
        assert findings(snap, name, True) == findings(snap, name, False), name
    assert sweeps["two-connects", True] == 1 and sweeps["two-connects", False] == 2
    assert sweeps["native-checks-more", True] == sweeps["native-checks-more", False] == 2


# --- macro bodies: a word search without a pattern per name --------------------------


@pytest.mark.parametrize("text,name", [
    ("F(x) + 1", "F"), ("xF(x)", "F"), ("F_(x)", "F"), ("a + F", "F"), ("FF F", "F"),
    ("éF", "F"), ("F2", "F"), ("(F)", "F"), ("", "F"), ("G(F(x))", "F"), ("FFx", "F")])
def test_macro_mentions_itself_as_the_word_pattern_says(text: str, name: str) -> None:
    from analyzer.c import macros

    assert macros.mentions(text, name) == bool(re.search(rf"\b{re.escape(name)}\b", text))


def test_macro_mentions_on_every_fixture_line() -> None:
    """Each line of every fixture file, asked about each identifier in it and about its
    prefixes and suffixes (a name inside a longer word), as the word pattern answers."""
    from analyzer.c import macros

    asked = 0
    for path in C_FILES:
        for line in path.read_text("utf-8", "replace").splitlines():
            for word in set(re.findall(r"[A-Za-z_]\w*", line)):
                for name in {word, word[:-1], word[1:]} - {""}:
                    assert macros.mentions(line, name) == bool(
                        re.search(rf"\b{re.escape(name)}\b", line)), (line, name)
                    asked += 1
    assert asked > 1000


# --- roles: the allocation's callee is looked up, not every function's branch --------


@pytest.mark.parametrize("callee,defined,found", [
    ("xive_native_alloc_vp_block", "", True),  # the profile's allocator, outside the tree
    ("my_alloc", "", True),  # a call the tree does not define
    ("my_alloc", "#if 0\nstatic int my_alloc(int n) { return n; }\n#endif\n", True),  # a stub
    ("my_alloc", "static int my_alloc(int n) { return n; }\n", False),  # a tree function
])
def test_allocation_skips_only_calls_the_build_defines(tmp_path: Path, monkeypatch,
                                                        callee: str, defined: str,
                                                        found: bool) -> None:
    """``X->vp_base = alloc(SIZE)`` is the VP block allocation unless the build defines
    ``alloc`` in the tree (a stub under ``#if 0`` does not count), and only the calls
    assigned to the field have their branch evaluated, not every function's."""
    from analyzer.c import defines
    from analyzer.model import roles

    src = (f"{defined}int kvmppc_xive_create(struct kvmppc_xive *xive, int n)\n{{\n"
           f"\txive->vp_base = {callee}(n);\n\treturn 0;\n}}\n"
           "int f1(int a) { return a; }\nint f2(int a) { return a; }\n")
    path = tmp_path / "arch/powerpc/kvm/book3s_xive.c"
    path.parent.mkdir(parents=True)
    path.write_text(src)
    asked = []
    plain = defines.active
    monkeypatch.setattr(defines, "active", lambda *a: asked.append(a) or plain(*a))
    alloc = roles.find(facts.extract(source.from_directory(tmp_path)), profile.load()).allocation
    assert (alloc is not None and alloc.size_text == "n") == found
    assert len(asked) <= 2
