"""Griffe extension for the API reference: show docstring examples as code.

The docstrings in `snippets/` carry doctest examples (`>>>` lines and the output
below them), which Sybil runs. Rendered as Markdown, a `>>>` line would become a
triple blockquote. This extension, named under `extensions` of mkdocstrings'
Python handler in `mkdocs.yml`, wraps each example in a ```pycon fence when the
docstrings are loaded, so the reference page shows them as highlighted code
with a copy button. The source files are not changed.
"""

from __future__ import annotations

import re

import griffe

_PROMPT = re.compile(r"^(?P<indent>[ \t]*)>>> ")


def fence_doctests(text: str) -> str:
    """Put every doctest example (a `>>>` line up to the next blank line) in a fence."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _PROMPT.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m["indent"]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


class FenceDoctests(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
