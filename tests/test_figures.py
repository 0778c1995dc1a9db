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
from tests.refusals import assert_refuses

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
    notebook = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "notebooks").glob("*.py"))
    in_notebook = {name for name in figures.FIGURES if f"{name.replace('-', '_')}_svg(" in notebook}
    # a stacked copy (NAME-narrow) is shown wherever NAME is, through a <picture>
    narrow = {name + figures.NARROW for name in shown if name + figures.NARROW in figures.FIGURES}
    missing = set(figures.FIGURES) - shown - in_notebook - narrow
    assert not missing, missing
    assert not {name for name in shown if name.endswith(figures.NARROW)}, "show NAME, not its copy"


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
    assert_refuses(error, arg, getattr(figures, f), *args, got=got, **kwargs)


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
    assert_refuses(error, arg, figures.learned_weights, got=got, where=where, **kwargs)


# The diagrams: their numbers are the package's, their inputs the pages' examples.


def _texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_chapter_1s_batch_is_the_one_its_page_types():
    page = (DOCS / "01-by-hand.md").read_text(encoding="utf-8")
    for b, sequence in enumerate(figures.BY_HAND_X):
        rows = ", ".join(f"[{a:g}., {c:g}.]" for a, c in sequence)
        assert f"[{rows}],   # sequence {b}" in page, rows


def test_the_loop_figure_shows_the_loops_output():
    from snippets.averaging import prefix_mean_loop

    x = torch.tensor(figures.BY_HAND_X)
    out = prefix_mean_loop(x)[1]
    assert out[2].tolist() == [4.0, 2.0]  # chapter 1: sequence 1 at position 2
    texts = _texts(figures.prefix_loop_svg(2))
    assert "out[2] = (4, 2)" in texts and "mean of rows 0..2" in texts
    with pytest.raises(ValueError, match="t must be in 0..3, got 4"):
        figures.prefix_loop_svg(4)
    with pytest.raises(ValueError, match="t must be in 0..3, got -1"):
        figures.weighted_average_svg(-1)


def test_the_whole_idea_is_weights_at_x():
    svg = figures.weighted_average_svg()
    texts = _texts(svg)
    assert texts.count(".33") == 3 and texts.count(".25") == 4  # the triangle's rows 2 and 3
    assert {"weights", "x", "out", "@", "="} <= set(texts)
    assert "<title>Row 2 of the weights picks rows 0 to 2 of x</title>" in figures.weighted_average_svg(2)


def test_the_mask_strip_rows():
    rows = figures.mask_strip()
    torch.testing.assert_close(rows["softmax"], figures.scores_to_weights())
    assert rows["softmax"].sum().item() == pytest.approx(1.0)
    after = rows["× mask after"]
    assert (after[figures.WIDGET_QUERY + 1 :] == 0).all() and after.sum() < 0.5
    assert f"{after.sum().item():.2f}".removeprefix("0") in _texts(figures.mask_strip_svg())


def test_the_head_flow_has_the_heads_shapes():
    flow = figures.head_flow()
    shapes = {name: tuple(t.shape) for name, t in flow.items()}
    assert shapes == {"x": (2, 3, 6), "q": (2, 3, 4), "k": (2, 3, 4), "v": (2, 3, 4),
                      "scores": (2, 3, 3), "masked": (2, 3, 3), "weights": (2, 3, 3),
                      "out": (2, 3, 4)}
    texts = _texts(figures.head_flow_svg())
    assert "(B, T, C) = (2, 3, 6)" in texts and "(B, T, head_size) = (2, 3, 4)" in texts


def test_the_multihead_split_is_the_modules():
    s = figures.multihead_split(B=2, T=3, C=6, n_head=3)
    assert s["heads"].shape == (2, 3, 3, 2)
    assert torch.equal(s["merged"], s["x"])
    for h in range(3):
        assert s["heads"][:, h].unique().tolist() == [2.0 * h, 2.0 * h + 1]
    # and the module splits its channels the same way: head h's output depends on channels
    # h * hs .. of v only
    w = figures.multihead_weights()
    assert w.shape == (2, 5, 5) and not torch.allclose(w[0], w[1])
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 5))


def test_the_loss_curve_is_the_pages_run():
    losses = figures.training_losses()
    torch.manual_seed(0)
    model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
    want = train(model, steps=100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(losses, want)
    assert f"falls to {want[-1].item():.2f}" in figures.loss_curve_svg()


def test_the_bfloat16_total_stops_at_256():
    totals = figures.bfloat16_totals(300)
    assert totals["float32"][-1] == 300
    bf = totals["bfloat16"].float()
    assert bf[255] == 256 and (bf[255:] == 256).all() and (bf[:255] == torch.arange(1, 256)).all()
    assert "bfloat16: stuck at 256" in _texts(figures.bfloat16_total_svg())


def test_the_running_sum_figure():
    texts = _texts(figures.running_sum_svg((2.0, 4.0, 6.0, 3.0, 5.0)))
    for value in ("12", "15", "20", "3.75"):
        assert value in texts


def test_the_block_tiling_is_read_off_the_function():
    tiles = figures.online_blocks(7, 3)
    want = torch.zeros(7, 7, dtype=torch.long)
    for n, j in enumerate(range(0, 7, 3), start=1):  # chapter 8's own loop
        want[j:, j : j + 3] = n
    assert torch.equal(tiles, want)
    assert "blank: never computed (15 scores)" in _texts(figures.block_tiling_svg())
    torch.testing.assert_close(figures.online_blocks(5, 5), torch.ones(5, 5, dtype=torch.long))


def test_the_kernel_grid_follows_the_kernels_indexing():
    p = figures.kernel_programs(2, 3, 5, 2)  # 3 channel blocks, the last one short
    for b in range(2):
        for cb in range(3):
            cs = [c for c in range(cb * 2, cb * 2 + 2) if c < 5]  # cb * BLOCK_C + arange(BLOCK_C)
            assert (p[b, :, cs] == b * 3 + cb).all()


def test_the_cache_figure_decodes_with_the_cache():
    from snippets.inference import decode_macs

    steps = figures.kv_cache_steps(4, 4)
    assert [s["cached"] for s in steps] == [1, 2, 3, 4] == [s["k_rows"] for s in steps]
    assert [s["without"] for s in steps] == [decode_macs(t, 4, cached=False) for t in range(1, 5)]
    texts = _texts(figures.kv_cache_svg(4, 4))
    assert str(decode_macs(4, 4, cached=False)) in texts


def test_the_cache_stepper_trace_is_the_cache_s_content_and_decode_macs():
    """The numbers sitegen/widgets.py embeds for chapter 11's stepper: at step t the cache holds
    t + 1 rows, the first rows of every later step are the same (the cache only appends), the
    weights sum to 1, and the counts are decode_macs's (tests/test_browser.py compares all of
    them, as shown, with torch and PyTorch's FLOP counter)."""
    from snippets.inference import decode_macs

    steps = figures.kv_cache_trace(**figures.KV_STEPPER)
    C = figures.KV_STEPPER["n_embd"]
    assert len(steps) == figures.KV_STEPPER["T"]
    for t, step in enumerate(steps):
        assert len(step["k"]) == len(step["v"]) == len(step["w"]) == t + 1
        assert all(len(row) == C for row in step["k"] + step["v"] + [step["q"], step["avg"]])
        assert step["k"] == steps[-1]["k"][: t + 1] and step["v"] == steps[-1]["v"][: t + 1]
        assert abs(sum(step["w"]) - 1) < 1e-6
        assert (step["with"], step["without"]) == (decode_macs(t + 1, C, cached=True), decode_macs(t + 1, C, cached=False))


WIDGETS_JS = DOCS / "assets" / "widgets" / "widgets.js"
MINIFIED_LIMIT = 25_000  # bytes: issue 20's bound for the whole module, minified


def test_the_widget_module_is_under_its_size_limit_even_without_a_minifier():
    """Issue 20: the widget module stays under 25 KB minified. The site ships it as written; this
    measures it with its comments, indentation and blank lines removed, which every minifier
    removes too (and more: it also shortens names), so a minified copy is smaller still."""
    text = WIDGETS_JS.read_text(encoding="utf-8")
    lines = [re.sub(r"\s+//\s.*$", "", line).strip() for line in text.splitlines()]  # "//" after a blank: a comment
    stripped = "\n".join(line for line in lines if line and not line.startswith("//"))
    assert "function kvCache" in stripped and len(stripped) < len(text)
    assert len(stripped.encode()) < MINIFIED_LIMIT, f"{len(stripped.encode())} bytes without comments or indentation"


def test_the_pitfall_figures_show_chapter_12s_tensors():
    p = figures.padding_nan()
    assert p["weights"][:2].isnan().all() and not p["weights"][2:].isnan().any()
    assert p["two layers"].isnan().all() and not p["fixed"].isnan().any()
    f = figures.float16_fill()
    on_or_below = torch.ones(4, 4, dtype=torch.bool).tril()
    assert f["× −1e9"].dtype == torch.float16 and f["× −1e9"][on_or_below].isnan().all()
    torch.testing.assert_close(f["finfo.min"][0].float(), torch.full((4,), 0.25))
    assert _texts(figures.padding_nan_svg()).count("nan") == 8 + 8


def test_each_narrow_copy_is_narrower_and_says_the_same():
    def width(svg):
        return float(re.search(r'<svg\b[^>]*\bwidth="([\d.]+)pt"', svg)[1])

    narrow = [n for n in figures.FIGURES if n.endswith(figures.NARROW)]
    assert narrow
    for name in narrow:
        wide_svg, narrow_svg = figures.FIGURES[name.removesuffix(figures.NARROW)](), figures.FIGURES[name]()
        assert width(narrow_svg) < 0.6 * width(wide_svg), name
        assert sorted(_texts(narrow_svg)) == sorted(_texts(wide_svg)), name
