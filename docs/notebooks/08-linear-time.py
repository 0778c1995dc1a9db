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
# # Notebook 8: Linear time
#
# The eighth chapter's idea: the prefix mean needs no `(T, T)` matrix, only a
# running total; and attention whose weights factor the same way, linear
# attention, runs in time linear in `T`. The chapter's page has the full
# argument, the validated code and the exercises.

# %%
import math

import torch

from snippets.attention import causal_attention
from snippets.averaging import prefix_mean_cumsum, prefix_mean_matmul
from snippets.linear import (causal_linear_attention,
                             causal_linear_attention_quadratic)

torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# The matrix product of chapter 2 does `T * T` multiply-adds per channel. The
# plain average needs far fewer: keep a running total, add one token per step,
# and divide by the count. `cumsum` gives all the running totals at once, and the
# result is the prefix mean again:

# %%
b = torch.tensor([[2., 6.], [4., 0.], [6., 3.]])  # (T, C) = (3, 2)
totals = b.cumsum(dim=0)  # (T, C)
print(totals)
print(totals / torch.arange(1, 4).unsqueeze(-1))  # divide row t by t + 1
print(torch.allclose(prefix_mean_cumsum(b), prefix_mean_matmul(b)))

# %% [markdown]
# A running total has to be kept in enough precision. bfloat16 has 8 significant
# bits, so past 256 adding 1 rounds back to the same number, and a total of a
# thousand ones stalls. `prefix_mean_cumsum` keeps its totals in float32 and gets
# the mean of those ones right:

# %%
eps = torch.finfo(torch.bfloat16).eps  # the gap between 1 and the next number
print("significant bits of bfloat16:", 1 - round(math.log2(eps)))
total = torch.tensor(0.0, dtype=torch.bfloat16)
for _ in range(1000):
    total += 1
print("1000 ones added in bfloat16:", total.item())
ones = torch.ones(1, 1000, 1, dtype=torch.bfloat16)  # (B, T, C)
print("prefix_mean_cumsum, last mean:", prefix_mean_cumsum(ones)[0, -1].item())

# %% [markdown]
# Softmax attention cannot share running sums between queries, because each
# weight $e^{q_t \cdot k_s}$ mixes the query into the exponential. Linear
# attention replaces it by $\phi(q_t) \cdot \phi(k_s)$ with a positive feature map
# $\phi$; then two running sums over the keys serve every query, and the cost is
# linear in `T`. The running-sum form equals the masked `(T, T)` form:

# %%
torch.manual_seed(0)
q, k, v = torch.randn(3, 2, 50, 8).unbind(0)  # each (B, T, D)
running = causal_linear_attention(q, k, v)  # (B, T, D)
masked = causal_linear_attention_quadratic(q, k, v)  # (B, T, D)
print(torch.allclose(running, masked, atol=1e-5))

# %% [markdown]
# It is a different model, and less sharp. Give token $s$ a key along axis $s$
# and let every query look for token 2; with the identity as values, each output
# row is a row of weights. Softmax puts almost everything on token 2 once it can
# see it; linear attention keeps giving the other tokens a share:

# %%
keys = 5 * torch.eye(4)  # (T, D): token s has a key along axis s
queries = (5 * torch.eye(4)[2]).expand(4, 4)  # (T, D): every query along axis 2
print(causal_attention(queries, keys, torch.eye(4)))
print(causal_linear_attention_quadratic(queries, keys, torch.eye(4)))
