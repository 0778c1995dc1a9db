"""Marks shared by the test modules."""

from __future__ import annotations

import pytest
import torch

CUDA = torch.cuda.is_available()


def needs_cuda(test):
    """A CUDA test: skipped with a reason where there is no GPU; `python3 -m bench.gpu` runs them all."""
    return pytest.mark.cuda(pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")(test))
