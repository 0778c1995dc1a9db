"""The numbers an interactive figure shows, computed by the package at build time.

A widget that steps through numbers the package computes (chapter 9's online softmax, chapter
11's KV cache) gets them here as JSON in a ``data-trace`` attribute of its
``<div data-widget="NAME">``, HTML-escaped:
data, not code, so the site's Content-Security-Policy has nothing to allow. The script
(docs/assets/widgets/widgets.js) only displays them; a browser test compares what it shows with
torch.
"""

from __future__ import annotations

import html
import json
import math
import re

from snippets.figures import KV_STEPPER, STEPPER_SCORES, STEPPER_VALUES, kv_cache_trace, online_softmax_trace


def _finite_or_name(x: float) -> float | str:
    """JSON has no inf or nan: those travel as the strings "inf", "-inf" and "nan"."""
    return x if math.isfinite(x) else str(x)


def traces() -> dict[str, dict]:
    return {
        "online-softmax": {
            name: {
                "scores": list(scores),
                "values": list(STEPPER_VALUES),
                "steps": [{k: _finite_or_name(v) for k, v in step.items()}
                          for step in online_softmax_trace(scores, STEPPER_VALUES)],
            }
            for name, scores in STEPPER_SCORES.items()
        },
        "kv-cache": {"C": KV_STEPPER["n_embd"], "steps": kv_cache_trace(**KV_STEPPER)},
    }


_WIDGET = re.compile(r'<div (?P<attrs>[^>]*\bdata-widget="(?P<name>[\w-]+)"[^>]*)>')


def with_traces(page_html: str) -> str:
    data = traces()

    def add(m: re.Match) -> str:
        if m["name"] not in data or "data-trace=" in m["attrs"]:
            return m[0]
        value = html.escape(json.dumps(data[m["name"]], allow_nan=False, separators=(",", ":")), quote=True)
        return f'<div {m["attrs"]} data-trace="{value}">'

    return _WIDGET.sub(add, page_html)
