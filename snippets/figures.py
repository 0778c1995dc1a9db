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
import html
import math
import re
from collections.abc import Callable

import torch

from snippets.attention import Head, causal_attention
from snippets.averaging import causal_mean_weights
from snippets.learning import OneHeadModel, lookback_batch, train
from snippets.positions import apply_rotary
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
    "tiled_running_sums",
    "scan_tiles_svg",
]

CMAP = "viridis"


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
    ax.set_title(title, fontsize=10, color=GREY)
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
                ax.text(s, t, text, ha="center", va="center", fontsize=7, color=colour)
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


def masks_svg(T: int = 6) -> str:
    """Side by side: the encoder's mask (all pairs allowed) and the decoder's (s <= t).

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
        fig = new_figure(6.6, 3.5)
        for ax, (title, mask) in zip(fig.subplots(1, 2), allowed.items(), strict=True):
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
                        fontsize=9,
                        color=text_colour_on(cell(float(ok))),
                    )
        return to_svg(
            fig,
            "Encoder and decoder attention masks",
            f"Two {T} by {T} grids. Left, the encoder: every cell is allowed. Right, the decoder: "
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
        ax.set_title("RoPE scores of one q and one k at every position", fontsize=10, color=GREY)
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
                ax.text(n, m, text, ha="center", va="center", fontsize=7, color=colour)
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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
    x, _ = lookback_batch(1, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    before = model.attention_weights(x)[0]
    train(model, steps=steps, generator=torch.Generator().manual_seed(seed))
    return before, model.attention_weights(x)[0]


def learned_weights_svg(*, steps: int = 100, seed: int = 0) -> str:
    """Heatmaps of :func:`learned_weights`, side by side: spread out, then two places back.

    Raises:
        TypeError: ``steps`` or ``seed`` is not an int.
        ValueError: ``steps`` is < 1.
    """
    before, after = learned_weights(steps=steps, seed=seed)
    with style():
        fig = new_figure(8.4, 4.0)
        left, right = fig.subplots(1, 2)
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
        fig = new_figure(1.0 + 0.55 * T, 2.6)
        ax = fig.add_subplot()
        n_tiles = int(tile[-1]) + 1
        shade = (0.6 + 0.35 * tile / max(1, n_tiles - 1)).expand(len(rows), T)  # light: black text
        ax.imshow(shade.numpy(), cmap=CMAP, vmin=0.0, vmax=1.0, aspect="auto")
        for r, values in enumerate(rows.values()):
            for t in range(T):
                ax.text(
                    t,
                    r,
                    f"{values[t].item():.3g}",
                    ha="center",
                    va="center",
                    fontsize=8,
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
                fontsize=8,
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
        fig = new_figure(4.6, 2.6)
        ax = fig.add_subplot()
        T = len(scores)
        colours = ["#3b8ee6" if j <= query else GREY for j in range(T)]
        ax.bar(range(T), w.numpy(), color=colours)
        for j, value in enumerate(w.tolist()):
            ax.text(
                j, value + 0.02, f"{value:.2f}", ha="center", va="bottom", fontsize=9, color=GREY
            )
        ax.set_xticks(range(T), labels=[f"key {j}\ns = {scores[j]:g}" for j in range(T)])
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("weight")
        ax.set_title(f"query at position {query}: keys after it masked", fontsize=10, color=GREY)
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


def mask_alignment_svg(T_new: int = 3, T_all: int = 6) -> str:
    """The two masks of :func:`mask_alignment` side by side: the static figure of chapter 11's
    widget."""
    cell = _cell_colour(CMAP, 0.0, 1.0)
    with style():
        fig = new_figure(6.6, 2.6)
        for ax, (title, mask) in zip(
            fig.subplots(1, 2), mask_alignment(T_new, T_all).items(), strict=True
        ):
            ax.imshow(mask.double().numpy(), cmap=CMAP, vmin=0.0, vmax=1.0)
            ax.set_title(title, fontsize=10, color=GREY)
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
                    ax.text(j, i, "✓" if ok else "✗", ha="center", va="center", color=colour)
        return to_svg(
            fig,
            f"Masks of {T_new} new tokens after {T_all - T_new} cached ones",
            f"Two {T_new} by {T_all} grids. Left, the lower-right mask: query i, which is token "
            f"{T_all - T_new} + i, sees keys 0 to {T_all - T_new} + i. Right, the top-left mask of "
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


def online_softmax_svg() -> str:
    """The running maximum and the two running sums of chapter 9's example, key by key: the
    static figure of its stepper."""
    traces = {name: online_softmax_trace(s, STEPPER_VALUES) for name, s in STEPPER_SCORES.items()}
    with style():
        fig = new_figure(6.6, 2.8)
        for ax, (name, trace) in zip(fig.subplots(1, 2), traces.items(), strict=True):
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
                    fontsize=8,
                    color=GREY,
                )
            ax.set_title(
                f"{name}: acc / l = {trace[-1]['acc'] / trace[-1]['l']:.4g}",
                fontsize=10,
                color=GREY,
            )
            ax.set_xticks(list(steps), labels=[f"key {j}" for j in steps])
            ax.set_ylim(0, 3.4)
            ax.legend(frameon=False, fontsize=8, labelcolor=GREY)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        return to_svg(
            fig,
            "The online softmax of chapter 9's example, key by key",
            "Two panels, the small scores and the same scores plus 100: in both the running sum l "
            "grows 1, 1.5, 2 and acc 4, 10, 10, so the output acc / l is 5; only the running "
            "maximum m differs, by 100.",
        )


FIGURES: dict[str, Callable[[], str]] = {
    "causal-mean-weights": lambda: causal_mean_weights_svg(8),
    "masked-softmax": lambda: masked_softmax_svg(8),
    "head-weights": lambda: head_weights_svg("hello world"),
    "masks": lambda: masks_svg(6),
    "rotary-scores": lambda: rotary_scores_svg(8),
    "learned-weights": lambda: learned_weights_svg(),
    "scores-to-weights": lambda: scores_to_weights_svg(),
    "mask-alignment": lambda: mask_alignment_svg(3, 6),
    "online-softmax": lambda: online_softmax_svg(),
    "scan-tiles": lambda: scan_tiles_svg(),
}
