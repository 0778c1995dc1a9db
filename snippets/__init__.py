"""Executable companion code for the tutorial: averaging, attention, learning, positions,
linear time, streaming, inference.

Each public function lives in the module of the chapter that explains it and
can be copied alone into another project (it needs only ``torch``). The timing
harness is not part of this package: it is ``bench``, beside it, which imports
``snippets`` and is never imported by it.
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
    "KVCache",
    "decode_macs",
]
