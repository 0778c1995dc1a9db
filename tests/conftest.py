"""Fixtures shared by the test modules: the site, built once per test run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.pages import ROOT
from tests.test_site import build


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The strict build of the repository as it is, notebook executed: one for every test that reads it.

    Under pytest-xdist the workers share one build: the first to get here builds
    while the others wait on the lock, then read its result.
    """
    from filelock import FileLock  # here: a GPU machine runs the CUDA tests without it

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has its own basetemp inside the run's
        shared = shared.parent
    site, outcome = shared / "site", shared / "site-build.json"
    with FileLock(shared / "site.lock"):
        if not outcome.exists():
            result = build(ROOT, site)
            outcome.write_text(json.dumps({"returncode": result.returncode, "log": result.stderr[-4000:]}))
    done = json.loads(outcome.read_text())
    assert done["returncode"] == 0, done["log"]
    return site
