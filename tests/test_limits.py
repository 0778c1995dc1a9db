"""Limits a careful user hits: compilation, the meta device, memory, checkpoints, derivatives."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import snippets
from snippets import Head, MultiHeadAttention, causal_mean_weights, prefix_mean_fast
from snippets.linear import _SMALL
from tests.pages import ROOT

x = torch.randn(2, 9, 8, generator=torch.Generator().manual_seed(0))
NO_TENSORS = {"decode_macs"}  # counts operations from sizes: no tensor in or out
# A training loop: it steps an optimizer and reads the loss; chapter 6 says to compile the model.
NOT_COMPILED = {"train"}
# A Triton kernel launched from an autograd.Function: on a CPU it runs in Triton's interpreter,
# which torch.compile cannot trace; compiling it adds nothing to a kernel that is already one.
NOT_COMPILED_KERNELS = {"prefix_mean_triton"}
TENSOR_NAMES = [name for name in snippets.__all__ if name not in NO_TENSORS | NOT_COMPILED]
idx = torch.randint(5, (2, 9), generator=torch.Generator().manual_seed(0))  # tokens of a vocab of 5


class _Decoder(torch.nn.Module):
    """KVCache in use: a MultiHeadAttention fed x in two chunks through a fresh cache."""

    def __init__(self):
        super().__init__()
        self.mha = MultiHeadAttention(8, 2, 16)

    def forward(self, x):
        cache = snippets.KVCache()
        return torch.cat([self.mha(x[:, :4], cache), self.mha(x[:, 4:], cache)], dim=1)


def _call(name, f):
    if name == "causal_mean_weights":
        return f(5)
    if name == "lookback_batch":
        torch.manual_seed(0)  # the same tokens for the compiled and the plain call
        return f(2, 9, 5)
    if name == "OneHeadModel":
        return f(idx)[0]
    if name == "sinusoidal_positions":
        return f(5, 8)
    if name in ("Head", "MultiHeadAttention", "KVCache"):
        return f(x)
    if "attention" in name:
        return f(x, x, x)
    return f(x)


def _callable(name):
    obj = getattr(snippets, name)
    if name == "Head":
        torch.manual_seed(0)
        return obj(8, 4, 16)
    if name == "MultiHeadAttention":
        torch.manual_seed(0)
        return obj(8, 2, 16)
    if name == "KVCache":
        torch.manual_seed(0)
        return _Decoder()
    if name == "OneHeadModel":
        torch.manual_seed(0)
        return obj(5, 8, 16)
    return obj


def test_names_left_out_are_public_names():
    assert NO_TENSORS | NOT_COMPILED <= set(snippets.__all__)
    assert "torch.compile(model)" in (ROOT / "docs/06-learning.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [n for n in TENSOR_NAMES if n not in NOT_COMPILED_KERNELS])
def test_compiles_into_one_graph(name):
    """fullgraph=True fails on any graph break, as a check that reads a value would cause."""
    torch._dynamo.reset()
    f = _callable(name)
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    torch.testing.assert_close(_call(name, compiled), _call(name, f), rtol=0, atol=0)


def test_the_blocked_path_compiles_too():
    torch._dynamo.reset()
    big = torch.randn(2, 1024, 128)
    assert big.numel() >= _SMALL
    compiled = torch.compile(prefix_mean_fast, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(big), prefix_mean_fast(big), rtol=0, atol=0)


# lookback_batch draws tokens with a CPU torch.Generator: data, not a computation to shape-check.
@pytest.mark.parametrize("name", [n for n in TENSOR_NAMES if n != "lookback_batch"])
def test_runs_on_the_meta_device(name):
    """Shapes without data: nothing reads a value, so nothing fails."""
    if name in NOT_COMPILED_KERNELS and importlib.util.find_spec("triton") is None:
        pytest.skip("needs triton, which cannot be imported here")
    global x, idx
    real, real_idx = x, idx
    x, idx = torch.empty(2, 9, 8, device="meta"), idx.to("meta")
    try:
        f = _callable(name)
        if isinstance(f, torch.nn.Module):
            f = f.to("meta")
        if name == "causal_mean_weights":
            out = f(5, device="meta")
        elif name == "sinusoidal_positions":
            out = f(5, 8, device="meta")
        else:
            out = _call(name, f)
    finally:
        x, idx = real, real_idx
    assert out.device.type == "meta"
    assert out.shape == _call(name, _callable(name)).shape


def test_an_allocation_failure_is_reported_as_one_with_its_size():
    with pytest.raises(MemoryError, match=r"^causal_mean_weights: a \(1000000, 1000000\) torch\.float32 "
                                          r"matrix needs 3\.73e\+03 GiB and could not be allocated"):
        causal_mean_weights(10**6)


@pytest.mark.parametrize("make", [lambda: Head(8, 8, 32768), lambda: MultiHeadAttention(8, 2, 32768)],
                         ids=["Head", "MultiHeadAttention"])
def test_a_long_block_size_allocates_only_the_weights(make):
    module = make()
    tensors = list(module.parameters()) + list(module.buffers())
    assert sum(t.numel() for t in tensors) < 1000  # no 32768**2 mask
    assert all(not k.endswith("tril") for k in module.state_dict())


@pytest.mark.parametrize("cls,args", [(Head, (4, 3, 8)), (MultiHeadAttention, (4, 2, 8))],
                         ids=["Head", "MultiHeadAttention"])
def test_no_state_dict_makes_a_module_see_the_future(cls, args):
    torch.manual_seed(0)
    module = cls(*args)
    # Earlier versions saved the mask as "tril"; an all-ones one would unmask the future.
    old = dict(module.state_dict(), tril=torch.ones(8, 8, dtype=torch.bool))
    fresh = cls(*args)
    fresh.load_state_dict(old)  # strict: loads, the old mask is skipped
    xs = torch.randn(1, 6, 4)
    changed = xs.clone()
    changed[:, -1] += 1.0
    assert torch.equal(fresh(xs)[:, :-1], fresh(changed)[:, :-1])  # still causal
    torch.testing.assert_close(fresh(xs), module(xs), rtol=0, atol=0)


def test_double_backward_works_on_both_paths():
    for shape in [(2, 16, 3), (2, 512, 256)]:  # the cumsum path, then the blocked one
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        assert (x.numel() >= _SMALL) == (shape[1] == 512)
        # out is linear in x, so the second derivative of a quadratic is fixed: check it exactly.
        (g,) = torch.autograd.grad(prefix_mean_fast(x).pow(2).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), x)
        y = x.detach().clone().requires_grad_()
        (h,) = torch.autograd.grad(snippets.prefix_mean_cumsum(y).pow(2).sum(), y, create_graph=True)
        (hh,) = torch.autograd.grad(h.sum(), y)
        torch.testing.assert_close(gg, hh)
