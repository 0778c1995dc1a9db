"""The CUDA paths: every function on a GPU against float64 references on the CPU, and the GPU timing tools.

Skipped with a reason where there is no GPU; ``python3 -m bench.gpu``
runs them (with the other tests marked ``cuda``) on a machine that has one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snippets.attention import causal_attention
from snippets.averaging import prefix_mean_cumsum, prefix_mean_loop, prefix_mean_matmul, prefix_mean_softmax
from snippets.linear import _SMALL, causal_linear_attention, causal_linear_attention_quadratic, prefix_mean_fast
from tests.marks import needs_cuda
from tests.strategies import reference

PREFIX_MEANS = [prefix_mean_loop, prefix_mean_matmul, prefix_mean_softmax, prefix_mean_cumsum, prefix_mean_fast]
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("f", PREFIX_MEANS, ids=lambda f: f.__name__)
def test_prefix_means_on_cuda_match_the_definition(f, dtype):
    x = torch.randn(3, 70, 5, generator=torch.Generator().manual_seed(0)).to(dtype)
    out = f(x.cuda())
    assert out.device.type == "cuda" and out.dtype == dtype
    torch.testing.assert_close(out.cpu().double(), reference(x), **TOL[dtype])


@needs_cuda
@pytest.mark.parametrize("shape", [(4, 2048, 64), (1, 4099, 67), (16, 2048, 512)])
def test_fast_whole_batch_gpu_path_matches_the_definition_and_its_gradient(shape):
    assert shape[0] * shape[1] * shape[2] >= _SMALL  # the blocked path, one step for the whole batch on a GPU
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g)
    xc = x.cuda().requires_grad_()
    out = prefix_mean_fast(xc)
    torch.testing.assert_close(out.detach().cpu().double(), reference(x), rtol=1e-4, atol=1e-5)
    up = torch.randn(*shape, generator=g)
    out.backward(up.cuda())
    xd = x.double().requires_grad_()
    (prefix_mean_cumsum(xd) * up.double()).sum().backward()
    torch.testing.assert_close(xc.grad.cpu().double(), xd.grad, rtol=1e-4, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("backend", ["MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_causal_attention_on_cuda_matches_every_sdpa_backend_that_runs(backend, dtype):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 4, 257, 16, generator=g).to("cuda", dtype) for _ in range(3))
    ours = causal_attention(q, k, v)
    try:
        with sdpa_kernel(getattr(SDPBackend, backend)):
            theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    except RuntimeError as exc:  # a backend the GPU or dtype lacks says so, as the timing harness records
        assert "No available kernel" in str(exc) or "No viable backend" in str(exc), exc
        pytest.xfail(f"{backend} does not run {dtype} here")
    torch.testing.assert_close(ours.float(), theirs.float(), **TOL[dtype])
    ref = causal_attention(*(t.cpu().double() for t in (q, k, v)))
    torch.testing.assert_close(ours.cpu().double(), ref, **TOL[dtype])


@needs_cuda
def test_flash_runs_bfloat16_on_this_gpu():
    """The appendix's flash numbers need the flash backend: refuse a GPU where it silently does not run."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(1, 4, 128, 16, device="cuda", dtype=torch.bfloat16)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        assert F.scaled_dot_product_attention(q, q, q, is_causal=True).isfinite().all()


@needs_cuda
@pytest.mark.parametrize("f", [causal_linear_attention, causal_linear_attention_quadratic], ids=lambda f: f.__name__)
def test_linear_attention_on_cuda_matches_cpu_float64(f):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 50, 8, generator=g) for _ in range(3))
    out = f(q.cuda(), k.cuda(), v.cuda())
    torch.testing.assert_close(out.cpu().double(), f(q.double(), k.double(), v.double()), rtol=1e-4, atol=1e-5)


@needs_cuda
def test_peak_cuda_counts_exactly_what_a_call_allocates():
    from bench.measure import peak_cuda

    x = torch.empty(4, 1024, 1024, device="cuda")  # 16 MiB, a multiple of the allocator's rounding
    assert peak_cuda(x.clone, "cuda") == 16 * 2**20
    assert peak_cuda(lambda: torch.empty(0, device="cuda"), "cuda") == 0


@needs_cuda
def test_cuda_samples_time_a_known_sleep_and_a_copy():
    from bench.measure import measure, samples_cuda

    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    try:
        mhz = torch.cuda.clock_rate()  # the SM clock, through NVML
    except Exception:  # no NVML here: only the copy below
        mhz = 0
    if mhz:  # about 1 ms of spinning at that clock: events must see it, whatever the flush costs
        torch.cuda._sleep(int(mhz * 1e3))  # the first launch loads the kernel: not what is timed
        ms = samples_cuda(lambda: torch.cuda._sleep(int(mhz * 1e3)), 3, flush)
        assert all(0.3 < t < 5 for t in ms), ms
    x = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
    r = measure(x.clone, device="cuda", repeats=5, warmup=2, budget=5.0, flush=flush)
    assert r["status"] == "ok" and len(r["samples_ms"]) == 5 and r["calls_per_sample"] == 1
    gbps = 2 * x.numel() / (r["ms"] * 1e6)
    assert 50 < gbps < 20_000, gbps  # HBM moves hundreds to thousands of GB/s; a timer that lies would not


@needs_cuda
def test_tf32_switch_is_honoured_and_restored():
    """--tf32 on lets float32 matmuls use tensor cores: the reference matmul gets much faster, and only in the run."""
    from bench.cli import parse_config
    from bench.runner import run

    before = torch.get_float32_matmul_precision()
    tflops = {}
    for switch in ("off", "on"):
        cfg, _ = parse_config(["--tf32", switch, "--dtype", "float32", "--T", "64", "--methods", "clone",
                               "--no-bandwidth", "--matmul-size", "4096", "--out", "/tmp/unused.json"])
        tflops[switch] = run(cfg, []).matmul_reference[0].tflops
        assert torch.get_float32_matmul_precision() == before
    assert tflops["on"] > 2 * tflops["off"], tflops


@needs_cuda
@pytest.mark.parametrize("name", ["Head", "MultiHeadAttention", "causal_attention"])
def test_a_forward_call_never_waits_for_the_gpu(name):
    """No check reads a value back: under sync debug mode "error" any synchronisation raises."""
    from snippets.attention import Head, MultiHeadAttention

    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, device="cuda")
    call = {
        "Head": Head(8, 4, 32).cuda(),
        "MultiHeadAttention": MultiHeadAttention(8, 2, 32).cuda(),
        "causal_attention": lambda x: causal_attention(x, x, x),
    }[name]
    call(x)  # warm up: first calls may load kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        call(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
