"""Figure text reads in both palettes: 4.5:1 against the page, and against the cell it sits on.

axe cannot look inside an <img>, so this reads the SVG text itself: every drawing the site
shows (the chapter figures and the timing plots) in the copy made for each palette.
"""

from __future__ import annotations

import re

import pytest

from snippets.figures import FIGURES
from snippets.plotting import GREY, PALETTES, contrast, for_palette, text_colour_on
from tests.scripts import load_file



def _palettes_hook():
    """sitegen/palettes.py."""
    return load_file("sitegen/palettes.py")

_TEXT_FILL = re.compile(r"<text\b[^>]*?style=\"([^\"]*)\"")


def _text_colours(svg: str) -> set[str]:
    """The fill colour of every <text> element (SVG's default is black)."""
    out = set()
    for style in _TEXT_FILL.findall(svg):
        fill = re.search(r"fill:\s*(#[0-9a-fA-F]{6})", style)
        out.add(fill[1].lower() if fill else "#000000")
    return out


def test_every_viridis_cell_gets_text_at_4_5_to_1():
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    viridis = colormaps["viridis"]
    worst = min(contrast({"white": "#ffffff", "black": "#000000"}[text_colour_on(c)], c)
                for c in (to_hex(viridis(i / 255)) for i in range(256)))
    assert worst >= 4.5, worst


@pytest.mark.parametrize("palette", sorted(PALETTES))
def test_the_palettes_grey_reaches_4_5_to_1_on_its_page(palette):
    text, page = PALETTES[palette]
    assert contrast(text, page) >= 4.5 and contrast(GREY, page) < contrast(text, page)


@pytest.mark.parametrize("palette", sorted(PALETTES))
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_text_contrasts_with_what_is_behind_it(name, palette):
    svg = for_palette(FIGURES[name](), palette)
    colours = _text_colours(svg)
    text, page = PALETTES[palette]
    assert GREY not in svg and text in colours
    for colour in colours - {"#000000", "#ffffff"}:  # black and white sit on cells: see above
        assert contrast(colour, page) >= 4.5, (name, palette, colour)


def test_for_palette_refuses_an_unknown_palette():
    with pytest.raises(ValueError, match="palette must be one of"):
        for_palette("<svg/>", "sepia")


def test_each_drawing_on_a_page_becomes_a_light_and_a_dark_image():
    page = ('<p><img alt="a" src="../figures/masks.svg" /></p>'
            '<img src="plots/cpu-x-float32-time.svg" alt="b"><img src="../assets/logo.svg">')
    out = _palettes_hook().both_palettes(page)
    assert out.count("<img") == 5
    assert 'src="../figures/masks.svg#only-light"' in out and 'src="../figures/masks-dark.svg#only-dark"' in out
    assert 'src="plots/cpu-x-float32-time-dark.svg#only-dark" alt="b"' in out
    assert '<img src="../assets/logo.svg">' in out  # not a drawing: left alone


def test_the_built_site_shows_each_drawing_once_per_palette(built_site):
    pages = list(built_site.rglob("index.html"))
    shown = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for src in re.findall(r'<img\b[^>]*\bsrc="([^"]*(?:figures|plots)/[^"]*)"', html):
            shown += 1
            assert src.endswith(("#only-light", "#only-dark")), (page, src)
            target = (page.parent / src.split("#")[0]).resolve()
            assert target.is_file(), (page, src)
            light = target.name.endswith("-dark.svg") is False
            assert (GREY not in target.read_text(encoding="utf-8")) and (light == src.endswith("#only-light"))
        for srcset in re.findall(r'<source\b[^>]*\bsrcset="([^"]*)"', html):  # narrow copies
            target = (page.parent / srcset).resolve()
            assert target.is_file() and (GREY not in target.read_text(encoding="utf-8")), (page, srcset)
            assert srcset.endswith("-narrow-dark.svg") or srcset.endswith("-narrow.svg"), srcset
    assert shown >= 2 * len([name for name in FIGURES if not name.endswith("-narrow")])


def test_a_figure_with_a_narrow_copy_is_a_picture_in_each_palette():
    from snippets.figures import FIGURES, NARROW, NARROW_MEDIA

    assert "masks" + NARROW in FIGURES and "causal-mean-weights" + NARROW not in FIGURES
    page = '<img alt="a" src="../figures/masks.svg" /><img alt="b" src="../figures/causal-mean-weights.svg">'
    out = _palettes_hook().both_palettes(page)
    assert out.count("<picture>") == 2 and out.count("<img") == 4
    assert (f'<picture><source media="{NARROW_MEDIA}" srcset="../figures/masks-narrow.svg">'
            '<img alt="a" src="../figures/masks.svg#only-light" /></picture>') in out
    assert (f'<picture><source media="{NARROW_MEDIA}" srcset="../figures/masks-narrow-dark.svg">'
            '<img alt="a" src="../figures/masks-dark.svg#only-dark" /></picture>') in out
    assert '<img alt="b" src="../figures/causal-mean-weights.svg#only-light">' in out  # no copy
