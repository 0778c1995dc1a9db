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
# # Notebook 7: Order and position
#
# The seventh chapter's idea: attention on its own does not see order, and
# position embeddings give it that. The chapter's page has the full argument,
# the validated code and the exercises.

# %%
import math

import torch
from IPython.display import HTML

from snippets.attention import Head, MultiHeadAttention
from snippets.averaging import prefix_mean_cumsum
from snippets.figures import img_tag, rotary_scores_svg
from snippets.positions import apply_rotary, sinusoidal_positions

torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# The output at the last position is a weighted sum over the tokens before it,
# and each token's weight depends on its key and the query, not on where it
# stands. Shuffle the past of the last token and its output stays the same, for
# the prefix mean, a `Head` and `MultiHeadAttention`; the earlier positions,
# which now see other tokens, change:

# %%
torch.manual_seed(2)
T, t = 6, 5  # the last position, and its past 0..4
x = torch.randn(1, T, 4)  # (B, T, C)
shuffled = x.clone()
shuffled[:, :t] = x[:, torch.tensor([3, 0, 4, 1, 2])]  # same tokens, another order
head = Head(n_embd=4, head_size=4, block_size=8)
mha = MultiHeadAttention(n_embd=4, n_head=2, block_size=8)
same = lambda a, b: torch.allclose(a, b, atol=1e-6)  # equal up to rounding
with torch.no_grad():
    mean_x = prefix_mean_cumsum(x)  # (B, T, C)
    mean_shuffled = prefix_mean_cumsum(shuffled)  # (B, T, C)
    print("prefix mean, last position:", same(mean_x[:, t], mean_shuffled[:, t]))
    print("Head, last position:       ", same(head(x)[:, t], head(shuffled)[:, t]))
    print("MHA, last position:        ", same(mha(x)[:, t], mha(shuffled)[:, t]))
    print("Head, earlier positions:   ", same(head(x)[:, :t], head(shuffled)[:, :t]))

# %% [markdown]
# A table of learned position vectors, one row per position added to the
# features (as in nanoGPT and chapter 6's model), breaks the symmetry: a token
# that moves now carries another row, so its key and value change.

# %%
wpe = torch.nn.Embedding(8, 4)  # (block_size, n_embd)
pos = torch.arange(T)
with torch.no_grad():
    print(same(head(x + wpe(pos))[:, t], head(shuffled + wpe(pos))[:, t]))

# %% [markdown]
# The original Transformer adds a fixed table instead: sines and cosines of the
# position at falling frequencies. With 4 channels and base 100 the columns of row
# $p$ are $\sin p$, $\cos p$, $\sin(p/10)$ and $\cos(p/10)$:

# %%
print(sinusoidal_positions(3, 4, base=100.0))  # (T, C)
# row 1 by hand
print(round(math.sin(1), 4), round(math.cos(1), 4), round(math.sin(0.1), 4))

# %% [markdown]
# Rotary position embeddings (RoPE) leave the features alone and turn the queries
# and keys instead, each pair of channels by an angle proportional to the
# position. The dot product of two turned vectors depends on the two angles only
# through their difference, so the score of a query at position $m$ and a key at
# position $n$ depends on the positions only through $m - n$:

# %%
q1, k1 = torch.tensor([[1., 2.]]), torch.tensor([[3., -1.]])  # (T, D) = (1, 2)


def rope_score(m, n):
    q = apply_rotary(q1, torch.tensor([m]))  # the query turned for position m
    k = apply_rotary(k1, torch.tensor([n]))  # the key turned for position n
    return (q @ k.T).item()


for m, n in [(2, 0), (5, 3), (102, 100), (0, 0), (3, 3)]:
    score = rope_score(m, n)
    print(f"query at {m:3}, key at {n:3}, offset {m - n}: score {score:8.4f}")

# %% [markdown]
# The same query and key at every pair of positions of an 8-token sequence: one
# value per diagonal.

# %%
HTML(img_tag(rotary_scores_svg(8)))
