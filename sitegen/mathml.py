"""Turn TeX into MathML while the site is built: a Python-Markdown extension and a pass over the notebook page.

`pymdownx.arithmatex` (generic mode) finds the formulas in Markdown, skipping
code, and wraps them as ``<span class="arithmatex">\\(...\\)</span>`` or
``<div class="arithmatex">\\[...\\]</div>``. The Markdown extension in this
module replaces each wrapper with MathML from latex2mathml, which browsers render natively: no
script, no font and no request to another host. Formulas that latex2mathml
cannot parse fail the build instead of showing raw TeX. Being a plain
Python-Markdown extension, it runs under any builder that uses Python-Markdown,
not only MkDocs (MAINTAINING.md): there it is named ``sitegen.mathml``, with the
repository on the path. MkDocs gets it from ``hooks/mkdocs_adapter.py``, which adds
it to ``markdown_extensions``: MkDocs loads a hook by its file path, so a plain
``mkdocs build`` from the virtual environment needs nothing more on ``sys.path``.

The notebook page is rendered by mkdocs-jupyter (nbconvert), which leaves its
formulas as ``$...$`` and ``$$...$$`` for MathJax to find in the browser. This
site loads no MathJax, so the post-build pass (``sitegen.post``) applies
``render_notebook_math`` to the notebook page: the same conversion of the text of the
notebook's Markdown cells; code and outputs are left alone.
"""

from __future__ import annotations

import html
import re

from xml.etree.ElementTree import tostring

from latex2mathml.converter import convert_to_element
from markdown import Markdown
from markdown.extensions import Extension
from markdown.postprocessors import Postprocessor

_INLINE = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


_CHARREF = re.compile(r"&amp;(#x?[0-9a-fA-F]+;)")


def tex_to_mathml(tex: str, *, display: bool) -> str:
    """MathML for one formula; `tex` may still hold HTML entities such as &lt;.

    latex2mathml's own `convert` unescapes its output, so `\\text{<img ...>}` would come out
    as markup; here the tree is serialised escaped, and only the character references that
    latex2mathml writes as text (`&#x0003C;`) are turned back into references."""
    element = convert_to_element(html.unescape(tex).strip(), display="block" if display else "inline")
    mathml = _CHARREF.sub(r"&\1", tostring(element, encoding="unicode"))
    return f'<span class="math-{"block" if display else "inline"}">{mathml}</span>'


def render_math(text: str) -> str:
    text = _BLOCK.sub(lambda m: tex_to_mathml(m.group(1), display=True), text)
    return _INLINE.sub(lambda m: tex_to_mathml(m.group(1), display=False), text)


# nbconvert puts each Markdown cell's HTML in one such div, which holds no other div.
_NOTEBOOK_MARKDOWN = re.compile(
    r'(<div class="[^"]*\bjp-RenderedMarkdown\b[^"]*"[^>]*>)(.*?)(</div>)', re.S
)
_CODE = re.compile(r"(<pre\b.*?</pre>|<code\b.*?</code>)", re.S)
_DOLLARS_BLOCK = re.compile(r"\$\$(.+?)\$\$", re.S)
_DOLLARS_INLINE = re.compile(r"(?<![\\$])\$([^$\n]+?(?:\n[^$\n]+?)?)(?<![\\$])\$")


def _dollars_to_mathml(text: str) -> str:
    text = _DOLLARS_BLOCK.sub(lambda m: tex_to_mathml(m.group(1), display=True), text)
    text = _DOLLARS_INLINE.sub(lambda m: tex_to_mathml(m.group(1), display=False), text)
    if "$" in text:  # an unpaired dollar would reach the reader as raw TeX
        raise ValueError(f"unpaired $ in a notebook Markdown cell: {text.strip()[:200]!r}")
    return text


def render_notebook_math(text: str) -> str:
    """Convert ``$...$`` and ``$$...$$`` in notebook Markdown cells, outside code, and
    arithmatex's wrappers (``\\(...\\)``, which newer mkdocs-jupyter releases emit) anywhere."""
    text = render_math(text)

    def cell(m: re.Match) -> str:
        parts = _CODE.split(m.group(2))  # odd items are code: keep them as they are
        body = "".join(p if i % 2 else _dollars_to_mathml(p) for i, p in enumerate(parts))
        return m.group(1) + body + m.group(3)

    return _NOTEBOOK_MARKDOWN.sub(cell, text)


class _MathMLPostprocessor(Postprocessor):
    def run(self, text: str) -> str:
        try:
            return render_math(text)
        except Exception as exc:  # latex2mathml raises several exception types
            raise ValueError(f"a formula could not be converted to MathML: {exc}") from exc


class MathMLExtension(Extension):
    """Replace arithmatex's generic wrappers with MathML in the finished HTML."""

    def extendMarkdown(self, md: Markdown) -> None:
        # Below "unescape" (10), the last built-in postprocessor: it sees the final HTML.
        md.postprocessors.register(_MathMLPostprocessor(md), "mathml", 5)


def makeExtension(**kwargs) -> MathMLExtension:  # noqa: N802 (Python-Markdown's entry point)
    return MathMLExtension(**kwargs)
