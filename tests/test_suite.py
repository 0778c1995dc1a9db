"""The suite's own rules: how its processes run and what every test must do."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import torch


def test_each_test_process_runs_one_torch_thread():
    # The root conftest sets it; a test that changes the count must put it back.
    assert torch.get_num_threads() == 1
    assert "OMP_NUM_THREADS" in os.environ  # for the subprocesses the tests start


# --- Every test can fail -------------------------------------------------------------------
#
# A test function counts as checking something when its body (nested functions and lambdas
# included) holds an `assert`, a `raise`, an expected exception or warning (`pytest.raises`,
# `pytest.warns`, `pytest.fail`), or a call to a helper that asserts. A helper asserts when:
# - its name starts with `assert` (torch.testing.assert_close, numpy's assert_allclose, ...), or
# - it is a function defined in tests/ whose own body passes this rule (found by name, to a
#   fixed point, so helpers calling helpers count), or
# - it is declared in ASSERTING below, with the reason.

TESTS = Path(__file__).resolve().parent
EXPECTING = {"raises", "warns", "fail", "deprecated_call"}  # pytest.<name>
ASSERTING = {
    "check": "tests/test_claims.py: a Claim's check is a ledger function, each of which asserts",
    "check_outputs": "sitegen/notebook_outputs.py: raises BuildError on an output the site refuses",
}
# Tests whose check is that a call raises nothing, where no assertion would add to that.
RAISES_NOTHING = {
    "test_cuda.py::test_a_forward_call_never_waits_for_the_gpu":
        'under torch.cuda.set_sync_debug_mode("error") any synchronisation raises',
}


def _called_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _checks(fn: ast.AST, asserting: set[str]) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, (ast.Assert, ast.Raise)):
            return True
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name is None:
                continue
            is_pytest = isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "pytest"
            if (is_pytest and name in EXPECTING) or name.startswith("assert") or name in asserting:
                return True
    return False


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def silent_tests(files: list[Path]) -> list[str]:
    """`path::test` for each test function in `files` that cannot fail by the rule above."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in files}
    helpers = [f for tree in trees.values() for f in _functions(tree) if not f.name.startswith("test")]
    asserting = set(ASSERTING)
    while True:  # helpers that assert, directly or through other such helpers
        more = {f.name for f in helpers if f.name not in asserting and _checks(f, asserting)}
        if not more:
            break
        asserting |= more
    found = [f"{path.name}::{f.name}" for path, tree in trees.items() for f in _functions(tree)
             if f.name.startswith("test") and not _checks(f, asserting)]
    return [t for t in found if t not in RAISES_NOTHING]


def test_every_test_function_can_fail():
    files = sorted(TESTS.glob("test_*.py")) + [p for p in TESTS.glob("*.py") if not p.name.startswith("test_")]
    silent = silent_tests(files)
    assert not silent, "test functions without an assertion or an expected exception:\n" + "\n".join(silent)
    defined = {f"{p.name}::{f.name}" for p in files for f in _functions(ast.parse(p.read_text(encoding="utf-8")))}
    assert set(RAISES_NOTHING) <= defined, "RAISES_NOTHING names a test that is gone"


PLANTED = '''
import pytest, torch

def helper(x):
    assert x

def outer(x):
    helper(x)

def test_asserts():
    assert 1

def test_raises():
    with pytest.raises(ValueError):
        int("x")

def test_through_helpers():
    outer(1)

def test_assert_close():
    torch.testing.assert_close(torch.ones(1), torch.ones(1))

def test_silent():
    x = [1, 2]
    print(x)

def test_calls_only_a_silent_helper():
    print(len([]))
'''


def test_the_check_finds_a_planted_test_without_an_assertion(tmp_path):
    (tmp_path / "test_planted.py").write_text(PLANTED)
    assert silent_tests([tmp_path / "test_planted.py"]) == [
        "test_planted.py::test_silent", "test_planted.py::test_calls_only_a_silent_helper"]


def test_no_test_imports_a_test_module_or_the_conftest():
    """Helpers live in tests/*.py without the test_ prefix; tests import them, never each other."""
    found = []
    for path in sorted(TESTS.glob("*.py")) + [TESTS.parent / "conftest.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names
                      if n.rsplit(".", 1)[-1].startswith("test_") or n.rsplit(".", 1)[-1] == "conftest"]
    assert not found, found


PLANTED_SLOW = '''
import subprocess, sys, torch

def _run_it():
    return subprocess.run([sys.executable, "-c", "pass"])

def helper():
    return _run_it()

def test_through_helpers():
    assert helper().returncode == 0

def test_compiles():
    assert torch.compile(abs)

def test_plain():
    assert 1
'''


def test_tests_are_marked_slow_from_what_they_use(tmp_path, monkeypatch):
    """tests/tiers.py finds a subprocess two helpers down, and torch.compile, and nothing else."""
    import importlib.util
    import sys

    from tests import tiers

    (tmp_path / "planted_tiers.py").write_text(PLANTED_SLOW)
    spec = importlib.util.spec_from_file_location("planted_tiers", tmp_path / "planted_tiers.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "planted_tiers", module)
    spec.loader.exec_module(module)
    slow = tiers._slow_names("planted_tiers")
    assert {"test_through_helpers", "test_compiles"} <= slow and "test_plain" not in slow, slow


def test_property_tests_use_the_one_hypothesis_profile():
    """conftest.py's profile sets max_examples and the deadline for every property test."""
    from hypothesis import settings

    assert settings().max_examples == 40 and settings().deadline is None
    found = [f"{p.name}:{f.lineno}" for p in sorted(TESTS.glob("test_*.py"))
             for f in _functions(ast.parse(p.read_text(encoding="utf-8"))) for d in f.decorator_list
             if isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", None)) == "settings"]
    assert not found, f"per-test @settings: {found}"
