"""Escaping for text from a results file: every string is shown as text, whatever it holds."""

from __future__ import annotations


def esc(s: str) -> str:
    """`s` as literal text anywhere in Markdown, in inline HTML, in a table cell, heading or alt
    text.

    Everything but letters, digits, spaces and non-ASCII characters becomes a
    numeric character reference, so no Markdown, HTML, attribute list, math or
    include syntax survives, and no ``|`` splits a table cell.
    """
    return "".join(c if c.isalnum() or c == " " or ord(c) > 127 else f"&#{ord(c)};" for c in s)


def code(s: str) -> str:
    """`s` as inline code that stays literal (a Markdown code span could be closed by a backtick
    in `s`)."""
    return f"<code>{esc(s)}</code>"


def plain(s: str) -> str:
    """`s` for the terminal's Markdown: a ``|`` cannot split a table cell."""
    return s.replace("|", "\\|")


def mpl(s: str) -> str:
    """`s` as literal matplotlib text: a ``$`` would start mathtext."""
    return s.replace("\\", "\\\\").replace("$", r"\$")
