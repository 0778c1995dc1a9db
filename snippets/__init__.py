"""Executable companion code for the tutorial: averaging, attention, learning, positions,
linear time, streaming, one Triton kernel, inference, timing.

Each public function lives in the module of the chapter that explains it and
can be copied alone into another project (it needs only ``torch``; chapter 9's
kernel also needs ``triton``). The names
below are imported on first use, so that ``snippets.timing.report`` and
``snippets.timing.schema`` work where torch is not installed.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "causal_mean_weights": "snippets.averaging",
    "prefix_mean_cumsum": "snippets.averaging",
    "prefix_mean_loop": "snippets.averaging",
    "prefix_mean_matmul": "snippets.averaging",
    "prefix_mean_softmax": "snippets.averaging",
    "causal_attention": "snippets.attention",
    "Head": "snippets.attention",
    "MultiHeadAttention": "snippets.attention",
    "lookback_batch": "snippets.learning",
    "OneHeadModel": "snippets.learning",
    "train": "snippets.learning",
    "apply_rotary": "snippets.positions",
    "sinusoidal_positions": "snippets.positions",
    "prefix_mean_fast": "snippets.linear",
    "causal_linear_attention": "snippets.linear",
    "causal_linear_attention_quadratic": "snippets.linear",
    "online_causal_attention": "snippets.streaming",
    "prefix_mean_triton": "snippets.kernels",
    "KVCache": "snippets.inference",
    "decode_macs": "snippets.inference",
}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'snippets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
