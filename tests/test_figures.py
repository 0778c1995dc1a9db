"""The figures drawn at build time: valid SVG, described, offline, readable light and dark."""

from __future__ import annotations

import inspect
import re
import xml.etree.ElementTree as ET

import pytest
import torch

from snippets import figures
from snippets.learning import OneHeadModel, lookback_batch, train
from tests.pages import DOCS, pages
from tests.refusals import refuses

SVG = "{http://www.w3.org/2000/svg}"
# Page backgrounds of Material's two schemes: "default" (white) and "slate".
LIGHT_PAGE, DARK_PAGE = "#ffffff", "#1e2129"
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>figures/[^)\s]+)\)")


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(scope="module")
def drawn() -> dict[str, str]:
    return {name: draw() for name, draw in figures.FIGURES.items()}


def test_every_figure_is_a_described_svg(drawn):
    for name, svg in drawn.items():
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG}svg", name
        assert root.get("role") == "img", name
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title is not None and len(title.text) > 10, name
        assert desc is not None and len(desc.text) > 40, name


def test_figures_fetch_nothing_and_keep_text_as_text(drawn):
    for name, svg in drawn.items():
        assert not re.search(r"""(?:href|src)=["']?(?:https?:)?//""", svg), name
        assert "@import" not in svg and "url(http" not in svg, name
        assert "<text" in svg, f"{name}: text was turned into paths"


def test_figures_have_no_background_of_their_own(drawn):
    # A transparent figure shows the page's colour, light or dark.
    for name, svg in drawn.items():
        background = ET.fromstring(svg).find(f"{SVG}g/{SVG}g[@id='patch_1']")
        assert background is not None, name
        style = background.find(f"{SVG}path").get("style", "")
        assert "fill: none" in style or re.search(r"opacity: 0(;|$)", style), f"{name}: background {style!r}"


def test_text_outside_the_cells_is_readable_on_both_schemes(drawn):
    assert contrast(figures.GREY, LIGHT_PAGE) >= 3.0
    assert contrast(figures.GREY, DARK_PAGE) >= 3.0
    for name, svg in drawn.items():
        text_colours = {c.lower() for c in re.findall(r"<text\b[^>]*style=\"[^\"]*fill:\s*(#[0-9a-f]{6})", svg, re.I)}
        assert text_colours, f"{name}: no coloured text found"
        # Text on the page background is the grey; black and white only sit on cells.
        assert text_colours <= {figures.GREY, "#000000", "#ffffff"}, (name, text_colours)


def test_drawing_is_deterministic():
    assert figures.causal_mean_weights_svg(5) == figures.causal_mean_weights_svg(5)
    assert figures.masked_softmax_svg(5, seed=3) == figures.masked_softmax_svg(5, seed=3)
    assert figures.masked_softmax_svg(5, seed=3) != figures.masked_softmax_svg(5, seed=4)


def test_annotations_are_the_weights():
    svg = figures.causal_mean_weights_svg(3)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for value in ("1.00", ".50", ".33"):
        assert value in texts, (value, texts)
    w = figures.masked_softmax_weights(6, seed=1)
    torch.testing.assert_close(w.sum(dim=-1), torch.ones(6))
    past = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    assert (w[~past] == 0).all() and (w[past] > 0).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: figures.causal_mean_weights_svg(0),
        lambda: figures.causal_mean_weights_svg(17),
        lambda: figures.masked_softmax_svg(-1),
        lambda: figures.masks_svg(0),
    ],
)
def test_bad_sizes_are_refused(call):
    with pytest.raises(ValueError, match="T must be between 1 and 16"):
        call()


def test_non_int_sizes_are_refused():
    with pytest.raises(TypeError, match="T must be an int"):
        figures.masks_svg(4.0)
    with pytest.raises(TypeError, match="T must be an int"):
        figures.causal_mean_weights_svg(True)


def test_img_tag_uses_the_title_as_alt_text():
    tag = figures.img_tag(figures.masks_svg(3))
    assert tag.startswith('<img alt="Encoder and decoder attention masks. Two 3 by 3 grids.')
    assert 'src="data:image/svg+xml;base64,' in tag
    with pytest.raises(ValueError, match="no <title>"):
        figures.img_tag("<svg></svg>")


def _page_images():
    for page in pages():
        for m in _IMAGE.finditer(page.read_text(encoding="utf-8")):
            yield page.relative_to(DOCS), m["src"], m["alt"]


def test_pages_show_existing_figures_with_alt_text():
    shown = list(_page_images())
    assert shown, "no page shows a figure"
    for page, src, alt in shown:
        assert src.removeprefix("figures/").removesuffix(".svg") in figures.FIGURES, (page, src)
        assert len(alt.split()) >= 6, f"{page}: alt text of {src} is too short to describe it"


def test_every_figure_is_shown_somewhere():
    shown = {src.removeprefix("figures/").removesuffix(".svg") for _, src, _ in _page_images()}
    notebook = (DOCS / "notebook.py").read_text(encoding="utf-8")
    in_notebook = {name for name in figures.FIGURES if f"{name.replace('-', '_')}_svg(" in notebook}
    assert set(figures.FIGURES) <= shown | in_notebook, set(figures.FIGURES) - shown - in_notebook


def test_head_figure_shows_what_chapter_4_says():
    # Caption of figures/head-weights.svg: the second "l" (t=3) splits its weight between
    # the two "l"s (s=2, 3), the second "o" (t=7) between the two "o"s (s=4, 7).
    w = figures.head_weights("hello world")
    for t, pair in ((3, {2, 3}), (7, {4, 7})):
        top = w[t].topk(2)
        assert set(top.indices.tolist()) == pair, (t, w[t])
        assert torch.isclose(top.values[0], top.values[1]) and top.values.sum() > 0.8
    # and "query and key maps three times the identity" is the default it is drawn with
    assert "three times the identity" in (DOCS / "04-self-attention.md").read_text(encoding="utf-8")
    assert inspect.signature(figures.head_weights).parameters["strength"].default == 3.0


@pytest.mark.parametrize(
    ("f", "args", "kwargs", "error", "arg", "got"),
    [
        ("head_weights", (123,), {}, TypeError, "text", "got int"),
        ("head_weights", ("ab",), dict(strength="3"), TypeError, "strength", "got str"),
        ("head_weights", ("ab",), dict(strength=float("nan")), ValueError, "strength", "got nan"),
        ("head_weights", ("ab",), dict(strength=1e20), ValueError, "strength", "got 1e+20"),
        ("masked_softmax_weights", (4,), dict(seed="a"), TypeError, "seed", "got str"),
    ],
)
def test_figure_functions_refuse_bad_arguments_clearly(f, args, kwargs, error, arg, got):
    refuses(error, arg, getattr(figures, f), *args, got=got, **kwargs)


# Chapter 6's figure: the page's model, before and after training.


def test_learned_weights_figure_shows_the_pages_model():
    before, after = figures.learned_weights()
    # the page: seed 0, 100 steps, the example sequence from generator seed 1
    torch.manual_seed(0)
    model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
    x, _ = lookback_batch(1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(before, model.attention_weights(x)[0])
    train(model, steps=100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(after, model.attention_weights(x)[0])
    # caption: after training row t reads position t - 2; before, the weights are spread
    t = torch.arange(2, 8)
    assert torch.equal(after[2:].argmax(dim=-1), t - 2) and (after[t, t - 2] > 0.9).all()
    assert before[2:].max() < 0.9


def test_learned_weights_leave_the_global_random_state_alone():
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    figures.learned_weights(steps=1)
    assert torch.equal(torch.rand(3), want)


def test_learned_weights_svg_titles_both_panels():
    svg = figures.learned_weights_svg(steps=3)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "before training" in texts and "after 3 steps" in texts
    assert "<title>Weights of one attention head before and after" in svg


@pytest.mark.parametrize(
    ("kwargs", "error", "where", "arg", "got"),
    [
        (dict(seed="0"), TypeError, "learned_weights", "seed", "got str"),
        (dict(steps=0), ValueError, "train", "steps", "got 0"),  # train refuses it, before any step
    ],
)
def test_learned_weights_refuses_bad_arguments(kwargs, error, where, arg, got):
    refuses(error, arg, figures.learned_weights, got=got, where=where, **kwargs)
