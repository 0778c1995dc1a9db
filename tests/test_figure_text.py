"""Every figure's text as a reader sees it: at least 11 px high and at 4.5:1 against what is
behind it, in both palettes, on a phone (390 px) and on a laptop (1280 px).

axe cannot look inside an <img>, so this draws each figure of `snippets.figures.FIGURES` again
with matplotlib's Agg renderer: every piece of text the renderer draws is recorded (its size,
its colour and its box) instead of drawn, so the image that is left is what lies behind the
text. The background under each text is the colour most of its box has there, over the page's
own colour where the figure is transparent; the text's colour is the one the palette's copy
gives it (`snippets.plotting.for_palette`).

The size: a figure is shown at its natural width (its SVG's width in points, 4/3 px each) or,
where that is wider, at the width of the page's text column, which is what Material's layout
gives it (`.md-typeset img { max-width: 100% }`): its font sizes scale by the same factor.
At 390 px a figure with a stacked copy (`NAME-narrow`) is shown by that copy
(`snippets.figures.NARROW_MEDIA`, sitegen/palettes.py), so the copy is what is measured there.
"""

from __future__ import annotations

import re
from collections import Counter
from unittest import mock

import numpy as np
import pytest

from snippets import figures
from snippets.plotting import GREY, PALETTES, contrast
from tests.pages import COLUMN

SMALLEST_PX = 11.0
MIN_CONTRAST = 4.5
# The narrow copies are shown up to 37.5em = 600 px: so at 390 px, not at 1280 px.
assert figures.NARROW_MEDIA == "(max-width: 37.5em)"
NARROW_UP_TO = 600

WIDE = sorted(name for name in figures.FIGURES if not name.endswith(figures.NARROW))


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb[:3])


def _drawn_text(name: str):
    """The figure `name` drawn: its SVG, and for each text (string, size in pt, colour, the
    colour behind most of its box), with GREY still in place of the palette's colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
    from matplotlib.text import Text

    captured = []
    real_to_svg = figures.to_svg

    def keep(fig, title, description):
        captured.append(fig)
        return real_to_svg(fig, title, description)

    with mock.patch.object(figures, "to_svg", keep):
        svg = figures.FIGURES[name]()
    (fig,) = captured
    texts, drawing = [], []  # drawing: the Text artist being drawn (a line of it at a time)
    real_draw = Text.draw

    def draw(self, renderer):
        drawing.append(self)
        try:
            return real_draw(self, renderer)
        finally:
            drawing.pop()

    def record(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if s.strip():
            box = drawing[-1].get_window_extent(self)  # a text of several lines: all of them
            texts.append((s, prop.get_size_in_points(), _hex(gc.get_rgb()), box))

    canvas = FigureCanvasAgg(fig)
    for patch in [fig.patch, *(ax.patch for ax in fig.axes)]:  # as savefig(transparent=True)
        patch.set_facecolor("none")
    with mock.patch.object(RendererAgg, "draw_text", record), mock.patch.object(Text, "draw", draw):
        canvas.draw()  # everything but the text
    image = np.asarray(canvas.buffer_rgba())  # (rows, columns, 4), row 0 at the top
    return svg, texts, image


def _behind(image: np.ndarray, box, page: str) -> str:
    """The colour most of `box` (display pixels, origin at the bottom) shows, over `page`."""
    height, width = image.shape[:2]
    x0, x1 = max(0, int(box.x0)), min(width, int(np.ceil(box.x1)))
    y0, y1 = max(0, int(height - box.y1)), min(height, int(np.ceil(height - box.y0)))
    patch = image[y0:y1, x0:x1].reshape(-1, 4).astype(float) / 255
    assert len(patch), box
    under = np.array([int(page[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    alpha = patch[:, 3:4]
    seen = patch[:, :3] * alpha + under * (1 - alpha)  # (n, 3) over the page
    (most, _), = Counter(_hex(c) for c in seen).most_common(1)
    return most


def _shown_width_pt(svg: str) -> float:
    return float(re.search(r'<svg\b[^>]*\bwidth="([\d.]+)pt"', svg)[1])


def _shown_px(svg: str, window: int) -> float:
    """px per SVG unit (pt) of the figure as shown in a `window` px wide window."""
    natural = _shown_width_pt(svg) * 4 / 3
    return min(natural, COLUMN[window]) / _shown_width_pt(svg)


@pytest.mark.slow  # draws every figure again: seconds each
@pytest.mark.parametrize("name", WIDE)
def test_figure_text_is_11_px_and_4_5_to_1_in_both_palettes_at_390_and_1280_px(name):
    narrow = name + figures.NARROW
    shown = {1280: name, 390: narrow if narrow in figures.FIGURES else name}
    assert 390 <= NARROW_UP_TO < 1280
    report = []
    for window, drawn in shown.items():
        svg, texts, image = _drawn_text(drawn)
        assert texts, f"{drawn}: no text drawn"
        scale = _shown_px(svg, window)
        sizes = {round(size * scale, 2) for _, size, _, _ in texts}
        smallest = min(sizes)
        report.append(f"{drawn} at {window} px: smallest text {smallest:.1f} px")
        assert smallest >= SMALLEST_PX, (drawn, window, smallest, [t[:2] for t in texts])
        # the drawing's svg is the one the site gets: same text, same sizes
        assert len(re.findall(r"<text\b", svg)) >= len({t[0] for t in texts}) > 0
        for palette, (text_colour, page) in PALETTES.items():
            for s, _, colour, box in texts:
                colour = text_colour if colour == GREY else colour
                back = _behind(image, box, page)
                back = text_colour if back == GREY else back
                ratio = contrast(colour, back)
                assert ratio >= MIN_CONTRAST, (drawn, palette, s, colour, back, round(ratio, 2))
    print("; ".join(report))


def test_the_measure_sees_small_and_faint_text():
    """The measure itself: text set too small, or in a colour too close to the page, fails."""
    from snippets.plotting import new_figure, style, to_svg

    def tiny():
        with style():
            fig = new_figure(3.0, 2.0)
            fig.text(0.5, 0.5, "small", fontsize=7, color=GREY)
            fig.text(0.5, 0.2, "faint", fontsize=12, color="#cccccc")
            return figures.to_svg(fig, "A test figure", "Two words, one small and one faint.")

    with mock.patch.dict(figures.FIGURES, {"tiny": tiny}):
        svg, texts, image = _drawn_text("tiny")
    sizes = {s: size * _shown_px(svg, 390) for s, size, _, _ in texts}
    assert sizes["small"] < SMALLEST_PX <= sizes["faint"]
    faint = next(t for t in texts if t[0] == "faint")
    back = _behind(image, faint[3], PALETTES["light"][1])
    assert back == PALETTES["light"][1]  # transparent: the page shows through
    assert contrast(faint[2], back) < MIN_CONTRAST
    assert to_svg is not None
