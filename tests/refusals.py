"""One check for a refusal: the exception's type, where it comes from, the argument it names.

The wording of an error is free to improve; what a test pins is that the call is refused with
the right exception, that the message starts with the name of what refused it (`Head: ...`),
names the argument at fault as a word (`x`, not the `x` inside `max`), and, where given, shows
what it got. A few tests keep a whole sentence where its wording is what a page teaches.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest


def assert_refuses(error: type[BaseException], arg: str, fn: Callable, *args, got: str | None = None,
            where: str | None = None, **kwargs) -> str:
    """Assert that fn(*args, **kwargs) raises `error` naming `arg` (and `got`); return the message.

    `where`, the name the message starts with, defaults to fn's own name (a function's or a
    class's; a module instance's class)."""
    with pytest.raises(error) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    where = where or getattr(fn, "__name__", None) or type(fn).__name__
    if where != "<lambda>":
        assert message.startswith(f"{where}: "), f"{message!r} does not start with {where!r}"
    assert re.search(rf"(?<![\w.]){re.escape(arg)}(?![\w])", message), f"{message!r} does not name {arg!r}"
    if got is not None:
        assert got in message, f"{message!r} does not show what it got, {got!r}"
    return message
