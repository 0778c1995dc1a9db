"""Chapter 9: causal softmax attention as a running sum over blocks of keys.

``online_causal_attention`` computes the same attention as
``snippets.attention.causal_attention`` without ever building the (T, T) matrix
of scores: it walks over the keys and values block by block and keeps, for each
query, a running maximum of its scores, a running sum of exponentials and a
rescaled output (the online softmax of Milakov and Gimelshein, 2018, as
FlashAttention uses it).

The definition is self-contained: its section below, followed by the helpers of
``snippets/checks.py`` that it calls, runs when copied alone.
"""

__all__ = ["online_causal_attention"]

# --8<-- [start:imports]
import torch

# --8<-- [end:imports]
from snippets.checks import causal_matmul, check_qkv, check_sizes


# --8<-- [start:online_causal_attention]
def online_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, block: int = 64
) -> torch.Tensor:
    """softmax(q k^T / sqrt(D), future masked) v, one block of keys at a time.

    Takes q, k of shape (..., T, D) and v of shape (..., T, Dv), like
    ``causal_attention``, and returns (..., T, Dv) in the inputs' dtype. Keys and values
    are read ``block`` positions at a time; each query keeps a running maximum
    ``m`` of its scores, a running sum ``l`` of exp(score - m) and a running
    output ``acc``, both rescaled whenever ``m`` grows. No (T, T) tensor is
    made: the largest is a strip of scores or the running output, (..., T,
    max(block, Dv)), or for float16 and bfloat16 input the float32 copy of q,
    (..., T, D). Sums are kept in at least float32.
    A nan or inf in ``k`` or ``v`` at position j changes no output before j.

    >>> q = k = torch.zeros(3, 2)                     # equal scores: the prefix mean
    >>> v = torch.tensor([[2.0], [4.0], [6.0]])
    >>> online_causal_attention(q, k, v, block=2)
    tensor([[2.],
            [3.],
            [4.]])

    Raises:
        TypeError: q, k or v is not a floating-point tensor, their dtypes differ,
            or ``block`` is not an int.
        ValueError: the shapes are not (..., T, D), (..., T, D), (..., T, Dv) with
            T, D, Dv >= 1, the tensors are on different devices, or ``block`` < 1.
    """
    check_qkv("online_causal_attention", q, k, v)
    check_sizes("online_causal_attention", block=block)
    T, D = q.shape[-2:]
    acc_dtype = torch.promote_types(q.dtype, torch.float32)
    q = q.to(acc_dtype)
    # future[i, c]: query j + i may not see key j + c (only the first rows have such keys)
    future = torch.ones(T, min(block, T), dtype=torch.bool, device=q.device).triu(diagonal=1)
    # Per query: running maximum m, running sum l, running output acc.
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=acc_dtype, device=q.device)
    l = torch.zeros_like(m)  # (..., T, 1), like m
    acc = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=acc_dtype, device=q.device)  # (..., T, Dv)
    out = []
    for j in range(0, T, block):
        kj = k[..., j : j + block, :].to(acc_dtype)  # (..., b, D), b = block or the rest
        vj = v[..., j : j + block, :].to(acc_dtype)  # (..., b, Dv)
        b = kj.shape[-2]
        # Queries before j are finished, so the scores are of queries j..T-1 only.
        s = q[..., j:, :] @ kj.transpose(-2, -1) * D**-0.5  # (..., T - j, b)
        s = s.masked_fill(future[: T - j, :b], float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))  # (..., T - j, 1)
        # A row whose scores so far are all -inf has m_new = -inf: subtract 0 there,
        # not -inf, so that exp(-inf - (-inf)) never makes a nan.
        safe = torch.where(m_new == float("-inf"), 0.0, m_new)
        scale = torch.exp(m - safe)  # rescales the old sums to the new maximum
        p = torch.exp(s - safe)  # (..., T - j, b), 0 where masked
        l = l * scale + p.sum(dim=-1, keepdim=True)
        # The first b queries see only part of the block: causal_matmul keeps a later
        # inf or nan in v out of them. The queries after the block see all of it.
        pv = torch.cat([causal_matmul(p[..., :b, :], vj), p[..., b:, :] @ vj], dim=-2)
        acc = acc * scale + pv  # (..., T - j, Dv)
        out.append(acc[..., :b, :] / l[..., :b, :])  # queries j..j+b-1 have seen all their keys
        m, l, acc = m_new[..., b:, :], l[..., b:, :], acc[..., b:, :]
    return torch.cat(out, dim=-2).to(v.dtype)  # (..., T, Dv)


# --8<-- [end:online_causal_attention]
