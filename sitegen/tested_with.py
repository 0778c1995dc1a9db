"""The "tested with" line at the foot of every page, filled in at build time.

It names the torch versions CI tests, read from the files that decide them: the
lowest from `pyproject.toml`'s `torch>=` (the floor, which `.github/workflows/test.yml`'s
matrix pins and `python3 dev.py test --floor` runs), and the newest, which the
workflow installs unpinned every week. Then the torch this build ran with (the
notebook page executes at build time) and the build's date: `SOURCE_DATE_EPOCH`
where it is set (reproducible builds), else today, in UTC. `overrides/main.html`
writes `PLACEHOLDER` at the end of every page's article; the post-build pass (`sitegen.post`)
fills it in.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


from sitegen import BuildError

_FLOOR = re.compile(r"torch\s*>=\s*([0-9]+(?:\.[0-9]+)*)")


def floor(pyproject: str) -> str:
    """The version in `torch>=VERSION` among pyproject.toml's dependencies."""
    deps = tomllib.loads(pyproject).get("project", {}).get("dependencies", [])
    found = [m.group(1) for d in deps if isinstance(d, str) and (m := _FLOOR.fullmatch(d.strip()))]
    if len(found) != 1:
        raise BuildError(f"pyproject.toml: expected one `torch>=VERSION` dependency, got {deps!r}")
    return found[0]


def build_date(environ: os._Environ | dict) -> dt.date:
    """SOURCE_DATE_EPOCH's date where set (a whole number of seconds), else today; both in UTC."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return dt.datetime.now(dt.UTC).date()
    if not epoch.isdigit():
        raise BuildError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}")
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).date()


def line(lowest: str, built_with: str, date: dt.date) -> str:
    return (f"Tested by CI on every change and every week with torch {lowest} (the lowest supported) "
            f"and the newest release; this site was built with torch {built_with} on {date.isoformat()}.")


# Where `overrides/main.html` (any template, in fact) asks for the line; the post-build pass fills it in.
PLACEHOLDER = '<p class="tested-with" data-sitegen="tested-with"></p>'


def line_for(root: Path, environ: os._Environ | dict) -> str:
    """The line for the project at `root`, with the torch this interpreter has."""
    try:
        built_with = version("torch")
    except PackageNotFoundError as exc:
        raise BuildError("torch is not installed: the site's figures and notebook need it") from exc
    return line(floor((root / "pyproject.toml").read_text(encoding="utf-8")), built_with, build_date(environ))


def fill(page_html: str, text: str) -> str:
    """`page_html` with the placeholder holding `text`, HTML-escaped."""
    return page_html.replace(PLACEHOLDER, f'<p class="tested-with"><small>{html.escape(text)}</small></p>')
