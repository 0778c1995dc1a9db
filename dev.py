#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+ installed.

    python3 dev.py serve   # create .venv if needed, then serve the site on http://127.0.0.1:8000
    python3 dev.py test    # create .venv if needed, then run every test and the strict build
    python3 dev.py build   # create .venv if needed, then build the site into site/

The virtual environment is (re)installed only when pyproject.toml changed since
the last install. Extra arguments after `test` go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed-from"


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def _has_pip() -> bool:
    if not PY.exists():
        return False
    return subprocess.run([str(PY), "-m", "pip", "--version"], capture_output=True).returncode == 0


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not _has_pip():  # missing, or left half-made by an earlier failed attempt
        shutil.rmtree(VENV, ignore_errors=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except subprocess.CalledProcessError:
            shutil.rmtree(VENV, ignore_errors=True)
            sys.exit("Could not create .venv with pip in it. On Debian or Ubuntu, "
                     "install the python3-venv package first.")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(PY, "-m", "pip", "install", "--quiet", "--editable", ".[dev]")
        STAMP.write_text(digest)


def main(argv: list[str]) -> None:
    task, rest = (argv[0], argv[1:]) if argv else ("", [])
    if task not in {"serve", "test", "build"}:
        sys.exit(__doc__)
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    try:
        setup()
        if task == "serve":
            os.environ.setdefault("SITE_URL", "http://127.0.0.1:8000/")  # serve at /, not /<repo>/
            run(BIN / "mkdocs", "serve", "--strict", "--dev-addr", "127.0.0.1:8000", *rest)
        elif task == "build":
            run(BIN / "mkdocs", "build", "--strict", *rest)
        else:
            run(PY, "-m", "pytest", *rest)
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
