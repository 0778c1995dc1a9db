"""The suite's root: one torch thread per test process, and the helper plugins."""

import os

import torch
from hypothesis import settings

# Without a CUDA GPU, Triton's interpreter runs the kernels of chapter 10 (tests, page, docstrings)
# on CPU tensors. The variable must be set before triton is first imported (torch may import
# it, as an optimizer step does), so it is set here, before any test or page runs.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# Helpers with fixtures or hooks, each in a module of its own (tests/*.py without test_).
pytest_plugins = [
    "tests.sybil_plugin",  # the pages and docstrings, run by Sybil (tests/sybil_pages.py)
    "tests.building",  # the site builds: built_site, minimal_site
    "tests.browser_plugin",  # the xdist scheduler and the screenshots
    "tests.tiers",  # the slow mark, from what a test uses (dev.py test --fast deselects it)
]

# One torch thread per test process, always: the tests run on tiny tensors, where more threads
# cost far more in contention (most of all with the pytest-xdist workers and other work sharing
# the cores) than they gain; a test that times several threads sets its own count. OMP_NUM_THREADS
# carries the same choice to the subprocesses the tests start (a build, a script), unless the
# caller chose one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# One Hypothesis profile for every property test: 40 examples each, and no deadline (a first
# call may compile or allocate; the timing tests measure time, the property tests do not).
settings.register_profile("suite", max_examples=40, deadline=None)
settings.load_profile("suite")
