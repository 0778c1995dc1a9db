"""Figures for the pages: weight matrices drawn as heatmaps, returned as SVG text.

The site's build calls these functions (see ``sitegen/pre.py``), so a figure
always shows what the code computes today; no image is committed. Each function
returns a complete SVG document as a ``str``, with a ``<title>`` that describes it.

The drawings must read well on a light and on a dark page, and an SVG shown by an
``<img>`` tag cannot see which one it is on. So the background is transparent, text
and frames are a mid grey that contrasts with white and with near-black, and the
cells use ``viridis``, whose colours are the same on both. Numbers inside a cell are
black or white, whichever contrasts more with the cell's colour (at least 4.5:1 anywhere
on viridis), never chosen by the page's. The site shows a copy per palette, with the grey
made darker or lighter (``snippets.plotting.for_palette``). The timing
plots of the appendix (``bench.report``) are drawn with the same ``new_figure``,
``to_svg`` and ``GREY``, which live in ``snippets.plotting``.

This module is for the documentation: besides ``torch`` it needs ``matplotlib``.

>>> svg = causal_mean_weights_svg(3)
>>> svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
True
>>> "<title>" in svg
True
"""

from __future__ import annotations

import base64
import functools
import html
import math
import re
from collections.abc import Callable

import torch

from snippets.attention import Head, MultiHeadAttention, causal_attention
from snippets.averaging import (
    causal_mean_weights,
    prefix_mean_cumsum,
    prefix_mean_loop,
    prefix_mean_matmul,
)
from snippets.inference import KVCache, decode_macs
from snippets.learning import OneHeadModel, lookback_batch, train
from snippets.positions import apply_rotary, sinusoidal_positions
from snippets.streaming import online_causal_attention
from snippets.plotting import GREY, new_figure, style, text_colour_on, to_svg

__all__ = [
    "FIGURES",
    "GREY",
    "new_figure",
    "style",
    "to_svg",
    "img_tag",
    "causal_mean_weights_svg",
    "masked_softmax_weights",
    "masked_softmax_svg",
    "head_weights",
    "head_weights_svg",
    "masks_svg",
    "rotary_scores",
    "rotary_scores_svg",
    "learned_weights",
    "learned_weights_svg",
    "scores_to_weights",
    "scores_to_weights_svg",
    "mask_alignment",
    "mask_alignment_svg",
    "online_softmax_trace",
    "online_softmax_svg",
    "kv_cache_trace",
    "tiled_running_sums",
    "scan_tiles_svg",
]

CMAP = "viridis"
FONT = 10  # points: the smallest text of a figure (tests/test_browser.py measures it as shown)
LIT = "#7ad151"  # viridis near 0.85, the fill of the cells a diagram points at (black text)
NAN_FILL = "#d95f5f"  # a muted red for cells that hold nan (black text on it, 5.6:1)


def _check_T(T: int, name: str) -> None:
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"{name}: T must be an int, got {type(T).__name__}")
    if not 1 <= T <= 16:
        raise ValueError(f"{name}: T must be between 1 and 16 to stay readable, got {T}")


def _heatmap(ax, weights: torch.Tensor, title: str, *, annotate: bool = True, labels=None):
    """Draw a (T, T) matrix, rows = query position t, columns = key position s."""
    w = weights.detach().to("cpu", torch.float64)
    T = w.shape[0]
    vmax = 1.0
    image = ax.imshow(w.numpy(), cmap=CMAP, vmin=0.0, vmax=vmax)
    cell = _cell_colour(CMAP, 0.0, vmax)
    ax.set_title(title, fontsize=FONT, color=GREY)
    ax.set_xlabel("key position s (the past it reads)")
    ax.set_ylabel("query position t")
    ax.set_xticks(range(T), labels=labels)
    ax.set_yticks(range(T), labels=labels)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        for t in range(T):
            for s in range(T):
                value = w[t, s].item()
                if value == 0:
                    text = "0"
                elif value < 0.005:
                    text = "<.01"  # not zero: only the masked future is exactly 0
                else:
                    text = f"{value:.2f}".removeprefix("0")
                colour = text_colour_on(cell(value))  # the cell's own colour, not the page's
                ax.text(s, t, text, ha="center", va="center", fontsize=FONT, color=colour)
    return image


def _cell_colour(cmap: str, vmin: float, vmax: float) -> Callable[[float], str]:
    """value -> the ``#rrggbb`` colour of its cell in an ``imshow`` with these limits."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, to_hex

    colours, norm = colormaps[cmap], Normalize(vmin, vmax, clip=True)
    return lambda value: to_hex(colours(norm(value)))


def img_tag(svg: str) -> str:
    """An ``<img>`` that shows ``svg`` inline, with its title and description as alt text.

    For notebooks: a notebook shows an SVG output without alt text, and pasted
    into a page as markup its styles would leak into the page's.

    >>> img_tag(causal_mean_weights_svg(2))[:45]
    '<img alt="Averaging weights for T = 2. A 2 by'

    Raises:
        ValueError: ``svg`` has no ``<title>``.
    """
    title = re.search(r"<title>(.*?)</title>", svg, re.S)
    if not title:
        raise ValueError("img_tag: the SVG has no <title> to use as alt text")
    desc = re.search(r"<desc>(.*?)</desc>", svg, re.S)
    alt = html.unescape(title.group(1)) + (". " + html.unescape(desc.group(1)) if desc else "")
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _heatmap_svg(
    weights: torch.Tensor,
    heading: str,
    title: str,
    description: str,
    *,
    size: tuple[float, float] = (4.4, 3.9),
    labels=None,
) -> str:
    """One (T, T) heatmap headed `heading`, as SVG with `title` and `description`."""
    with style():
        fig = new_figure(*size)
        _heatmap(fig.add_subplot(), weights, heading, labels=labels)
        return to_svg(fig, title, description)


def causal_mean_weights_svg(T: int = 8) -> str:
    """Heatmap of ``causal_mean_weights(T)``: row t averages positions 0..t.

    Raises:
        TypeError: ``T`` is not an int.
        ValueError: ``T`` is not between 1 and 16.
    """
    _check_T(T, "causal_mean_weights_svg")
    return _heatmap_svg(
        causal_mean_weights(T),
        f"causal_mean_weights({T})",
        f"Averaging weights for T = {T}",
        f"A {T} by {T} lower-triangular matrix: row t holds 1/(t+1) in columns 0 to t "
        "and 0 to the right of the diagonal.",
    )


def masked_softmax_weights(T: int = 8, *, seed: int = 0) -> torch.Tensor:
    """Softmax weights of standard-normal scores with the future masked, (T, T).

    >>> w = masked_softmax_weights(4)
    >>> torch.allclose(w.sum(dim=-1), torch.ones(4)), bool((w.triu(1) == 0).all())
    (True, True)
    """
    _check_T(T, "masked_softmax_weights")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"masked_softmax_weights: seed must be an int, got {type(seed).__name__}")
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(T, T, generator=g)  # (T, T), one score per (t, s) pair
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)


def masked_softmax_svg(T: int = 8, *, seed: int = 0) -> str:
    """Heatmap of :func:`masked_softmax_weights`: causal, rows sum to 1, uneven.

    Raises:
        TypeError: ``T`` is not an int.
        ValueError: ``T`` is not between 1 and 16.
    """
    _check_T(T, "masked_softmax_svg")
    return _heatmap_svg(
        masked_softmax_weights(T, seed=seed),
        "softmax of random scores, future masked",
        f"Masked-softmax weights of random scores for T = {T}",
        "A lower-triangular matrix whose rows sum to 1 but whose weights are uneven: "
        "each row favours some past positions over others.",
    )


def head_weights(text: str = "hello world", *, strength: float = 3.0) -> torch.Tensor:
    """Attention weights, (T, T), of a ``Head`` set up to match equal characters of ``text``.

    Each character is a one-hot vector over the characters of ``text``; the head's
    query and key projections are ``strength`` times the identity, so the score of
    two equal characters is ``strength**2 / sqrt(head_size)`` and of two different
    ones 0. The weights are what ``causal_attention`` applies to its values, read
    off by passing the identity matrix as values.

    >>> w = head_weights("abca")
    >>> w[3]  # the second "a" puts most of its weight on the first "a" and itself
    tensor([0.4972, 0.0028, 0.0028, 0.4972])

    Raises:
        TypeError: ``text`` is not a str, or ``strength`` not a number.
        ValueError: ``text`` is empty or longer than 16 characters, or ``strength``
            is not in (0, 10].
    """
    if not isinstance(text, str):
        raise TypeError(f"head_weights: text must be a str, got {type(text).__name__}")
    if not 1 <= len(text) <= 16:
        raise ValueError(f"head_weights: text must have 1 to 16 characters, got {len(text)}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TypeError(f"head_weights: strength must be a number, got {type(strength).__name__}")
    if not 0 < strength <= 10:  # larger scores saturate the softmax: nothing left to see
        raise ValueError(f"head_weights: strength must be in (0, 10], got {strength}")
    vocab = sorted(set(text))
    T, C = len(text), len(vocab)
    x = torch.nn.functional.one_hot(torch.tensor([vocab.index(c) for c in text]), C)
    x = x.to(torch.float32).unsqueeze(0)  # (1, T, C)
    head = Head(n_embd=C, head_size=C, block_size=T)
    with torch.no_grad():
        for projection in (head.query, head.key, head.value):
            projection.weight.copy_(strength * torch.eye(C))
        q, k = head.query(x), head.key(x)  # (1, T, C) each
        weights = causal_attention(q, k, torch.eye(T).unsqueeze(0))[0]  # (T, T): wei @ I = wei
        # The same weights produce the head's output from its values.
        torch.testing.assert_close(weights @ head.value(x)[0], head(x)[0])
    return weights


def head_weights_svg(text: str = "hello world") -> str:
    """Heatmap of :func:`head_weights`: each character attends to earlier copies of itself.

    Raises:
        ValueError: ``text`` is empty or longer than 16 characters.
    """
    return _heatmap_svg(
        head_weights(text),
        f"one head on {text!r}",
        f"Weights of one attention head on the characters of {text!r}",
        "A lower-triangular matrix, one row and one column per character. Each character "
        "puts most of its weight on itself and on earlier copies of the same character, "
        "and little on the others.",
        size=(4.8, 4.3),
        labels=["␣" if c == " " else c for c in text],
    )


def masks_svg(T: int = 6, *, stacked: bool = False) -> str:
    """Side by side (or one above the other): the encoder's mask (all pairs allowed) and the
    decoder's (s <= t).

    Raises:
        TypeError: ``T`` is not an int.
        ValueError: ``T`` is not between 1 and 16.
    """
    _check_T(T, "masks_svg")
    allowed = {
        "encoder: every token sees every token": torch.ones(T, T),
        "decoder: token t sees tokens 0..t": torch.tril(torch.ones(T, T)),
    }
    cell = _cell_colour(CMAP, 0.0, 1.0)
    with style():
        fig = new_figure(3.6, 6.8) if stacked else new_figure(6.6, 3.5)
        axes = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
        for ax, (title, mask) in zip(axes, allowed.items(), strict=True):
            _heatmap(ax, mask, title, annotate=False)
            for t in range(T):
                for s in range(T):
                    ok = bool(mask[t, s])
                    ax.text(
                        s,
                        t,
                        "✓" if ok else "✗",
                        ha="center",
                        va="center",
                        fontsize=FONT,
                        color=text_colour_on(cell(float(ok))),
                    )
        return to_svg(
            fig,
            "Encoder and decoder attention masks",
            f"Two {T} by {T} grids. {'Top' if stacked else 'Left'}, the encoder: every cell is "
            f"allowed. {'Bottom' if stacked else 'Right'}, the decoder: "
            "only cells on or below the diagonal are allowed, the future is masked.",
        )


def rotary_scores(T: int = 8) -> torch.Tensor:
    """Scores (T, T) of one query and one key placed at every position, rotated by RoPE.

    The query is (1, 2) and the key (3, -1) at every position, as in chapter 7;
    entry (m, n) is ``apply_rotary(q, [m]) . apply_rotary(k, [n])``, which works
    out to ``cos(m - n) - 7 sin(m - n)``: one value per diagonal.

    >>> rotary_scores(3)
    tensor([[ 1.0000,  6.4306,  5.9489],
            [-5.3500,  1.0000,  6.4306],
            [-6.7812, -5.3500,  1.0000]])

    Raises:
        TypeError: ``T`` is not an int.
        ValueError: ``T`` is not between 1 and 16.
    """
    _check_T(T, "rotary_scores")
    q = apply_rotary(torch.tensor([[1.0, 2.0]]).expand(T, 2))  # (T, 2), row m turned by m
    k = apply_rotary(torch.tensor([[3.0, -1.0]]).expand(T, 2))  # (T, 2)
    return q @ k.T  # (T, T)


def rotary_scores_svg(T: int = 8) -> str:
    """Heatmap of :func:`rotary_scores`: constant along every diagonal.

    Raises:
        TypeError: ``T`` is not an int.
        ValueError: ``T`` is not between 1 and 16.
    """
    scores = rotary_scores(T).to(torch.float64)
    top = scores.abs().max().item()
    with style():
        fig = new_figure(4.8, 4.3)
        ax = fig.add_subplot()
        ax.imshow(scores.numpy(), cmap=CMAP, vmin=-top, vmax=top)
        cell = _cell_colour(CMAP, -top, top)
        ax.set_title("RoPE scores of one q and one k at every position", fontsize=FONT, color=GREY)
        ax.set_xlabel("key position n")
        ax.set_ylabel("query position m")
        ax.set_xticks(range(T))
        ax.set_yticks(range(T))
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        for m in range(T):
            for n in range(T):
                value = scores[m, n].item()
                colour = text_colour_on(cell(value))
                text = f"{value:.1f}".replace("-0.0", "0.0")  # no sign on a rounded zero
                ax.text(n, m, text, ha="center", va="center", fontsize=FONT, color=colour)
        return to_svg(
            fig,
            "Scores of a rotated query and key at every pair of positions",
            f"A {T} by {T} grid of the scores q . k after RoPE, with the same query vector and the "
            "same key vector at every position. Every diagonal holds a single value, because the "
            "score depends only on the offset m - n; the main diagonal holds q . k = 1.",
        )


def learned_weights(*, steps: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Chapter 6's head on one sequence of 8 tokens, before and after training: two (T, T).

    The model and the run are the page's: ``OneHeadModel(vocab=8, n_embd=16,
    block_size=8)`` made after ``torch.manual_seed(seed)``, trained by ``train``
    for ``steps`` steps on batches from a generator seeded with ``seed``. The
    sequence is the first of ``lookback_batch(1, 8, 8)`` from a generator seeded
    with ``seed + 1``. The global random state is left as it was.

    >>> before, after = learned_weights(steps=1)
    >>> before.shape, after.shape
    (torch.Size([8, 8]), torch.Size([8, 8]))

    Raises:
        TypeError: ``steps`` or ``seed`` is not an int.
        ValueError: ``steps`` is < 1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"learned_weights: seed must be an int, got {type(seed).__name__}")
    before, after, _ = _training_run(steps, seed)
    return before.clone(), after.clone()


def training_losses(*, steps: int = 100, seed: int = 0) -> torch.Tensor:
    """The loss of every step, (steps,), of the run of :func:`learned_weights`.

    >>> training_losses(steps=2).shape
    torch.Size([2])
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"training_losses: seed must be an int, got {type(seed).__name__}")
    return _training_run(steps, seed)[2].clone()


@functools.lru_cache(maxsize=4)  # one run per build for both of chapter 6's figures
def _training_run(steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
    x, _ = lookback_batch(1, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        before = model.attention_weights(x)[0]
    losses = train(model, steps=steps, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        after = model.attention_weights(x)[0]
    return before, after, losses


def learned_weights_svg(*, steps: int = 100, seed: int = 0, stacked: bool = False) -> str:
    """Heatmaps of :func:`learned_weights`, side by side: spread out, then two places back.

    Raises:
        TypeError: ``steps`` or ``seed`` is not an int.
        ValueError: ``steps`` is < 1.
    """
    before, after = learned_weights(steps=steps, seed=seed)
    with style():
        fig = new_figure(3.9, 7.4) if stacked else new_figure(7.6, 3.8)
        left, right = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
        _heatmap(left, before, "before training")
        _heatmap(right, after, f"after {steps} steps")
        return to_svg(
            fig,
            "Weights of one attention head before and after learning to look two places back",
            "Two 8 by 8 lower-triangular matrices for the same sequence of tokens. Before "
            "training, each row spreads its weight unevenly over the past. After training, "
            "every row from position 2 on puts almost all of its weight on the position two "
            "places before it: the second diagonal below the main one.",
        )


def tiled_running_sums(x: torch.Tensor, block_t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Chapter 10's kernel, one program, in torch: running sums of x (T, C), tile by tile.

    Each tile of ``block_t`` rows is scanned on its own and the carry (the sum of
    every earlier tile) is added; returns the running sums (T, C) and the carry
    that enters each tile (n_tiles, C).

    >>> sums, carries = tiled_running_sums(torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]), 2)
    >>> sums.flatten().tolist(), carries.flatten().tolist()
    ([1.0, 3.0, 6.0, 10.0, 15.0], [0.0, 3.0, 10.0])
    """
    carry = torch.zeros_like(x[0])  # (C,)
    sums, carries = [], []
    for start in range(0, x.shape[0], block_t):
        tile = x[start : start + block_t]  # (block_t, C), fewer rows at the end
        carries.append(carry)
        sums.append(carry + tile.cumsum(0))
        carry = carry + tile.sum(0)
    return torch.cat(sums), torch.stack(carries)


def scan_tiles_svg(x: tuple[float, ...] = (3, 1, 4, 1, 5, 9, 2, 6, 5, 3), block_t: int = 4) -> str:
    """One program's walk along T: tiles of ``block_t`` steps, the carry passed on between them.

    Raises:
        ValueError: ``x`` has fewer than 2 or more than 16 values, or ``block_t`` is not
            between 1 and the length of ``x``.
    """
    T = len(x)
    if not 2 <= T <= 16 or not 1 <= block_t <= T:
        raise ValueError(
            f"scan_tiles_svg: need 2 <= len(x) <= 16 and 1 <= block_t <= len(x), got {T}, {block_t}"
        )
    xs = torch.tensor(x, dtype=torch.float64).unsqueeze(-1)  # (T, 1)
    sums, carries = tiled_running_sums(xs, block_t)
    means = sums[:, 0] / torch.arange(1, T + 1)
    tile = torch.arange(T) // block_t  # (T,) the tile of each step
    rows = {"x[t]": xs[:, 0], "running sum": sums[:, 0], "mean": means}
    with style():
        fig = new_figure(1.2 + 0.3 * T, 2.6)
        ax = fig.add_subplot()
        n_tiles = int(tile[-1]) + 1
        shade = (0.6 + 0.35 * tile / max(1, n_tiles - 1)).expand(len(rows), T)  # light: black text
        ax.imshow(shade.numpy(), cmap=CMAP, vmin=0.0, vmax=1.0, aspect="auto")
        for r, values in enumerate(rows.values()):
            for t in range(T):
                ax.text(
                    t,
                    r,
                    f"{values[t].item():.3g}" if r < 2 else f"{values[t].item():.2g}",
                    ha="center",
                    va="center",
                    fontsize=FONT,
                    color="black",
                )
        for k in range(1, n_tiles):
            edge = k * block_t - 0.5
            ax.axvline(edge, color=GREY, linewidth=2)
            ax.annotate(
                f"carry {carries[k, 0].item():.3g}",
                (edge, -0.5),
                (edge, -0.95),
                ha="center",
                va="bottom",
                fontsize=FONT,
                color=GREY,
                annotation_clip=False,
            )
        ax.set_yticks(range(len(rows)), labels=list(rows))
        ax.set_xticks(range(T))
        ax.set_xlabel(f"step t, in tiles of {block_t}")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        return to_svg(
            fig,
            f"One program's walk along T in tiles of {block_t} steps",
            f"Three rows over {T} steps, shaded by tile: the values x[t], their running sums and "
            "the means. Each tile is scanned on its own; the carry written at each tile boundary "
            "is the sum of all earlier tiles, and it is added to every running sum of the next "
            "tile before the division by t + 1.",
        )


# What the site shows: figures/<name>.svg, drawn before the build (sitegen/pre.py).
# The scores of the widget of chapter 3 (docs/assets/widgets/widgets.js) when it starts: one
# query at position 2, five keys, 3 and 4 in its future. The page and this figure share them.
WIDGET_SCORES = (1.0, 2.0, 0.5, 3.0, -1.0)
WIDGET_QUERY = 2


def scores_to_weights(scores=WIDGET_SCORES, query: int = WIDGET_QUERY) -> torch.Tensor:
    """The weights one query at position `query` gives each key, the future masked with -inf.

    >>> scores_to_weights((0.0, 0.0, 5.0), 1)
    tensor([0.5000, 0.5000, 0.0000], dtype=torch.float64)
    """
    s = torch.tensor(scores, dtype=torch.float64)  # (T,) one score per key
    future = torch.arange(len(scores)) > query
    return torch.softmax(s.masked_fill(future, float("-inf")), dim=-1)


def scores_to_weights_svg(scores=WIDGET_SCORES, query: int = WIDGET_QUERY) -> str:
    """Bars of :func:`scores_to_weights`: the static figure of chapter 3's widget."""
    w = scores_to_weights(scores, query)
    with style():
        fig = new_figure(4.0, 2.6)
        ax = fig.add_subplot()
        T = len(scores)
        colours = ["#3b8ee6" if j <= query else GREY for j in range(T)]
        ax.bar(range(T), w.numpy(), color=colours)
        for j, value in enumerate(w.tolist()):
            ax.text(
                j, value + 0.02, f"{value:.2f}", ha="center", va="bottom", fontsize=FONT, color=GREY
            )
        ax.set_xticks(range(T), labels=[f"key {j}\ns = {scores[j]:g}" for j in range(T)])
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("weight")
        ax.set_title(f"query at position {query}: keys after it masked", fontsize=FONT, color=GREY)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return to_svg(
            fig,
            f"Softmax weights of one query at position {query}",
            f"Five bars, one per key, for the scores {', '.join(f'{x:g}' for x in scores)}: "
            f"the keys after position {query} get weight 0, the others share 1 by the size "
            "of their score.",
        )


def mask_alignment(T_new: int, T_all: int) -> dict[str, torch.Tensor]:
    """The lower-right and top-left masks, (T_new, T_all), of `T_new` queries after a cache.

    >>> mask_alignment(2, 4)["top-left (is_causal=True)"].int()
    tensor([[1, 0, 0, 0],
            [1, 1, 0, 0]], dtype=torch.int32)
    """
    ones = torch.ones(T_new, T_all, dtype=torch.bool)
    return {
        "lower-right (correct)": ones.tril(diagonal=T_all - T_new),
        "top-left (is_causal=True)": ones.tril(),
    }


def mask_alignment_svg(T_new: int = 3, T_all: int = 6, *, stacked: bool = False) -> str:
    """The two masks of :func:`mask_alignment` side by side: the static figure of chapter 11's
    widget."""
    cell = _cell_colour(CMAP, 0.0, 1.0)
    with style():
        fig = new_figure(3.6, 4.6) if stacked else new_figure(6.6, 2.6)
        axes = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
        for ax, (title, mask) in zip(axes, mask_alignment(T_new, T_all).items(), strict=True):
            ax.imshow(mask.double().numpy(), cmap=CMAP, vmin=0.0, vmax=1.0)
            ax.set_title(title, fontsize=FONT, color=GREY)
            ax.set_xlabel("key (token)")
            ax.set_ylabel("query (token)")
            ax.set_xticks(range(T_all))
            ax.set_yticks(range(T_new), labels=[str(T_all - T_new + i) for i in range(T_new)])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            for i in range(T_new):
                for j in range(T_all):
                    ok = bool(mask[i, j])
                    colour = text_colour_on(cell(float(ok)))
                    ax.text(
                        j,
                        i,
                        "✓" if ok else "✗",
                        ha="center",
                        va="center",
                        fontsize=FONT,
                        color=colour,
                    )
        return to_svg(
            fig,
            f"Masks of {T_new} new tokens after {T_all - T_new} cached ones",
            f"Two {T_new} by {T_all} grids. {'Top' if stacked else 'Left'}, the lower-right "
            f"mask: query i, which is token "
            f"{T_all - T_new} + i, sees keys 0 to {T_all - T_new} + i. "
            f"{'Bottom' if stacked else 'Right'}, the top-left mask of "
            "is_causal=True: query i sees keys 0 to i only.",
        )


# Chapter 9's example: weights e^s of 1, 2 and 1 on the values 4, 8 and 0 (the answer is 5),
# and the same scores + 100, whose exponentials overflow float32.
STEPPER_SCORES = {
    "small scores": (0.0, math.log(2), 0.0),
    "scores + 100": (100.0, 100.0 + math.log(2), 100.0),
}
STEPPER_VALUES = (4.0, 8.0, 0.0)


def online_softmax_trace(scores, values) -> list[dict[str, float]]:
    """The online softmax of one query, key by key, in float32: what chapter 9's stepper shows.

    Each step holds the score ``s``, the maximum before and after (``m_old``, ``m``), the
    ``scale`` exp(m_old - m) that rescales the sums so far, the new term ``p``, the running
    sums ``l`` and ``acc`` (one value per key: Dv = 1), and ``naive``, exp(s) as the formula
    without a maximum would take it.

    >>> [round(step["l"], 4) for step in online_softmax_trace((0.0, 0.6931, 0.0), (4.0, 8.0, 0.0))]
    [1.0, 1.5, 2.0]
    """
    m, l, acc, out = torch.tensor(float("-inf")), torch.tensor(0.0), torch.tensor(0.0), []
    for s_j, v_j in zip(torch.tensor(scores), torch.tensor(values), strict=True):
        m_new = torch.maximum(m, s_j)
        scale = torch.exp(m - m_new)  # 0 at the first key, where m is -inf
        p = torch.exp(s_j - m_new)
        l, acc = l * scale + p, acc * scale + p * v_j
        out.append(
            {"s": s_j, "m_old": m, "m": m_new, "scale": scale, "p": p, "l": l, "acc": acc}
            | {"naive": torch.exp(s_j)}
        )
        m = m_new
    return [{k: float(v) for k, v in step.items()} for step in out]


def online_softmax_svg(*, stacked: bool = False) -> str:
    """The running maximum and the two running sums of chapter 9's example, key by key: the
    static figure of its stepper."""
    traces = {name: online_softmax_trace(s, STEPPER_VALUES) for name, s in STEPPER_SCORES.items()}
    with style():
        fig = new_figure(3.7, 5.6) if stacked else new_figure(7.0, 3.0)
        axes = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
        for ax, (name, trace) in zip(axes, traces.items(), strict=True):
            steps = range(len(trace))
            ax.plot(steps, [t["l"] for t in trace], marker="o", color="#3b8ee6", label="l")
            ax.plot(
                steps, [t["acc"] / 4 for t in trace], marker="s", color="#e8710a", label="acc / 4"
            )
            for j, t in enumerate(trace):
                ax.annotate(
                    f"m = {t['m']:.2f}",
                    (j, t["l"]),
                    textcoords="offset points",
                    xytext=(0, 8),
                    ha="center",
                    fontsize=FONT,
                    color=GREY,
                )
            ax.set_title(
                f"{name}: acc / l = {trace[-1]['acc'] / trace[-1]['l']:.4g}",
                fontsize=FONT,
                color=GREY,
            )
            ax.set_xticks(list(steps), labels=[f"key {j}" for j in steps])
            ax.set_ylim(0, 3.4)
            ax.legend(frameon=False, fontsize=FONT, labelcolor=GREY)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        return to_svg(
            fig,
            "The online softmax of chapter 9's example, key by key",
            "Two panels, the small scores and the same scores plus 100: in both the running sum l "
            "grows 1, 1.5, 2 and acc 4, 10, 10, so the output acc / l is 5; only the running "
            "maximum m differs, by 100.",
        )


# ---------------------------------------------------------------------------------------------
# Diagrams: grids of numbers and boxes drawn on one canvas of unit cells. Every number in them
# comes from the function named in the docstring; the inputs are the pages' own examples.

# The page of chapter 1's example: two sequences of four tokens of two channels, (B, T, C).
BY_HAND_X = (
    ((1.0, 5.0), (3.0, 1.0), (2.0, 6.0), (6.0, 0.0)),
    ((4.0, 0.0), (0.0, 2.0), (8.0, 4.0), (0.0, 2.0)),
)


def _canvas(width: float, height: float, *, unit: float = 0.36):
    """A figure with one axes `width` by `height` cells, y growing downwards, nothing drawn."""
    fig = new_figure(width * unit, height * unit)
    ax = fig.add_subplot()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _number(value: float) -> str:
    """A cell's text: integers without a point, others to two places without the leading 0."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "−∞" if value < 0 else "∞"
    if value == int(value) and abs(value) < 1000:
        return str(int(value))
    text = f"{value:.2f}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _grid(ax, values, left: float, top: float, *, lit=(), fills=None, label=None, fmt=_number):
    """Cells of a 2-d tensor `values` with their numbers, top-left corner at (left, top).

    `lit` holds the (row, column) cells filled with LIT; `fills` maps other cells to a fill of
    their own. Text on a fill is black or white by that fill; elsewhere it is GREY."""
    from matplotlib.patches import Rectangle

    values = torch.as_tensor(values, dtype=torch.float64)
    rows, cols = values.shape
    lit, fills = set(lit), dict(fills or {})
    for i in range(rows):
        for j in range(cols):
            fill = LIT if (i, j) in lit else fills.get((i, j))
            ax.add_patch(
                Rectangle(
                    (left + j, top + i),
                    1,
                    1,
                    facecolor=fill or "none",
                    edgecolor=GREY,
                    linewidth=0.8,
                )
            )
            colour = text_colour_on(fill) if fill else GREY
            ax.text(
                left + j + 0.5,
                top + i + 0.5,
                fmt(values[i, j].item()),
                ha="center",
                va="center_baseline",
                fontsize=FONT,
                color=colour,
            )
    if label:
        ax.text(
            left + cols / 2, top - 0.25, label, ha="center", va="bottom", fontsize=FONT, color=GREY
        )


def _say(ax, x: float, y: float, text: str, **kwargs):
    kwargs = {"ha": "center", "va": "center", "fontsize": FONT, "color": GREY} | kwargs
    return ax.text(x, y, text, **kwargs)


def _arrow(ax, start, end, text: str | None = None):
    ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": GREY, "lw": 1.2})
    if text:
        _say(ax, (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - 0.35, text)


def batch_shape_svg() -> str:
    """Chapter 1's batch x, (B, T, C) = (2, 4, 2): one grid of T rows and C columns per sequence."""
    x = torch.tensor(BY_HAND_X)  # (B, T, C)
    B, T, C = x.shape
    with style():
        fig, ax = _canvas(B * C + (B - 1) * 2 + 3, T + 3)
        for b in range(B):
            left = 2.5 + b * (C + 2)
            _grid(ax, x[b], left, 1.6, label=f"x[{b}]")
        _say(ax, 1.2, 1.6 + T / 2, "T: time ↓", rotation=90)
        _say(ax, 2.5 + C / 2, T + 2.2, "C: channels →")
        return to_svg(
            fig,
            f"A batch of shape (B, T, C) = ({B}, {T}, {C})",
            f"Two grids, x[0] and x[1], one per sequence of the batch: {T} rows, one per token "
            f"in time order, and {C} columns, one per channel.",
        )


def prefix_loop_svg(t: int = 2, b: int = 1) -> str:
    """Row `t` of ``prefix_mean_loop(x)[b]`` beside the rows 0..t of x[b] it averages."""
    x = torch.tensor(BY_HAND_X)[b]  # (T, C)
    out = prefix_mean_loop(x)  # (T, C)
    T, C = x.shape
    if not 0 <= t < T:
        raise ValueError(f"prefix_loop_svg: t must be in 0..{T - 1}, got {t}")
    with style():
        fig, ax = _canvas(2 * C + 7.5, T + 3)
        _grid(
            ax, x, 0.3, 1.2, lit=[(i, j) for i in range(t + 1) for j in range(C)], label=f"x[{b}]"
        )
        right = C + 6.5
        _grid(ax, out, right, 1.2, lit=[(t, j) for j in range(C)], label="out")
        _arrow(ax, (C + 0.6, 1.2 + t + 0.5), (right - 0.3, 1.2 + t + 0.5), f"mean of rows 0..{t}")
        _say(
            ax,
            right + C / 2,
            T + 2.0,
            f"out[{t}] = ({', '.join(_number(v) for v in out[t].tolist())})",
        )
        return to_svg(
            fig,
            f"Row {t} of the prefix mean averages rows 0 to {t}",
            f"Left, sequence {b} of chapter 1's batch, {T} rows of {C} channels, with rows 0 to "
            f"{t} highlighted. Right, the output of prefix_mean_loop with row {t} highlighted: "
            f"it is the mean of the highlighted rows, "
            f"({', '.join(_number(v) for v in out[t].tolist())}).",
        )


def weighted_average_svg(t: int | None = None, b: int = 1) -> str:
    """``causal_mean_weights(T) @ x[b] = prefix_mean_matmul(x[b])`` with its numbers; with `t`,
    row t of the weights and the rows of x it picks are highlighted."""
    x = torch.tensor(BY_HAND_X)[b]  # (T, C)
    T, C = x.shape
    w = causal_mean_weights(T, dtype=torch.float64)  # (T, T)
    out = prefix_mean_matmul(x.double())  # (T, C)
    torch.testing.assert_close(out, w @ x.double())
    if t is not None and not 0 <= t < T:
        raise ValueError(f"weighted_average_svg: t must be in 0..{T - 1}, got {t}")
    lit_w: list[tuple[int, int]] = []
    lit_x: list[tuple[int, int]] = []
    lit_out: list[tuple[int, int]] = []
    with style():
        fig, ax = _canvas(T + 2 * C + 3.4, T + 1.4, unit=0.32)
        if t is None:
            cell = _cell_colour(CMAP, 0.0, 1.0)
            fills = {(i, j): cell(w[i, j].item()) for i in range(T) for j in range(i + 1)}
        else:
            fills = {}
            lit_w = [(t, s) for s in range(t + 1)]
            lit_x = [(s, j) for s in range(t + 1) for j in range(C)]
            lit_out = [(t, j) for j in range(C)]
        top = 1.2
        _grid(ax, w, 0.2, top, fills=fills, lit=lit_w, label="weights")
        _say(ax, T + 0.9, top + T / 2, "@")
        _grid(ax, x, T + 1.6, top, lit=lit_x, label="x")
        _say(ax, T + C + 2.3, top + T / 2, "=")
        _grid(ax, out, T + C + 3.0, top, lit=lit_out, label="out")
        if t is None:
            title = "Every output row is an average of the rows of x up to it"
            desc = (
                f"Three grids: the {T} by {T} lower-triangular weights of causal_mean_weights "
                f"({T}), with 1/(t+1) in row t up to the diagonal and 0 after it, times "
                f"x, {T} tokens of {C} channels, equals out, whose row t is the mean of "
                "rows 0 to t of x."
            )
        else:
            title = f"Row {t} of the weights picks rows 0 to {t} of x"
            desc = (
                f"The product weights @ x = out for {T} tokens, with row {t} of the weights "
                f"highlighted: its {t + 1} nonzero entries, each {_number(w[t, 0].item())}, "
                f"sit against rows 0 to {t} of x, also highlighted, and give row {t} of out."
            )
        return to_svg(fig, title, desc)


def mask_strip(scores=WIDGET_SCORES, query: int = WIDGET_QUERY) -> dict[str, torch.Tensor]:
    """One query's row on the way to its weights, two ways: -inf before the softmax, or the
    softmax of every score times a 0/1 mask after it. Five rows of (T,), float64.

    >>> {k: v.sum().item() for k, v in mask_strip((0.0, 0.0, 0.0), 0).items()}["× mask after"]
    0.3333333333333333
    """
    s = torch.tensor(scores, dtype=torch.float64)  # (T,)
    future = torch.arange(len(s)) > query
    masked = s.masked_fill(future, float("-inf"))
    return {
        "scores": s,
        "−∞ where future": masked,
        "softmax": torch.softmax(masked, dim=-1),
        "softmax of all": torch.softmax(s, dim=-1),
        "× mask after": torch.softmax(s, dim=-1) * ~future,
    }


def mask_strip_svg(scores=WIDGET_SCORES, query: int = WIDGET_QUERY) -> str:
    """The rows of :func:`mask_strip` as a strip of cells, with each row's sum."""
    rows = mask_strip(scores, query)
    T = len(scores)
    future = [j for j in range(T) if j > query]
    with style():
        fig, ax = _canvas(T + 7.6, 2 * len(rows) + 2.4, unit=0.34)
        left = 5.6
        for j in range(T):
            _say(ax, left + j + 0.5, 0.9, f"k{j}")
        _say(ax, left + T + 1.0, 0.9, "sum")
        for r, (name, row) in enumerate(rows.items()):
            top = 1.4 + 2 * r + (1 if r >= 3 else 0)
            grey = {(0, j): "#3a3a3a" for j in future} if r < 3 else {}
            _grid(ax, row.unsqueeze(0), left, top, fills=grey)
            _say(ax, left - 0.3, top + 0.5, name, ha="right")
            if r >= 2:
                _say(ax, left + T + 1.0, top + 0.5, _number(row.sum().item()))
        _say(ax, 0.2, 1.4 + 2 * 3 + 0.35, "instead:", ha="left")
        return to_svg(
            fig,
            "One query's weights: minus infinity before the softmax, or a zero mask after it",
            f"A strip of rows for a query at position {query} and keys 0 to {T - 1}. Top: the "
            "scores, the scores with minus infinity at the future keys, and their softmax, "
            "which gives the future 0 and sums to 1. Below: the softmax of all scores, and it "
            "multiplied by a 0/1 mask: the future is 0 too, but the row sums to "
            f"{_number(rows['× mask after'].sum().item())}, not 1.",
        )


def _box(ax, x: float, y: float, width: float, lines: list[str], *, height: float = 1.5):
    """A framed box centred at (x, y) with `lines` of text."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0,rounding_size=0.2",
            facecolor="none",
            edgecolor=GREY,
            linewidth=1,
        )
    )
    step = 0.55
    for i, line in enumerate(lines):
        _say(ax, x, y + (i - (len(lines) - 1) / 2) * step, line)


def _shape(name: str, t: torch.Tensor, letters: str) -> str:
    return f"{name} ({letters}) = {tuple(t.shape)}".replace(",)", ")")


def head_flow(B: int = 2, T: int = 3, C: int = 6, head_size: int = 4, *, seed: int = 0):
    """The tensors one ``Head`` makes on its way from x to its output, by name, in order.

    >>> {name: tuple(t.shape) for name, t in head_flow().items()}["scores"]
    (2, 3, 3)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = Head(n_embd=C, head_size=head_size, block_size=T)
        x = torch.randn(B, T, C)
    with torch.no_grad():
        q, k, v = head.query(x), head.key(x), head.value(x)  # (B, T, head_size) each
        scores = q @ k.transpose(-2, -1) * head_size**-0.5  # (B, T, T)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        masked = scores.masked_fill(future, float("-inf"))
        weights = torch.softmax(masked, dim=-1)  # (B, T, T)
        out = weights @ v  # (B, T, head_size)
        torch.testing.assert_close(out, head(x))  # the same steps as the Head itself
    return {
        "x": x,
        "q": q,
        "k": k,
        "v": v,
        "scores": scores,
        "masked": masked,
        "weights": weights,
        "out": out,
    }


def head_flow_svg() -> str:
    """A head's data flow, x -> q, k, v -> scores -> mask -> softmax -> @ v, with the shapes of
    :func:`head_flow`."""
    f = head_flow()
    B, T, C = f["x"].shape
    hs = f["q"].shape[-1]
    with style():
        fig, ax = _canvas(12, 16.2)
        _box(ax, 6, 1.0, 7.6, ["x", f"(B, T, C) = {tuple(f['x'].shape)}"])
        for i, name in enumerate("qkv"):
            cx = 2.0 + 4 * i
            proj = {"q": "query", "k": "key", "v": "value"}[name]
            _box(ax, cx, 4.0, 3.8, [f"{name} = {proj}(x)", str(tuple(f[name].shape))])
            ax.annotate(
                "", (cx, 3.25), (6, 1.75), arrowprops={"arrowstyle": "->", "color": GREY, "lw": 1}
            )
        steps = [
            ("scores", [f"q @ kᵀ / √{hs}", f"(B, T, T) = {tuple(f['scores'].shape)}"]),
            ("masked", ["masked_fill(future, −∞)", str(tuple(f["masked"].shape))]),
            ("weights", ["softmax(dim=−1)", str(tuple(f["weights"].shape))]),
            ("out", ["weights @ v", f"(B, T, head_size) = {tuple(f['out'].shape)}"]),
        ]
        y = 7.2
        ax.annotate(
            "", (4.0, y - 0.75), (2.0, 4.75), arrowprops={"arrowstyle": "->", "color": GREY}
        )
        ax.annotate(
            "", (5.0, y - 0.75), (6.0, 4.75), arrowprops={"arrowstyle": "->", "color": GREY}
        )
        for n, (_, lines) in enumerate(steps):
            _box(ax, 4.5, y, 8.4, lines)
            if n:
                ax.annotate(
                    "",
                    (4.5, y - 0.75),
                    (4.5, y - 2.6 + 0.75),
                    arrowprops={"arrowstyle": "->", "color": GREY},
                )
            y += 2.6
        ax.annotate(
            "",
            (8.7, y - 2.6),
            (10.0, 4.75),
            arrowprops={"arrowstyle": "->", "color": GREY, "connectionstyle": "arc3,rad=-0.1"},
        )
        return to_svg(
            fig,
            "One head's data flow, with the shapes",
            f"Boxes from top to bottom: x of shape (B, T, C) = {tuple(f['x'].shape)}; the three "
            f"projections q, k and v, each {tuple(f['q'].shape)}; the scores q @ k transposed "
            f"over the square root of {hs}, (B, T, T) = {tuple(f['scores'].shape)}; the future "
            "filled with minus infinity; the softmax over the last dimension; and the weights "
            f"times v, the head's output of shape {tuple(f['out'].shape)}.",
        )


def multihead_split(B: int = 1, T: int = 3, C: int = 6, n_head: int = 2) -> dict[str, torch.Tensor]:
    """Where ``MultiHeadAttention`` puts each channel: a tensor whose entry is its channel
    number, (B, T, C), split into heads as the module does, (B, n_head, T, head_size), and
    merged back, (B, T, C).

    >>> s = multihead_split()
    >>> s["heads"][0, 1, 0].tolist()   # head 1 gets channels 3, 4, 5
    [3.0, 4.0, 5.0]
    """
    hs = C // n_head
    x = torch.arange(C, dtype=torch.float32).expand(B, T, C)  # (B, T, C): entry = channel
    heads = x.view(B, T, n_head, hs).transpose(1, 2)  # (B, n_head, T, hs), as in forward
    merged = heads.transpose(1, 2).reshape(B, T, C)  # (B, T, C), as in forward
    return {"x": x, "heads": heads, "merged": merged}


def multihead_split_svg() -> str:
    """The channels of :func:`multihead_split`: (B, T, C) -> (B, n_head, T, head_size) ->
    (B, T, C), coloured by head."""
    s = multihead_split()
    B, T, C = s["x"].shape
    n_head, hs = s["heads"].shape[1], s["heads"].shape[-1]
    cell = _cell_colour(CMAP, 0.0, 1.0)
    colour = [cell(0.35 + 0.5 * h / max(1, n_head - 1)) for h in range(n_head)]

    def by_head(values):
        rows, cols = values.shape
        return {(i, j): colour[int(values[i, j]) // hs] for i in range(rows) for j in range(cols)}

    with style():
        width = 13.0
        fig, ax = _canvas(width, 3 * T + 10.2, unit=0.3)
        left = (width - C) / 2
        y = 1.2
        _grid(
            ax,
            s["x"][0],
            left,
            y,
            fills=by_head(s["x"][0]),
            label=f"q: (B, T, C) = {tuple(s['x'].shape)}",
        )
        y += T + 1.0
        _say(ax, width / 2, y, "view(B, T, n_head, head_size)")
        _say(ax, width / 2, y + 0.9, ".transpose(1, 2)")
        y += 2.6
        span = n_head * hs + (n_head - 1) * 1.5
        for h in range(n_head):
            head = s["heads"][0, h]
            _grid(
                ax,
                head,
                (width - span) / 2 + h * (hs + 1.5),
                y,
                fills=by_head(head),
                label=f"head {h}",
            )
        y += T + 1.0
        _say(ax, width / 2, y, f"(B, n_head, T, head_size) = {tuple(s['heads'].shape)}")
        _say(ax, width / 2, y + 1.3, "attention per head, then")
        _say(ax, width / 2, y + 2.2, ".transpose(1, 2).reshape(B, T, C)")
        y += 3.9
        _grid(
            ax,
            s["merged"][0],
            left,
            y,
            fills=by_head(s["merged"][0]),
            label=f"y: (B, T, C) = {tuple(s['merged'].shape)}",
        )
        return to_svg(
            fig,
            f"Splitting {C} channels into {n_head} heads and merging them back",
            f"Three grids whose cells hold the channel number. Top, q of shape (B, T, C) = "
            f"{tuple(s['x'].shape)}, channels 0 to {C - 1} in every row. Middle, after view and "
            f"transpose, {n_head} heads of {T} rows by {hs} channels: head h holds channels "
            f"h times {hs} to h times {hs} plus {hs - 1}. Bottom, after transpose and reshape, "
            "the same channels in the same order again.",
        )


def multihead_weights(
    T: int = 5, n_embd: int = 6, n_head: int = 2, *, seed: int = 0
) -> torch.Tensor:
    """The weights of each head of a fresh ``MultiHeadAttention`` on random x: (n_head, T, T),
    computed as its forward computes them.

    >>> w = multihead_weights()
    >>> w.shape, torch.allclose(w.sum(dim=-1), torch.ones(2, 5))
    (torch.Size([2, 5, 5]), True)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mha = MultiHeadAttention(n_embd=n_embd, n_head=n_head, block_size=T)
        x = torch.randn(1, T, n_embd)  # (B, T, C)
    hs = n_embd // n_head
    with torch.no_grad():
        q, k, v = mha.qkv(x).split(n_embd, dim=2)
        q, k, v = (a.view(1, T, n_head, hs).transpose(1, 2) for a in (q, k, v))
        wei = q @ k.transpose(-2, -1) * hs**-0.5  # (B, n_head, T, T)
        wei = torch.softmax(wei.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")), -1)
        y = (wei @ v).transpose(1, 2).reshape(1, T, n_embd)
        torch.testing.assert_close(mha.proj(y), mha(x))  # the module's own output
    return wei[0]


def multihead_weights_svg(*, stacked: bool = False) -> str:
    """The heatmaps of :func:`multihead_weights`, one per head (beside or above each other)."""
    w = multihead_weights()
    n_head, T, _ = w.shape
    with style():
        fig = new_figure(3.6, 6.6) if stacked else new_figure(6.8, 3.4)
        axes = fig.subplots(n_head, 1) if stacked else fig.subplots(1, n_head)
        for h, ax in enumerate(axes):
            _heatmap(ax, w[h], f"head {h}")
            ax.set_xlabel("key position s")
        return to_svg(
            fig,
            f"The weights of the {n_head} heads of one multi-head layer",
            f"{n_head} lower-triangular {T} by {T} matrices, one per head, for the same {T} "
            "tokens: every row sums to 1 in both, but the heads spread their weights differently.",
        )


def _plain_axes(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def loss_curve_svg(*, steps: int = 100, seed: int = 0) -> str:
    """The loss of every step of chapter 6's training run (the run of :func:`learned_weights`)."""
    losses = training_losses(steps=steps, seed=seed)
    vocab = 8
    with style():
        fig = new_figure(4.2, 2.9)
        ax = fig.add_subplot()
        ax.plot(range(1, steps + 1), losses.numpy(), color="#3b8ee6", linewidth=1.5)
        ax.axhline(math.log(vocab), color=GREY, linestyle="--", linewidth=1)
        ax.text(
            steps,
            math.log(vocab) + 0.05,
            f"ln {vocab}: a uniform guess",
            ha="right",
            va="bottom",
            fontsize=FONT,
            color=GREY,
        )
        ax.set_xlabel("step")
        ax.set_ylabel("loss (cross-entropy)")
        ax.set_ylim(0, max(losses.max().item(), math.log(vocab)) * 1.15)
        _plain_axes(ax)
        return to_svg(
            fig,
            "The training loss of chapter 6's head, step by step",
            f"A line over {steps} steps: the loss starts at {losses[0].item():.2f}, near the "
            f"dashed line ln {vocab} = {math.log(vocab):.2f} of a uniform guess, and falls to "
            f"{losses[-1].item():.2f} at the last step.",
        )


def sinusoid_columns_svg(T: int = 64, C: int = 8) -> str:
    """The sin columns 0, 2, ... of ``sinusoidal_positions(T, C)``, one line each."""
    table = sinusoidal_positions(T, C)  # (T, C)
    cell = _cell_colour(CMAP, 0.0, 1.0)
    with style():
        fig = new_figure(4.2, 3.4)
        ax = fig.add_subplot()
        for n, col in enumerate(range(0, C, 2)):
            offset = -2.6 * n
            ax.plot(
                range(T),
                table[:, col].numpy() + offset,
                color=cell(0.15 + 0.7 * n / (C / 2)),
                linewidth=1.6,
            )
            w = 10000.0 ** (-col / C)
            ax.text(
                T + 1, offset, f"column {col}\nw = {w:g}", va="center", fontsize=FONT, color=GREY
            )
        ax.set_xlabel("position p")
        ax.set_yticks([])
        ax.set_xlim(0, T - 1)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        return to_svg(
            fig,
            f"The sine columns of sinusoidal_positions({T}, {C})",
            f"{C // 2} waves over positions 0 to {T - 1}, one per even column 2i, sin(p w) with "
            f"w = 10000 to the power -2i/{C}: column 0 turns once every 2 pi positions, each "
            "next column ten times more slowly, so the last one barely moves.",
        )


def bfloat16_totals(T: int = 400) -> dict[str, torch.Tensor]:
    """A running total of T ones, added one at a time, in float32 and in bfloat16: (T,) each.

    >>> bfloat16_totals(300)["bfloat16"][-1].item()
    256.0
    """
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        total, totals = torch.tensor(0.0, dtype=dtype), []
        for _ in range(T):
            total = total + 1  # as chapter 8 adds them
            totals.append(total)
        out[str(dtype).removeprefix("torch.")] = torch.stack(totals)
    return out


def bfloat16_total_svg(T: int = 400) -> str:
    """The totals of :func:`bfloat16_totals` against the number of ones added."""
    totals = bfloat16_totals(T)
    top = totals["bfloat16"].max().item()
    stuck = int((totals["bfloat16"] == top).nonzero()[0]) + 1  # ones added when it first got there
    with style():
        fig = new_figure(4.2, 2.9)
        ax = fig.add_subplot()
        steps = range(1, T + 1)
        ax.plot(steps, totals["float32"].numpy(), color="#3b8ee6", linewidth=1.5)
        ax.plot(steps, totals["bfloat16"].float().numpy(), color="#e8710a", linewidth=2.5)
        ax.text(T * 0.72, T * 0.8, "float32", fontsize=FONT, color=GREY, ha="right")
        ax.text(
            T,
            top * 0.55,
            f"bfloat16: stuck at {top:g}",
            fontsize=FONT,
            color=GREY,
            ha="right",
            va="top",
        )
        ax.set_xlabel("ones added")
        ax.set_ylabel("running total")
        _plain_axes(ax)
        return to_svg(
            fig,
            "A running total of ones in float32 and in bfloat16",
            f"Two lines over {T} additions of 1. The float32 total grows to {T}. The bfloat16 "
            f"total follows it until {stuck} ones and then stays at {top:g}, because 257 is not "
            "a bfloat16 number and 256 + 1 rounds back to 256.",
        )


def running_sum_svg(x=(2.0, 4.0, 6.0, 3.0, 5.0)) -> str:
    """One channel's running total S_t and mean S_t / (t + 1), from ``prefix_mean_cumsum``."""
    xs = torch.tensor(x, dtype=torch.float64).unsqueeze(-1)  # (T, 1)
    T = xs.shape[0]
    means = prefix_mean_cumsum(xs)[:, 0]
    totals = xs[:, 0].cumsum(0)
    rows = {"x[t]": xs[:, 0], "S[t] = S[t−1] + x[t]": totals, "out[t] = S[t] / (t+1)": means}
    with style():
        fig, ax = _canvas(T * 1.3 + 0.4, 7.6)
        left = 0.2
        for t in range(T):
            _say(ax, left + 1.3 * t + 0.5, 0.6, f"t={t}")
        for r, (name, values) in enumerate(rows.items()):
            top = 2.0 + 2.1 * r
            for t in range(T):
                _grid(ax, values[t].view(1, 1), left + 1.3 * t, top, lit=[(0, 0)] if r == 1 else ())
            _say(ax, left, top - 0.45, name, ha="left")
        return to_svg(
            fig,
            "A running total and the mean it gives",
            f"Three rows over {T} steps: the values x_t ({', '.join(_number(v) for v in x)}), "
            f"the running totals S_t ({', '.join(_number(v) for v in totals.tolist())}), each "
            "the one before plus x_t, and the means S_t / (t + 1) "
            f"({', '.join(_number(v) for v in means.tolist())}).",
        )


def online_blocks(T: int = 7, block: int = 3) -> torch.Tensor:
    """Which scores ``online_causal_attention`` computes, numbered by block (0: never): (T, T).

    Read off the function itself: each block of keys takes one ``amax`` over a strip of scores
    of shape (T - j, b), the queries j.. against the block's b keys.

    >>> online_blocks(4, 2)
    tensor([[1, 1, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 2, 2],
            [1, 1, 2, 2]])
    """
    from torch.overrides import TorchFunctionMode

    strips = []

    class Strips(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.Tensor.amax:
                strips.append(tuple(args[0].shape))
            return func(*args, **(kwargs or {}))

    q = k = v = torch.zeros(T, 1)
    with Strips():
        online_causal_attention(q, k, v, block=block)
    tiles, j = torch.zeros(T, T, dtype=torch.long), 0
    for n, (rows, b) in enumerate(strips, start=1):
        tiles[T - rows :, j : j + b] = n
        j += b
    if j != T:
        raise RuntimeError(f"online_blocks: the strips cover {j} keys, not T={T}")
    return tiles


def block_tiling_svg(T: int = 7, block: int = 3) -> str:
    """The strips of :func:`online_blocks`: computed and kept, computed and masked, skipped."""
    tiles = online_blocks(T, block)
    n_blocks = int(tiles.max())
    cell = _cell_colour(CMAP, 0.0, 1.0)
    fills, masked = {}, 0
    for t in range(T):
        for s in range(T):
            if tiles[t, s]:
                fills[t, s] = cell(0.25 + 0.65 * (int(tiles[t, s]) - 1) / max(1, n_blocks - 1))
                masked += s > t
    skipped = int((tiles == 0).sum())

    shown = tiles.double()
    shown[torch.ones(T, T, dtype=torch.bool).triu(1) & (tiles > 0)] = float("-inf")
    with style():
        fig, ax = _canvas(T + 3.2, T + 5.0, unit=0.4)
        _grid(ax, shown, 2.0, 1.6, fills=fills, fmt=lambda v: _number(v) if v else "")
        _say(ax, 2.0 + T / 2, 1.1, "key position s →", va="bottom")
        _say(ax, 1.3, 1.6 + T / 2, "query t ↓", rotation=90)
        _say(ax, 0.2, T + 2.6, "cell: the block of keys that computes it", ha="left")
        _say(ax, 0.2, T + 3.5, f"blank: never computed ({skipped} scores)", ha="left")
        _say(ax, 0.2, T + 4.4, f"−∞: computed, then masked ({masked})", ha="left")
        return to_svg(
            fig,
            f"Which scores each block of {block} keys computes, for T = {T}",
            f"A {T} by {T} grid of queries against keys. Block n covers {block} columns and "
            f"computes only the rows from its first key down, a strip; the {skipped} cells "
            f"above the strips are never computed, and {masked} computed cells above the "
            f"diagonal are masked with minus infinity. {n_blocks} blocks in all.",
        )


def kernel_programs(B: int, T: int, C: int, block_c: int) -> torch.Tensor:
    """The program of chapter 10's kernel (single pass: one chunk) that handles each element of
    x, as the index ``b * n_channel_blocks + cb`` of its ``(b, cb)``: (B, T, C).

    A program ``(b, cb)`` reads sequence ``b`` and channels ``cb * block_c + arange(block_c)``.

    >>> kernel_programs(1, 2, 4, 2)
    tensor([[[0, 0, 1, 1],
             [0, 0, 1, 1]]])
    """
    n_cb = -(-C // block_c)
    b = torch.arange(B).view(B, 1, 1)
    cb = (torch.arange(C) // block_c).view(1, 1, C)
    return (b * n_cb + cb).expand(B, T, C).clone()


def kernel_grid_svg(B: int = 2, T: int = 8, C: int = 6, block_c: int = 3, block_t: int = 4) -> str:
    """The programs of :func:`kernel_programs` over x, with each program's tiles along T."""
    programs = kernel_programs(B, T, C, block_c)
    n_cb = -(-C // block_c)
    n = B * n_cb
    cell = _cell_colour(CMAP, 0.0, 1.0)
    colours = [cell(0.3 + 0.6 * p / max(1, n - 1)) for p in range(n)]
    with style():
        gap = 1.2
        fig, ax = _canvas(B * C + (B - 1) * gap + 2.2, T + 2.6, unit=0.27)
        for b in range(B):
            left = 1.8 + b * (C + gap)
            p = programs[b]
            _grid(
                ax,
                p,
                left,
                2.2,
                fills={(t, c): colours[int(p[t, c])] for t in range(T) for c in range(C)},
                fmt=lambda v: "",
            )
            _say(ax, left + C / 2, 0.5, f"x[{b}]")
            for cb in range(n_cb):
                _say(ax, left + cb * block_c + block_c / 2, 1.5, f"({b}, {cb})")
            for start in range(block_t, T, block_t):
                ax.plot([left - 0.2, left + C + 0.2], [2.2 + start] * 2, color=GREY, linewidth=2.5)
        _say(ax, 0.9, 2.2 + T / 2, "T: tiles of " + str(block_t) + " ↓", rotation=90)
        return to_svg(
            fig,
            f"The kernel's programs over a batch of shape ({B}, {T}, {C})",
            f"Two grids, x[0] and x[1], of {T} steps by {C} channels, coloured by the program "
            f"that reads them: program (b, cb) takes sequence b and a block of {block_c} "
            f"channels, {n} programs in all, and walks down T in tiles of {block_t} steps, "
            "marked by the thick lines.",
        )


def kv_cache_steps(T: int = 5, n_embd: int = 4, *, seed: int = 0) -> list[dict[str, int]]:
    """Decode T tokens one at a time with a ``KVCache``: per step, the rows the cache holds
    after it and the multiply-adds of ``decode_macs`` with and without the cache.

    >>> [s["cached"] for s in kv_cache_steps(3)]
    [1, 2, 3]
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = Head(n_embd=n_embd, head_size=n_embd, block_size=T)
        x = torch.randn(1, T, n_embd)  # (B, T, C)
    cache, out = KVCache(), []
    with torch.no_grad():
        full = head(x)  # (1, T, head_size), all tokens at once
        for t in range(T):
            y = head(x[:, t : t + 1], cache)  # (1, 1, head_size): only the new token
            torch.testing.assert_close(y[0, 0], full[0, t])
            out.append(
                {
                    "step": t,
                    "cached": len(cache),
                    "k_rows": 0 if cache.k is None else cache.k.shape[-2],
                    "with": decode_macs(t + 1, n_embd, cached=True),
                    "without": decode_macs(t + 1, n_embd, cached=False),
                }
            )
    return out


# Chapter 11's stepper decodes the tokens of its static figure (kv_cache_svg): T and C the same.
KV_STEPPER = {"T": 5, "n_embd": 4, "seed": 0}


def kv_cache_trace(T: int = 5, n_embd: int = 4, *, seed: int = 0) -> list[dict]:
    """What chapter 11's KV-cache stepper shows: one ``MultiHeadAttention`` layer with one head
    (head size ``n_embd``) decodes T tokens one at a time through a ``KVCache``. Per step t: the
    new token's query ``q``, the keys ``k`` and values ``v`` the cache holds after the step
    (t + 1 rows), the query's weights ``w`` over them, their average of the values ``avg`` (the
    head's output, before ``proj``), and the multiply-adds of the step by ``decode_macs``, with
    the cache and without it.

    >>> [len(step["k"]) for step in kv_cache_trace(3)]
    [1, 2, 3]
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = MultiHeadAttention(n_embd, 1, block_size=T)
        x = torch.randn(1, T, n_embd)  # (B, T, C)
    cache, steps = KVCache(), []
    with torch.no_grad():
        for t in range(T):
            new = x[:, t : t + 1]  # (1, 1, C): only the new token goes in
            q = layer.qkv(new).split(n_embd, dim=2)[0][0, 0]  # (C,): its query, as forward makes it
            layer(new, cache)  # appends its key and value
            assert cache.k is not None and cache.v is not None
            k, v = cache.k[0, 0], cache.v[0, 0]  # (t + 1, C): one head
            w = torch.softmax(k @ q * n_embd**-0.5, dim=0)  # (t + 1,)
            shown = {"q": q, "k": k, "v": v, "w": w, "avg": w @ v}
            steps.append(
                {name: value.tolist() for name, value in shown.items()}
                | {
                    "with": decode_macs(t + 1, n_embd, cached=True),
                    "without": decode_macs(t + 1, n_embd, cached=False),
                }
            )
    return steps


def kv_cache_svg(T: int = 5, n_embd: int = 4) -> str:
    """The cache of :func:`kv_cache_steps`, one row per step, the new key highlighted."""
    steps = kv_cache_steps(T, n_embd)
    with style():
        fig, ax = _canvas(T + 9.6, 1.6 * T + 1.2, unit=0.3)
        left = 2.2
        _say(ax, left + T / 2, 0.7, "k and v rows in the cache")
        _say(ax, left + T + 2.6, 0.35, "multiply-adds")
        _say(ax, left + T + 1.6, 1.0, "cache")
        _say(ax, left + T + 4.2, 1.0, "none")
        for s in steps:
            top = 1.6 + 1.6 * s["step"]
            n = s["cached"]
            _grid(ax, torch.arange(n, dtype=torch.float64).view(1, n), left, top, lit=[(0, n - 1)])
            _say(ax, 0.2, top + 0.5, f"step {s['step']}", ha="left")
            _say(ax, left + T + 1.6, top + 0.5, str(s["with"]))
            _say(ax, left + T + 4.2, top + 0.5, str(s["without"]))
        last = steps[-1]
        return to_svg(
            fig,
            "The KV cache grows one row per step",
            f"{T} rows, one per decoding step: at step t the cache holds the keys and values of "
            f"tokens 0 to t, the newest highlighted. Beside each, the multiply-adds of that step "
            f"for C = {n_embd}, with the cache and without it: {last['with']} against "
            f"{last['without']} at the last step.",
        )


def padding_nan(T: int = 4) -> dict[str, torch.Tensor]:
    """Chapter 12's first pitfall: a causal mask with tokens 0 and 1 padding; the weights, the
    output of two layers, and the weights once every token may see itself.

    >>> padding_nan()["two layers"].isnan().all().item()
    True
    """
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    real = torch.arange(T) >= 2  # tokens 0 and 1 are padding
    allowed = causal & real
    wei = torch.softmax(torch.zeros(T, T).masked_fill(~allowed, float("-inf")), dim=-1)
    v = torch.arange(2.0 * T).view(T, 2)
    fixed = allowed | torch.eye(T, dtype=torch.bool)
    return {
        "weights": wei,
        "two layers": wei @ (wei @ v),
        "fixed": torch.softmax(torch.zeros(T, T).masked_fill(~fixed, float("-inf")), -1),
    }


def _nan_fills(values: torch.Tensor) -> dict:
    return {(i, j): NAN_FILL for i, j in values.isnan().nonzero().tolist()}


def padding_nan_svg() -> str:
    """The three tensors of :func:`padding_nan` side by side, nan cells red."""
    p = padding_nan()
    T = p["weights"].shape[0]
    with style():
        fig, ax = _canvas(2 * T + 4.4, T + 1.6, unit=0.33)
        _grid(ax, p["weights"], 0.2, 1.2, fills=_nan_fills(p["weights"]), label="weights")
        _grid(
            ax, p["two layers"], T + 1.2, 1.2, fills=_nan_fills(p["two layers"]), label="2 layers"
        )
        _grid(ax, p["fixed"], T + 4.2, 1.2, label="fixed")
        return to_svg(
            fig,
            "A fully masked row gives nan, and the nan spreads",
            f"Three grids for {T} tokens whose first two are padding. Left, the weights: rows 0 "
            "and 1 may see nothing and are nan. Middle, the output after two layers: nan "
            "everywhere. Right, the weights once every token may also see itself: no nan.",
        )


def float16_fill(T: int = 4) -> dict[str, torch.Tensor]:
    """Chapter 12's float16 pitfall: the additive mask (~causal) * -1e9 in float16, and the
    weights of masked_fill with float16's most negative finite number, (T, T) each.

    >>> float16_fill()["× −1e9"].isnan().sum().item()
    10
    """
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    real = torch.arange(T) >= 2
    big = torch.tensor(-1e9, dtype=torch.float16)  # -inf: float16 cannot hold -1e9
    scores = torch.zeros(T, T, dtype=torch.float16)
    low = torch.finfo(torch.float16).min
    return {
        "× −1e9": (~causal).half() * big,
        "finfo.min": torch.softmax(scores.masked_fill(~(causal & real), low), dim=-1),
    }


def float16_fill_svg() -> str:
    """The two tensors of :func:`float16_fill` side by side."""
    f = float16_fill()
    T = f["finfo.min"].shape[0]
    with style():
        fig, ax = _canvas(2 * T + 1.6, T + 2.2, unit=0.44)
        a = f["× −1e9"].float()
        _grid(ax, a, 0.2, 1.2, fills=_nan_fills(a), label="mask × −1e9")
        _grid(ax, f["finfo.min"].float(), T + 1.4, 1.2, label="fill finfo.min")
        return to_svg(
            fig,
            "A mask of -1e9 in float16, and the fix",
            f"Two {T} by {T} grids in float16. Left, the additive mask (not causal) times -1e9: "
            "-1e9 becomes minus infinity, and 0 times minus infinity puts nan on and below the "
            "diagonal, where nothing should change. Right, the softmax of scores filled with "
            "float16's most negative finite number: the padding rows get equal weights, the "
            "others 1 and .5.",
        )


FIGURES: dict[str, Callable[[], str]] = {
    # home page and chapters 1 to 3
    "whole-idea": lambda: weighted_average_svg(),
    "batch-shape": lambda: batch_shape_svg(),
    "prefix-loop": lambda: prefix_loop_svg(2),
    "weights-pick-rows": lambda: weighted_average_svg(2),
    "causal-mean-weights": lambda: causal_mean_weights_svg(8),
    "mask-strip": lambda: mask_strip_svg(),
    "masked-softmax": lambda: masked_softmax_svg(8),
    "scores-to-weights": lambda: scores_to_weights_svg(),
    # self-attention and multi-head attention
    "head-flow": lambda: head_flow_svg(),
    "head-weights": lambda: head_weights_svg("hello world"),
    "masks": lambda: masks_svg(6),
    "masks-narrow": lambda: masks_svg(6, stacked=True),
    "multihead-split": lambda: multihead_split_svg(),
    "multihead-weights": lambda: multihead_weights_svg(),
    "multihead-weights-narrow": lambda: multihead_weights_svg(stacked=True),
    # learning and positions
    "loss-curve": lambda: loss_curve_svg(),
    "learned-weights": lambda: learned_weights_svg(),
    "learned-weights-narrow": lambda: learned_weights_svg(stacked=True),
    "sinusoid-columns": lambda: sinusoid_columns_svg(),
    "rotary-scores": lambda: rotary_scores_svg(8),
    # linear time, streaming, the kernel
    "running-sum": lambda: running_sum_svg(),
    "bfloat16-total": lambda: bfloat16_total_svg(),
    "online-softmax": lambda: online_softmax_svg(),
    "online-softmax-narrow": lambda: online_softmax_svg(stacked=True),
    "block-tiling": lambda: block_tiling_svg(),
    "kernel-grid": lambda: kernel_grid_svg(),
    "scan-tiles": lambda: scan_tiles_svg(),
    # inference and pitfalls
    "kv-cache": lambda: kv_cache_svg(),
    "mask-alignment": lambda: mask_alignment_svg(3, 6),
    "mask-alignment-narrow": lambda: mask_alignment_svg(3, 6, stacked=True),
    "padding-nan": lambda: padding_nan_svg(),
    "float16-fill": lambda: float16_fill_svg(),
}
# A name ending in NARROW is the stacked copy of the figure without it, for narrow screens:
# sitegen/palettes.py shows it through a <picture> whose media query is NARROW_MEDIA.
NARROW = "-narrow"
NARROW_MEDIA = "(max-width: 37.5em)"
