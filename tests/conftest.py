"""Fixtures shared by the test modules: the site, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pages import ROOT
from tests.test_site import build


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The strict build of the repository as it is, notebook executed: one for every test that reads it."""
    site = tmp_path_factory.mktemp("site")
    result = build(ROOT, site)
    assert result.returncode == 0, result.stderr[-4000:]
    return site
