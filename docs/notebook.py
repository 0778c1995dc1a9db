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
# Every chapter of the site in one notebook, one section per chapter, each on
# small examples you can check by hand: the prefix mean by hand, the same numbers
# from one matrix product and from a masked softmax, self-attention with one head
# and with several, a head that learns where to look, positions, running sums,
# softmax attention computed one block of keys at a time, the prefix mean as one
# Triton kernel, decoding with a KV cache, and the usual pitfalls. Each section keeps to the chapter's key idea;
# the pages have the full argument, the validated code and the exercises.
#
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

import os

import torch

import snippets  # noqa: F401  (fails here if the package is missing)

# Without a CUDA GPU, section 10's Triton kernel runs in Triton's interpreter. The
# variable must be set before anything imports triton, and PyTorch may import it
# on its own (the training loop of section 6 does here), so it is set first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

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
# The mask must act on the scores, and it must write $-\infty$ there. Multiplying
# the scores by a 0/1 mask instead turns a future score into $0$, and $e^{0} = 1$:
# the future gets weight. With scores that rise along each row, row 0, which may
# only read position 0, then spreads its weight over all four. With $-\infty$ the
# future gets exactly zero weight, because $e^{-\infty}$ is exactly 0 (last line):

# %%
s = torch.tensor([1., 2., 3., 4.]).expand(T, T)  # the same scores in every row
keep = torch.tril(torch.ones(T, T))  # 1 where a position may look
print("-inf, then softmax:   ", torch.softmax(s.masked_fill(future, float("-inf")), dim=-1)[0])
print("scores times 0/1 mask:", torch.softmax(s * keep, dim=-1)[0])
print("exp(-inf) =", torch.exp(torch.tensor(float("-inf"))).item())

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

# %% [markdown]
# ### Why the scores are divided by the square root of the head size
#
# A dot product of two vectors of length $d$ is a sum of $d$ terms. For entries
# drawn independently with mean 0 and variance 1, each term has variance 1, so the
# sum has variance $d$ and a standard deviation of $\sqrt{d}$. Measured on many
# random pairs with $d = 64$, before and after the division:

# %%
d = 64
qs, ks = torch.randn(20_000, d), torch.randn(20_000, d)
dots = (qs * ks).sum(dim=-1)  # 20 000 dot products
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
# ### The check against PyTorch
#
# `causal_attention` is the formula above for inputs of any leading shape.
# PyTorch has the same computation built in as `F.scaled_dot_product_attention`;
# on a batch of two sequences with four heads the two differ only by float32
# rounding:

# %%
import torch.nn.functional as F

from snippets.attention import causal_attention

q, k, v = torch.randn(3, 2, 4, 10, 8).unbind(0)  # each (B, heads, T, d)
ours = causal_attention(q, k, v)
theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print(ours.shape)
print("largest difference:", (ours - theirs).abs().max().item())

# %% [markdown]
# ## 5. Multi-head attention
#
# `MultiHeadAttention` runs `n_head` heads of size `n_embd // n_head` side by side,
# concatenates their outputs and mixes them with one more linear map, `proj`. One
# linear layer, `qkv`, computes the queries, keys and values of every head at once:
# its weight holds the query weights of all heads, then the key weights, then the
# value weights. Cut it into three `Head`s and the result is the same:

# %%
from snippets.attention import MultiHeadAttention

mha = MultiHeadAttention(n_embd=12, n_head=3, block_size=8)
print(mha.qkv.weight.shape)  # (3 * n_embd, n_embd)
hs = 12 // 3
Wq, Wk, Wv = mha.qkv.weight.split(12)  # each (n_embd, n_embd)
heads = [Head(n_embd=12, head_size=hs, block_size=8) for _ in range(3)]
with torch.no_grad():
    for h, one in enumerate(heads):
        rows = slice(h * hs, (h + 1) * hs)  # head h's rows
        one.query.weight.copy_(Wq[rows])
        one.key.weight.copy_(Wk[rows])
        one.value.weight.copy_(Wv[rows])
    x = torch.randn(2, 8, 12)
    concat = torch.cat([one(x) for one in heads], dim=-1)  # (B, T, n_embd)
    print(torch.allclose(mha(x), mha.proj(concat), atol=1e-6))

# %% [markdown]
# ## 6. Learning the weights
#
# So far the weights of a head were random or set by hand. Here one head learns
# them. The task: at every position, output the token that came two places
# earlier. The equal average cannot do that; the head must put its weight on
# position $t - 2$. `lookback_batch` makes random sequences and their targets;
# the first two positions have nothing two places back, and their target `-100`
# is skipped by the loss (`F.cross_entropy`'s `ignore_index`).

# %%
from snippets.learning import OneHeadModel, lookback_batch, train

seq, target = lookback_batch(1, 8, 8, generator=torch.Generator().manual_seed(1))  # B, T, vocab
print(seq)
print(target)

# %% [markdown]
# The model: a table of token vectors plus a table of position vectors (chapter 7
# says why attention needs the second), one head, and a linear map to one score
# per possible token. `train` runs AdamW on fresh random batches and returns the
# loss of every step. With the seeds fixed the run repeats exactly; it is the
# run of chapter 6, whose page checks its losses and weights. The first loss is
# near $\ln 8$, the loss of giving each of the 8 tokens the same probability, and
# the loss then falls towards zero:

# %%
import math
import time

torch.manual_seed(0)
model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
start = time.perf_counter()
losses = train(model, steps=100, generator=torch.Generator().manual_seed(0))
print(f"100 steps in {time.perf_counter() - start:.1f} s")
print("ln 8:", round(math.log(8), 2))
print("loss at steps 0, 10, ..., 90:", [round(loss, 2) for loss in losses[::10].tolist()])
print("loss at step 99:", round(losses[-1].item(), 4))

# %% [markdown]
# Where does the trained head look? On the sequence above, the largest weight of
# every row from row 2 on sits two places back, and the tokens there are the
# targets:

# %%
wei = model.attention_weights(seq)[0]  # (T, T)
print(wei)
print("largest weight of each row at:", wei.argmax(dim=-1))
print("tokens read:", seq[0, wei.argmax(dim=-1)][2:], " targets:", target[0, 2:])

# %% [markdown]
# The same run, drawn by the site's figure code: the same head before and after
# training.

# %%
from snippets.figures import learned_weights_svg

HTML(img_tag(learned_weights_svg()))

# %% [markdown]
# Nothing in the recipe of chapter 3 changed: scores, $-\infty$ for the future, a
# softmax. Only the scores are learned now. In row 5 of the trained head, the
# score of position 3 is the largest:

# %%
scores = model.attention_scores(seq)  # (B, T, T), future already -inf
print(scores[0, 5])
print(torch.equal(torch.softmax(scores, dim=-1), model.attention_weights(seq)))

# %% [markdown]
# ## 7. Order and position
#
# Attention on its own does not see order. The output at the last position is a
# weighted sum over the tokens before it, and each token's weight depends on its
# key and the query, not on where it stands. Shuffle the past of the last token
# and its output stays the same, for the prefix mean, a `Head` and
# `MultiHeadAttention`; the earlier positions, which now see other tokens, change:

# %%
from snippets.averaging import prefix_mean_cumsum

torch.manual_seed(2)
T, t = 6, 5  # the last position, and its past 0..4
x = torch.randn(1, T, 4)  # (B, T, C)
shuffled = x.clone()
shuffled[:, :t] = x[:, torch.tensor([3, 0, 4, 1, 2])]  # same tokens, another order
head = Head(n_embd=4, head_size=4, block_size=8)
mha = MultiHeadAttention(n_embd=4, n_head=2, block_size=8)
same = lambda a, b: torch.allclose(a, b, atol=1e-6)  # equal up to rounding
with torch.no_grad():
    mean_x, mean_shuffled = prefix_mean_cumsum(x), prefix_mean_cumsum(shuffled)
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
from snippets.positions import apply_rotary, sinusoidal_positions

print(sinusoidal_positions(3, 4, base=100.0))
print(round(math.sin(1), 4), round(math.cos(1), 4), round(math.sin(0.1), 4))  # row 1 by hand

# %% [markdown]
# Rotary position embeddings (RoPE) leave the features alone and turn the queries
# and keys instead, each pair of channels by an angle proportional to the
# position. The dot product of two turned vectors depends on the two angles only
# through their difference, so the score of a query at position $m$ and a key at
# position $n$ depends on the positions only through $m - n$:

# %%
q1, k1 = torch.tensor([[1., 2.]]), torch.tensor([[3., -1.]])  # (T, D) = (1, 2)


def rope_score(m, n):
    return (apply_rotary(q1, torch.tensor([m])) @ apply_rotary(k1, torch.tensor([n])).T).item()


for m, n in [(2, 0), (5, 3), (102, 100), (0, 0), (3, 3)]:
    print(f"query at {m:3}, key at {n:3}, offset {m - n}: score {rope_score(m, n):8.4f}")

# %% [markdown]
# The same query and key at every pair of positions of an 8-token sequence: one
# value per diagonal.

# %%
from snippets.figures import rotary_scores_svg

HTML(img_tag(rotary_scores_svg(8)))

# %% [markdown]
# ## 8. Linear time
#
# The matrix product of chapter 2 does `T * T` multiply-adds per channel. The
# plain average needs far fewer: keep a running total, add one token per step,
# and divide by the count. `cumsum` gives all the running totals at once, and the
# result is the prefix mean again, with no `(T, T)` matrix:

# %%
b = torch.tensor([[2., 6.], [4., 0.], [6., 3.]])  # (T, C) = (3, 2)
totals = b.cumsum(dim=0)
print(totals)
print(totals / torch.arange(1, 4).unsqueeze(-1))  # divide row t by t + 1
xr = torch.randn(4, 64, 8)
print(torch.allclose(prefix_mean_cumsum(xr), prefix_mean_matmul(xr), atol=1e-6))

# %% [markdown]
# A running total has to be kept in enough precision. bfloat16 has 8 significant
# bits, so past 256 adding 1 rounds back to the same number, and a total of a
# thousand ones stalls. `prefix_mean_cumsum` keeps its totals in float32 and gets
# the mean of those ones right:

# %%
print("significant bits of bfloat16:", 1 - round(math.log2(torch.finfo(torch.bfloat16).eps)))
total = torch.tensor(0.0, dtype=torch.bfloat16)
for _ in range(1000):
    total += 1
print("1000 ones added in bfloat16:", total.item())
ones = torch.ones(1, 1000, 1, dtype=torch.bfloat16)
print("prefix_mean_cumsum, last mean:", prefix_mean_cumsum(ones)[0, -1].item())

# %% [markdown]
# Softmax attention cannot share running sums between queries, because each
# weight $e^{q_t \cdot k_s}$ mixes the query into the exponential. Linear
# attention replaces it by $\phi(q_t) \cdot \phi(k_s)$ with a positive feature map
# $\phi$; then two running sums over the keys serve every query, and the cost is
# linear in `T`. The running-sum form equals the masked `(T, T)` form:

# %%
from snippets.linear import causal_linear_attention, causal_linear_attention_quadratic

q, k, v = torch.randn(3, 2, 50, 8).unbind(0)  # each (B, T, D)
print(torch.allclose(causal_linear_attention(q, k, v), causal_linear_attention_quadratic(q, k, v),
                     atol=1e-5))

# %% [markdown]
# It is a different model, and less sharp. Give token $s$ a key along axis $s$
# and let every query look for token 2; with the identity as values, each output
# row is a row of weights. Softmax puts almost everything on token 2 once it can
# see it; linear attention keeps giving the other tokens a share:

# %%
keys = 5 * torch.eye(4)  # token s: a key along axis s
queries = (5 * torch.eye(4)[2]).expand(4, 4)  # every query: along axis 2
print(causal_attention(queries, keys, torch.eye(4)))
print(causal_linear_attention_quadratic(queries, keys, torch.eye(4)))

# %% [markdown]
# ## 9. Attention as a running sum
#
# For one query, softmax attention is a ratio of two sums over the keys,
# $\sum_j e^{s_j} v_j$ and $\sum_j e^{s_j}$, and a sum can be kept running. The
# catch is the exponential: in float32 it overflows to infinity already for
# scores of 100, and the third line below divides infinity by infinity. The fix
# is to keep a running maximum $m$ of the scores and both sums relative to it;
# when a new score raises the maximum, the sums so far are rescaled by
# $e^{m - m_\text{new}}$. That is the online softmax behind FlashAttention:

# %%
def one_query(s, v):
    m = torch.tensor(float("-inf"))  # largest score so far
    l = torch.tensor(0.0)  # sum of exp(s_j - m)
    acc = torch.zeros(v.shape[-1])  # sum of exp(s_j - m) * v_j
    for s_j, v_j in zip(s, v):
        m_new = torch.maximum(m, s_j)
        scale = torch.exp(m - m_new)  # puts the old sums on the new maximum
        p = torch.exp(s_j - m_new)
        l = l * scale + p
        acc = acc * scale + p * v_j
        m = m_new
    return acc / l


s = torch.tensor([0.0, math.log(2), 0.0])  # weights e^s: 1, 2, 1
v = torch.tensor([[4.0], [8.0], [0.0]])
big = s + 100
print("softmax:              ", torch.softmax(s, dim=0) @ v)
print("loop:                 ", one_query(s, v))
print("naive, scores + 100:  ", big.exp() @ v / big.exp().sum())
print("loop, scores + 100:   ", one_query(big, v))

# %% [markdown]
# By hand: the weights are 1, 2 and 1 out of 4, so the output is
# $(4 + 2 \cdot 8 + 0) / 4 = 5$. Adding 100 to every score changes no weight,
# and the loop still gives 5 up to float32 rounding: every exponential it takes
# is at most 1.
#
# `online_causal_attention` does this for all queries at once, one block of keys
# at a time. For each block only the queries that may see it take part, so no
# temporary tensor is `(T, T)`: the largest is a strip of scores `(T, block)`, the
# running output `(T, Dv)` or, for half-precision input, the float32 copy of the
# queries, `(T, D)`. The scores each block
# computes, numbered by block, for 7 positions and blocks of 3 (0: never computed):

# %%
from snippets.streaming import online_causal_attention

T, block = 7, 3
tiles = torch.zeros(T, T, dtype=torch.long)
for n, j in enumerate(range(0, T, block), start=1):
    tiles[j:, j : j + block] = n
tiles

# %% [markdown]
# It agrees with `causal_attention` and PyTorch's attention, here with a block
# that does not divide `T`, and it stays finite where the naive exponentials
# overflow (equal scores near 318: the prefix mean of 2, 4, 6, 8):

# %%
q, k, v = torch.randn(3, 2, 3, 10, 8).unbind(0)  # each (B, heads, T, D)
out = online_causal_attention(q, k, v, block=4)
print("vs causal_attention:", (out - causal_attention(q, k, v)).abs().max().item())
sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("vs PyTorch:         ", (out - sdpa).abs().max().item())
q = k = torch.full((4, 2), 15.0)
print("one score:", (q[0] @ k[0] / math.sqrt(2)).item())
print(online_causal_attention(q, k, torch.tensor([[2.0], [4.0], [6.0], [8.0]]), block=2))

# %% [markdown]
# ## 10. One kernel
#
# Every PyTorch operation is a kernel of its own that reads its inputs from memory
# and writes its result back. `prefix_mean_triton` is the prefix mean as one
# Triton kernel: each program owns one sequence and up to 64 channels, walks
# along `T` in tiles, scans each tile with `tl.cumsum`, adds the carry (the sum
# of all earlier tiles, chapter 9's running state), divides by `t + 1` and stores
# each mean once. When the batch fills the GPU it reads `x` once and writes once, as a copy does.
#
# On a CUDA GPU the kernel is compiled. Without one, Triton's interpreter runs it
# on the CPU, because the first cell set `TRITON_INTERPRET=1`. Where Triton is
# not installed (macOS, for example), the cell says so and does nothing.

# %%
import importlib.util

if importlib.util.find_spec("triton") is None:
    print("triton is not installed here, so this section's kernel cannot run")
else:
    from snippets.averaging import prefix_mean_cumsum
    from snippets.kernels import prefix_mean_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]], device=device)  # (T, C)
    print(prefix_mean_triton(x).cpu())
    x = torch.randn(2, 100, 5, device=device)  # T = 100: two tiles of 64 steps
    print("vs cumsum:", (prefix_mean_triton(x) - prefix_mean_cumsum(x)).abs().max().item())

# %% [markdown]
# ## 11. Inference with a KV cache
#
# A GPT writes one token at a time. Thanks to the causal mask, a new token changes
# no earlier output, so the keys and values of earlier tokens can be kept from
# step to step, in a KV cache, and each step computes only the new rows. With
# `T_new` new queries against `T_all` keys, new query $i$ is token
# `T_all - T_new + i`: the causal triangle sits in the lower-right corner of the
# `(T_new, T_all)` weights.
#
# `F.scaled_dot_product_attention(..., is_causal=True)` aligns it top-left
# instead. With all scores zero and the identity as values, each output row shows
# its weights: 2 new queries against 5 keys see only keys 0 and 0 to 1, not 0 to 3
# and 0 to 4. `causal_lower_right` builds the right mask:

# %%
from torch.nn.attention.bias import causal_lower_right

q_new, k_all, v_all = torch.zeros(2, 4), torch.zeros(5, 4), torch.eye(5)
print(F.scaled_dot_product_attention(q_new, k_all, v_all, is_causal=True))
print(F.scaled_dot_product_attention(q_new, k_all, v_all, attn_mask=causal_lower_right(2, 5)))

# %% [markdown]
# `Head` and `MultiHeadAttention` take a `KVCache` as a second argument; `x` then
# holds only the new tokens. Decoding one token at a time, or in chunks, gives
# the rows of the full forward:

# %%
from snippets.inference import KVCache, decode_macs

torch.manual_seed(3)
head = Head(n_embd=4, head_size=3, block_size=8)
x = torch.randn(1, 7, 4)  # (B, T, n_embd)
with torch.no_grad():
    full = head(x)
    cache = KVCache()
    steps = torch.cat([head(x[:, t : t + 1], cache) for t in range(7)], dim=1)
    print(cache)
    print("one at a time:", torch.allclose(steps, full, atol=1e-6))
    cache.reset()
    chunks = [head(x[:, :3], cache), head(x[:, 3:5], cache), head(x[:, 5:], cache)]
    chunks = torch.cat(chunks, dim=1)
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
    print(f"{T:2} {decode_macs(T, 8, cached=False):9} {decode_macs(T, 8, cached=True):6}")

# %% [markdown]
# The cache still grows by one key and one value per token. Linear attention
# (section 8) needs no such list: its two running sums are its whole state, the
# same size after any number of tokens.
#
# ## 12. Pitfalls
#
# A row that may look at no position gives NaN: every score is $-\infty$ and the
# softmax computes $0 / 0$. A causal mask combined with a padding mask does that
# to the padding tokens at the start. Letting every token also see itself fixes it:

# %%
T = 4
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # True = may look
real = torch.tensor([False, False, True, True])  # tokens 0 and 1 are padding
for allowed in (causal & real, causal & real | torch.eye(T, dtype=torch.bool)):
    print(torch.softmax(torch.zeros(T, T).masked_fill(~allowed, float("-inf")), dim=-1))

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
print((~causal).half() * big)

# %% [markdown]
# And dropout: a module starts in training mode, where dropout makes two calls on
# the same input differ. Switch to evaluation mode for inference and for tests:

# %%
head = Head(n_embd=4, head_size=2, block_size=8, dropout=0.5)
x = torch.randn(1, 6, 4)
print("training:", torch.equal(head(x), head(x)))
head.eval()
print("eval:    ", torch.equal(head(x), head(x)))
