"""Reading a results file that nothing vouches for: a regular file only (not a FIFO, a device
or a symlink to one, which could stall or flood the build), of at most MAX_BYTES, nested at
most MAX_DEPTH deep, strict JSON (no NaN, no duplicate key), and its name shown escaped in
every message. Standard library only."""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from pathlib import Path

from bench.schema import ResultsError

_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)  # and bidi overrides

MAX_BYTES = 2 * 2**20  # the committed files are under 150 kB
MAX_DEPTH = 16  # a results file nests 5 deep
# Limits that bench.validate applies to the values: every number derived from them is finite.
MAX_INT = 2**53  # exact as a float, so sums and ratios cannot overflow
MAX_NUMBER = 1e12  # ms, seconds, counts: no derived value overflows or divides by zero
MIN_POSITIVE = 1e-12
MAX_TS = 32
MAX_SAMPLES = 10_000


def short(v: float) -> str:
    """A number for a message: a huge integer by its number of digits."""
    return (
        f"an integer of {len(str(abs(v)))} digits"
        if isinstance(v, int) and abs(v) > 10**30
        else repr(v)
    )


def duplicate(points) -> tuple[int, int] | None:
    """The indices of the first item listed twice (a point: same method, dtype and shape)."""
    seen: dict = {}
    for i, p in enumerate(points):
        key = p  # a size, dtype or method name
        if hasattr(p, "N"):  # a matmul reference
            key = (p.dtype, p.N)
        elif hasattr(p, "dtype"):
            key = (p.method, p.dtype, p.T, p.B, p.C, p.heads)
        if key in seen:
            return seen[key], i
        seen[key] = i
    return None


def unsafe_char(text: str) -> bool:
    """Control and format characters (category Cc, Cf), line separators and lone surrogates."""
    return bool(_CONTROL.search(text)) or any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text
    )


def shown(name: object) -> str:
    """A file name as one line of plain text: anything unprintable or invisible escaped."""
    return "".join(
        ch if ch.isprintable() and not unsafe_char(ch) else ascii(ch)[1:-1] for ch in str(name)
    )


def _depth_problem(text: str) -> str | None:
    """Where brackets nest deeper than MAX_DEPTH (outside strings), before json meets them."""
    depth = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels at character {m.start()}"
        elif token in "]}":
            depth -= 1
    return None


def read_text(path: Path) -> str:
    """The text of a regular file of at most MAX_BYTES, nested at most MAX_DEPTH deep; a FIFO or
    a device is refused, not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ResultsError(f"{shown(path)}: cannot be read: {exc.strerror}") from None
    info = os.fstat(fd)  # before fdopen, which cannot open a directory
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ResultsError(f"{shown(path)}: $: not a regular file (a FIFO, device or directory)")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > MAX_BYTES:
            raise ResultsError(f"{shown(path)}: $: {info.st_size} bytes, more than {MAX_BYTES}")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ResultsError(f"{shown(path)}: $: more than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{shown(path)}: cannot be read: {exc}") from None
    if problem := _depth_problem(text):
        raise ResultsError(f"{shown(path)}: $: {problem}")
    return text


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def read_json(path: Path):
    """The decoded JSON of a results file, or `ResultsError` naming the file."""
    text = read_text(path)
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{shown(path)}: $: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ResultsError(f"{shown(path)}: $: not valid JSON: {shown(exc)}"[:500]) from None
