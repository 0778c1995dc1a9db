"""Fingerprints of the code a method measures, to tell when a results file has gone stale.

A method's fingerprint is a SHA-256 over the syntax trees (`canonical`, the same
on every Python from 3.11 on) of its function or class
and of every top-level definition of the ``snippets`` package that it reaches:
functions, classes and constants it names, in its own module or imported from
another ``snippets`` module, followed transitively. Docstrings, comments and
layout do not count, so editing an explanation does not flag a measurement;
changing what runs does. The source is read, not imported: standard library only.
``stale_methods`` names the methods of a results file whose fingerprint is no longer the
code's.

>>> fp = fingerprint("snippets.averaging:prefix_mean_cumsum")
>>> len(fp), fp == fingerprint("snippets.averaging:prefix_mean_cumsum")
(64, True)
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from bench.schema import METHODS, Results, base_name


def _package_dir() -> Path:
    """The folder of the ``snippets`` package, found without importing it (or torch)."""
    spec = importlib.util.find_spec("snippets")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("fingerprint: the snippets package cannot be found")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


PACKAGE = _package_dir()


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def _module(module: str) -> tuple[dict[str, tuple[str, frozenset[str]]], dict[str, str]]:
    """Of a snippets module: ({top-level name: (dump of its definition, names it uses)},
    {imported name: "module:name"})."""
    if module != "snippets" and not module.startswith("snippets."):
        raise ValueError(f"fingerprint: only snippets modules are fingerprinted, got {module!r}")
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    tree = _strip_docstrings(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    defs, imports = {}, {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = _entry(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name):
                        defs[name.id] = _entry(node)
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("snippets")
        ):
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    return defs, imports


def canonical(node) -> str:
    """A dump of a syntax tree that is the same on every Python version from 3.11 on.

    ``ast.dump`` is not: 3.12 added fields such as ``type_params`` to every
    function and class. Empty fields (None, []) are left out, so a field a newer
    Python adds with an empty default changes nothing.
    """
    if isinstance(node, ast.AST):
        inner = ",".join(
            f"{k}={canonical(v)}" for k, v in ast.iter_fields(node) if v is not None and v != []
        )
        return f"{type(node).__name__}({inner})"
    if isinstance(node, list):
        return "[" + ",".join(canonical(x) for x in node) + "]"
    return repr(node)


def _entry(node: ast.AST) -> tuple[str, frozenset[str]]:
    names = frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    return canonical(node), names


def reached(code: str) -> dict[str, str]:
    """Every definition `code` ("module:name") reaches: {"module:name": dump of its syntax tree}."""
    out: dict[str, str] = {}
    todo = [code]
    while todo:
        ref = todo.pop()
        if ref in out:
            continue
        module, _, name = ref.partition(":")
        defs, imports = _module(module)
        if name in imports:
            todo.append(imports[name])
            continue
        if name not in defs:
            raise ValueError(f"fingerprint: {module} defines no top-level {name!r}")
        out[ref], uses = defs[name]
        for used in uses - {name}:
            if used in defs:
                todo.append(f"{module}:{used}")
            elif used in imports:
                todo.append(imports[used])
    return out


def fingerprint(code: str) -> str:
    """SHA-256 (hex) of the code `code` ("module:name") measures, as it is in this checkout."""
    digest = hashlib.sha256()
    for ref, dump in sorted(reached(code).items()):
        digest.update(f"{ref}\n{dump}\n".encode())
    return digest.hexdigest()


def stale_methods(res: Results) -> dict[str, str]:
    """{method: why} for every measured method whose code has changed since the file was
    measured."""
    out = {}
    for name, fp in res.fingerprints.items():
        code_ref = METHODS[base_name(name)].code
        if code_ref is None:
            continue
        try:
            now = fingerprint(code_ref)
        except (OSError, SyntaxError, ValueError) as exc:
            now = f"unreadable ({exc})"
        if now != fp:
            out[name] = (
                f"the code of {code_ref.replace(':', '.')} has changed since it was measured"
            )
    return out
