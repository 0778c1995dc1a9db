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
# # Notebook 5: Multi-head attention
#
# The fifth chapter's idea: `MultiHeadAttention` runs `n_head` heads of size
# `n_embd // n_head` side by side, concatenates their outputs and mixes them with
# one more linear map, `proj`. The chapter's page has the full argument, the
# validated code and the exercises.

# %%
import torch

from snippets.attention import Head, MultiHeadAttention

# %% [markdown]
# One linear layer, `qkv`, computes the queries, keys and values of every head at
# once: its weight holds the query weights of all heads, then the key weights,
# then the value weights.

# %%
torch.manual_seed(0)
n_embd, n_head = 12, 3
mha = MultiHeadAttention(n_embd=n_embd, n_head=n_head, block_size=8)
print(mha.qkv.weight.shape)  # (3 * n_embd, n_embd)

# %% [markdown]
# Cut that weight into three `Head`s, run them one by one, concatenate, and apply
# `proj`: the result is the layer's own.

# %%
hs = n_embd // n_head
Wq, Wk, Wv = mha.qkv.weight.split(n_embd)  # each (n_embd, n_embd)
heads = [Head(n_embd=n_embd, head_size=hs, block_size=8) for _ in range(n_head)]
with torch.no_grad():
    for h, one in enumerate(heads):
        rows = slice(h * hs, (h + 1) * hs)  # head h's rows
        one.query.weight.copy_(Wq[rows])
        one.key.weight.copy_(Wk[rows])
        one.value.weight.copy_(Wv[rows])
    x = torch.randn(2, 8, n_embd)  # (B, T, n_embd)
    concat = torch.cat([one(x) for one in heads], dim=-1)  # (B, T, n_embd)
    print(concat.shape)
    print(torch.allclose(mha(x), mha.proj(concat), atol=1e-6))
