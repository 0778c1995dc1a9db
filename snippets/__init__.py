"""Executable companion code for the tutorial: averaging, attention, learning, positions,
linear time, streaming, one Triton kernel, inference.

Each public function lives in the module of the chapter that explains it and
can be copied alone into another project (it needs only ``torch``; chapter 10's
kernel also needs ``triton``). The timing harness is not part of this package:
it is ``bench``, beside it, which imports ``snippets`` and is never imported by it.

``prefix_mean_triton`` is imported on first use, not with the package: it needs
triton, and importing triton decides for the whole process whether its kernels
are compiled or interpreted (``TRITON_INTERPRET``).
"""

from snippets.attention import Head, MultiHeadAttention, causal_attention
from snippets.averaging import (
    causal_mean_weights,
    prefix_mean_cumsum,
    prefix_mean_loop,
    prefix_mean_matmul,
    prefix_mean_softmax,
)
from snippets.inference import KVCache, decode_macs
from snippets.learning import OneHeadModel, lookback_batch, train
from snippets.linear import (
    causal_linear_attention,
    causal_linear_attention_quadratic,
    prefix_mean_fast,
)
from snippets.positions import apply_rotary, sinusoidal_positions
from snippets.streaming import online_causal_attention

__all__ = [
    "causal_mean_weights",
    "prefix_mean_cumsum",
    "prefix_mean_loop",
    "prefix_mean_matmul",
    "prefix_mean_softmax",
    "causal_attention",
    "Head",
    "MultiHeadAttention",
    "lookback_batch",
    "OneHeadModel",
    "train",
    "apply_rotary",
    "sinusoidal_positions",
    "prefix_mean_fast",
    "causal_linear_attention",
    "causal_linear_attention_quadratic",
    "online_causal_attention",
    "prefix_mean_triton",
    "KVCache",
    "decode_macs",
]


def __getattr__(name: str):
    if name == "prefix_mean_triton":
        from snippets.kernels import prefix_mean_triton

        return prefix_mean_triton
    raise AttributeError(f"module 'snippets' has no attribute {name!r}")
