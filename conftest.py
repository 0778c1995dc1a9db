"""The suite's root: Sybil's pages (where Sybil is installed), torch threads, the scheduler."""

import functools
import os

import pytest
import torch

from tests.pages import screenshot_dir

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
