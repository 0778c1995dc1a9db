"""The copy button of an example copies code that runs, not the session.

An example on a page is a Python session: ``>>> `` lines, ``... `` continuation lines and the
output they print. Material's copy button copies a block's text, unless an ancestor of the
code carries ``data-copy``, whose value it copies instead. Every block that holds a session
gets ``data-copy`` here, at build time: its input lines without prompts and without output,
as ``doctest`` reads them (the same parser Sybil uses to run the page). Blocks without
prompts (the definitions) keep Material's default, which copies them whole.
"""

from __future__ import annotations

import doctest
import html
import re

# A code block as pymdownx.highlight writes it: <div class="language-NAME highlight"> ... <code>...</code> ...
# (mkdocs.yml's pygments_lang_class names the language; a block without one has class="highlight")
_BLOCK = re.compile(
    r'<div class="(?P<classes>(?:language-[\w+-]+ )?highlight)"(?P<attrs>(?![^>]*\bdata-copy=)[^>]*)>'
    r'(?P<body>.*?</code>)', re.S
)
_CODE = re.compile(r"<code[^>]*>(?P<code>.*?)</code>", re.S)
_TAG = re.compile(r"<[^>]*>")
_PARSER = doctest.DocTestParser()


def session_input(text: str) -> str | None:
    """The input of a ``>>>`` session, prompts and output removed; None if `text` is not one.

    A session starts with a prompt; a definition whose docstring holds examples is not one,
    and is copied whole.

    >>> print(session_input(">>> x = 1\\n>>> for i in range(2):\\n...     x += i\\n>>> x\\n2\\n"))
    x = 1
    for i in range(2):
        x += i
    x
    """
    if not text.lstrip().startswith(">>>"):
        return None
    examples = _PARSER.get_examples(text)
    if not examples:
        return None
    return "".join(e.source for e in examples)


def with_copy_text(page_html: str) -> str:
    """`page_html` with ``data-copy`` on every code block that holds a ``>>>`` session."""

    def add(m: re.Match) -> str:
        code = _CODE.search(m["body"])
        if code is None:
            return m[0]
        source = session_input(html.unescape(_TAG.sub("", code["code"])))
        if source is None:
            return m[0]
        value = html.escape(source.rstrip("\n"), quote=True).replace("\n", "&#10;")
        return f'<div class="{m["classes"]}"{m["attrs"]} data-copy="{value}">{m["body"]}'

    return _BLOCK.sub(add, page_html)
