"""The four prefix means and the weights: agreement, gradients, contracts, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from snippets.averaging import (
    causal_mean_weights,
    prefix_mean_cumsum,
    prefix_mean_loop,
    prefix_mean_matmul,
    prefix_mean_softmax,
)
from tests.refusals import assert_refuses
from tests.strategies import batches, reference

METHODS = [prefix_mean_loop, prefix_mean_matmul, prefix_mean_softmax, prefix_mean_cumsum]
# Each output is a mean of at most 64 standard-normal values; the versions sum in
# different orders, so they may differ by a few units in the last place.
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}


@given(batches())
def test_all_versions_agree_with_the_definition(x):
    want = reference(x).to(x.dtype)
    for f in METHODS:
        got = f(x)
        assert got.shape == x.shape and got.dtype == x.dtype, f.__name__
        torch.testing.assert_close(got, want, **TOL[x.dtype], msg=f.__name__)


@given(st.integers(1, 64), st.sampled_from([torch.float32, torch.float64]))
def test_weights_are_causal_rows_of_equal_shares(T, dtype):
    W = causal_mean_weights(T, dtype=dtype)
    assert W.shape == (T, T) and W.dtype == dtype
    assert torch.equal(W.triu(diagonal=1), torch.zeros_like(W))
    counts = torch.arange(1, T + 1, dtype=torch.float64)
    want = torch.tril(torch.ones(T, T, dtype=torch.float64)) / counts[:, None]
    torch.testing.assert_close(W.double(), want, rtol=0, atol=torch.finfo(dtype).eps)
    torch.testing.assert_close(W.sum(dim=1).double(), torch.ones(T, dtype=torch.float64),
                               rtol=0, atol=4 * torch.finfo(dtype).eps)


@given(batches())
def test_weights_times_x_is_the_prefix_mean(x):
    W = causal_mean_weights(x.shape[-2], dtype=x.dtype)
    torch.testing.assert_close(W @ x, prefix_mean_loop(x), **TOL[x.dtype])


def test_cumsum_keeps_bfloat16_totals_exact_for_long_sequences():
    # Every running mean of 3.0 is 3.0, however long the sequence, if the
    # running total is not rounded to bfloat16 along the way.
    x = torch.full((1, 4096, 2), 3.0, dtype=torch.bfloat16)
    assert torch.equal(prefix_mean_cumsum(x), x)


# ---- bad input: the function names the argument, what it got and what it expects ----

# (x, exception, what the message shows it got); the argument named is x. The whole sentences
# are on page 1, whose examples run under Sybil.
BAD_X = [
    ([1.0, 2.0], TypeError, "got list"),
    (torch.ones(4), ValueError, "got shape (4,)"),
    (torch.ones(1, 2, 3, 4), ValueError, "got shape (1, 2, 3, 4)"),
    (torch.ones(2, 0, 3), ValueError, "got shape (2, 0, 3)"),
    (torch.ones(0, 3), ValueError, "got shape (0, 3)"),
    (torch.ones(2, 3, dtype=torch.int64), TypeError, "got torch.int64"),
    (torch.ones(2, 3, dtype=torch.bool), TypeError, "got torch.bool"),
    (torch.ones(2, 3, dtype=torch.complex64), TypeError, "got torch.complex64"),
]


@pytest.mark.parametrize("f", METHODS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("x", "error", "got"), BAD_X, ids=[g for *_, g in BAD_X])
def test_bad_x_is_refused_clearly(f, x, error, got):
    assert_refuses(error, "x", f, x, got=got)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "arg", "got"),
    [
        ((0,), {}, ValueError, "T", "got 0"),
        ((-3,), {}, ValueError, "T", "got -3"),
        ((2.0,), {}, TypeError, "T", "got float"),
        ((True,), {}, TypeError, "T", "got bool"),
        ((torch.tensor(3),), {}, TypeError, "T", "got Tensor"),
        ((3,), {"dtype": torch.int64}, TypeError, "dtype", "got torch.int64"),
        ((3,), {"dtype": "float32"}, TypeError, "dtype", "got float32"),
    ],
)
def test_bad_weights_arguments_are_refused_clearly(args, kwargs, error, arg, got):
    assert_refuses(error, arg, causal_mean_weights, *args, got=got, **kwargs)


@pytest.mark.parametrize("f", [prefix_mean_loop, prefix_mean_cumsum], ids=lambda f: f.__name__)
def test_scans_keep_a_late_inf_out_of_earlier_positions(f):
    x = torch.tensor([[1.0], [2.0], [float("inf")]])
    out = f(x)
    assert torch.equal(out[:2], torch.tensor([[1.0], [1.5]])) and out[2].isinf().all()


@pytest.mark.parametrize("device", ["nope", "cuda:99"])
def test_weights_on_an_unusable_device_are_refused_clearly(device):
    assert_refuses(ValueError, "device", causal_mean_weights, 3, device=device, got=f"'{device}'")


@pytest.mark.parametrize("f", [prefix_mean_matmul, prefix_mean_softmax], ids=lambda f: f.__name__)
def test_products_mark_the_position_of_a_bad_value_and_after_as_nan(f):
    # tests/test_contracts.py: a bad value never changes earlier outputs; a product spreads it on.
    x = torch.tensor([[1.0], [2.0], [float("inf")], [4.0]])
    out = f(x)
    assert torch.equal(out[:2], torch.tensor([[1.0], [1.5]])) and out[2:].isnan().all()
