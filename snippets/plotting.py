"""Drawing with matplotlib in the site's style: grey text on a transparent background, as SVG.

Shared by the heatmaps of ``snippets.figures`` and the timing plots of
``bench.report``. Needs matplotlib only (no torch).
"""

from __future__ import annotations

import io
import re
from xml.sax.saxutils import escape

import matplotlib
from matplotlib.figure import Figure

__all__ = [
    "GREY",
    "PALETTES",
    "style",
    "new_figure",
    "to_svg",
    "contrast",
    "text_colour_on",
    "for_palette",
]

# Figures are drawn with text, frames and ticks in GREY, then made into one copy per palette
# of the site by `for_palette`, which gives that grey the palette's text colour. No single grey
# reaches 4.5:1 on both white and Material's dark slate, hence two copies. GREY itself (about
# 3.4:1 on white, 5:1 on slate) is what the notebook, which has one page colour, shows.
GREY = "#8c8c8c"
# palette: (the grey's replacement, the page's background there: Material's default and slate)
PALETTES = {"light": ("#595959", "#ffffff"), "dark": ("#a8a8a8", "#1e2029")}

_STYLE = {
    "svg.fonttype": "none",  # text stays text: small files, the browser's own font
    "svg.hashsalt": "attention-trick",  # stable ids, so a rebuild gives the same file
    "font.family": "sans-serif",
    "font.size": 10,
    "text.color": GREY,
    "axes.labelcolor": GREY,
    "axes.edgecolor": GREY,
    "xtick.color": GREY,
    "ytick.color": GREY,
}


def _luminance(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours, from 1 to 21.

    >>> round(contrast("#000000", "#ffffff"), 1), round(contrast(GREY, "#ffffff"), 2)
    (21.0, 3.36)
    """
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour_on(background: str) -> str:
    """Black or white, whichever contrasts more with `background` (always at least 4.5:1).

    >>> text_colour_on("#440154"), text_colour_on("#fde725")  # viridis at 0 and at 1
    ('white', 'black')
    """
    return "white" if contrast("#ffffff", background) > contrast("#000000", background) else "black"


def for_palette(svg: str, palette: str) -> str:
    """The copy of a drawing for the site's `palette` ("light" or "dark"): GREY recoloured."""
    if palette not in PALETTES:
        raise ValueError(f"for_palette: palette must be one of {sorted(PALETTES)}, got {palette!r}")
    return svg.replace(GREY, PALETTES[palette][0])


def style():
    """The context in which a figure's artists get this module's fonts and colours."""
    return matplotlib.rc_context(_STYLE)


def new_figure(width: float, height: float) -> Figure:
    """A figure (size in inches) whose text, axes and ticks are ``GREY``; draw it inside
    ``style()``."""
    with style():
        return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig: Figure, title: str, description: str) -> str:
    """`fig` as SVG text with a transparent background, titled and described for screen readers."""
    buffer = io.StringIO()
    with style():
        fig.savefig(
            buffer, format="svg", transparent=True, bbox_inches="tight", metadata={"Date": None}
        )
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML declaration and DOCTYPE
    head = f"<title>{escape(title)}</title>\n <desc>{escape(description)}</desc>\n"
    # role="img" lets screen readers use the title when the SVG is inlined.
    return re.sub(
        r"<svg\b([^>]*)>\n", lambda m: f'<svg role="img"{m.group(1)}>\n {head}', svg, count=1
    )
