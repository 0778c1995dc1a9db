"""The linters: `ruff check`, `ruff format --check` and `mypy` pass on snippets/ and bench/.

Their settings are in pyproject.toml. The tools are those of the Python that runs
the tests (the `lint` group of pyproject.toml, pinned in requirements.lock). Where
one is not installed its test is skipped, except under CI=true, where it fails:
CI must run them. ruff and mypy keep their caches in .ruff_cache and .mypy_cache,
which ignore themselves in git, so a second run takes a second or two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pages import ROOT

BIN = Path(sys.executable).parent
COMMANDS = {
    "ruff check": ["ruff", "check", "--no-fix", "snippets", "bench"],
    "ruff format": ["ruff", "format", "--check", "snippets", "bench"],
    "mypy": ["mypy"],  # its files (snippets, bench) come from pyproject.toml
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_lint_is_clean(name: str) -> None:
    tool, *args = COMMANDS[name]
    exe = BIN / tool
    if not exe.exists():
        reason = f"{tool} is not installed next to {sys.executable} (pip install --group lint)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the linters must run, not skip")
        pytest.skip(reason)
    proc = subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    command = " ".join([tool, *args])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"`{command}` exited {proc.returncode} in {ROOT}:\n{output}"
