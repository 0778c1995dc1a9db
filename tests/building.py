"""Building the site for the tests: the shared strict build (the `built_site` fixture, one per
test run) and small copies of the project that build in seconds (`minimal_site`).

A pytest plugin (the root conftest's `pytest_plugins`), so that its fixture reaches every test
without a test module importing another.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pages import ROOT

# The console script a MkDocs user types from the activated .venv, beside this interpreter.
MKDOCS = Path(sys.executable).with_name("mkdocs")
# Another builder that takes MkDocs' command line (ProperDocs: .venv-properdocs/bin/properdocs, made
# by .ci/builders.sh), to run the site tests on its build instead (MAINTAINING.md, the builders).
BUILDER = os.environ.get("SITE_BUILDER") or str(MKDOCS)
_FENCE = re.compile(r"^\s*(```|~~~)")


@functools.cache
def installed_elsewhere() -> bool:
    """Whether `import snippets`, with nothing on PYTHONPATH, finds another checkout's copy: a
    worktree that shares another checkout's editable install. Then the builds put this checkout
    first on PYTHONPATH, so that its build steps' `snippets` and `bench` and the notebook's are these;
    in the checkout the venv was made for (a fresh clone, CI) they run with nothing on it."""
    probe = "import snippets, pathlib; print(pathlib.Path(snippets.__file__).resolve().parent.parent)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], cwd="/", env=env, capture_output=True, text=True)
    return done.returncode != 0 or Path(done.stdout.strip()) != ROOT


def build(root: Path, site: Path, *, execute_notebook: bool = True, plain: bool = False) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the project at `root`, run as a MkDocs user runs it: the plain
    console script, in `root`. mkdocs.yml reads NOTEBOOK_EXECUTE (default true). PYTHONPATH is
    unset for this checkout where the venv's editable install is this checkout; a copy of the
    project (`minimal_site`), or this checkout where the install is another's
    (`installed_elsewhere`), gets `root` on it, so that its hooks and notebook import its own
    `snippets` and `bench`. `plain=True` leaves it unset whatever the case."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"NO_MKDOCS_2_WARNING": "1", "NOTEBOOK_EXECUTE": "true" if execute_notebook else "false"}
    if not plain and (root.resolve() != ROOT or installed_elsewhere()):
        env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [BUILDER, "build", "--strict", "-f", str(root / "mkdocs.yml"), "-d", str(site)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )


def _headings_only(text: str) -> str:
    """A page's headings (so its anchors stay), without its body, code or includes."""
    kept, in_code = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            kept.append(line + "\n")
    return "\n".join(kept)


def minimal_site(dest: Path, *, pages: tuple[str, ...] = (), steps: tuple[str, ...] = ()) -> Path:
    """A copy of the project that builds in seconds: the same mkdocs.yml (strictness,
    link validation, Markdown extensions, theme, the adapter hook that adds the MathML Markdown
    extension) but only the given build steps of `sitegen` (`extra.sitegen.steps`: none unless
    named) and the search plugin, the
    given pages in full and every other page reduced to its headings, so that links and
    anchors between pages still resolve."""
    import yaml
    from mkdocs.utils.yaml import get_yaml_loader

    source = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = yaml.load(source, Loader=get_yaml_loader())
    config.pop("nav", None)
    config["hooks"] = ["hooks/mkdocs_adapter.py"]
    config.setdefault("extra", {})["sitegen"] = {"steps": list(steps)}
    config["plugins"] = ["search"]
    text = yaml.dump(config, sort_keys=False, allow_unicode=True)
    site_url = re.search(r"^site_url:.*$", source, re.M).group(0)  # keep its !ENV SITE_URL
    (dest / "mkdocs.yml").write_text(re.sub(r"^site_url:.*$", lambda _: site_url, text, flags=re.M))
    for name in ("hooks", "sitegen", "overrides", "snippets", "bench"):  # bench: the timing step imports it
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for src in (ROOT / "docs").rglob("*"):  # in the file system's order: a file may come first
        out = dest / src.relative_to(ROOT)
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        elif src.suffix == ".md" and src.relative_to(ROOT / "docs").as_posix() not in pages:
            out.write_text(_headings_only(src.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copy2(src, out)
    return dest


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
