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
# # Notebook 12: Pitfalls
#
# The twelfth chapter's idea: the mistakes that give wrong numbers without an
# error, each on a tensor small enough to read. The chapter's page has the full
# argument, the validated code and the exercises.

# %%
import torch

from snippets.attention import Head
from snippets.averaging import causal_mean_weights, prefix_mean_matmul

torch.set_printoptions(precision=4, sci_mode=False)
T = 4

# %% [markdown]
# A row that may look at no position gives NaN: every score is $-\infty$ and the
# softmax computes $0 / 0$. A causal mask combined with a padding mask does that
# to the padding tokens at the start. Letting every token also see itself fixes it:

# %%
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T), True = may look
real = torch.tensor([False, False, True, True])  # (T,): tokens 0 and 1 are padding
for allowed in (causal & real, causal & real | torch.eye(T, dtype=torch.bool)):
    scores = torch.zeros(T, T).masked_fill(~allowed, float("-inf"))  # (T, T)
    print(torch.softmax(scores, dim=-1))

# %% [markdown]
# One NaN in the last token reaches every earlier output of a plain product with
# causal weights, because the future's weight is $0$ and $0 \times \text{NaN}$ is
# NaN. The functions of this tutorial keep the past clean:

# %%
x = torch.tensor([[2.], [4.], [6.], [float("nan")]])  # (T, C)
print((causal_mean_weights(T) @ x).flatten())
print(prefix_mean_matmul(x).flatten())

# %% [markdown]
# A fill of `-1e9` instead of $-\infty$ does not fit in float16, whose most
# negative finite number is printed first: it becomes $-\infty$, and a mask made by
# multiplying it with zeros and ones puts NaN where nothing should change. The
# fill that fits is the dtype's own minimum:

# %%
print(torch.finfo(torch.float16).min)
big = torch.tensor(-1e9, dtype=torch.float16)
print(big)
print((~causal).half() * big)  # (T, T)

# %% [markdown]
# And dropout: a module starts in training mode, where dropout makes two calls on
# the same input differ. Switch to evaluation mode for inference and for tests:

# %%
torch.manual_seed(0)
head = Head(n_embd=4, head_size=2, block_size=8, dropout=0.5)
x = torch.randn(1, 6, 4)  # (B, T, n_embd)
print("training:", torch.equal(head(x), head(x)))
head.eval()
print("eval:    ", torch.equal(head(x), head(x)))
