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
# # Notebook 6: Learning the weights
#
# The sixth chapter's idea: one head learns where to look. The task: at every
# position, output the token that came two places earlier. The equal average
# cannot do that; the head must put its weight on position $t - 2$. The chapter's
# page has the full argument, the validated code and the exercises.

# %%
import math
import time

import torch
from IPython.display import HTML

from snippets.figures import img_tag, learned_weights_svg
from snippets.learning import OneHeadModel, lookback_batch, train

torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# `lookback_batch` makes random sequences and their targets; the first two
# positions have nothing two places back, and their target `-100` is skipped by
# the loss (`F.cross_entropy`'s `ignore_index`).

# %%
data = torch.Generator().manual_seed(1)
seq, target = lookback_batch(1, 8, 8, generator=data)  # B, T, vocab
print(seq)  # (B, T)
print(target)  # (B, T)

# %% [markdown]
# The model: a table of token vectors plus a table of position vectors (chapter 7
# says why attention needs the second), one head, and a linear map to one score
# per possible token. `train` runs AdamW on fresh random batches and returns the
# loss of every step. With the seeds fixed the run repeats exactly; it is the
# run of chapter 6, whose page checks its losses and weights. The first loss is
# near $\ln 8$, the loss of giving each of the 8 tokens the same probability, and
# the loss then falls towards zero:

# %%
torch.manual_seed(0)
model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
start = time.perf_counter()
batches = torch.Generator().manual_seed(0)
losses = train(model, steps=100, generator=batches)  # (steps,)
print(f"100 steps in {time.perf_counter() - start:.1f} s")
print("ln 8:", round(math.log(8), 2))
every_tenth = [round(loss, 2) for loss in losses[::10].tolist()]
print("loss at steps 0, 10, ..., 90:", every_tenth)
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
HTML(img_tag(learned_weights_svg()))

# %% [markdown]
# Nothing in the recipe of chapter 3 changed: scores, $-\infty$ for the future, a
# softmax. Only the scores are learned now. In row 5 of the trained head, the
# score of position 3 is the largest:

# %%
scores = model.attention_scores(seq)  # (B, T, T), future already -inf
print(scores[0, 5])
print(torch.equal(torch.softmax(scores, dim=-1), model.attention_weights(seq)))
