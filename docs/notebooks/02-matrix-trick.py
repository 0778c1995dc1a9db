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
# # Notebook 2: The matrix trick
#
# The second chapter's idea: the prefix mean of every position at once, as one
# matrix product. The chapter's page has the full argument, the validated code
# and the exercises.

# %%
import torch
from IPython.display import HTML

from snippets.averaging import (causal_mean_weights, prefix_mean_loop,
                                prefix_mean_matmul)
from snippets.figures import causal_mean_weights_svg, img_tag

x = torch.tensor([
    [[1., 5.], [3., 1.], [2., 6.], [6., 0.]],
    [[4., 0.], [0., 2.], [8., 4.], [0., 2.]],
])  # (B, T, C) = (2, 4, 2), the batch of notebook 1
T = x.shape[1]

# %% [markdown]
# Row $t$ of a lower-triangular matrix of ones picks rows $0..t$ of whatever it
# multiplies; divide each row by its number of ones and the product averages them.

# %%
W = torch.tril(torch.ones(T, T))  # (T, T)
W = W / W.sum(dim=1, keepdim=True)
W

# %% [markdown]
# One product now does all `B * T` averages, because `@` broadcasts the `(T, T)`
# weights over the batch: $\text{out}_t = \sum_{s \le t} W_{ts} x_s$ with
# $W_{ts} = \frac{1}{t+1}$. The result is the loop's, up to float rounding:

# %%
out = W @ x  # (T, T) @ (B, T, C) -> (B, T, C)
print(out)
print(torch.allclose(out, prefix_mean_loop(x)))

# %% [markdown]
# The package builds the same weights with `causal_mean_weights`, and
# `prefix_mean_matmul` is the product with input checks:

# %%
print(torch.equal(W, causal_mean_weights(T)))
print(torch.equal(prefix_mean_matmul(x), out))

# %% [markdown]
# The weights for eight positions, drawn by the same code that draws the site's
# figures:

# %%
HTML(img_tag(causal_mean_weights_svg(8)))
