"""The site's one non-finite policy, for every public function and module.

A nan or inf at position j never changes an output at a position before j: those
outputs are bit for bit what they are without it (chapter 12, "Non-finite
inputs"). Nothing is checked against the values, so nothing here raises.
"""

from __future__ import annotations

import pytest
import torch

import snippets
from snippets import (
    Head,
    KVCache,
    MultiHeadAttention,
    causal_attention,
    causal_linear_attention,
    causal_linear_attention_quadratic,
    prefix_mean_cumsum,
    prefix_mean_fast,
    prefix_mean_loop,
    prefix_mean_matmul,
    prefix_mean_softmax,
)
from snippets.positions import apply_rotary
from snippets.streaming import online_causal_attention


def _module(cls, *args):
    torch.manual_seed(0)
    module = cls(*args)
    return lambda x: module(x)


def _cached(cls, *args):
    """The module fed through a KVCache in chunks; the last two hold the bad position and earlier ones."""
    torch.manual_seed(0)
    module = cls(*args)

    def decode(x):
        cache, T = KVCache(), x.shape[1]
        bounds = [0, 1, 3, T // 2 + 2, T]
        return torch.cat([module(x[:, a:b], cache) for a, b in zip(bounds, bounds[1:])], dim=1)
    return decode


def _qkv(f, which):
    """Call f(q, k, v) with x's channels as q, k and v; the bad value goes into `which` only."""
    def call(x, clean):
        q, k, v = (x if name == which else clean for name in "qkv")
        return f(q[..., :4], k[..., :4], v)
    return call


# name -> (make input of shape (B, T, C), list of (label, call(x_with_bad, x_clean)))
SEQUENCE = {
    "prefix_mean_loop": prefix_mean_loop,
    "prefix_mean_matmul": prefix_mean_matmul,
    "prefix_mean_softmax": prefix_mean_softmax,
    "prefix_mean_cumsum": prefix_mean_cumsum,
    "prefix_mean_fast": prefix_mean_fast,
    "Head": _module(Head, 8, 4, 2048),
    "MultiHeadAttention": _module(MultiHeadAttention, 8, 2, 2048),
    "apply_rotary": apply_rotary,  # position by position: nothing crosses time at all
    "KVCache": _cached(MultiHeadAttention, 8, 2, 2048),  # tests/test_inference.py: Head too
}
QKV = {
    "causal_attention": causal_attention,
    "causal_linear_attention": causal_linear_attention,
    "causal_linear_attention_quadratic": causal_linear_attention_quadratic,
    "online_causal_attention": lambda q, k, v: online_causal_attention(q, k, v, block=4),  # 9 = 4 + 4 + 1
}
NOT_SEQUENCES = {"causal_mean_weights", "sinusoidal_positions", "decode_macs"}  # sizes, not tensors
TOKENS = {"lookback_batch", "OneHeadModel", "train"}  # integer tokens: they cannot be inf or nan


# A Triton kernel: tests/test_kernels.py checks the same rule bit for bit, on its single-pass and
# split paths, where triton can be imported.
KERNELS = {"prefix_mean_triton"}


def test_every_public_name_is_covered():
    assert set(snippets.__all__) == set(SEQUENCE) | set(QKV) | NOT_SEQUENCES | TOKENS | KERNELS


def _cases():
    for name in SEQUENCE:
        yield pytest.param(name, None, id=name)
    for name in QKV:
        for which in "qkv":
            yield pytest.param(name, which, id=f"{name}-{which}")


@pytest.mark.parametrize(("name", "which"), list(_cases()))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=str)
@pytest.mark.parametrize("where", ["last", "middle"])
def test_a_bad_value_never_changes_earlier_outputs(name, which, bad, where):
    # T * C = 2**18 numbers per sequence pair: prefix_mean_fast takes its blocked path.
    B, T, C = (2, 1024, 128) if name == "prefix_mean_fast" else (2, 9, 8)
    torch.manual_seed(1)
    x = torch.randn(B, T, C)
    j = T - 1 if where == "last" else T // 2
    dirty = x.clone()
    dirty[:, j, :3] = bad
    if which is None:
        f = SEQUENCE[name]
        clean_out, out = f(x), f(dirty)
    else:
        call = _qkv(QKV[name], which)
        clean_out, out = call(x, x), call(dirty, x)
    assert torch.equal(out[:, :j], clean_out[:, :j]), f"{name}: a bad value at {j} changed the past"
    assert out.shape == clean_out.shape


@pytest.mark.parametrize("name", ["prefix_mean_matmul", "prefix_mean_softmax"])
def test_products_mark_the_position_of_a_bad_value_and_after_as_nan(name):
    x = torch.tensor([[1.0], [2.0], [float("inf")], [4.0]])
    out = SEQUENCE[name](x)
    assert torch.equal(out[:2], torch.tensor([[1.0], [1.5]])) and out[2:].isnan().all()
