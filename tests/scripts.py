"""Loading the repository's script files (hooks/, dev.py), which are no package, as their tools
do: by path."""

from __future__ import annotations

import importlib.util
import types

from tests.pages import ROOT


def load_file(path: str, name: str | None = None) -> types.ModuleType:
    """A fresh module from `path` (relative to the repository), loaded by path as MkDocs loads
    its hooks; each call loads it anew, so a test may patch its copy."""
    name = name or path.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
