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


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(PY, "-m", "pip", "install", "--quiet", "--editable", ".[dev]")
        STAMP.write_text(digest)


def main(argv: list[str]) -> None:
    task, rest = (argv[0], argv[1:]) if argv else ("", [])
    if task not in {"serve", "test", "build"}:
        sys.exit(__doc__)
    setup()
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    try:
        if task == "serve":
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
