"""The suite's root: Sybil's pages (where Sybil is installed), torch threads, the scheduler."""

import functools
import os

import pytest
import torch

from tests.pages import screenshot_dir

# Helpers with fixtures or hooks, each in a module of its own (tests/*.py without test_).
pytest_plugins = ["tests.building"]

# One torch thread per test process, always: the tests run on tiny tensors, where more threads
# cost far more in contention (most of all with the pytest-xdist workers and other work sharing
# the cores) than they gain; a test that times several threads sets its own count. OMP_NUM_THREADS
# carries the same choice to the subprocesses the tests start (a build, a script), unless the
# caller chose one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@functools.cache
def _sybil_collect():
    """tests/sybil_pages.py's collector, or None where Sybil is not installed (a GPU machine)."""
    try:
        import sybil  # noqa: F401
    except ImportError:
        return None
    from tests.sybil_pages import collect

    return collect


def pytest_collect_file(file_path, parent):
    collect = _sybil_collect()
    return collect(file_path, parent) if collect else None


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
