"""What the input checks and the non-finite guard cost: causal_attention against SDPA.

    python -m bench.checks_cost

Times ``causal_attention`` and ``F.scaled_dot_product_attention`` (math backend,
``is_causal=True``) on the same q, k, v of shape (B, heads, T, D) = (4, 4, 2048, 16),
float32, on the CPU, alternating the two so that both see the same machine load,
and prints the medians and their ratio. A benchmark, not a test: its number goes
into notes, not into an assertion.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from snippets.attention import causal_attention


def sdpa_math(q, k, v):
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def main(repeats: int = 15) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 4, 4, 2048, 16).unbind(0)
    torch.testing.assert_close(causal_attention(q, k, v), sdpa_math(q, k, v))
    times: dict = {causal_attention: [], sdpa_math: []}
    for _ in range(repeats):
        for f, seen in times.items():
            start = time.perf_counter()
            f(q, k, v)
            seen.append(time.perf_counter() - start)
    ours, theirs = (statistics.median(t) for t in times.values())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, (4, 4, 2048, 16) float32")
    print(
        f"causal_attention {ours * 1e3:.1f} ms, sdpa math {theirs * 1e3:.1f} ms, "
        f"ratio {ours / theirs:.3f}"
    )


if __name__ == "__main__":
    main()
