"""`python3 -m bench.gpu`, tested where it can be without a GPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench import gpu
from tests.marks import CUDA
from tests.pages import ROOT


# What a GPU machine lacks: the site's tools and the browser. Blocked, they must not stop the
# CUDA tests from being collected.
GPU_MACHINE_LACKS = ("sybil", "mkdocs", "playwright", "axe_playwright_python", "jupytext",
                     "nbformat", "latex2mathml", "pymdownx", "mkdocs_jupyter")


def _blocked_env(tmp_path):
    blocked = tmp_path / "blocked"
    for name in GPU_MACHINE_LACKS:
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked for this test')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}


@pytest.mark.slow
def test_the_marker_selects_every_cuda_test_without_the_site_tools(tmp_path):
    """`-m cuda` over tests/ finds a test in every file that defines one, with the site's tools absent."""
    holding = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
               if re.search(r"^@needs_cuda$", p.read_text(encoding="utf-8"), re.M)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
                          "--collect-only", "-q", "-m", "cuda", "tests"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=_blocked_env(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    collected = {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}
    assert holding and collected == holding


@pytest.mark.skipif(CUDA, reason="checks the refusal given where there is no GPU")
def test_without_a_gpu_it_stops_at_once_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.gpu", str(tmp_path / "out")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no CUDA GPU here" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_cuda_tests_run_without_sybil_or_mkdocs(tmp_path):
    """The GPU machines have no Sybil and no MkDocs: the selection must import without them."""
    env = _blocked_env(tmp_path)
    ok, summary = gpu.run_tests(tmp_path, env)
    log = (tmp_path / "cuda-tests.log").read_text()
    assert ok, log[-3000:]
    assert "is blocked" not in log and "error" not in summary.split("(")[0].replace("0 errors", "")
    counts = gpu._counts(tmp_path / "cuda-tests.xml")
    assert counts["tests"] >= 30 and counts["failures"] == counts["errors"] == 0
    if not CUDA:  # every selected test is a CUDA test: here each is skipped with its reason
        assert counts["skipped"] == counts["tests"]
        assert "needs a CUDA GPU" in log
    assert "pages: not run (Sybil is not installed)" in summary
