"""Executable companion code for the tutorial: averaging, attention, linear time, timing.

Each public function lives in the module of the chapter that explains it and
can be copied alone into another project (it needs only ``torch``).
"""

from snippets.averaging import (
    causal_mean_weights,
    prefix_mean_cumsum,
    prefix_mean_loop,
    prefix_mean_matmul,
    prefix_mean_softmax,
)
from snippets.attention import Head, MultiHeadAttention, causal_attention
from snippets.linear import causal_linear_attention, causal_linear_attention_quadratic, prefix_mean_fast

__all__ = [
    "causal_mean_weights",
    "prefix_mean_cumsum",
    "prefix_mean_loop",
    "prefix_mean_matmul",
    "prefix_mean_softmax",
    "causal_attention",
    "Head",
    "MultiHeadAttention",
    "prefix_mean_fast",
    "causal_linear_attention",
    "causal_linear_attention_quadratic",
]
