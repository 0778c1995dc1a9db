"""Sybil's setup: every Markdown page under docs/ and every docstring in snippets/ and bench/.

Loaded by tests/sybil_plugin.py only when Sybil is installed: the GPU machines run the CUDA
tests without it (python3 -m bench.gpu).
"""

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

DOCSTRINGS = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    path=str(ROOT / "snippets"),
    patterns=["*.py"],
    setup=_setup,
    teardown=_teardown,
    name="docstrings",
)

BENCH_DOCSTRINGS = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    path=str(ROOT / "bench"),
    patterns=["*.py"],
    setup=_setup,
    teardown=_teardown,
    name="bench-docstrings",
)

collect = SybilCollection([DOCS, DOCSTRINGS, BENCH_DOCSTRINGS]).pytest()
