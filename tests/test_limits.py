"""Limits a careful user hits: the blocked path compiled, memory, checkpoints, derivatives."""

from __future__ import annotations

import pytest
import torch

import snippets
from snippets import Head, MultiHeadAttention, causal_mean_weights, prefix_mean_fast
from snippets.linear import _SMALL

# Compiling each public name into one graph and running it on the meta device are contract
# properties: tests/test_contracts.py runs them over the registry of tests/contracts.py.


def test_the_blocked_path_compiles_too():
    torch._dynamo.reset()
    big = torch.randn(2, 1024, 128)
    assert big.numel() >= _SMALL
    compiled = torch.compile(prefix_mean_fast, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(big), prefix_mean_fast(big), rtol=0, atol=0)


# lookback_batch draws tokens with a CPU torch.Generator: data, not a computation to shape-check.
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
