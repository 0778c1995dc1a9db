"""The fast tier (a pytest plugin of the root conftest): tests are marked `slow` from what they
use, so that `python3 dev.py test --fast` (`-m "not slow"`) is an inner loop that deselects them.

A test is slow when it
- uses the built site or the browser: a fixture in SLOW_FIXTURES, or the `browser` mark;
- or uses, in its source, a fixture's, or that of a function of its module that it calls (to
  any depth), one of USES: a subprocess, the site builder, a run of the timing harness, a
  memory profile, torch.compile, the timing page's plots, or chapter 10's kernel (in Triton's
  interpreter without a GPU, a Python loop over its programs; compiled on first use with one);
- or is marked `slow` by hand (what it uses shows nothing, but it takes seconds).
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import sys

import pytest

SLOW_FIXTURES = {"built_site", "site", "server", "visit", "playwright_browser", "shots"}
USES = {
    "a subprocess": r"\bsubprocess\b|\bPopen\b|\bsys\.executable\b",
    "the site builder": r"\bbuild\(",
    "a run of the timing harness": r"\bcli\.main\(",
    "a memory profile": r"\bprofile_memory\(",
    "torch.compile": r"\btorch\.compile\(",
    "the timing page's plots": r"\breport\.render\(|\bhooks\W+timing\.py",
    "chapter 10's kernel": r"\bprefix_mean_triton\b|\b_scan\(",
}
_SLOW = re.compile("|".join(f"(?:{p})" for p in USES.values()))


@functools.cache
def _slow_names(module_name: str) -> frozenset[str]:
    """Functions of a test module that use one of USES, directly or through each other."""
    module = sys.modules.get(module_name)
    try:
        tree = ast.parse(inspect.getsource(module))
    except (TypeError, OSError):
        return frozenset()
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    calls = {name: {c.func.id if isinstance(c.func, ast.Name) else getattr(c.func, "attr", None)
                    for c in ast.walk(f) if isinstance(c, ast.Call)} for name, f in funcs.items()}
    slow = {name for name, f in funcs.items() if _SLOW.search(ast.unparse(f))}
    while more := {n for n in funcs if n not in slow and calls[n] & slow}:
        slow |= more
    return frozenset(slow)


def is_slow(item: pytest.Item) -> bool:
    if item.get_closest_marker("slow") or item.get_closest_marker("browser"):
        return True
    names = set(getattr(item, "fixturenames", ()))
    if names & SLOW_FIXTURES:
        return True
    module = getattr(item, "module", None)
    function = getattr(item, "function", None)
    if module is None or function is None:
        return False  # Sybil's examples: pages and docstrings run in-process
    slow = _slow_names(module.__name__)
    return function.__name__ in slow or bool(names & slow)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marks
def pytest_collection_modifyitems(items):
    for item in items:
        if not item.get_closest_marker("slow") and is_slow(item):
            item.add_marker(pytest.mark.slow)
