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
# # Notebook 4: Self-attention
#
# The fourth chapter's idea: the scores come from the tokens themselves. Every
# token emits a *query* (what it is looking for) and a *key* (what it offers),
# both learned linear maps of its features, and the score of position $t$ for
# position $s$ is their dot product, scaled by $\frac{1}{\sqrt{d}}$ for head size $d$:
#
# $$
# \text{wei} = \operatorname{softmax}\left(\frac{q k^{\top}}{\sqrt{d}} + M\right),
# \qquad \text{out} = \text{wei}\, v ,
# $$
#
# where the mask $M$ holds $0$ for the past and $-\infty$ for the future, and the
# *values* $v$ are a third linear map of the features: what a token passes on.
# The chapter's page has the full argument, the validated code and the exercises.

# %%
import torch
import torch.nn.functional as F
from IPython.display import HTML

from snippets.attention import Head, causal_attention
from snippets.figures import head_weights_svg, img_tag

torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# `snippets.attention.Head` is one such head, with random weights to start with.
# Its steps by hand, on two sequences of six tokens with eight channels:

# %%
torch.manual_seed(1)
B, T, C, head_size = 2, 6, 8, 4
x = torch.randn(B, T, C)  # (B, T, C)
head = Head(n_embd=C, head_size=head_size, block_size=T)

q, k, v = head.query(x), head.key(x), head.value(x)  # each (B, T, head_size)
scores = q @ k.transpose(-2, -1) * head_size**-0.5  # (B, T, T)
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # (T, T)
wei = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # (B, T, T)
print(wei[0].detach())  # sequence 0: causal, rows sum to 1, uneven
torch.allclose(wei @ v, head(x))

# %% [markdown]
# Each sequence gets its own weights, because they depend on its tokens:

# %%
torch.equal(wei[0], wei[1])

# %% [markdown]
# Random weights say little. Set the head by hand instead: each character of
# `"hello world"` is a one-hot vector, and the query and key maps are scaled
# identities, so equal characters score high and different ones score zero.
# Every character then looks mostly at itself and at earlier copies of itself:

# %%
HTML(img_tag(head_weights_svg("hello world")))

# %% [markdown]
# ## Why the scores are divided by the square root of the head size
#
# A dot product of two vectors of length $d$ is a sum of $d$ terms. For entries
# drawn independently with mean 0 and variance 1, each term has variance 1, so the
# sum has variance $d$ and a standard deviation of $\sqrt{d}$. Measured on many
# random pairs with $d = 64$, before and after the division:

# %%
d = 64
qs, ks = torch.randn(20_000, d), torch.randn(20_000, d)  # each (20 000, d)
dots = (qs * ks).sum(dim=-1)  # (20 000,): one dot product per pair
print("sqrt(d):                     ", d**0.5)
print("std of q . k:                ", round(dots.std().item(), 2))
print("std of q . k / sqrt(d):      ", round((dots * d**-0.5).std().item(), 2))

# %% [markdown]
# Large scores make the softmax nearly one-hot: the same four scores, as they are
# and eight times larger. A row that puts all its weight on one position passes
# almost no gradient to the others, so an unscaled head would learn slowly.

# %%
s4 = torch.tensor([0.5, -1.0, 1.5, 0.0])
print(torch.softmax(s4, dim=-1))
print(torch.softmax(8 * s4, dim=-1))

# %% [markdown]
# ## The check against PyTorch
#
# `causal_attention` is the formula above for inputs of any leading shape.
# PyTorch has the same computation built in as `F.scaled_dot_product_attention`;
# on a batch of two sequences with four heads the two differ only by float32
# rounding:

# %%
q, k, v = torch.randn(3, 2, 4, 10, 8).unbind(0)  # each (B, heads, T, d)
ours = causal_attention(q, k, v)  # (B, heads, T, d)
theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print(ours.shape)
print("largest difference:", (ours - theirs).abs().max().item())
