"""Sybil's pages and docstrings as tests (a pytest plugin of the root conftest): the setup lives
in tests/sybil_pages.py, loaded only where Sybil is installed (a GPU machine runs the CUDA tests
without it)."""

from __future__ import annotations

import functools


@functools.cache
def _sybil_collect():
    try:
        import sybil  # noqa: F401
    except ImportError:
        return None
    from tests.sybil_pages import collect

    return collect


def pytest_collect_file(file_path, parent):
    collect = _sybil_collect()
    return collect(file_path, parent) if collect else None
