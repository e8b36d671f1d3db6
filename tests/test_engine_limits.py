"""Hostile C in the tree under check: the engine answers 'undecided' (an info
finding naming the construct and line) instead of raising, and its own bugs are
not disguised as findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import checks, ruleset
from analyzer.c import facts
from analyzer.c import parse as cparse
from analyzer.model import ceval
from analyzer.model import packing as model
from analyzer.sources.tree import Snapshot

from .conftest import FIXTURES

CASE = FIXTURES / "rules" / "pack-table" / "merged-shape"
HEADER = "arch/powerpc/include/asm/kvm_book3s.h"


def _tree(return_expr: str | None = None, before_return: str = "") -> Snapshot:
    files = {p.relative_to(CASE).as_posix(): p.read_bytes()
             for p in sorted(CASE.rglob("*")) if p.is_file()}
    src = files[HEADER].decode()
    if return_expr is not None:
        src = src.replace("return packed_id;", f"{before_return}return {return_expr};")
    files[HEADER] = src.encode()
    return Snapshot("hostile", files)


def _run(snap: Snapshot, rule: str = "pack-table"):
    rules = ruleset.select([rule])
    return checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))


def _return_line(snap: Snapshot) -> int:
    lines = snap.files[HEADER].decode().splitlines()
    return next(i for i, ln in enumerate(lines, 1) if "\treturn (" in ln or "+ 0 + 0" in ln
                or "for (" in ln)


@pytest.mark.parametrize("expr", ["(" * 1000 + "packed_id" + ")" * 1000,
                                  "packed_id" + " + 0" * 900])
def test_deep_expression_is_undecided_not_a_recursion_error(expr: str) -> None:
    snap = _tree(expr)
    (f,) = _run(snap)
    assert f.severity == "info" and f.message.startswith("undecided:")
    assert "nested deeper than" in f.message and f.line == _return_line(snap)


def test_loop_in_packing_function_is_undecided(cli, tmp_path: Path) -> None:
    snap = _tree("packed_id", "for (;;)\n\t\tpacked_id++;\n\t")
    (f,) = _run(snap)
    assert f.severity == "info" and "for_statement" in f.message
    for path, data in snap.files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    rc, out, err = cli("model", "--tree", str(tmp_path), "--nr-cpus", "8", "--stride", "2")
    assert rc == 2 and out == "" and "Traceback" not in err
    assert "cannot evaluate kvmppc_pack_vcpu_id(): for_statement at line" in err


def test_evaluator_bugs_are_not_findings(monkeypatch) -> None:
    """A TypeError inside the evaluator is a bug of vpcheck: it must surface (the CLI
    turns it into an internal error), never become an info finding."""
    def broken(self, n):
        raise TypeError("evaluator bug")
    monkeypatch.setattr(ceval._Compiler, "_stmt", broken)
    with pytest.raises(TypeError, match="evaluator bug"):
        _run(_tree("packed_id + 1"))


def test_each_file_is_hashed_once(monkeypatch) -> None:
    """model.tree used to hash a whole file once per function (1 MB: 7.5 s)."""
    body = "".join(f"static int f{i}(int x) {{ return x + {i}; }}\n" for i in range(300))
    snap = _tree()
    snap = Snapshot("many", {**snap.files, "arch/powerpc/kvm/many.c":
                             b"#include <KVM_MAX_VCPUS>\n" + body.encode()})
    fx = facts.extract(snap)
    calls = []
    real = cparse.blob_id
    monkeypatch.setattr(cparse, "blob_id", lambda data: calls.append(len(data)) or real(data))
    model.tree.cache_clear()
    t = model.tree(fx)
    assert len(t.program.functions) > 300
    assert len(calls) <= len(snap.files)


@pytest.mark.parametrize(("argv", "message"), [
    (("--nr-cpus", "100000000"), "--nr-cpus 100000000 is outside what the kernel's "
                                 "configuration allows (2..8192, profiles/powerpc-kvm-hv.toml)"),
    (("--nr-cpus", "16", "--vcpus", "1000"), "--vcpus 1000 exceeds stride * NR_CPUS"),
])
def test_model_configuration_space_is_bounded(cli, argv, message) -> None:
    rc, out, err = cli("model", *argv)
    assert rc == 2 and out == "" and err == f"vpcheck: error: model: {message}\n"


def test_an_undecided_call_of_a_function_the_tree_lacks_is_reported_not_dropped() -> None:
    """No packing function in the tree: the create path's IDs that call it are
    undecided, at the access that depends on them, and never fall out of every scope."""
    from .test_rule_fixtures import fixture_snapshot

    snap = fixture_snapshot(FIXTURES / "rules" / "pack-table" / "no-pack-function")
    rules = ruleset.select(["capacity", "vcore-index"])
    found = checks.run(rules, facts.extract(snap, ruleset.tokens(rules)))
    assert {f.rule for f in found} == {"capacity", "vcore-index"}
    for f in found:
        assert f.severity == "info" and f.path and f.line > 0, f
        assert "neither defined in the tree" in f.message
        assert "vcores[core]" in snap.files[f.path].decode().splitlines()[f.line - 1]
