"""The toolchain: the lock matches pyproject.toml, the workflows pass their linter, the end-of-life date is current."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.pages import ROOT, load_file

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = (ROOT / "requirements.lock").read_text(encoding="utf-8")
PINS = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", LOCK, re.M)


def _dev_py():
    return load_file("dev.py", "dev")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def test_the_lock_pins_every_tool_of_every_group_and_no_index():
    pinned = {_name(name) for name, _ in PINS}
    groups = PYPROJECT["dependency-groups"]
    wanted = {_name(r) for g in groups.values() for r in g if isinstance(r, str)}
    assert wanted <= pinned, f"not in requirements.lock: {sorted(wanted - pinned)}"
    assert "torch" not in pinned, "torch stays a range (pyproject.toml), chosen by pip for the machine"
    assert not re.search(r"^\s*-", LOCK, re.M), "options (an index, find-links) belong to the user's pip"
    assert "://" not in LOCK


def test_requires_python_dev_py_and_the_lock_agree():
    dev = _dev_py()
    minimum = ".".join(map(str, dev.MIN_PYTHON))
    assert PYPROJECT["project"]["requires-python"] == f">={minimum}"
    assert dev.LOCK_COMMAND[dev.LOCK_COMMAND.index("--python-version") + 1] == minimum
    # Dev tools are groups, not extras; the one extra is what the package's figures need.
    assert PYPROJECT["project"]["optional-dependencies"] == {"figures": ["matplotlib>=3.8"]}


def test_the_workflows_pass_zizmor():
    done = subprocess.run([str(Path(sys.executable).parent / "zizmor"), "--offline", "--no-progress",
                           "--config", ".github/zizmor.yml", ".github/workflows"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_maintaining_md_has_material_s_own_end_of_life_date():
    """The installed Material announces its end of life; MAINTAINING.md must give the same date."""
    spec = importlib.util.find_spec("material.templates")
    notice = Path(spec.origin).read_text(encoding="utf-8")
    announced = re.search(r"reaches end of life on ([A-Z][a-z]+ \d{1,2}, \d{4})", notice)
    if announced is None:
        pytest.fail("the installed Material announces no end-of-life date: check and update MAINTAINING.md")
    assert announced.group(1) in (ROOT / "MAINTAINING.md").read_text(encoding="utf-8")
