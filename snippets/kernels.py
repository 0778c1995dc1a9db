"""Chapter 10: the prefix mean as one Triton kernel.

``prefix_mean_triton`` computes the same prefix mean as the chapter 2 and 8
functions (``(B, T, C)`` or ``(T, C)`` in, same shape, dtype and device out,
input untouched, differentiable), in one pass over ``x`` when the batch fills
the GPU (two when ``T`` is split): each program of the kernel reads its part of
``x`` once and writes the mean once, with a running sum carried from one tile of
time steps to the next.

The module needs Triton. Compiled kernels run on a CUDA GPU; on a machine
without one, set ``TRITON_INTERPRET=1`` before Triton is first imported (PyTorch
may import it on its own), and Triton's interpreter runs the same kernels on CPU
tensors (slowly, one program after another). Set later, it does not work: Triton's
own helpers were then defined as compiled functions.

The definition checks its input with helpers of ``snippets/checks.py``; a page
shows it followed by the helpers it calls, so the block can be copied alone into a
project that has torch and triton.
"""

__all__ = ["prefix_mean_triton"]

# --8<-- [start:imports]
import torch
import triton
import triton.language as tl

# --8<-- [end:imports]
from snippets.checks import check_sequence


# --8<-- [start:prefix_mean_triton]
@triton.jit
def _scan_kernel(
    x_ptr,  # (B, T, C) input
    out_ptr,  # (B, T, C) output
    tot_ptr,  # (B, n_chunks, C) chunk totals, when T is split
    T,
    C,
    chunk,  # rows of T per program: all of T unless T is split
    sxb,  # strides of x, in elements
    sxt,
    sxc,
    sob,  # strides of out
    sot,
    soc,
    PHASE: tl.constexpr,  # 0: all of T; 1: chunk totals only; 2: a chunk, after earlier totals
    REVERSE: tl.constexpr,  # True: out[t] = x[t] / (t + 1) + ... + x[T-1] / T, the gradient
    F64: tl.constexpr,  # accumulate in float64 (float64 input), else in float32
    BLOCK_T: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)  # the sequence; 64-bit, so b * sxb cannot overflow
    cb, k = tl.program_id(1), tl.program_id(2)  # channel block, chunk
    acc = tl.float64 if F64 else tl.float32
    cs = cb * BLOCK_C + tl.arange(0, BLOCK_C)  # (BLOCK_C,) this program's channels
    c_ok = cs < C
    carry = tl.zeros([BLOCK_C], dtype=acc)  # the running sum: chapter 9's state
    if PHASE == 2:  # the totals of every earlier chunk
        for j in range(0, k):
            carry += tl.load(tot_ptr + (b * tl.num_programs(2) + j) * C + cs, mask=c_ok, other=0)
    end = tl.minimum(k * chunk + chunk, T)
    for start in range(k * chunk, end, BLOCK_T):
        i = start + tl.arange(0, BLOCK_T)  # (BLOCK_T,) steps in scan order
        t = (T - 1 - i) if REVERSE else i  # their rows in x
        ok = (i < end)[:, None] & c_ok[None, :]  # (BLOCK_T, BLOCK_C)
        x = tl.load(x_ptr + b * sxb + t[:, None] * sxt + cs[None, :] * sxc, mask=ok, other=0)
        x = x.to(acc)
        n = (tl.maximum(t, 0) + 1).to(acc)[:, None]  # (BLOCK_T, 1) rows averaged at t
        if REVERSE:  # the gradient: g[t] / (t + 1), summed from the end
            x = x / n
        s = carry[None, :] + tl.cumsum(x, axis=0)  # (BLOCK_T, BLOCK_C) running sums
        carry += tl.sum(x, axis=0)
        if PHASE != 1:
            y = s if REVERSE else s / n
            o = out_ptr + b * sob + t[:, None] * sot + cs[None, :] * soc
            tl.store(o, y.to(out_ptr.dtype.element_ty), mask=ok)
    if PHASE == 1:
        tl.store(tot_ptr + (b * tl.num_programs(2) + k) * C + cs, carry, mask=c_ok)


BLOCK_T = 64  # rows per tile
BLOCK_C = 64  # channels per program, at most
FILL = 512  # programs wanted at once: several per multiprocessor of a large GPU
WARPS = 2  # warps per program: the fewer, the fewer steps of tl.cumsum cross between warps


def _plan(B: int, T: int, C: int) -> tuple[int, int, int]:
    """(block_c, chunk, n_chunks): channels per program, rows per chunk, chunks along T."""
    block_c = min(BLOCK_C, triton.next_power_of_2(C))  # along the contiguous channels
    programs = B * triton.cdiv(C, block_c)
    # Split T only when B * C alone leaves the GPU mostly idle, and into whole tiles.
    chunks = min(max(1, FILL // programs), triton.cdiv(T, BLOCK_T))
    chunk = triton.cdiv(triton.cdiv(T, chunks), BLOCK_T) * BLOCK_T
    return block_c, chunk, triton.cdiv(T, chunk)


def _scan(x: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The forward scan (reverse=False) or its gradient (reverse=True) of x: (B, T, C)."""
    B, T, C = x.shape
    block_c, chunk, n = _plan(B, T, C)
    out = torch.empty(B, T, C, dtype=x.dtype, device=x.device)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    tot = torch.empty(B, n, C, dtype=acc, device=x.device)  # chunk totals (split T only)
    args = (x, out, tot, T, C, chunk, *x.stride(), *out.stride())
    f64 = acc == torch.float64
    warps = 2 * WARPS if f64 else WARPS  # float64 tiles need twice the registers
    meta = dict(REVERSE=reverse, F64=f64, BLOCK_T=BLOCK_T, BLOCK_C=block_c, num_warps=warps)
    grid = (B, triton.cdiv(C, block_c), n)
    if n == 1:  # one pass: read x once, write out once
        _scan_kernel[grid](*args, PHASE=0, **meta)
    else:  # each chunk's total, then each chunk again, starting from the earlier totals
        _scan_kernel[grid](*args, PHASE=1, **meta)
        _scan_kernel[grid](*args, PHASE=2, **meta)
    return out


class _PrefixMeanTriton(torch.autograd.Function):
    # out[t] = (x[0] + ... + x[t]) / (t + 1), so grad x[s] = g[s] / (s + 1) + ... + g[T-1] / T:
    # the same scan, run from the end. First derivatives only.
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return _scan(x, reverse=False)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return _scan(g, reverse=True)


def prefix_mean_triton(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean in one pass: a Triton kernel with a running sum carried along T.

    Each program owns one sequence and up to 64 channels, walks T in tiles of 64
    rows, and writes every mean once. Sums are accumulated in float32 (float64
    for float64 input). Where ``B * ceil(C / 64)`` programs are at most
    ``FILL // 2`` and T is longer than one tile, T is also split into chunks, at
    the price of reading ``x`` twice.
    ``x`` may have any strides. First derivatives only.

    Examples:
        >>> device = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: the interpreter
        >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]], device=device)
        >>> prefix_mean_triton(x).cpu()
        tensor([[2., 0.],
                [3., 3.],
                [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0, or ``x``
            is on a CPU while Triton's interpreter is off.
    """
    check_sequence("prefix_mean_triton", x)
    if x.device.type == "meta":  # shapes without data: nothing to launch
        return torch.empty_like(x)
    interpreted = not isinstance(_scan_kernel, triton.runtime.JITFunction)
    if x.device.type != "cuda" and not interpreted:
        raise ValueError(
            f"prefix_mean_triton: x must be on a CUDA device, got {x.device} "
            "(for CPU tensors, set TRITON_INTERPRET=1 before triton is first imported)"
        )
    if x.numel() == 0:
        return x.clone()
    out = _PrefixMeanTriton.apply(x if x.dim() == 3 else x.unsqueeze(0))  # (B, T, C)
    return out if x.dim() == 3 else out.squeeze(0)


# --8<-- [end:prefix_mean_triton]
