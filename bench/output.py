"""Where the timing command writes its results file: checked before anything is measured, and a
copy elsewhere when the final write fails, so that a finished sweep is never thrown away."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from bench.safe_read import MAX_BYTES


def check_out(out: Path) -> str | None:
    """Why `out` cannot take the results file, or None: checked before anything is measured."""
    if out.is_dir():
        return "is a folder; expected the path of a .json file"
    if out.exists() and not stat.S_ISREG(out.stat().st_mode):
        return "exists and is not a regular file"
    folder = out.parent
    if not folder.is_dir():
        return f"its folder {folder} does not exist"
    tmp = None
    try:  # written next to it first, then renamed: try that, with as many bytes as a file may hold
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(MAX_BYTES))
            f.flush()
            os.fsync(f.fileno())  # a full disk may say so only here
    except OSError as exc:
        return f"its folder {folder} cannot take a results file ({exc.strerror or exc})"
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return None


def fallback_write(out: Path, text: str, exc: OSError) -> int:
    """The final write failed: keep the finished sweep in a file elsewhere, named in one line."""
    for folder in (Path(tempfile.gettempdir()), Path.home()):
        try:
            fd, name = tempfile.mkstemp(prefix=f"{out.stem}-", suffix=".json", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError:
            continue
        print(
            f"could not write {out} ({exc.strerror or exc}); the results are in {name}",
            file=sys.stderr,
        )
        return 1
    print(
        f"could not write {out} ({exc.strerror or exc}), nor a copy in the temporary folder "
        "or the home folder: the results are lost",
        file=sys.stderr,
    )
    return 1
