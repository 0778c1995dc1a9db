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
# # Notebook 10: One kernel
#
# The tenth chapter's idea: every PyTorch operation is a kernel of its own that
# reads its inputs from memory and writes its result back. `prefix_mean_triton`
# is the prefix mean as one Triton kernel: each program takes up to 64 channels
# of one sequence, walks along `T` in tiles of 64 rows, scans each tile with
# `tl.cumsum`, adds the carry (the sum of the rows before the tile, chapter 9's
# running state), divides by `t + 1` and stores each mean. The chapter's page has
# the full argument, the validated code and the exercises.
#
# On a CUDA GPU the kernel is compiled. Without one, Triton's interpreter runs it
# on the CPU: the next cell asks for the interpreter before anything imports
# triton. Where Triton is not installed (macOS, for example), the cells below say
# so and do nothing.

# %%
import importlib.util
import os

import torch

if not torch.cuda.is_available():
    # read when triton is first imported
    os.environ.setdefault("TRITON_INTERPRET", "1")
HAVE_TRITON = importlib.util.find_spec("triton") is not None
device = "cuda" if torch.cuda.is_available() else "cpu"
print("triton installed:", HAVE_TRITON, "| device:", device)

# %% [markdown]
# Three tokens with two channels, small enough to check by hand: row $t$ is the
# mean of rows $0..t$.

# %%
if HAVE_TRITON:
    from snippets.kernels import prefix_mean_triton

    x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]], device=device)  # (T, C)
    print(prefix_mean_triton(x).cpu())
else:
    print("triton is not installed here, so this notebook's kernel cannot run")

# %% [markdown]
# A sequence of 100 tokens takes two tiles of 64 rows, so the means of the second
# tile need the sum of the first. The kernel agrees with `prefix_mean_cumsum` up
# to float32 rounding:

# %%
if HAVE_TRITON:
    from snippets.averaging import prefix_mean_cumsum

    torch.manual_seed(0)
    x = torch.randn(2, 100, 5, device=device)  # (B, T, C)
    gap = (prefix_mean_triton(x) - prefix_mean_cumsum(x)).abs().max()
    print("vs cumsum:", gap.item())
else:
    print("triton is not installed here, so this notebook's kernel cannot run")
