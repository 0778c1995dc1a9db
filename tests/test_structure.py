"""The packages' shape: snippets holds the teaching code, bench the harness beside it.

Imports point one way (bench -> snippets, never back) and no module imports itself again
through others, counting imports made only for type checkers.
"""

from __future__ import annotations

import ast

from tests.pages import ROOT

PACKAGES = ("snippets", "bench")


def _graph() -> dict[str, set[str]]:
    """{module: the modules of snippets and bench it imports anywhere in its source}."""
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            deps = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                deps |= {t for t in targets if t.split(".")[0] in PACKAGES}
            graph[name] = deps
    modules = set(graph)
    return {m: {d for d in deps if d in modules} - {m} for m, deps in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_snippets_or_bench():
    graph = _graph()
    assert "snippets.attention" in graph and "bench.report" in graph
    # the package's __init__ imports every chapter; the chapters never import it back
    assert _cycle({m: d - {"snippets"} for m, d in graph.items()}) is None


def test_snippets_never_imports_the_harness():
    offenders = {m: sorted(d) for m, d in _graph().items()
                 if m.startswith("snippets") and any(x.startswith("bench") for x in d)}
    assert not offenders


def test_the_results_format_modules_import_only_the_standard_library():
    graph = _graph()
    assert graph["bench.schema"] == set()
    assert graph["bench.validate"] == {"bench.schema", "bench.safe_read", "bench.noise", "bench.reader"}
    assert graph["bench.reader"] == {"bench.schema", "bench.safe_read"}  # JSON types and limits only
    assert graph["bench.safe_read"] == {"bench.schema"}
    assert graph["bench.noise"] <= {"bench.schema"}  # the medians, flags and busy rule
