"""Shared Hypothesis strategies and reference implementations for the tests."""

from __future__ import annotations

import torch
from hypothesis import strategies as st


def reference(x):
    """The prefix mean by its definition, one row at a time, in float64.

    Written as differently from the implementations as possible: no cumsum, no matrix.
    """
    xd = x.double()
    rows = [xd[..., : t + 1, :].sum(dim=-2) / (t + 1) for t in range(x.shape[-2])]
    return torch.stack(rows, dim=-2)


def attention_reference(q, k, v):
    """Causal softmax attention by its definition, one query at a time, in float64.

    Row t is a softmax over the scores of positions 0..t only: no mask, no (T, T) matrix.
    """
    qd, kd, vd = q.double(), k.double(), v.double()
    rows = []
    for t in range(q.shape[-2]):
        s = (qd[..., t : t + 1, :] * kd[..., : t + 1, :]).sum(-1) / q.shape[-1] ** 0.5  # (..., t+1)
        w = torch.exp(s - s.amax(-1, keepdim=True))
        rows.append((w.unsqueeze(-1) * vd[..., : t + 1, :]).sum(-2) / w.sum(-1, keepdim=True))
    return torch.stack(rows, dim=-2)


@st.composite
def batches(draw, dtypes=(torch.float32, torch.float64), max_B=8, max_T=64, max_C=16):
    """A random (B, T, C) tensor, or (T, C) half of the time."""
    B = draw(st.integers(1, max_B))
    T = draw(st.integers(1, max_T))
    C = draw(st.integers(1, max_C))
    dtype = draw(st.sampled_from(dtypes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = torch.randn(B, T, C, generator=g, dtype=dtype)
    return x if draw(st.booleans()) else x[0]


@st.composite
def qkvs(draw, dtypes=(torch.float32, torch.float64)):
    """Random q, k of shape (..., T, D) and v of shape (..., T, Dv), 0 to 2 leading dims."""
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    T, D, Dv = draw(st.integers(1, 24)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(dtypes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    q = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    k = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    v = torch.randn(*lead, T, Dv, generator=g, dtype=dtype)
    return q, k, v
