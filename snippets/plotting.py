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

__all__ = ["GREY", "style", "new_figure", "to_svg"]

GREY = "#8c8c8c"  # contrast about 3:1 on white and 5:1 on Material's dark slate

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
