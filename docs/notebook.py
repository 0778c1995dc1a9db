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
# # The tutorial as a notebook
#
# The core of chapters 1 to 4 of the site in one notebook: the prefix mean by hand,
# the same numbers from one matrix product, the same weights from a masked
# softmax, and finally weights that depend on the data, which is what a
# self-attention head is. It stops at one head: why the scores are scaled,
# multi-head attention, the check against PyTorch's attention and the later
# chapters are on the site only.
# Run the cells from top to bottom; every output below was produced by running them
# while the site was built.
#
# The first cell installs the tutorial's `snippets` package when the notebook runs
# on Google Colab. Anywhere else it expects the package to be installed already
# (`python3 dev.py test` in a clone of the repository sets that up).

# %%
import subprocess
import sys

PACKAGE = (
    "attention-trick @ "
    "git+https://github.com/attention-trick/attention-trick"
)
if "google.colab" in sys.modules:
    # Colab has torch already; this adds the tutorial's own package.
    pip = [sys.executable, "-m", "pip", "install", "--quiet", PACKAGE]
    subprocess.run(pip, check=True)

import torch

import snippets  # noqa: F401  (fails here if the package is missing)

torch.manual_seed(0)
torch.set_printoptions(precision=4, sci_mode=False)
print("torch", torch.__version__)

# %% [markdown]
# ## 1. By hand
#
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
out = torch.zeros_like(x)
for b in range(B):
    for t in range(T):
        out[b, t] = x[b, : t + 1].mean(dim=0)
out

# %% [markdown]
# The package's `prefix_mean_loop` is the same loop with input checks:

# %%
from snippets.averaging import prefix_mean_loop

torch.equal(prefix_mean_loop(x), out)

# %% [markdown]
# ## 2. The matrix trick
#
# Row $t$ of a lower-triangular matrix of ones picks rows $0..t$ of whatever it
# multiplies; divide each row by its number of ones and the product averages them.

# %%
W = torch.tril(torch.ones(T, T))
W = W / W.sum(dim=1, keepdim=True)
W

# %% [markdown]
# One product now does all `B * T` averages, because `@` broadcasts the `(T, T)`
# weights over the batch: $\text{out}_t = \sum_{s \le t} W_{ts} x_s$ with
# $W_{ts} = \frac{1}{t+1}$.

# %%
from snippets.averaging import causal_mean_weights, prefix_mean_matmul

print((W @ x).shape)  # (T, T) @ (B, T, C) -> (B, T, C)
print(torch.equal(W, causal_mean_weights(T)))
print(torch.allclose(W @ x, out))

xr = torch.randn(4, 8, 3)  # random (B, T, C)
torch.allclose(prefix_mean_matmul(xr), prefix_mean_loop(xr))

# %% [markdown]
# The weights for eight positions, drawn by the same code that draws the site's
# figures:

# %%
from IPython.display import HTML

from snippets.figures import causal_mean_weights_svg, img_tag

HTML(img_tag(causal_mean_weights_svg(8)))

# %% [markdown]
# ## 3. Softmax
#
# Self-attention reaches the same matrix by another road: a score for every pair of
# positions, $-\infty$ for the future, and a softmax per row,
#
# $$
# \operatorname{softmax}(s)_j = \frac{e^{s_j}}{\sum_k e^{s_k}} .
# $$
#
# With all scores equal, $e^{0} = 1$ and $e^{-\infty} = 0$ give the averaging
# weights back.

# %%
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
scores = torch.zeros(T, T).masked_fill(future, float("-inf"))
wei = torch.softmax(scores, dim=-1)
print(wei)
torch.allclose(wei, causal_mean_weights(T))

# %% [markdown]
# Other scores give other weights, still causal and still summing to one per row:

# %%
scores = torch.randn(T, T).masked_fill(future, float("-inf"))
wei = torch.softmax(scores, dim=-1)
print(wei)
print("row sums:", wei.sum(dim=-1))
print("weight on the future:", wei[future].abs().max().item())

# %% [markdown]
# ## 4. Self-attention
#
# In self-attention the scores come from the tokens themselves. Every token emits
# a *query* (what it is looking for) and a *key* (what it offers), both learned
# linear maps of its features, and the score of position $t$ for position $s$ is
# their dot product, scaled by $\frac{1}{\sqrt{d}}$ for head size $d$:
#
# $$
# \text{wei} = \operatorname{softmax}\left(\frac{q k^{\top}}{\sqrt{d}} + M\right),
# \qquad \text{out} = \text{wei}\, v ,
# $$
#
# where the mask $M$ holds $0$ for the past and $-\infty$ for the future, and the
# *values* $v$ are a third linear map of the features: what a token passes on.
# `snippets.attention.Head` is one such head; here are its steps by hand.

# %%
from snippets.attention import Head

torch.manual_seed(1)
B, T, C, head_size = 2, 6, 8, 4
x = torch.randn(B, T, C)
head = Head(n_embd=C, head_size=head_size, block_size=T)

q, k, v = head.query(x), head.key(x), head.value(x)  # (B, T, 4)
scores = q @ k.transpose(-2, -1) * head_size**-0.5  # (B, T, T)
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
wei = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
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
from snippets.figures import head_weights_svg

HTML(img_tag(head_weights_svg("hello world")))

# %% [markdown]
# Without the mask every token would see every other one, as in an *encoder*,
# which reads a whole text at once; a *decoder*, which writes text one token at
# a time, keeps the mask:

# %%
from snippets.figures import masks_svg

HTML(img_tag(masks_svg(6)))
