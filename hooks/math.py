"""MkDocs hook: turn TeX into MathML while the site is built.

`pymdownx.arithmatex` (generic mode) finds the formulas in Markdown, skipping
code, and wraps them as ``<span class="arithmatex">\\(...\\)</span>`` or
``<div class="arithmatex">\\[...\\]</div>``. This hook replaces each wrapper with
MathML from latex2mathml, which browsers render natively: no script, no font
and no request to another host. Formulas that latex2mathml cannot parse fail
the build instead of showing raw TeX.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_INLINE = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


def tex_to_mathml(tex: str, *, display: bool) -> str:
    """MathML for one formula; `tex` may still hold HTML entities such as &lt;."""
    mathml = convert(html.unescape(tex).strip(), display="block" if display else "inline")
    return f'<span class="math-{"block" if display else "inline"}">{mathml}</span>'


def render_math(text: str) -> str:
    text = _BLOCK.sub(lambda m: tex_to_mathml(m.group(1), display=True), text)
    return _INLINE.sub(lambda m: tex_to_mathml(m.group(1), display=False), text)


def on_page_content(html_text: str, page, config, files) -> str:
    try:
        return render_math(html_text)
    except Exception as exc:  # latex2mathml raises several exception types
        raise RuntimeError(f"{page.file.src_path}: a formula could not be converted: {exc}") from exc
