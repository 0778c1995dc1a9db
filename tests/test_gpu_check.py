"""`python3 -m snippets.timing.gpu`, tested where it can be without a GPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from snippets.timing import gpu
from tests.marks import CUDA
from tests.pages import ROOT


def test_every_file_with_a_cuda_test_is_run_by_the_gpu_command():
    holding = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
               if re.search(r"^@needs_cuda$", p.read_text(encoding="utf-8"), re.M)}
    assert holding == set(gpu.CUDA_TEST_FILES)


@pytest.mark.skipif(CUDA, reason="checks the refusal given where there is no GPU")
def test_without_a_gpu_it_stops_at_once_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "snippets.timing.gpu", str(tmp_path / "out")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no CUDA GPU here" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_cuda_tests_run_without_sybil_or_mkdocs(tmp_path):
    """The GPU machines have no Sybil and no MkDocs: the selection must import without them."""
    blocked = tmp_path / "blocked"
    for name in ("sybil", "mkdocs", "playwright"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked for this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}
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
