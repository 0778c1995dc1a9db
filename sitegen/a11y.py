"""Boxes that scroll sideways can be reached and scrolled with the keyboard.

A block formula (`<span class="math-block">`, from the TeX → MathML step) scrolls when it is
wider than the page (`overflow-x: auto` in docs/stylesheets/extra.css), and so does the code of
a notebook cell (`<div class="highlight-ipynb ...">`, from mkdocs-jupyter). A box that scrolls must
take keyboard focus, or a reader without a mouse cannot see its end (axe-core's rule
`scrollable-region-focusable`, WCAG 2.1.1). The box becomes focusable here, at build time, with a
role and a name for screen readers; the site's Content-Security-Policy runs no inline script, so
this is done in the HTML rather than by script in the browser. Code blocks in chapters are
Material's: its script makes one focusable when it overflows (where the pointer can hover).
The timing tables get theirs in `bench/report.py`. A pass over the built HTML (`sitegen.post`).
"""

from __future__ import annotations

import re

# Opening tags of such boxes, without a tabindex yet: (tag and class, name for screen readers).
_BOXES = [
    (re.compile(r'<(span|div) (class="math-block")(?![^>]*\btabindex=)'), "Formula"),
    (re.compile(r'<(div) (class="highlight-ipynb[^"]*")(?![^>]*\btabindex=)'), "Code"),
]


def focusable_boxes(html: str) -> str:
    """`html` with every box that may scroll sideways focusable and named."""
    for pattern, name in _BOXES:
        html = pattern.sub(rf'<\1 \2 tabindex="0" role="group" aria-label="{name}"', html)
    return html
