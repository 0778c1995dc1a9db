"""Sybil: every Markdown page under docs/ and every docstring in snippets/ is a test."""

import importlib.util
import os
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

import pytest
import torch
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

from tests.pages import screenshot_dir

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE

# Without a CUDA GPU, Triton's interpreter runs the kernels of chapter 9 (tests, page, docstrings)
# on CPU tensors. The variable must be set before triton is first imported (torch may import
# it, as an optimizer step does), so it is set here, before any test or page runs.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# Under pytest-xdist, each worker gets its share of the cores for torch's intra-op threads; by
# default every worker would start a thread per core, and the workers' threads would contend.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and "OMP_NUM_THREADS" not in os.environ:
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


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
    # Importing the kernels needs triton; where it is missing, tests/test_kernels.py says so.
    excludes=[] if importlib.util.find_spec("triton") else ["kernels.py"],
    setup=_setup,
    teardown=_teardown,
    name="docstrings",
)

pytest_collect_file = (DOCS + DOCSTRINGS).pytest()


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which a GPU machine may not have
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` (dev.py test), with each page's browser visit as a scope of its own.

    loadscope keeps a file's tests on one worker, so that its module-scoped fixtures (and a
    page's one Sybil namespace) are set up once. The tests of tests/test_browser.py that take a
    visit are parametrized by it (`[<page>-<palette>]`): those of one visit share a scope, so
    they run on one worker, which loads the page once, while the other pages load on the other
    workers.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class VisitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/test_browser.py::") and nodeid.endswith("]"):
                return "browser-visit:" + nodeid[nodeid.index("[") + 1 : -1]
            return super()._split_scope(nodeid)

    return VisitScheduling(config, log)


def pytest_terminal_summary(terminalreporter, config):
    if os.environ.get("PYTEST_XDIST_WORKER") or not hasattr(config, "_tmp_path_factory"):
        return
    folder = screenshot_dir(config)
    if folder.is_dir() and any(folder.iterdir()):
        terminalreporter.write_line(f"screenshots of every page, light and dark: {folder}")
