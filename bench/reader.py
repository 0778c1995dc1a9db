"""``Reader``: a JSON value read field by field, each value checked for its type and range.

A wrong value raises `ResultsError` with the file and the JSON path of the value,
for example ``cpu.json: $.points[3].ms: expected a finite number > 0 ...``. This
module knows JSON types and limits, not the results format; bench.validate maps
the format onto it. Standard library only.
"""

from __future__ import annotations

import math
from builtins import bool as _bool, str as _str  # Reader's methods hide these
from dataclasses import MISSING, fields
from typing import Any, NoReturn

from bench.safe_read import MAX_INT, MAX_NUMBER, MIN_POSITIVE, short, unsafe_char
from bench.schema import ResultsError


class Reader:
    """Reads a JSON value field by field, refusing with the file and the JSON path of what is
    wrong."""

    def __init__(self, source: str):
        self.source, self.legacy = source, False

    def fail(self, path: str, message: str) -> NoReturn:
        raise ResultsError(f"{self.source}: {path}: {message}")

    def obj(self, v: Any, path: str, cls) -> dict:
        if not isinstance(v, dict):
            self.fail(path, f"expected an object, got {kind(v)}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is f.default_factory is MISSING}
        if missing := sorted(required - v.keys()):
            self.fail(path, f"missing key {missing[0]!r}")
        if extra := sorted(v.keys() - names):
            key = (
                extra[0] if extra[0].isidentifier() else repr(extra[0])[:80]
            )  # file text: printed safely
            self.fail(f"{path}.{key}", f"unknown key; expected one of {sorted(names)}")
        return v

    def mapping(self, v: Any, path: str) -> dict:
        if not isinstance(v, dict):
            self.fail(path, f"expected an object, got {kind(v)}")
        return v

    def int(
        self, v: Any, path: str, *, low: int = 0, high: int = MAX_INT, none: bool = False
    ) -> int | None:
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(path, f"expected an integer{' or null' if none else ''}, got {kind(v)}")
        if v < low:
            self.fail(path, f"expected an integer >= {low}, got {short(v)}")
        if v >= high:
            self.fail(path, f"expected an integer < {high}, got {short(v)}")
        return v

    def num(self, v: Any, path: str, *, positive: bool = False, none: bool = False) -> float | None:
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(path, f"expected a number{' or null' if none else ''}, got {kind(v)}")
        low = MIN_POSITIVE if positive else 0  # a huge int fails the first test, not isfinite
        if v > MAX_NUMBER or not math.isfinite(v) or v < low or (positive and v == 0):
            bounds = f"{'> 0' if positive else '>= 0'} (from {low:g} to {MAX_NUMBER:g})"
            self.fail(path, f"expected a finite number {bounds}, got {short(v)}")
        return float(v)

    def str(
        self, v: Any, path: str, *, none: bool = False, choices=None, empty: bool = False
    ) -> str | None:
        if v is None and none:
            return None
        if not isinstance(v, str):
            self.fail(path, f"expected a string{' or null' if none else ''}, got {kind(v)}")
        if choices is not None and v not in choices:
            self.fail(path, f"expected one of {list(choices)}, got {v!r}")
        if not v and not empty:
            self.fail(path, "expected a non-empty string")
        if len(v) > 2000 or unsafe_char(v):
            self.fail(
                path,
                "expected one line of at most 2000 characters, without control or format "
                "characters (Unicode Cc, Cf: bidirectional, invisible) or lone surrogates",
            )
        return v

    def bool(self, v: Any, path: _str, *, none: _bool = False) -> _bool | None:
        if v is None and none:
            return None
        if not isinstance(v, bool):
            self.fail(path, f"expected true or false, got {kind(v)}")
        return v

    def list(
        self, v: Any, path: _str, item, *, none: _bool = False, length=None, most=None
    ) -> list | None:
        if v is None and none:
            return None
        if not isinstance(v, list):
            self.fail(path, f"expected a list, got {kind(v)}")
        if length is not None and len(v) != length:
            self.fail(path, f"expected {length} items, got {len(v)}")
        if most is not None and len(v) > most:
            self.fail(path, f"expected at most {most} items, got {len(v)}")
        return [item(x, f"{path}[{i}]") for i, x in enumerate(v)]


def kind(v: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        type(None): "null",
    }.get(type(v), f"{type(v).__name__} {v!r}"[:80])
