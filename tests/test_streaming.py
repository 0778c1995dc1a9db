"""online_causal_attention: equal to SDPA and causal_attention, O(T * block) memory, non-finite policy, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from snippets.attention import causal_attention
from snippets.streaming import online_causal_attention
from tests.marks import needs_cuda
from tests.refusals import assert_refuses
from tests.strategies import attention_reference, qkvs

F64 = dict(rtol=1e-10, atol=1e-12)



def sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


@given(qkvs(dtypes=(torch.float64,)), st.integers(1, 30))
def test_equals_sdpa_causal_attention_and_the_definition(qkv, block):
    q, k, v = qkv
    got = online_causal_attention(q, k, v, block=block)
    assert got.shape == v.shape and got.dtype == torch.float64
    torch.testing.assert_close(got, sdpa(q, k, v), **F64)
    torch.testing.assert_close(got, causal_attention(q, k, v), **F64)
    torch.testing.assert_close(got, attention_reference(q, k, v), **F64)


@given(qkvs(dtypes=(torch.float32,)), st.integers(1, 30))
def test_float32_stays_close_to_sdpa(qkv, block):
    q, k, v = qkv
    got = online_causal_attention(q, k, v, block=block)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, sdpa(q, k, v), rtol=1e-5, atol=1e-5)


# T = 1; a block of 1; blocks that divide T, that do not, equal to T, larger than T; the default.
@pytest.mark.parametrize(("T", "block"), [(1, 1), (1, 64), (7, 1), (12, 4), (13, 4), (13, 5), (16, 16),
                                          (5, 6), (5, 1000), (130, 64), (200, None)])
def test_awkward_shapes(T, block):
    g = torch.Generator().manual_seed(T)
    q, k = torch.randn(2, 2, 3, T, 6, generator=g, dtype=torch.float64).unbind(0)
    v = torch.randn(2, 3, T, 5, generator=g, dtype=torch.float64)
    got = online_causal_attention(q, k, v) if block is None else online_causal_attention(q, k, v, block=block)
    torch.testing.assert_close(got, sdpa(q, k, v), **F64)
    torch.testing.assert_close(got, causal_attention(q, k, v), **F64)
    # unbatched (T, D) inputs too
    torch.testing.assert_close(online_causal_attention(q[0, 0], k[0, 0], v[0, 0], block=block or 64),
                               sdpa(q[0, 0], k[0, 0], v[0, 0]), **F64)


def test_the_block_does_not_change_the_result_beyond_rounding():
    q, k, v = torch.randn(3, 2, 50, 8, dtype=torch.float64).unbind(0)
    outs = [online_causal_attention(q, k, v, block=b) for b in (1, 3, 7, 16, 50, 51)]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], **F64)


# tests/test_contracts.py gradchecks block=4 and causal_attention; here every other block equals it.
@pytest.mark.parametrize("block", [1, 3, 4, 8, 11, 64])
def test_gradient_equals_causal_attentions(block):
    q, k, v = (torch.randn(2, 11, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    up = torch.randn(2, 11, 4, dtype=torch.float64)
    ours = torch.autograd.grad(online_causal_attention(q, k, v, block=block), (q, k, v), up)
    theirs = torch.autograd.grad(causal_attention(q, k, v), (q, k, v), up)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_inputs_are_computed_in_float32(dtype):
    q, k, v = (a.to(dtype) for a in torch.randn(3, 2, 4, 40, 8).unbind(0))
    got = online_causal_attention(q, k, v, block=16)
    assert got.dtype == dtype and got.isfinite().all()
    # Everything runs in float32: the same as float32 inputs, rounded once at the end.
    want = online_causal_attention(q.float(), k.float(), v.float(), block=16).to(dtype)
    assert torch.equal(got, want)
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(got.double(), attention_reference(q, k, v), rtol=eps, atol=eps)


def test_large_scores_stay_finite():
    # Scores of about 100 * 100 / sqrt(4): exp of them is inf in float32, and in float64.
    q, k, v = torch.randn(3, 2, 30, 4, generator=torch.Generator().manual_seed(0)).unbind(0)
    q, k = 100 * q, 100 * k
    assert not (q @ k.transpose(-2, -1) / 2).exp().isfinite().all()
    got = online_causal_attention(q, k, v, block=8)
    assert got.isfinite().all()
    # Scores in the thousands are rounded in float32 to about 1e-3 by any implementation, so
    # two close scores can trade a little weight: the tolerance is that rounding, not a slack.
    torch.testing.assert_close(got, sdpa(q, k, v), rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(got.double(), attention_reference(q, k, v), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["q", "k", "v"])
@pytest.mark.parametrize("block", [1, 4, 5, 64])
def test_a_non_finite_value_at_j_changes_no_output_before_j(bad, where, block):
    q, k, v = torch.randn(3, 2, 12, 4).unbind(0)
    clean = online_causal_attention(q, k, v, block=block)
    for j in range(12):
        inputs = {"q": q.clone(), "k": k.clone(), "v": v.clone()}
        inputs[where][1, j, 2] = bad
        got = online_causal_attention(**inputs, block=block)
        assert torch.equal(got[:, :j], clean[:, :j]), (where, j)
        assert torch.equal(got[0], clean[0])  # the other sequence of the batch is untouched
        if where != "q":  # and the bad value does reach its own position
            assert not torch.equal(got[1, j:], clean[1, j:])


@pytest.mark.parametrize("block", [1, 2, 3, 4])
def test_scores_of_minus_inf_give_no_nan_later(block):
    # Key 0 scores -inf for every query: query 0 has no finite score (nan, as its own position
    # allows), and later queries give it weight 0, as SDPA does, instead of exp(-inf - (-inf)) = nan.
    q = torch.ones(4, 1)
    k = torch.tensor([[float("-inf")], [0.0], [1.0], [2.0]])
    v = torch.arange(4.0).unsqueeze(-1)
    got = online_causal_attention(q, k, v, block=block)
    assert got[0].isnan().all()
    torch.testing.assert_close(got[1:], sdpa(q, k, v)[1:])


# ---- memory

def profile_memory(f, *args):
    """(largest allocation of one operation, peak of the allocated total), in bytes, from PyTorch's profiler."""
    from torch.profiler import profile

    with profile(profile_memory=True) as prof:
        f(*args)
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    total = peak = 0
    for e in events:
        total += e.self_cpu_memory_usage
        peak = max(peak, total)
    return max(e.self_cpu_memory_usage for e in events), peak


def qkv(T, D=64):
    return torch.randn(3, 1, T, D).unbind(0)


def test_no_allocation_is_T_by_T_and_memory_grows_linearly():
    Ts = (1024, 2048, 4096)
    got = [profile_memory(online_causal_attention, *qkv(T)) for T in Ts]
    for T, (largest, peak) in zip(Ts, got):
        assert largest == T * 64 * 4, (T, largest)  # one (T, block) float32 tensor at most
        assert peak < 8 * T * 64 * 4, (T, peak)  # a few such tensors
    assert got[-1][1] < 4096 * 4096 * 4 / 8  # an eighth of one (T, T) float32 matrix
    assert [p for _, p in got[1:]] == [2 * p for _, p in got[:-1]]  # doubling T doubles the peak
    # The measurement does see a (T, T) matrix where there is one.
    largest, peak = profile_memory(causal_attention, *qkv(1024))
    assert largest >= 1024 * 1024 * 4 and peak >= 2 * 1024 * 1024 * 4  # the scores and the weights


def test_under_autograd_the_saved_weights_grow_quadratically():
    # The page says so: autograd keeps every block's weights for the backward pass.
    peaks = []
    for T in (512, 1024, 2048):
        q, k, v = (a.requires_grad_() for a in qkv(T))
        peaks.append(profile_memory(online_causal_attention, q, k, v)[1])
    assert peaks[2] / peaks[1] > 3.3 and peaks[1] / peaks[0] > 3


@pytest.mark.slow
def test_the_timing_harness_measures_it_with_linear_peak_memory(tmp_path):
    from bench import cli, memory, validate

    out = tmp_path / "cpu-x.json"
    Ts = (1024, 2048, 4096)
    assert cli.main(["--device", "cpu", "--T", *map(str, Ts), "-B", "1", "-C", "64", "--heads", "1",
                     "--repeats", "1", "--warmup", "0", "--matmul-size", "64", "--no-bandwidth",
                     "--time-budget", "300", "--methods", "online_causal_attention", "--allow-busy",
                     "--out", str(out)]) == 0
    res = validate.load(out)
    rows = {r.T: r for r in res.results}
    for T in Ts:
        assert rows[T].status == "ok" and rows[T].ms > 0, rows[T]
        # q, k, v read and the output written once; the causal half of two (T, T) products
        assert (rows[T].bytes, rows[T].flops) == (4 * T * 64 * 4, 2 * T * T * 64)
    assert len(res.fingerprints["online_causal_attention"]) == 64
    if memory.unavailable() is None:  # the harness's own CPU peak memory, in a worker process
        assert rows[4096].peak_bytes < 4096 * 4096 * 4 / 8  # an eighth of one (T, T) float32 matrix
        assert rows[4096].peak_bytes < 3 * rows[2048].peak_bytes  # linear, not quadratic


# ---- bad input

# what changes in q, k, v = (3, 2), (3, 2), (3, 1) -> (exception, argument named, what it got)
BAD = {
    "q not a tensor": (dict(q=[[1.0]]), TypeError, "q", "got list"),
    "integer k": (dict(k=torch.ones(3, 2, dtype=torch.long)), TypeError, "k", "got torch.int64"),
    "v of one dim": (dict(v=torch.ones(3)), ValueError, "v", "got shape (3,)"),
    "T = 0": (dict(q=torch.ones(0, 2), k=torch.ones(0, 2), v=torch.ones(0, 2)), ValueError, "q", "got shape (0, 2)"),
    "k longer than q": (dict(k=torch.ones(4, 2)), ValueError, "k", "got q (3, 2), k (4, 2), v (3, 1)"),
    "dtypes differ": (dict(v=torch.ones(3, 1, dtype=torch.float64)), TypeError, "q, k, v",
                      "got torch.float32, torch.float32, torch.float64"),
    "block 0": (dict(block=0), ValueError, "block", "got 0"),
    "block negative": (dict(block=-3), ValueError, "block", "got -3"),
    "block bool": (dict(block=True), TypeError, "block", "got bool"),
    "block float": (dict(block=4.0), TypeError, "block", "got float"),
    "block None": (dict(block=None), TypeError, "block", "got NoneType"),
}


@pytest.mark.parametrize("what", BAD)
def test_bad_input_is_refused_clearly(what):
    args = dict(q=torch.ones(3, 2), k=torch.ones(3, 2), v=torch.ones(3, 1))
    change, error, arg, got = BAD[what]
    assert_refuses(error, arg, online_causal_attention, **(args | change), got=got)


def test_block_is_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        online_causal_attention(torch.ones(3, 2), torch.ones(3, 2), torch.ones(3, 1), 2)


# ---- CUDA

@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_on_cuda_matches_the_definition_and_sdpa(dtype):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 257, 16, generator=g) for _ in range(3))
    got = online_causal_attention(*(a.to("cuda", dtype) for a in (q, k, v)), block=64)
    assert got.device.type == "cuda" and got.dtype == dtype
    eps = torch.finfo(dtype).eps
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=eps, atol=eps)
    torch.testing.assert_close(got.cpu().double(), attention_reference(*(a.to(dtype) for a in (q, k, v))), **tol)


@needs_cuda
def test_on_cuda_memory_grows_linearly_and_stays_far_below_T_by_T():
    peaks = {}
    for T in (4096, 8192):
        q, k, v = (a.cuda() for a in qkv(T))
        online_causal_attention(q, k, v)  # first calls allocate cuBLAS workspaces, kept afterwards
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = online_causal_attention(q, k, v)
        torch.cuda.synchronize()
        peaks[T] = torch.cuda.max_memory_allocated() - base
        del out
    assert peaks[8192] < 8192 * 8192 * 4 / 8  # an eighth of one (T, T) float32 matrix
    assert peaks[8192] < 2.5 * peaks[4096]
