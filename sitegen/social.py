"""The link-preview image (`docs/assets/social.png`), drawn before every build (`sitegen.pre`).

A 1200 x 630 PNG (the size link previews show whole): the site's name and description
beside the matrix that averages the past tokens, the tutorial's first idea (row t is
1/(t+1) up to the diagonal, 0 after it). Drawn with matplotlib, no font or file from
elsewhere; `overrides/main.html` names it in og:image and twitter:image.
"""

from __future__ import annotations

import io
import textwrap

IMAGE = "assets/social.png"
SIZE = (1200, 630)


def draw(title: str, description: str, T: int = 5) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(SIZE[0] / 100, SIZE[1] / 100), dpi=100, facecolor="#ffffff")
    text = fig.add_axes((0.05, 0.1, 0.5, 0.8))
    text.set_axis_off()
    text.text(0, 0.8, textwrap.fill(title, 20), fontsize=40, weight="bold", color="#1a237e", va="top")
    text.text(0, 0.45, textwrap.fill(description, 36, break_on_hyphens=False), fontsize=20, color="#212121", va="top",
              linespacing=1.5)
    grid = fig.add_axes((0.6, 0.12, 0.36, 0.76))
    weights = [[1 / (t + 1) if s <= t else 0.0 for s in range(T)] for t in range(T)]
    grid.imshow(weights, cmap="Blues", vmin=0, vmax=1.4)
    for t in range(T):
        for s in range(T):
            label = "0" if s > t else ("1" if t == 0 else f"1/{t + 1}")
            grid.text(s, t, label, ha="center", va="center", fontsize=18, color="#212121")
    grid.set_xticks([])
    grid.set_yticks([])
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})  # the same bytes every build
    return out.getvalue()
