"""Sybil's setup: every Markdown page under docs/ and every docstring in snippets/ and bench/.

Loaded by tests/sybil_plugin.py only when Sybil is installed: the GPU machines run the CUDA
tests without it (python3 -m bench.gpu).
"""

import importlib.util
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE
from pathlib import Path

import torch
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser
from sybil.sybil import SybilCollection

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


def _setup(namespace):
    # Pages print small tensors; keep them short and free of 1e+00 notation.
    torch.manual_seed(0)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=88)
    # Only for skip conditions: pages import what they use, like a reader would.
    namespace["CUDA"] = torch.cuda.is_available()
    namespace["TRITON"] = importlib.util.find_spec("triton") is not None


def _teardown(namespace):
    # Print options are global to the process: restore them for the next page.
    torch.set_printoptions(profile="default", sci_mode=None)


# `patterns` use PurePath.match, which matches from the right: "*.md" below
# `path` finds pages at every depth, "docs/**/*.md" would miss docs/index.md.
DOCS = Sybil(
    parsers=[PythonCodeBlockParser(doctest_optionflags=FLAGS), SkipParser()],
    path=str(ROOT / "docs"),
    patterns=["*.md"],
    setup=_setup,
    teardown=_teardown,
    name="docs",
)



def _docstrings(folder: str, name: str, excludes: list[str]) -> Sybil:
    """The doctests of every module's docstrings in `folder`."""
    return Sybil(
        parsers=[DocTestParser(optionflags=FLAGS)],
        path=str(ROOT / folder),
        patterns=["*.py"],
        excludes=excludes,
        setup=_setup,
        teardown=_teardown,
        name=name,
    )


# Importing the kernels needs triton; where it is missing, tests/test_kernels.py says so.
DOCSTRINGS = _docstrings("snippets", "docstrings", [] if importlib.util.find_spec("triton") else ["kernels.py"])
BENCH_DOCSTRINGS = _docstrings("bench", "bench-docstrings", [])

collect = SybilCollection([DOCS, DOCSTRINGS, BENCH_DOCSTRINGS]).pytest()
