"""The traps of chapter 12 are real in the installed torch, and each fix works.

If a torch release changes one of these behaviours, a test here fails and the
page's explanation has to be revisited.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from snippets.attention import Head, MultiHeadAttention, causal_attention
from tests.marks import needs_cuda


def masks(T, n_pad):
    """(causal, real): True = may look; the first n_pad tokens are left padding."""
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    real = torch.arange(T) >= n_pad
    return causal, real


def masked_softmax(scores, allowed, fill=float("-inf")):
    return torch.softmax(scores.masked_fill(~allowed, fill), dim=-1)


@given(st.integers(2, 12), st.data())
def test_fully_masked_rows_give_nan_and_the_diagonal_fixes_it(T, data):
    n_pad = data.draw(st.integers(1, T - 1))
    causal, real = masks(T, n_pad)
    scores = torch.randn(T, T)
    wei = masked_softmax(scores, causal & real)
    assert wei[:n_pad].isnan().all() and not wei[n_pad:].isnan().any()
    v = torch.randn(T, 3)
    assert (wei @ (wei @ v)).isnan().all()  # the next layer spreads it to every row
    fixed = masked_softmax(scores, causal & real | torch.eye(T, dtype=torch.bool))
    assert not fixed.isnan().any()
    torch.testing.assert_close(fixed[n_pad:], wei[n_pad:])  # real tokens are unaffected
    torch.testing.assert_close(fixed.sum(-1), torch.ones(T))


def test_sdpa_fully_masked_row_is_nan_or_zero_never_an_average():
    causal, real = masks(4, 2)
    q, k, v = torch.randn(3, 1, 4, 8).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal & real)[0]
    for row in out[:2]:
        assert row.isnan().all() or (row == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16])
def test_minus_1e9_does_not_fit_float16(dtype):
    causal, _ = masks(4, 0)
    with pytest.raises(RuntimeError, match="without overflow"):
        torch.zeros(4, 4, dtype=dtype).masked_fill(~causal, -1e9)
    big = torch.tensor(-1e9, dtype=dtype)
    assert big.isinf()
    additive = (~causal).to(dtype) * big
    assert additive[causal].isnan().all()  # 0 * -inf where nothing should be masked


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_finfo_min_fill_never_gives_nan(dtype):
    causal, real = masks(5, 2)
    scores = torch.randn(5, 5).to(dtype)
    wei = masked_softmax(scores, causal & real, torch.finfo(dtype).min)
    assert not wei.isnan().any()
    torch.testing.assert_close(wei[:2].float(), torch.full((2, 5), 0.2), atol=1e-3, rtol=0)
    # ...but twice the minimum overflows.
    assert (torch.tensor(torch.finfo(dtype).min, dtype=dtype) * 2).isinf()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_precision_error_is_between_one_and_four_eps(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(3, 4, 2, 128, 32, generator=g, dtype=torch.float64).unbind(0)
    exact = causal_attention(q, k, v)
    eps = torch.finfo(dtype).eps
    for out in (causal_attention(q.to(dtype), k.to(dtype), v.to(dtype)),
                F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), is_causal=True)):
        err = (out.double() - exact).abs().max().item() / eps
        assert 1 < err < 4, err
        torch.testing.assert_close(out, exact.to(dtype), atol=4 * eps, rtol=4 * eps)
    if dtype == torch.bfloat16:
        with pytest.raises(AssertionError):
            torch.testing.assert_close(causal_attention(q.to(dtype), k.to(dtype), v.to(dtype)), exact.to(dtype))


def test_unsliced_mask_buffer_fails_and_the_slice_is_the_causal_mask():
    tril = torch.tril(torch.ones(8, 8, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="must match the size"):
        torch.zeros(2, 5, 5).masked_fill(~tril, float("-inf"))
    for T in range(1, 9):
        assert torch.equal(tril[:T, :T], torch.tril(torch.ones(T, T, dtype=torch.bool)))


def test_float_mask_is_added_not_applied_and_bool_mask_is_applied():
    q, k, v = torch.randn(3, 2, 6, 8).unbind(0)
    causal, _ = masks(6, 0)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=causal), want)
    assert not torch.allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=causal.float()), want)
    # The float mask is added to the scores: ones and zeros just shift some of them.
    scores = q @ k.transpose(-2, -1) / 8**0.5 + causal.float()
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=causal.float()),
                               torch.softmax(scores, -1) @ v)
    with pytest.raises(RuntimeError, match="boolean"):
        torch.zeros(6, 6).masked_fill(causal.float(), 0.0)


def test_multihead_mask_polarity_is_the_opposite_of_sdpa():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(1, 5, 8)
    causal, _ = masks(5, 0)
    wrong, _ = mha(x, x, x, attn_mask=causal)
    assert wrong[0, -1].isnan().all() and not wrong[0, :-1].isnan().any()
    right, _ = mha(x, x, x, attn_mask=~causal)
    assert not right.isnan().any()


def test_sdpa_refuses_is_causal_with_a_mask():
    q, k, v = torch.randn(3, 1, 5, 8).unbind(0)
    causal, _ = masks(5, 0)
    with pytest.raises(RuntimeError, match="attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=causal, is_causal=True)


@pytest.mark.parametrize("train", [True, False])
def test_multihead_is_causal_hint_wins_only_without_weights(train):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).train(train)
    x = torch.randn(2, 5, 8)
    causal, _ = masks(5, 0)
    nothing = torch.zeros(5, 5, dtype=torch.bool)
    want, _ = mha(x, x, x, attn_mask=~causal, need_weights=False)
    unmasked, _ = mha(x, x, x, attn_mask=nothing, need_weights=False)
    hinted, _ = mha(x, x, x, attn_mask=nothing, is_causal=True, need_weights=False)
    torch.testing.assert_close(hinted, want)
    hinted, _ = mha(x, x, x, attn_mask=nothing, is_causal=True)
    torch.testing.assert_close(hinted, unmasked)
    # With the real causal mask, both paths agree.
    a, _ = mha(x, x, x, attn_mask=~causal, is_causal=True, need_weights=False)
    b, _ = mha(x, x, x, attn_mask=~causal, is_causal=True)
    torch.testing.assert_close(a, want)
    torch.testing.assert_close(b, want)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        mha(x, x, x, is_causal=True)


@pytest.mark.parametrize("cls, args", [(Head, (4, 2, 8)), (MultiHeadAttention, (4, 2, 8))])
def test_dropout_train_differs_eval_is_deterministic_and_equals_no_dropout(cls, args):
    torch.manual_seed(0)
    module = cls(*args, dropout=0.5)
    x = torch.randn(2, 6, 4)
    assert module.training and not torch.equal(module(x), module(x))
    module.eval()
    assert torch.equal(module(x), module(x))
    plain = cls(*args)
    plain.load_state_dict(module.state_dict())
    plain.eval()
    assert torch.equal(module(x), plain(x))


def test_head_refuses_sequences_longer_than_its_mask():
    with pytest.raises(ValueError, match=r"^Head: .*block_size=8, got shape \(1, 9, 4\)$"):
        Head(4, 2, 8)(torch.randn(1, 9, 4))


@needs_cuda
def test_cpu_mask_on_cuda_scores_fails_and_the_head_builds_its_mask_on_the_input_device():
    tril = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="same device"):
        torch.zeros(5, 5, device="cuda").masked_fill(~tril, float("-inf"))
    head = Head(4, 2, 8).cuda()
    assert head(torch.randn(1, 5, 4, device="cuda")).device.type == "cuda"
