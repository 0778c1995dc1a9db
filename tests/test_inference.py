"""KV cache: cached decoding equals the full forward, refusals, the is_causal pitfall, costs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.attention.bias import causal_lower_right, causal_upper_left
from torch.utils.flop_counter import FlopCounterMode

from snippets.attention import Head, MultiHeadAttention
from snippets.inference import KVCache, decode_macs
from tests.marks import needs_cuda
from tests.refusals import assert_refuses

TIGHT = dict(rtol=1e-10, atol=1e-12)  # float64
MODULES = {
    "Head": lambda C, bs: Head(C, 3, bs),
    "MultiHeadAttention": lambda C, bs: MultiHeadAttention(C, 2, bs),
}
each_module = pytest.mark.parametrize("make", MODULES.values(), ids=MODULES.keys())


def decode(module, x, sizes, cache=None):
    """Feed x to module in chunks of the given sizes through one cache; the outputs side by side."""
    cache = KVCache() if cache is None else cache
    bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
    assert bounds[-1] == x.shape[1]
    return torch.cat([module(x[:, a:b], cache) for a, b in zip(bounds, bounds[1:])], dim=1)


@st.composite
def chunkings(draw, max_T=12):
    """A list of chunk sizes >= 1 whose sum T is at most max_T."""
    T = draw(st.integers(1, max_T))
    cuts = sorted(draw(st.sets(st.integers(1, T - 1), max_size=T - 1))) if T > 1 else []
    edges = [0, *cuts, T]
    return [b - a for a, b in zip(edges, edges[1:])]


# ---- cached decoding equals the full forward ----

@given(st.sampled_from(list(MODULES)), st.integers(1, 3), chunkings(), st.integers(0, 2**16))
def test_cached_decoding_in_any_chunks_equals_the_full_forward(name, B, sizes, seed):
    torch.manual_seed(seed)
    module = MODULES[name](6, 12).double()
    x = torch.randn(B, sum(sizes), 6, dtype=torch.float64)
    torch.testing.assert_close(decode(module, x, sizes), module(x), **TIGHT)


@each_module
@pytest.mark.parametrize("sizes", [[1] * 12, [3, 3, 3, 3], [5, 1, 4, 2], [12]], ids=str)
def test_one_token_at_a_time_and_in_chunks(make, sizes):
    torch.manual_seed(0)
    module = make(6, 12).double()
    x = torch.randn(2, 12, 6, dtype=torch.float64)
    cache = KVCache()
    torch.testing.assert_close(decode(module, x, sizes, cache), module(x), **TIGHT)
    assert len(cache) == 12


def test_head_chunk_is_sdpa_with_a_lower_right_mask():
    # An independent reference: PyTorch's kernel with its own lower-right mask.
    torch.manual_seed(0)
    head = Head(6, 4, 16).double()
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    cache = KVCache()
    head(x[:, :6], cache)
    got = head(x[:, 6:], cache)  # 3 new queries against 9 keys
    q = head.query(x[:, 6:])
    want = F.scaled_dot_product_attention(q, head.key(x), head.value(x), attn_mask=causal_lower_right(3, 9))
    torch.testing.assert_close(got, want, **TIGHT)


def test_the_cache_holds_the_projections_of_every_token():
    torch.manual_seed(0)
    x = torch.randn(2, 7, 6, dtype=torch.float64)
    head = Head(6, 3, 8).double()
    cache = KVCache()
    decode(head, x, [4, 1, 2], cache)
    assert len(cache) == 7 and cache.k.shape == cache.v.shape == (2, 7, 3)
    torch.testing.assert_close(cache.k, head.key(x), **TIGHT)
    torch.testing.assert_close(cache.v, head.value(x), **TIGHT)
    mha = MultiHeadAttention(6, 3, 8).double()
    cache = KVCache()
    decode(mha, x, [2, 5], cache)
    _, k, v = mha.qkv(x).split(6, dim=2)
    assert cache.k.shape == cache.v.shape == (2, 3, 7, 2)  # (B, n_head, T, head_size)
    torch.testing.assert_close(cache.k, k.view(2, 7, 3, 2).transpose(1, 2), **TIGHT)
    torch.testing.assert_close(cache.v, v.view(2, 7, 3, 2).transpose(1, 2), **TIGHT)


def test_len_repr_and_reset():
    cache = KVCache()
    assert len(cache) == 0 and repr(cache) == "KVCache(len=0, k and v of shape None)"
    head = Head(4, 2, 8)
    head(torch.randn(3, 5, 4), cache)
    assert len(cache) == 5 and repr(cache) == "KVCache(len=5, k and v of shape (3, 5, 2))"
    cache.reset()
    assert len(cache) == 0 and cache.k is None and cache.v is None and cache.owner is None
    MultiHeadAttention(4, 2, 8)(torch.randn(1, 8, 4), cache)  # reset: any module may use it
    assert len(cache) == 8


@each_module
def test_gradients_flow_through_the_cache(make):
    torch.manual_seed(0)
    module = make(4, 9).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: decode(module, x, [2, 1, 3]), (x,))
    g = torch.randn_like(module(x))
    (cached,) = torch.autograd.grad(decode(module, x, [1, 4, 1]), x, g)
    (full,) = torch.autograd.grad(module(x), x, g)
    torch.testing.assert_close(cached, full, **TIGHT)


@each_module
def test_decoding_compiles_into_one_graph_with_the_cache_outside(make):
    torch._dynamo.reset()
    torch.manual_seed(0)
    module = make(4, 9)
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    x = torch.randn(2, 9, 4)
    torch.testing.assert_close(decode(compiled, x, [4, 1, 1, 3]), decode(module, x, [4, 1, 1, 3]), rtol=0, atol=0)


@each_module
def test_decoding_on_the_meta_device(make):
    module = make(4, 9).to("meta")
    cache = KVCache()
    out = decode(module, torch.empty(2, 9, 4, device="meta"), [5, 1, 3], cache)
    assert out.device.type == "meta" and out.shape == (2, 9, module(torch.empty(2, 9, 4, device="meta")).shape[-1])
    assert len(cache) == 9 and cache.k.device.type == "meta"


# ---- dropout and non-finite inputs ----

@pytest.mark.parametrize("module", [Head(6, 3, 8, dropout=0.5), MultiHeadAttention(6, 2, 8, dropout=0.5)],
                         ids=["Head", "MultiHeadAttention"])
def test_dropout_in_training_mode_breaks_the_equality_and_eval_restores_it(module):
    torch.manual_seed(0)
    module.double()
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    module.train()
    assert not torch.allclose(decode(module, x, [1] * 8), module(x))
    module.eval()
    torch.testing.assert_close(decode(module, x, [1] * 8), module(x), **TIGHT)


@each_module
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=str)
@pytest.mark.parametrize("sizes", [[1] * 9, [3, 4, 2], [9]], ids=str)
@pytest.mark.parametrize("j", [2, 5, 8])
def test_a_bad_later_token_never_changes_earlier_outputs(make, bad, sizes, j):
    torch.manual_seed(0)
    module = make(6, 9)
    x = torch.randn(2, 9, 6)
    dirty = x.clone()
    dirty[:, j, :2] = bad
    clean_out, out = decode(module, x, sizes), decode(module, dirty, sizes)
    assert torch.equal(out[:, :j], clean_out[:, :j])
    assert not out[:, j:].isfinite().all()  # the bad token does reach its own output


# ---- refusals ----
# The cache's refusals keep their whole sentences: each says what to do (reset() it, one cache per
# module), and chapter 11 shows two of them.

@each_module
def test_going_past_block_size_is_refused_and_leaves_the_cache_as_it_was(make):
    torch.manual_seed(0)
    module = make(4, 8)
    name = type(module).__name__
    cache = KVCache()
    module(torch.randn(1, 6, 4), cache)
    k = cache.k
    with pytest.raises(ValueError, match=rf"^{name}: the cache holds 6 positions and x adds T=3: 9 in all, "
                                         r"more than block_size=8$"):
        module(torch.randn(1, 3, 4), cache)
    assert len(cache) == 6 and cache.k is k
    module(torch.randn(1, 2, 4), cache)  # exactly block_size is allowed
    assert len(cache) == 8


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (lambda: Head(4, 2, 8), lambda: MultiHeadAttention(4, 2, 8),
         r"^MultiHeadAttention: this KVCache holds the keys and values of another module \(a Head\); "
         r"give each module \(each layer\) its own$"),
        (lambda: Head(4, 2, 8), lambda: Head(4, 3, 8), r"^Head: .*another module \(a Head\)"),  # head_size
        (lambda: Head(4, 2, 8), lambda: Head(4, 2, 8), r"^Head: .*another module \(a Head\)"),  # another layer
        (lambda: MultiHeadAttention(4, 2, 8), lambda: Head(4, 2, 8),
         r"^Head: .*another module \(a MultiHeadAttention\)"),
    ],
)
def test_a_cache_belongs_to_one_module(first, second, message):
    cache = KVCache()
    first()(torch.randn(1, 3, 4), cache)
    with pytest.raises(ValueError, match=message):
        second()(torch.randn(1, 1, 4), cache)
    assert len(cache) == 3


@each_module
def test_batch_size_dtype_and_device_must_match_the_cache(make):
    torch.manual_seed(0)
    module = make(4, 8)
    name = type(module).__name__
    cache = KVCache()
    module(torch.randn(2, 3, 4), cache)
    with pytest.raises(ValueError, match=rf"^{name}: x has batch size 3 but the cache holds 2 sequences; "
                                         r"reset\(\) it or use a new KVCache$"):
        module(torch.randn(3, 1, 4), cache)
    module.double()
    with pytest.raises(TypeError, match=rf"^{name}: the new keys are torch\.float64 but the cache holds "
                                        r"torch\.float32; reset\(\) it after converting the module$"):
        module(torch.randn(2, 1, 4, dtype=torch.float64), cache)
    module.float().to("meta")
    with pytest.raises(ValueError, match=rf"^{name}: the new keys are on meta but the cache is on cpu; "
                                         r"reset\(\) it after moving the module$"):
        module(torch.empty(2, 1, 4, device="meta"), cache)
    assert len(cache) == 3
    cache.reset()
    assert module(torch.empty(2, 1, 4, device="meta"), cache).device.type == "meta"


@each_module
@pytest.mark.parametrize("cache", [[], {}, torch.zeros(3), "cache"], ids=lambda c: type(c).__name__)
def test_a_cache_that_is_not_a_kvcache_is_refused(make, cache):
    assert_refuses(TypeError, "cache", make(4, 8), torch.randn(1, 3, 4), cache, got=f"got {type(cache).__name__}")


@each_module
def test_a_bad_x_is_refused_before_the_cache_is_touched(make):
    module = make(4, 8)
    cache = KVCache()
    module(torch.randn(1, 3, 4), cache)
    assert_refuses(ValueError, "x", module, torch.randn(1, 0, 4), cache, got="got shape (1, 0, 4)")
    assert len(cache) == 3


# ---- the is_causal pitfall ----

def weights(mask=None, is_causal=False, Tq=2, Tk=5):
    """SDPA's weights for equal scores: zero queries and keys, identity values."""
    q, k, v = torch.zeros(Tq, 4), torch.zeros(Tk, 4), torch.eye(Tk)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


def test_is_causal_aligns_top_left_so_the_first_new_query_sees_only_key_0():
    top_left = weights(is_causal=True)
    assert torch.equal(top_left, torch.tensor([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]]))
    torch.testing.assert_close(top_left, weights(causal_upper_left(2, 5)))


def test_causal_lower_right_aligns_the_new_queries_with_the_last_keys():
    lower_right = weights(causal_lower_right(2, 5))
    torch.testing.assert_close(lower_right, torch.tensor([[0.25] * 4 + [0.0], [0.2] * 5]))
    mask = torch.ones(2, 5, dtype=torch.bool).tril(diagonal=3)
    torch.testing.assert_close(lower_right, weights(mask))
    assert torch.equal(mask, torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))


@pytest.mark.parametrize(("Tq", "Tk"), [(1, 1), (1, 6), (3, 3), (3, 8), (5, 7)])
def test_the_modules_mask_is_causal_lower_right(Tq, Tk):
    want = weights(causal_lower_right(Tq, Tk), Tq=Tq, Tk=Tk)
    mask = torch.ones(Tq, Tk, dtype=torch.bool).tril(diagonal=Tk - Tq)
    torch.testing.assert_close(weights(mask, Tq=Tq, Tk=Tk), want)
    assert torch.equal(weights(is_causal=True, Tq=Tq, Tk=Tk), want) == (Tq == Tk)  # square: the same


def test_chunked_decoding_with_is_causal_is_silently_wrong():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 7, 4, dtype=torch.float64).unbind(0)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    new = slice(5, 7)  # 2 new queries, 7 keys in the cache
    wrong = F.scaled_dot_product_attention(q[:, new], k, v, is_causal=True)
    right = F.scaled_dot_product_attention(q[:, new], k, v, attn_mask=causal_lower_right(2, 7))
    assert not torch.allclose(wrong, full[:, new])
    torch.testing.assert_close(right, full[:, new], **TIGHT)


# ---- cost ----

@pytest.mark.parametrize("make", [lambda C: Head(C, C, 16), lambda C: MultiHeadAttention(C, 2, 16)],
                         ids=["Head(head_size=C)", "MultiHeadAttention"])
@pytest.mark.parametrize("T", [1, 2, 5, 16])
@pytest.mark.parametrize("C", [4, 8])
def test_decode_macs_counts_what_the_modules_multiply(make, T, C):
    """PyTorch's FLOP counter (2 per multiply-add of each matrix product) agrees."""
    module = make(C)
    x = torch.randn(1, T, C)
    projections = 4 if isinstance(module, MultiHeadAttention) else 3  # a Head has no output projection
    extra = (4 - projections) * C * C  # ... so it does C * C per row less

    def flops(f):
        with FlopCounterMode(display=False) as counter:
            f()
        return counter.get_total_flops()

    assert flops(lambda: module(x)) // 2 == decode_macs(T, C, cached=False) - T * extra
    cache = KVCache()
    if T > 1:
        module(x[:, :-1], cache)
    assert flops(lambda: module(x[:, -1:], cache)) // 2 == decode_macs(T, C, cached=True) - extra


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_decode_macs_without_a_cache_is_T_times_with_one(T, C):
    assert decode_macs(T, C, cached=False) == T * decode_macs(T, C, cached=True)
    assert decode_macs(T, C, cached=True) == 4 * C * C + 2 * T * C


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "arg", "got"),
    [
        ((1.0, 8), {"cached": True}, TypeError, "T", "got float"),
        ((3, True), {"cached": True}, TypeError, "n_embd", "got bool"),
        ((0, 8), {"cached": True}, ValueError, "T", "got 0"),
        ((3, -1), {"cached": False}, ValueError, "n_embd", "got -1"),
        ((3, 8), {"cached": 1}, TypeError, "cached", "got int"),
    ],
)
def test_decode_macs_bad_input(args, kwargs, error, arg, got):
    assert_refuses(error, arg, decode_macs, *args, got=got, **kwargs)


# ---- CUDA ----

@needs_cuda
@each_module
def test_cached_decoding_on_cuda_matches_the_full_forward_on_the_cpu(make):
    torch.manual_seed(0)
    # block_size 16 > 12 tokens: the cache has room left, so the device check is what refuses.
    module = make(6, 16).double()
    x = torch.randn(2, 12, 6, dtype=torch.float64)
    want = module(x)
    module.cuda()
    cache = KVCache()
    got = decode(module, x.cuda(), [5, 1, 1, 3, 2], cache)
    assert cache.k.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, **TIGHT)
    module.cpu()
    name = type(module).__name__
    with pytest.raises(ValueError, match=rf"^{name}: the new keys are on cpu but the cache is on cuda"):
        module(torch.randn(2, 1, 6, dtype=torch.float64), cache)


# ---- a call that fails after the checks leaves the cache as it was ----

def _fail(*args, **kwargs):
    raise torch.OutOfMemoryError("injected: the scores could not be allocated")


FAILURE_POINTS = {  # where the computation fails, after the cache's checks and update
    "softmax": lambda mp, module: mp.setattr(F, "softmax", _fail),
    "wei @ v": lambda mp, module: mp.setattr("snippets.attention.causal_matmul", _fail),
    "the last layer": lambda mp, module: mp.setattr(  # the projection, or Head's dropout
        getattr(module, "proj", None) or module.dropout, "forward", _fail),
}


@each_module
@pytest.mark.parametrize("point", FAILURE_POINTS)
@pytest.mark.parametrize("sizes", [[3, 2, 1], [1, 1, 1, 1], [4, 3]])
def test_a_failed_call_leaves_the_cache_unchanged_and_decoding_goes_on(make, point, sizes):
    torch.manual_seed(0)
    module = make(4, 12).double()
    x = torch.randn(2, sum(sizes), 4, dtype=torch.float64)
    cache = KVCache()
    outs, start = [], 0
    for i, T in enumerate(sizes):
        chunk = x[:, start : start + T]
        if i:  # every chunk after the first fails once, then succeeds
            n, k, v, owner = len(cache), cache.k.clone(), cache.v.clone(), cache.owner
            with pytest.MonkeyPatch.context() as mp:
                FAILURE_POINTS[point](mp, module)
                with pytest.raises(torch.OutOfMemoryError, match="injected"):
                    module(chunk, cache)
            assert len(cache) == n and cache.owner is owner
            torch.testing.assert_close(cache.k, k, rtol=0, atol=0)
            torch.testing.assert_close(cache.v, v, rtol=0, atol=0)
        outs.append(module(chunk, cache))
        start += T
    assert len(cache) == sum(sizes)
    torch.testing.assert_close(torch.cat(outs, dim=1), module(x), **TIGHT)


@each_module
def test_a_failed_first_call_leaves_the_cache_empty(make, monkeypatch):
    module, cache = make(4, 8), KVCache()
    monkeypatch.setattr(F, "softmax", _fail)
    with pytest.raises(torch.OutOfMemoryError):
        module(torch.randn(1, 3, 4), cache)
    assert len(cache) == 0 and cache.k is None and cache.owner is None
