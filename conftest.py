"""Sybil: every Markdown page under docs/ and every docstring in snippets/ is a test."""

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

import torch
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

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
    path="docs",
    patterns=["*.md"],
    setup=_setup,
    teardown=_teardown,
    name="docs",
)

DOCSTRINGS = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    path="snippets",
    patterns=["*.py"],
    setup=_setup,
    teardown=_teardown,
    name="docstrings",
)

pytest_collect_file = (DOCS + DOCSTRINGS).pytest()
