"""Self-attention: equal to PyTorch's own attention, causal, the prefix mean in disguise, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from snippets.attention import Head, MultiHeadAttention, causal_attention
from snippets.averaging import causal_mean_weights, prefix_mean_loop
from tests.marks import needs_cuda
from tests.refusals import assert_refuses
from tests.strategies import attention_reference, qkvs

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


@given(qkvs())
def test_causal_attention_matches_definition_and_sdpa(qkv):
    q, k, v = qkv
    got = causal_attention(q, k, v)
    assert got.shape == v.shape and got.dtype == q.dtype
    torch.testing.assert_close(got, attention_reference(q, k, v).to(q.dtype), **TOL[q.dtype])
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL[q.dtype])


# ---- Head ----

DTYPES = st.sampled_from([torch.float32, torch.float64])


@given(st.integers(1, 4), st.integers(1, 12), st.integers(1, 8), st.integers(1, 6), DTYPES, st.integers(0, 2**16))
def test_head_is_causal_attention_of_its_projections(B, T, n_embd, head_size, dtype, seed):
    torch.manual_seed(seed)
    head = Head(n_embd, head_size, block_size=12).to(dtype)
    x = torch.randn(B, T, n_embd, dtype=dtype)
    want = causal_attention(head.query(x), head.key(x), head.value(x))
    got = head(x)
    assert got.shape == (B, T, head_size) and got.dtype == dtype
    torch.testing.assert_close(got, want)


def test_head_with_zero_queries_and_keys_is_exactly_the_prefix_mean_of_its_values():
    torch.manual_seed(0)
    head = Head(n_embd=5, head_size=3, block_size=10)
    with torch.no_grad():
        head.query.weight.zero_()
        head.key.weight.zero_()
    x = torch.randn(2, 7, 5)
    v = head.value(x)
    assert torch.equal(head(x), causal_mean_weights(7) @ v)
    torch.testing.assert_close(head(x), prefix_mean_loop(v))


MODULES = {"Head": lambda: Head(4, 3, 9), "MultiHeadAttention": lambda: MultiHeadAttention(6, 3, 9)}


def test_head_dropout_train_and_eval():
    torch.manual_seed(0)
    head = Head(4, 3, 8, dropout=0.5)
    x = torch.randn(2, 8, 4)
    head.eval()
    a, b = head(x), head(x)
    assert torch.equal(a, b)  # eval: dropout is off, deterministic
    head.train()
    assert not torch.allclose(head(x), a)


def test_head_sees_shorter_sequences_through_a_slice_of_its_mask():
    torch.manual_seed(0)
    head = Head(4, 3, block_size=16)
    x = torch.randn(1, 16, 4)
    # The first 5 outputs of a long sequence equal the outputs of its first 5 tokens alone.
    torch.testing.assert_close(head(x[:, :5]), head(x)[:, :5])


# ---- MultiHeadAttention ----

def heads_of(mha):
    """The n_head Heads whose concatenation, projected, is mha."""
    C, nh = mha.n_embd, mha.n_head
    hs = C // nh
    Wq, Wk, Wv = mha.qkv.weight.split(C, dim=0)
    heads = []
    for h in range(nh):
        head = Head(C, hs, mha.block_size)
        rows = slice(h * hs, (h + 1) * hs)
        with torch.no_grad():
            head.query.weight.copy_(Wq[rows])
            head.key.weight.copy_(Wk[rows])
            head.value.weight.copy_(Wv[rows])
        heads.append(head)
    return heads


@given(st.integers(1, 3), st.integers(1, 10), st.sampled_from([(4, 1), (4, 2), (6, 3), (8, 4), (12, 3)]),
       DTYPES, st.integers(0, 2**16))
def test_multihead_is_concatenated_heads_and_torch_multihead(B, T, sizes, dtype, seed):
    C, nh = sizes
    torch.manual_seed(seed)
    mha = MultiHeadAttention(C, nh, block_size=10).to(dtype)
    x = torch.randn(B, T, C, dtype=dtype)
    got = mha(x)
    assert got.shape == (B, T, C) and got.dtype == dtype
    cat = torch.cat([head.to(dtype)(x) for head in heads_of(mha)], dim=-1)  # (B, T, C)
    torch.testing.assert_close(got, mha.proj(cat))
    ref = nn.MultiheadAttention(C, nh, batch_first=True).to(dtype)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mha.qkv.weight)
        ref.in_proj_bias.zero_()
        ref.out_proj.weight.copy_(mha.proj.weight)
        ref.out_proj.bias.copy_(mha.proj.bias)
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # True = not allowed
    want, _ = ref(x, x, x, attn_mask=future, need_weights=False)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("cls, args", [(Head, (8, 4, 16)), (MultiHeadAttention, (8, 2, 16))])
@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_modules_accept_float32_or_bfloat16_input_under_cpu_autocast(cls, args, x_dtype):
    # nn.Linear accepts both under autocast; the modules' own dtype check must not refuse them.
    torch.manual_seed(0)
    module = cls(*args)  # float32 weights
    x = torch.randn(2, 16, 8)
    want = module(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = module(x.to(x_dtype))
    assert got.isfinite().all()
    eps = torch.finfo(torch.bfloat16).eps
    torch.testing.assert_close(got.float(), want, atol=8 * eps, rtol=8 * eps)


@pytest.mark.parametrize("cls", [Head, MultiHeadAttention], ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [torch.float64, torch.int64])
def test_autocast_does_not_excuse_dtypes_it_does_not_cast(cls, dtype):
    module = cls(4, 2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert_refuses(TypeError, "x", module, torch.ones(1, 5, 4, dtype=dtype), got=f"x has dtype {dtype}")


# ---- bad input: the type, the argument named and what it got (tests/refusals.py) ----

@pytest.mark.parametrize(
    ("args", "error", "arg", "got"),
    [
        (([1.0], torch.ones(2, 2), torch.ones(2, 2)), TypeError, "q", "got list"),
        ((torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2, dtype=torch.int32)), TypeError, "v", "got torch.int32"),
        ((torch.ones(3), torch.ones(3), torch.ones(3)), ValueError, "q", "got shape (3,)"),
        ((torch.ones(2, 0), torch.ones(2, 0), torch.ones(2, 2)), ValueError, "q", "got shape (2, 0)"),
        ((torch.ones(4, 2), torch.ones(5, 2), torch.ones(4, 2)), ValueError, "k", "k (5, 2)"),
        ((torch.ones(2, 4, 2), torch.ones(2, 4, 2), torch.ones(3, 4, 2)), ValueError, "v", "v (3, 4, 2)"),
        ((torch.ones(4, 2).half(), torch.ones(4, 2), torch.ones(4, 2)), TypeError, "q, k, v",
         "got torch.float16, torch.float32, torch.float32"),
    ],
)
def test_causal_attention_bad_input(args, error, arg, got):
    assert_refuses(error, arg, causal_attention, *args, got=got)


SECOND = {Head: "head_size", MultiHeadAttention: "n_head"}  # the second argument of each


@pytest.mark.parametrize("cls", [Head, MultiHeadAttention], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "arg", "got"),
    [
        ((4.0, 2, 8), {}, TypeError, "n_embd", "got float"),
        ((4, True, 8), {}, TypeError, SECOND, "got bool"),
        ((4, 2, 0), {}, ValueError, "block_size", "got 0"),
        ((0, 2, 8), {}, ValueError, "n_embd", "got 0"),
        ((4, 2, 8), {"dropout": 1.0}, ValueError, "dropout", "got 1.0"),
        ((4, 2, 8), {"dropout": -0.1}, ValueError, "dropout", "got -0.1"),
        ((4, 2, 8), {"dropout": "0.1"}, TypeError, "dropout", "got str"),
    ],
)
def test_bad_constructor_arguments(cls, args, kwargs, error, arg, got):
    assert_refuses(error, arg[cls] if arg is SECOND else arg, cls, *args, got=got, **kwargs)


def test_multihead_n_head_must_divide_n_embd():  # the whole sentence: it says what to change
    with pytest.raises(ValueError, match=r"^MultiHeadAttention: n_head=4 must divide n_embd=6$"):
        MultiHeadAttention(6, 4, 8)


@pytest.mark.parametrize("cls", [Head, MultiHeadAttention], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("x", "error", "got"),
    [
        ([[1.0]], TypeError, "got list"),
        (torch.ones(5, 4), ValueError, "got shape (5, 4)"),
        (torch.ones(1, 5, 3), ValueError, "got shape (1, 5, 3)"),
        (torch.ones(1, 9, 4), ValueError, "got shape (1, 9, 4)"),
        (torch.ones(1, 0, 4), ValueError, "got shape (1, 0, 4)"),
        (torch.ones(1, 5, 4, dtype=torch.float64), TypeError, "x has dtype torch.float64 but the weights have torch.float32"),
        (torch.ones(1, 5, 4, dtype=torch.long), TypeError, "x has dtype torch.int64"),
    ],
)
def test_bad_x_is_refused_clearly(cls, x, error, got):
    torch.manual_seed(0)
    assert_refuses(error, "x", cls(4, 2, 8), x, got=got)


@needs_cuda
@pytest.mark.parametrize("make", [lambda: Head(4, 3, 8), lambda: MultiHeadAttention(4, 2, 8)],
                         ids=["Head", "MultiHeadAttention"])
def test_on_cuda_a_cpu_input_is_refused(make):  # the GPU's result is the CPU's: tests/test_contracts.py
    torch.manual_seed(0)
    module = make()
    x = torch.randn(2, 6, 4)
    assert_refuses(ValueError, "x", module.cuda(), x, got="x is on cpu but the weights are on cuda")
