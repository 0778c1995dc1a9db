"""The suite's own rules: how its processes run and what every test must do."""

from __future__ import annotations

import os

import torch


def test_each_test_process_runs_one_torch_thread():
    # The root conftest sets it; a test that changes the count must put it back.
    assert torch.get_num_threads() == 1
    assert "OMP_NUM_THREADS" in os.environ  # for the subprocesses the tests start
