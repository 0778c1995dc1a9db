"""The Triton prefix mean against a float64 reference, in Triton's interpreter on a CPU
(the root conftest.py sets TRITON_INTERPRET=1 where there is no CUDA GPU), compiled for
sm_90 without a GPU, and compiled on a GPU where there is one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.marks import CUDA, needs_cuda
from tests.refusals import assert_refuses
from tests.pages import ROOT

if not CUDA:  # before the kernels are defined; conftest.py does it first in a pytest run
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton", reason="needs triton, which this platform's wheels lack")

from snippets import kernels  # noqa: E402
from snippets.kernels import _plan, _scan, prefix_mean_triton  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
HALF = {torch.bfloat16: 7, torch.float16: 10}  # bits of mantissa after the leading one


def reference(x: torch.Tensor) -> torch.Tensor:
    """The prefix mean in float64, exactly as the definition reads."""
    x = x.double()
    n = torch.arange(1, x.shape[-2] + 1, dtype=torch.float64, device=x.device).unsqueeze(-1)
    return x.cumsum(-2) / n


def tolerance(dtype: torch.dtype, abs_sums: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per element: a few eps of the accumulator times abs_sums (the same sums taken over |x|),
    plus, for half types, one ulp of the result: the interpreter truncates to bfloat16 where a
    GPU rounds to nearest."""
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    tol = 8 * torch.finfo(acc).eps * abs_sums
    if dtype in HALF:
        exponent = torch.floor(torch.log2(ref.abs().clamp_min(torch.finfo(dtype).tiny)))
        tol = tol + 2.0 ** (exponent - HALF[dtype])
    return tol


def assert_close_to_reference(y: torch.Tensor, x: torch.Tensor) -> None:
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    ref = reference(x)
    err = (y.double() - ref).abs()
    tol = tolerance(x.dtype, reference(x.abs()), ref)
    worst = (err - tol).argmax()
    assert (err <= tol).all(), f"error {err.flatten()[worst]:.3g} > {tol.flatten()[worst]:.3g}"


@pytest.fixture(params=[64, 4], ids=["tile64", "tile4"])
def block_t(request, monkeypatch):
    """The shipped tile, and tiles of 4 rows, which put many tiles and chunks into small T."""
    monkeypatch.setattr(kernels, "BLOCK_T", request.param)
    return request.param


def test_the_page_example_is_exact():
    x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]], device=DEVICE)
    expected = torch.tensor([[2.0, 0.0], [3.0, 3.0], [4.0, 3.0]], device=DEVICE)
    assert torch.equal(prefix_mean_triton(x), expected)


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1), (3, 1, 70), (1, 5, 3), (2, 9, 3), (2, 70, 130), (9, 5)],
    ids=["T1", "T1-C70", "B1", "small", "T70-C130", "2d"],
)
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16], ids=str
)
def test_matches_the_float64_reference(shape, dtype, block_t):
    torch.manual_seed(0)
    x = torch.randn(shape, device=DEVICE).to(dtype)
    before = x.clone()
    assert_close_to_reference(prefix_mean_triton(x), x)
    assert torch.equal(x, before)  # input untouched


def test_split_and_single_pass_plans():
    # The bandwidth point fills the GPU with one pass; a short batch of few channels is split.
    assert _plan(64, 4096, 512) == (64, 4096, 1)
    assert _plan(4, 32768, 64) == (64, 256, 128)
    assert _plan(2, 9, 3) == (4, 64, 1)  # T within one tile: nothing to split
    block_c, chunk, n = _plan(1, 1000, 3)
    assert n > 1 and chunk % kernels.BLOCK_T == 0 and (n - 1) * chunk < 1000 <= n * chunk


@pytest.mark.parametrize("shape", [(1, 300, 3), (2, 70, 65)], ids=["T300", "T70-C65"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_the_split_path_matches_the_reference(shape, dtype, block_t):
    assert _plan(*shape)[2] > 1  # these shapes take the split path
    torch.manual_seed(0)
    x = torch.randn(shape, device=DEVICE).to(dtype)
    assert_close_to_reference(prefix_mean_triton(x), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_non_contiguous_input(dtype, block_t):
    torch.manual_seed(0)
    x = torch.randn(3, 40, 77, device=DEVICE).to(dtype).transpose(1, 2)[:, ::2, 1::3]  # (3, 39, 14)
    assert not x.is_contiguous()
    y = prefix_mean_triton(x)
    assert_close_to_reference(y, x)
    assert torch.equal(y, prefix_mean_triton(x.contiguous()))


def test_gradcheck_float64_split(block_t):
    x = torch.randn(1, 37, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    assert _plan(1, 37, 3)[2] > 1 or block_t == 64
    assert torch.autograd.gradcheck(prefix_mean_triton, (x,), fast_mode=True)


def assert_gradient_close(x: torch.Tensor, g: torch.Tensor) -> None:
    """x.grad of prefix_mean_triton against grad x[s] = g[s] / (s + 1) + ... + g[T-1] / T."""
    prefix_mean_triton(x).backward(g)
    n = torch.arange(1, x.shape[1] + 1, dtype=torch.float64, device=x.device).unsqueeze(-1)
    ref = (g.double() / n).flip(1).cumsum(1).flip(1)
    tol = tolerance(x.dtype, (g.double().abs() / n).flip(1).cumsum(1).flip(1), ref)
    err = (x.grad.double() - ref).abs()
    assert x.grad.dtype == x.dtype and (err <= tol).all(), (err - tol).max()
    xd = x.detach().double().requires_grad_()  # the formula is autograd's gradient of the reference
    reference(xd).backward(g.double())
    torch.testing.assert_close(xd.grad, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_gradient_matches_the_reference(dtype, block_t):
    torch.manual_seed(0)
    x = torch.randn(2, 70, 5, device=DEVICE).to(dtype).requires_grad_()
    assert_gradient_close(x, torch.randn(2, 70, 5, device=DEVICE).to(dtype))


def test_second_derivatives_are_refused():
    x = torch.randn(2, 5, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    (g,) = torch.autograd.grad(prefix_mean_triton(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        g.sum().backward()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_bad_value_never_changes_an_earlier_output(bad, block_t):
    torch.manual_seed(0)
    x = torch.randn(2, 70, 5, device=DEVICE)
    clean = prefix_mean_triton(x)
    for t in (0, 3, 4, 64, 69):  # tile and chunk boundaries of both tile sizes
        y = x.clone()
        y[1, t, 2] = bad
        out = prefix_mean_triton(y)
        assert torch.equal(out[:, :t], clean[:, :t]), t  # bit for bit
        assert not out[1, t:, 2].isfinite().any()


def test_a_bad_gradient_never_changes_a_later_input_gradient(block_t):
    # The backward pass runs from the end: a nan in g at t reaches grad x[s] for s <= t only.
    g = torch.randn(1, 150, 3, device=DEVICE)  # split into chunks with either tile
    clean = _scan(g, reverse=True)
    g[0, 70, 1] = float("nan")
    out = _scan(g, reverse=True)
    assert torch.equal(out[:, 71:], clean[:, 71:]) and out[0, :71, 1].isnan().all()


@pytest.mark.parametrize(
    ("x", "error", "got"),
    [
        ([[1.0]], TypeError, "got list"),
        (torch.ones(3, 2, dtype=torch.int64), TypeError, "got torch.int64"),
        (torch.ones(4), ValueError, "got shape (4,)"),
        (torch.ones(2, 0, 3), ValueError, "got shape (2, 0, 3)"),
    ],
    ids=["list", "int", "1d", "T0"],
)
def test_bad_input_is_refused(x, error, got):
    assert_refuses(error, "x", prefix_mean_triton, x.to(DEVICE) if isinstance(x, torch.Tensor) else x, got=got)


def test_empty_batch_or_channels():
    for shape in [(0, 3, 2), (2, 3, 0)]:
        x = torch.ones(shape, device=DEVICE)
        assert prefix_mean_triton(x).shape == shape


@needs_cuda
def test_cpu_input_is_refused_by_the_compiled_kernel():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter runs CPU tensors")
    assert_refuses(ValueError, "x", prefix_mean_triton, torch.ones(3, 2), got="got cpu")


# Compiles every variant of the kernel for sm_90 (H100, H200) in a process where @triton.jit
# compiles rather than interprets, and reports ptxas's spill counts and the PTX's conversions.
_COMPILE = textwrap.dedent(
    """
    import json, sys
    import triton
    from triton.backends.compiler import GPUTarget
    from snippets.kernels import BLOCK_T, WARPS, _scan_kernel

    names = list(_scan_kernel.arg_names)
    for dtype in ("fp32", "bf16", "fp16", "fp64"):
        for phase in (0, 1, 2):
            for reverse in (False, True):
                acc = "fp64" if dtype == "fp64" else "fp32"
                sig = dict.fromkeys(names, "i32")
                sig.update(x_ptr=f"*{dtype}", out_ptr=f"*{dtype}", tot_ptr=f"*{acc}")
                const = dict(sxc=1, soc=1, PHASE=phase, REVERSE=reverse, F64=dtype == "fp64",
                             BLOCK_T=BLOCK_T, BLOCK_C=64)
                sig.update(dict.fromkeys(const, "constexpr"))
                # Pointers and sizes divisible by 16, as Triton specializes them at launch.
                attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in names
                         if sig[n] != "constexpr"}
                src = triton.compiler.ASTSource(fn=_scan_kernel, signature=sig, constexprs=const,
                                                attrs=attrs)
                sm90 = GPUTarget("cuda", 90, 32)
                warps = 2 * WARPS if dtype == "fp64" else WARPS
                k = triton.compile(src, target=sm90, options={"num_warps": warps})
                sys.stdout.flush()
                print("RESULT " + json.dumps(dict(dtype=dtype, phase=phase, reverse=reverse,
                      ptx=k.asm["ptx"], warps=k.metadata.num_warps)), flush=True)
    """
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    pytest.importorskip("triton.backends.nvidia", reason="this triton has no NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_DUMP_PTXAS_LOG="1", TRITON_CACHE_DIR=str(tmp_path_factory.mktemp("triton")))
    run = subprocess.run(
        [sys.executable, "-c", _COMPILE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results, log = [], []
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            results.append(dict(json.loads(line[7:]), ptxas="\n".join(log)))
            log = []
        else:
            log.append(line)
    return results


def test_every_kernel_compiles_for_sm90_without_spills(compiled):
    assert len(compiled) == 4 * 3 * 2
    for k in compiled:
        assert "Compiling entry function '_scan_kernel' for 'sm_90a'" in k["ptxas"], k["ptxas"]
        assert "0 bytes spill stores, 0 bytes spill loads" in k["ptxas"], (k["dtype"], k["ptxas"])
        assert k["warps"] == kernels.WARPS * (2 if k["dtype"] == "fp64" else 1)


def test_half_types_are_stored_rounded_to_nearest(compiled):
    for k in compiled:
        stores = k["phase"] != 1  # phase 1 stores float32 totals only
        if k["dtype"] in ("bf16", "fp16") and stores:
            assert {"bf16": "cvt.rn.bf16", "fp16": "cvt.rn.f16"}[k["dtype"]] in k["ptx"], k["dtype"]
            assert "cvt.rz" not in k["ptx"]


def test_loads_are_vectorized(compiled):
    # Each thread loads 16 bytes at a time along the contiguous channels.
    for k in compiled:
        if k["dtype"] in ("fp32", "bf16") and k["phase"] != 1:
            assert "ld.global.v4.b32" in k["ptx"], (k["dtype"], k["phase"])


# On a GPU: the compiled kernel, including the shapes the timing appendix measures.
@needs_cuda
@pytest.mark.parametrize("shape", [(64, 4096, 512), (4, 32768, 64), (3, 1000, 77)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_compiled_kernel_matches_the_reference(shape, dtype):
    torch.manual_seed(0)
    x = torch.randn(shape, device="cuda").to(dtype)
    assert_close_to_reference(prefix_mean_triton(x), x)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_compiled_gradient_matches_the_reference(dtype):
    torch.manual_seed(0)
    x = torch.randn(4, 32768, 64, device="cuda").to(dtype).requires_grad_()
    assert_gradient_close(x, torch.randn_like(x))
