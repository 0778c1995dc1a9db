"""The browser tests' pytest plugin (the root conftest's `pytest_plugins`): how pytest-xdist
shares them out, and where their screenshots go.

Scheduling: `dev.py test` runs `--dist loadscope`, which keeps a file's tests on one worker, so
that its module-scoped fixtures (and a page's one Sybil namespace) are set up once. The tests of
tests/test_browser.py that take a visit are parametrized by it (`[<page>-<palette>]`): here each
visit is a scope of its own, so that the tests of one visit run on one worker, which loads the
page once, while the other pages load on the other workers.

This reads one private name: it overrides `LoadScopeScheduling._split_scope`, pytest-xdist's
only way to say what a scope is. Its public alternative is `--dist loadgroup` with an
`xdist_group` mark on every test (this plugin would add them: the file, or the visit). With the
locked pytest 9.2.0 and pytest-xdist 3.8.0 that groups nothing: xdist passes the group to the
scheduler by writing `item._nodeid`, which pytest 9.2 no longer reads (node ids are structured,
`item._id`), so every test is its own scope and a file's tests spread over the workers (tried:
no `@group` suffix, files split between gw0 and gw1). This is pytest-xdist issue 1386, open,
with a fix proposed in pull request 1388. Once a release fixes it, switch `dev.py` to
`--dist loadgroup`, mark each test here in `pytest_collection_modifyitems`, and drop the override.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_BROWSER = "tests/test_browser.py::"
_SHOTS = "screenshots"  # the user property by which a worker's report names the folder


def scope_of(nodeid: str) -> str | None:
    """A browser visit's scope, or None for loadscope's own (the file or class)."""
    if nodeid.startswith(_BROWSER) and nodeid.endswith("]"):
        return "browser-visit:" + nodeid[nodeid.index("[") + 1 : -1]
    return None


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which a GPU machine may not have
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class VisitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid) or super()._split_scope(nodeid)

    return VisitScheduling(config, log)


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """The folder of this run's screenshots: $SCREENSHOT_DIR, else one in the run's temporary
    directory that every pytest-xdist worker shares. The run's summary names it."""
    if os.environ.get("SCREENSHOT_DIR"):
        folder = Path(os.environ["SCREENSHOT_DIR"])
    else:
        folder = tmp_path_factory.getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker's basetemp is inside the run's
            folder = folder.parent
        folder = folder / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call" and "shots" in getattr(item, "fixturenames", ()):
        folder = getattr(item, "funcargs", {}).get("shots")
        if folder is not None:  # reports travel from an xdist worker to the controller
            report.user_properties.append((_SHOTS, str(folder)))
    return report


_seen: set[str] = set()


def pytest_runtest_logreport(report):
    _seen.update(value for name, value in report.user_properties if name == _SHOTS)


def pytest_terminal_summary(terminalreporter):
    for folder in sorted(_seen):
        if Path(folder).is_dir() and any(Path(folder).iterdir()):
            terminalreporter.write_line(f"screenshots of every page, light and dark: {folder}")
