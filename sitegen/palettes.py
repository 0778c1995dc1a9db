"""Every drawn figure comes in a light and a dark copy, and each page shows the
copy of its palette.

The figures (snippets.figures) and the timing plots (sitegen.timing) are drawn with their text
in one mid grey, which no single colour can replace on both a white and a dark slate page at
4.5:1. Here each such SVG becomes two files, ``NAME.svg`` for the light palette and
``NAME-dark.svg`` for the dark one (``snippets.plotting.for_palette``), and each ``<img>`` of
one becomes two, marked ``#only-light`` and ``#only-dark``: Material's stylesheet shows the one
that matches the palette the reader chose. The copies are written before the build
(`sitegen.pre`), the `<img>` pairs made in the built HTML (`sitegen.post`).

A figure too wide to read on a phone has a stacked copy, ``figures/NAME-narrow.svg`` (see
``snippets.figures.NARROW``): each of its two ``<img>`` then sits in a ``<picture>`` whose
``<source>`` shows that copy, in the same palette, on screens up to ``NARROW_MEDIA``.
"""

from __future__ import annotations

import re

from snippets.figures import FIGURES, NARROW, NARROW_MEDIA
from snippets.plotting import for_palette

# The generated drawings, by the folder the site keeps them in.
FOLDERS = ("figures/", "appendix/plots/")
_IMG = re.compile(r'<img\b(?P<before>[^>]*?)\bsrc="(?P<src>[^"#]*?(?:figures|plots)/[^"#/]+)\.svg"(?P<after>[^>]*)>')


def dark_name(uri: str) -> str:
    return uri.removesuffix(".svg") + "-dark.svg"


def palette_copies(svg: str) -> dict[str, str]:
    """{"light": svg, "dark": svg}: the drawing with its grey for each palette."""
    return {palette: for_palette(svg, palette) for palette in ("light", "dark")}


def both_palettes(page_html: str) -> str:
    """Each ``<img>`` of a drawn figure, as a light and a dark ``<img>`` (each in a
    ``<picture>`` with its narrow copy, where the figure has one)."""

    def twin(m: re.Match) -> str:
        src = m["src"]
        folder, _, name = src.rpartition("/")
        narrow = folder.endswith("figures") and name + NARROW in FIGURES
        out = ""
        for suffix, palette in (("", "light"), ("-dark", "dark")):
            img = f'<img{m["before"]}src="{src}{suffix}.svg#only-{palette}"{m["after"]}>'
            if narrow:
                source = f'<source media="{NARROW_MEDIA}" srcset="{src}{NARROW}{suffix}.svg">'
                img = f"<picture>{source}{img}</picture>"
            out += img
        return out

    return _IMG.sub(twin, page_html)
