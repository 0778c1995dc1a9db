"""prefix_mean_fast and causal linear attention: agreement with the definitions, contracts, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.attention import causal_attention
from snippets.averaging import prefix_mean_cumsum
from snippets.linear import causal_linear_attention, causal_linear_attention_quadratic, prefix_mean_fast

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}


def reference(x):
    # The definition, one row at a time, in float64.
    xd = x.double()
    rows = [xd[..., : t + 1, :].mean(dim=-2) for t in range(x.shape[-2])]
    return torch.stack(rows, dim=-2)


@st.composite
def batches(draw, dtypes=(torch.float32, torch.float64), max_T=80):
    B = draw(st.integers(1, 6))
    T = draw(st.integers(1, max_T))
    C = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from(dtypes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = torch.randn(B, T, C, generator=g, dtype=dtype)
    return x if draw(st.booleans()) else x[0]


@settings(max_examples=40, deadline=None)
@given(batches())
def test_fast_agrees_with_the_definition(x):
    got = prefix_mean_fast(x)
    assert got.shape == x.shape and got.dtype == x.dtype and got.device == x.device
    torch.testing.assert_close(got, reference(x).to(x.dtype), **TOL[x.dtype])


# 1, primes, one less and one more than a multiple of the block, long enough for many blocks.
@pytest.mark.parametrize("T", [1, 2, 3, 5, 7, 13, 15, 16, 17, 31, 32, 33, 97, 255, 257, 1031])
def test_fast_at_awkward_lengths(T):
    x = torch.randn(3, T, 4, dtype=torch.float64)
    torch.testing.assert_close(prefix_mean_fast(x), reference(x), **TOL[torch.float64])
    torch.testing.assert_close(prefix_mean_fast(x[1]), reference(x[1]), **TOL[torch.float64])


def test_fast_batches_larger_than_one_step():
    # Many short sequences are processed a group at a time; every group must be right.
    x = torch.randn(300, 40, 30, dtype=torch.float64)
    torch.testing.assert_close(prefix_mean_fast(x), reference(x), **TOL[torch.float64])


def test_fast_gradcheck():
    x = torch.randn(2, 37, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(prefix_mean_fast, (x,))


def test_fast_does_not_modify_input_and_returns_new_tensor():
    x = torch.randn(3, 20, 4)
    before = x.clone()
    out = prefix_mean_fast(x)
    assert torch.equal(x, before) and out.data_ptr() != x.data_ptr()


def test_fast_on_a_non_contiguous_view():
    x = torch.randn(4, 19, 5).transpose(0, 2)  # (5, 19, 4), strided
    torch.testing.assert_close(prefix_mean_fast(x), reference(x).float())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fast_low_precision_keeps_dtype_and_matches_cumsum(dtype):
    x = torch.randn(2, 300, 8).to(dtype)
    got = prefix_mean_fast(x)
    assert got.dtype == dtype
    # Both accumulate in float32 and round once at the end: at most one unit apart.
    torch.testing.assert_close(got.float(), prefix_mean_cumsum(x).float(), rtol=2 ** -7, atol=2 ** -9)


def test_fast_keeps_bfloat16_totals_exact_for_long_sequences():
    x = torch.full((1, 4099, 2), 3.0, dtype=torch.bfloat16)
    assert torch.equal(prefix_mean_fast(x), x)


def test_fast_is_causal():
    x = torch.randn(2, 50, 3)
    y = x.clone()
    y[:, 30:] += 100.0
    assert torch.equal(prefix_mean_fast(x)[:, :30], prefix_mean_fast(y)[:, :30])
    assert not torch.allclose(prefix_mean_fast(x)[:, 30:], prefix_mean_fast(y)[:, 30:])


BAD_X = [
    ([1.0, 2.0], TypeError, r"x must be a torch\.Tensor, got list"),
    (torch.ones(4), ValueError, r"got shape \(4,\)"),
    (torch.ones(1, 2, 3, 4), ValueError, r"got shape \(1, 2, 3, 4\)"),
    (torch.ones(2, 0, 3), ValueError, r"with T >= 1, got shape \(2, 0, 3\)"),
    (torch.ones(2, 3, dtype=torch.int64), TypeError, r"x must have a floating dtype, got torch\.int64"),
    (torch.ones(2, 3, dtype=torch.complex64), TypeError, r"got torch\.complex64"),
]


@pytest.mark.parametrize(("x", "error", "message"), BAD_X, ids=[m for *_, m in BAD_X])
def test_fast_bad_x_is_refused_clearly(x, error, message):
    with pytest.raises(error, match=rf"^prefix_mean_fast: .*{message}"):
        prefix_mean_fast(x)


# ---- causal linear attention ----

LINEAR = [causal_linear_attention, causal_linear_attention_quadratic]


@st.composite
def qkvs(draw, dtypes=(torch.float32, torch.float64)):
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    T, D, Dv = draw(st.integers(1, 24)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(dtypes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    q = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    k = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    v = torch.randn(*lead, T, Dv, generator=g, dtype=dtype)
    return q, k, v


def linear_reference(q, k, v):
    # The definition: weights phi(q_t) . phi(k_s) for s <= t, normalised, in float64.
    phi = lambda a: torch.nn.functional.elu(a.double()) + 1  # noqa: E731
    T = q.shape[-2]
    rows = []
    for t in range(T):
        w = (phi(q[..., t : t + 1, :]) * phi(k[..., : t + 1, :])).sum(-1)  # (..., t+1)
        rows.append((w.unsqueeze(-1) * v[..., : t + 1, :].double()).sum(-2) / w.sum(-1, keepdim=True))
    return torch.stack(rows, dim=-2)


@settings(max_examples=30, deadline=None)
@given(qkvs())
def test_linear_attention_both_forms_match_the_definition(qkv):
    q, k, v = qkv
    want = linear_reference(q, k, v).to(q.dtype)
    for f in LINEAR:
        got = f(q, k, v)
        assert got.shape == v.shape and got.dtype == q.dtype, f.__name__
        torch.testing.assert_close(got, want, **{torch.float32: dict(rtol=1e-4, atol=1e-5),
                                                 torch.float64: dict(rtol=1e-10, atol=1e-12)}[q.dtype])


@pytest.mark.parametrize("f", LINEAR, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_linear_attention_low_precision_keeps_dtype_and_stays_close(f, dtype):
    q, k, v = torch.randn(3, 2, 3, 40, 8).unbind(0)
    got = f(q.to(dtype), k.to(dtype), v.to(dtype))
    assert got.dtype == dtype and got.isfinite().all()
    want = linear_reference(q.to(dtype), k.to(dtype), v.to(dtype))  # exact, from the rounded inputs
    torch.testing.assert_close(got.double(), want, atol=2 * torch.finfo(dtype).eps, rtol=2 * torch.finfo(dtype).eps)


@pytest.mark.parametrize("f", LINEAR, ids=lambda f: f.__name__)
def test_linear_attention_gradcheck(f):
    q, k, v = (torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(f, (q, k, v))


@pytest.mark.parametrize("f", LINEAR, ids=lambda f: f.__name__)
def test_linear_attention_is_causal(f):
    q, k, v = torch.randn(3, 2, 10, 4).unbind(0)
    k2, v2 = k.clone(), v.clone()
    k2[:, 6:] += 3.0
    v2[:, 6:] -= 5.0
    torch.testing.assert_close(f(q, k, v)[:, :6], f(q, k2, v2)[:, :6], rtol=0, atol=0)


@pytest.mark.parametrize("f", LINEAR, ids=lambda f: f.__name__)
def test_linear_attention_with_equal_scores_is_the_prefix_mean(f):
    q = k = torch.zeros(2, 9, 3)
    v = torch.randn(2, 9, 4)
    torch.testing.assert_close(f(q, k, v), prefix_mean_cumsum(v))


def test_linear_attention_is_not_softmax_attention():
    # Same q, k, v, different weights: linear attention is a different model, not a shortcut.
    q, k, v = torch.randn(3, 1, 12, 4).unbind(0)
    assert not torch.allclose(causal_linear_attention(q, k, v), causal_attention(q, k, v), atol=1e-3)


@pytest.mark.parametrize("f", LINEAR, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (([1.0], torch.ones(2, 2), torch.ones(2, 2)), TypeError, r"q must be a torch\.Tensor, got list"),
        ((torch.ones(2, 2), torch.ones(2, 2, dtype=torch.long), torch.ones(2, 2)), TypeError,
         r"k must have a floating dtype, got torch\.int64"),
        ((torch.ones(3), torch.ones(3), torch.ones(3)), ValueError, r"q must have shape \(\.\.\., T, D\) .*got shape \(3,\)"),
        ((torch.ones(0, 2), torch.ones(0, 2), torch.ones(0, 2)), ValueError, r"T, D >= 1, got shape \(0, 2\)"),
        ((torch.ones(4, 2), torch.ones(4, 3), torch.ones(4, 2)), ValueError, r"got q \(4, 2\), k \(4, 3\), v \(4, 2\)"),
        ((torch.ones(4, 2), torch.ones(4, 2), torch.ones(5, 2)), ValueError, r"got q \(4, 2\), k \(4, 2\), v \(5, 2\)"),
        ((torch.ones(4, 2), torch.ones(4, 2, dtype=torch.float64), torch.ones(4, 2)), TypeError,
         r"must share a dtype, got torch\.float32, torch\.float64, torch\.float32"),
    ],
)
def test_linear_attention_bad_input_is_refused_clearly(f, args, error, message):
    with pytest.raises(error, match=rf"^{f.__name__}: .*{message}"):
        f(*args)


@pytest.mark.parametrize("shape", [(0, 5, 3), (2, 5, 0), (5, 0), (3, 17, 0)], ids=str)
def test_fast_empty_batch_or_channels(shape):
    x = torch.randn(shape)
    out = prefix_mean_fast(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, prefix_mean_cumsum(x))


@pytest.mark.parametrize("T", [1, 15, 16, 17, 50])
@pytest.mark.parametrize("squeeze", [False, True])
def test_fast_gradient_equals_the_cumsum_gradient(T, squeeze):
    x = torch.randn(3, T, 5, dtype=torch.float64)
    x = x[0] if squeeze else x
    g = torch.randn_like(x)
    grads = []
    for f in (prefix_mean_fast, prefix_mean_cumsum):
        xx = x.clone().requires_grad_()
        (grad,) = torch.autograd.grad(f(xx), xx, g)
        grads.append(grad)
    torch.testing.assert_close(grads[0], grads[1], **TOL[torch.float64])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fast_gradient_in_low_precision_keeps_dtype(dtype):
    x = torch.randn(2, 40, 3).to(dtype).requires_grad_()
    g = torch.randn(2, 40, 3).to(dtype)
    (grad,) = torch.autograd.grad(prefix_mean_fast(x), x, g)
    assert grad.dtype == dtype
    xf = x.detach().float().requires_grad_()
    (want,) = torch.autograd.grad(prefix_mean_cumsum(xf), xf, g.float())
    torch.testing.assert_close(grad.float(), want, rtol=2**-7, atol=2**-9)


def test_fast_double_backward_is_refused_not_wrong():
    x = torch.randn(1, 8, 2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(prefix_mean_fast(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()
