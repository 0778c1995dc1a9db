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
# # Notebook 3: Softmax
#
# The third chapter's idea: the averaging weights again, this time from a score
# for every pair of positions, $-\infty$ for the future, and a softmax per row.
# The chapter's page has the full argument, the validated code and the exercises.

# %%
import torch

from snippets.averaging import causal_mean_weights

torch.set_printoptions(precision=4, sci_mode=False)
T = 4
# (T, T): True above the diagonal, where the future is
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
future

# %% [markdown]
# The softmax of a row of scores $s$ is
#
# $$
# \operatorname{softmax}(s)_j = \frac{e^{s_j}}{\sum_k e^{s_k}} .
# $$
#
# With all scores equal, $e^{0} = 1$ and $e^{-\infty} = 0$ give the averaging
# weights back.

# %%
scores = torch.zeros(T, T).masked_fill(future, float("-inf"))  # (T, T)
wei = torch.softmax(scores, dim=-1)
print(wei)
print(torch.allclose(wei, causal_mean_weights(T)))

# %% [markdown]
# Other scores give other weights, still causal and still summing to one per row.
# A larger score gets a larger share of its row:

# %%
scores = torch.tensor([
    [0., 0., 0., 0.],
    [0., 1., 0., 0.],
    [2., 0., 1., 0.],
    [0., 0., 0., 3.],
]).masked_fill(future, float("-inf"))  # (T, T)
wei = torch.softmax(scores, dim=-1)
print(wei)
print("row sums:", wei.sum(dim=-1))
print("weight on the future:", wei[future].abs().max().item())

# %% [markdown]
# The mask must act on the scores, and it must write $-\infty$ there. Multiplying
# the scores by a 0/1 mask instead turns a future score into $0$, and $e^{0} = 1$:
# the future gets weight. With scores that rise along each row, row 0, which may
# only read position 0, then spreads its weight over all four. With $-\infty$ the
# future gets exactly zero weight, because $e^{-\infty}$ is exactly 0 (last line):

# %%
s = torch.tensor([1., 2., 3., 4.]).expand(T, T)  # (T, T): same scores per row
keep = torch.tril(torch.ones(T, T))  # (T, T): 1 where a position may look
masked = s.masked_fill(future, float("-inf"))  # (T, T)
print("-inf, then softmax:   ", torch.softmax(masked, dim=-1)[0])
print("scores times 0/1 mask:", torch.softmax(s * keep, dim=-1)[0])
print("exp(-inf) =", torch.exp(torch.tensor(float("-inf"))).item())
