# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 9: Attention as a running sum
#
# The ninth chapter's idea: for one query, softmax attention is a ratio of two
# sums over the keys, $\sum_j e^{s_j} v_j$ and $\sum_j e^{s_j}$, and a sum can be
# kept running, one key at a time. The chapter's page has the full argument, the
# validated code and the exercises.

# %%
import math

import torch
import torch.nn.functional as F

from snippets.attention import causal_attention
from snippets.streaming import online_causal_attention

torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# The catch is the exponential: in float32 it overflows to infinity already for
# scores of 100: on the line marked "naive" every exponential is infinite, and
# infinity times 0 and infinity over infinity are NaN. The fix
# is to keep a running maximum $m$ of the scores and both sums relative to it;
# when a new score raises the maximum, the sums so far are rescaled by
# $e^{m - m_\text{new}}$. That is the online softmax behind FlashAttention:

# %%
s = torch.tensor([0.0, math.log(2), 0.0])  # (T,): weights e^s are 1, 2, 1
v = torch.tensor([[4.0], [8.0], [0.0]])  # (T, Dv)
big = s + 100
print("softmax:              ", torch.softmax(s, dim=0) @ v)
print("naive, scores + 100:  ", big.exp() @ v / big.exp().sum())
for name, scores in (("loop:", s), ("loop, scores + 100:", big)):
    m = torch.tensor(float("-inf"))  # largest score so far
    l = torch.tensor(0.0)  # sum of exp(s_j - m)
    acc = torch.zeros(v.shape[-1])  # (Dv,): sum of exp(s_j - m) * v_j
    for s_j, v_j in zip(scores, v):
        m_new = torch.maximum(m, s_j)
        scale = torch.exp(m - m_new)  # puts the old sums on the new maximum
        p = torch.exp(s_j - m_new)
        l = l * scale + p
        acc = acc * scale + p * v_j
        m = m_new
    print(f"{name:22}", acc / l)

# %% [markdown]
# By hand: the weights are 1, 2 and 1 out of 4, so the output is
# $(4 + 2 \cdot 8 + 0) / 4 = 5$. Adding 100 to every score changes no weight,
# and the loop still gives 5 up to float32 rounding: every exponential it takes
# is at most 1.
#
# `online_causal_attention` does this for all queries at once, one block of keys
# at a time. For each block only the queries that may see it take part, so no
# temporary tensor is `(T, T)`. The scores each block computes, numbered by
# block, for 7 positions and blocks of 3 (0: never computed):

# %%
T, block = 7, 3
tiles = torch.zeros(T, T, dtype=torch.long)  # (T, T)
for n, j in enumerate(range(0, T, block), start=1):
    tiles[j:, j : j + block] = n
tiles

# %% [markdown]
# It agrees with `causal_attention` and PyTorch's attention, here with a block
# that does not divide `T`, and it stays finite where the naive exponentials
# overflow (equal scores near 318: the prefix mean of 2, 4, 6, 8):

# %%
torch.manual_seed(0)
q, k, v = torch.randn(3, 2, 3, 10, 8).unbind(0)  # each (B, heads, T, D)
out = online_causal_attention(q, k, v, block=4)  # (B, heads, T, D)
print("vs causal_attention:", (out - causal_attention(q, k, v)).abs().max().item())
sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("vs PyTorch:         ", (out - sdpa).abs().max().item())
q = k = torch.full((4, 2), 15.0)  # (T, D)
print("one score:", (q[0] @ k[0] / math.sqrt(2)).item())
v = torch.tensor([[2.0], [4.0], [6.0], [8.0]])  # (T, Dv)
print(online_causal_attention(q, k, v, block=2))
