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
# # Notebook 11: Inference with a KV cache
#
# The eleventh chapter's idea: a GPT writes one token at a time. Thanks to the
# causal mask, a new token changes no earlier output, so the keys and values of
# earlier tokens can be kept from step to step, in a KV cache, and each step
# computes only the new rows. The chapter's page has the full argument, the
# validated code and the exercises.

# %%
import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

from snippets.attention import Head
from snippets.inference import KVCache, decode_macs

torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# With `T_new` new queries against `T_all` keys, new query $i$ is token
# `T_all - T_new + i`: the causal triangle sits in the lower-right corner of the
# `(T_new, T_all)` weights.
#
# `F.scaled_dot_product_attention(..., is_causal=True)` aligns it top-left
# instead. With all scores zero and the identity as values, each output row shows
# its weights: 2 new queries against 5 keys see only keys 0 and 0 to 1, not 0 to 3
# and 0 to 4. `causal_lower_right` builds the right mask:

# %%
q_new = torch.zeros(2, 4)  # (T_new, D)
k_all = torch.zeros(5, 4)  # (T_all, D)
v_all = torch.eye(5)  # (T_all, T_all)
sdpa = F.scaled_dot_product_attention
print(sdpa(q_new, k_all, v_all, is_causal=True))  # (T_new, T_all)
print(sdpa(q_new, k_all, v_all, attn_mask=causal_lower_right(2, 5)))

# %% [markdown]
# `Head` and `MultiHeadAttention` take a `KVCache` as a second argument; `x` then
# holds only the new tokens. Decoding one token at a time, or in chunks, gives
# the rows of the full forward:

# %%
torch.manual_seed(3)
head = Head(n_embd=4, head_size=3, block_size=8)
x = torch.randn(1, 7, 4)  # (B, T, n_embd)
with torch.no_grad():
    full = head(x)  # (B, T, head_size)
    cache = KVCache()
    steps = [head(x[:, t : t + 1], cache) for t in range(7)]  # one token each
    steps = torch.cat(steps, dim=1)  # (B, T, head_size)
    print(cache)
    print("one at a time:", torch.allclose(steps, full, atol=1e-6))
    cache.reset()
    chunks = [head(x[:, :3], cache), head(x[:, 3:5], cache), head(x[:, 5:], cache)]
    chunks = torch.cat(chunks, dim=1)  # (B, T, head_size)
    print("in chunks:    ", torch.allclose(chunks, full, atol=1e-6))
    try:
        head(x[:, :2], cache)  # 7 cached + 2 new > block_size
    except ValueError as err:
        print("refused:", err)

# %% [markdown]
# What the cache saves, in multiply-adds of one layer with 8 channels producing
# the output of token `T`: without a cache the whole forward runs again on `T`
# tokens; with it, only the new token's projections and one row of scores. The
# ratio of the two columns is `T`:

# %%
print(" T  no cache  cache")
for T in range(1, 9):
    without = decode_macs(T, 8, cached=False)
    with_cache = decode_macs(T, 8, cached=True)
    print(f"{T:2} {without:9} {with_cache:6}")

# %% [markdown]
# The cache still grows by one key and one value per token. Linear attention
# (chapter 8) needs no such list: its two running sums are its whole state, the
# same size after any number of tokens.
