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

__all__ = [
    "causal_mean_weights",
    "prefix_mean_cumsum",
    "prefix_mean_loop",
    "prefix_mean_matmul",
    "prefix_mean_softmax",
]
