"""The built wheel: what the pages and the notebook import is in it, and `python -m bench` runs from it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile

import pytest

from tests.pages import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-cache-dir", "-q", "-w", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (path,) = out.glob("attention_trick-*.whl")
    return path


def _imported_modules() -> set[str]:
    """Every snippets or bench module that a page, the notebook, a build step or a bench module imports."""
    found = set()
    sources = [*(ROOT / "docs").rglob("*.md"), *(ROOT / "docs" / "notebooks").glob("*.py"), *(ROOT / "bench").glob("*.py"),
               *(ROOT / "hooks").glob("*.py"), *(ROOT / "sitegen").glob("*.py")]
    for path in sources:
        for m in re.finditer(r"^\s*(?:>>> |\.\.\. )?(?:from|import) ((?:snippets|bench)(?:\.\w+)*)",
                             path.read_text(encoding="utf-8"), re.M):
            found.add(m.group(1))
    return found


def test_the_wheel_holds_every_module_the_pages_and_the_notebook_import(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = _imported_modules()
    assert {"snippets.attention", "bench.report", "snippets.figures"} <= modules
    for module in sorted(modules):
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, f"{module} is not in {wheel.name}"
    assert "snippets/py.typed" in names
    assert not any(n.startswith(("tests/", "docs/", "hooks/")) for n in names)


def test_python_m_bench_runs_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "-q",
                              "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    away = tmp_path / "elsewhere"  # not the checkout: only the installed copy can be imported
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=away, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "--out" in run.stdout, run.stderr[-2000:]
    where = subprocess.run([sys.executable, "-c", "import bench, snippets; print(bench.__file__, snippets.__file__)"],
                           cwd=away, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.count(str(target)) == 2, where.stdout + where.stderr
    # a short real run, written to the current folder (outside a checkout there is no docs/)
    tiny = subprocess.run([sys.executable, "-m", "bench", "--device", "cpu", "--T", "64", "--repeats", "3",
                           "--dtype", "float32", "--methods", "clone", "prefix_mean_cumsum", "--no-bandwidth",
                           "--no-memory", "--allow-busy", "--out", str(away / "tiny.json")],  # beside other jobs
                          cwd=away, env=env, capture_output=True, text=True, timeout=300)
    assert tiny.returncode == 0, tiny.stdout[-2000:] + tiny.stderr[-2000:]
    assert (away / "tiny.json").is_file()
