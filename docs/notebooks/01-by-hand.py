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
# # Notebook 1: By hand
#
# The first chapter's idea on a batch you can check by hand: every token is
# replaced by the mean of itself and the tokens before it, the *prefix mean*,
# computed with two plain loops. The chapter's page has the full argument, the
# validated code and the exercises.

# %%
import torch

from snippets.averaging import prefix_mean_loop

# %% [markdown]
# A batch of token features has shape `(B, T, C)`: `B` sequences, `T` tokens each,
# `C` numbers per token. Here are two sequences of four tokens with two channels.

# %%
x = torch.tensor([
    [[1., 5.], [3., 1.], [2., 6.], [6., 0.]],
    [[4., 0.], [0., 2.], [8., 4.], [0., 2.]],
])
B, T, C = x.shape
B, T, C

# %% [markdown]
# Position $t$ may use positions $0, 1, \dots, t$ and never the future. The plainest
# way to gather that context is the mean of those rows, for every sequence and
# every position: two loops.

# %%
out = torch.zeros_like(x)  # (B, T, C)
for b in range(B):
    for t in range(T):
        out[b, t] = x[b, : t + 1].mean(dim=0)  # rows 0..t of sequence b
out

# %% [markdown]
# Row 1 of sequence 0 is the mean of $(1, 5)$ and $(3, 1)$, which is $(2, 3)$; the
# last row of each sequence is the mean of all four of its tokens. The package's
# `prefix_mean_loop` is the same loop with input checks, and gives the same numbers:

# %%
torch.equal(prefix_mean_loop(x), out)
