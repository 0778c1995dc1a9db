"""The methods the harness times: how to build one call of each on given inputs.

Names, kinds and the code each one measures are the results format's
(`schema.METHODS`); this module adds what needs torch: the inputs, the call,
and the bytes and FLOPs a call must move and compute at least.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import warnings
from dataclasses import dataclass, replace
from functools import partial, cache
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.schema import DTYPES as FORMAT_DTYPES
from bench.schema import METHODS as INFO
from bench.schema import CUDA_ONLY, base_name

LOOP_LIMIT = 4096  # prefix_mean_loop runs only where B * T <= LOOP_LIMIT: it is a Python loop
DTYPES = {
    name: getattr(torch, name) for name in FORMAT_DTYPES
}  # the format's names, as torch dtypes
SDPA_KERNELS = {
    "math": "MATH",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
}


@dataclass(frozen=True)
class Config:
    device: str
    dtypes: tuple[str, ...]
    Ts: tuple[int, ...]
    B: int
    C: int
    heads: int
    repeats: int
    warmup: int
    time_budget: float
    tf32: bool
    compile: bool
    methods: tuple[str, ...]
    matmul_size: int
    threads: int
    seed: int
    memory: bool
    bandwidth: tuple[int, int, int] | None  # (B, T, C) of the bandwidth point, or None for none
    busy: bool = False  # also time the bandwidth point with every core running a busy process

    @property
    def head_size(self) -> int:
        return self.C // self.heads


@dataclass
class Inputs:
    T: int
    x: torch.Tensor  # (B, T, C)
    q: torch.Tensor | None  # (B, heads, T, head_size)
    k: torch.Tensor | None
    v: torch.Tensor | None


def make_inputs(cfg: Config, dtype: str, T: int, *, attention: bool = True) -> Inputs:
    """Random inputs of one point; q, k, v only if `attention` (else None)."""
    g = torch.Generator(device=cfg.device).manual_seed(cfg.seed + T)
    kw = dict(generator=g, device=cfg.device, dtype=DTYPES[dtype])
    x = torch.randn(cfg.B, T, cfg.C, **kw)
    qkv = (
        torch.randn(3, cfg.B, cfg.heads, T, cfg.head_size, **kw).unbind(0)
        if attention
        else (None,) * 3
    )
    return Inputs(T, x, *qkv)


def _load(name: str):
    module, _, attr = INFO[name].code.partition(":")  # type: ignore[union-attr]  # one with code
    return getattr(importlib.import_module(module), attr)


def _prefix(name: str):
    def make(cfg: Config, inp: Inputs):
        return partial(_load(name), inp.x)

    return make


def _module(name: str, *args):
    def make(cfg: Config, inp: Inputs):
        torch.manual_seed(cfg.seed)
        module = (
            _load(name)(cfg.C, *(getattr(cfg, a) for a in args), inp.T)
            .to(inp.x.device, inp.x.dtype)
            .eval()
        )
        return partial(module, inp.x)

    return make


def _sdpa(backend: str):
    def make(cfg: Config, inp: Inputs):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernel = getattr(SDPBackend, SDPA_KERNELS[backend])

        def call():
            with sdpa_kernel(kernel):
                return F.scaled_dot_product_attention(inp.q, inp.k, inp.v, is_causal=True)

        return call

    return make


MAKERS: dict[str, Callable[[Config, Inputs], Callable[[], torch.Tensor]]] = {
    "clone": lambda cfg, inp: inp.x.clone,
    **{n: _prefix(n) for n in INFO if n.startswith("prefix_mean")},
    "causal_attention": lambda cfg, inp: partial(_load("causal_attention"), inp.q, inp.k, inp.v),
    "online_causal_attention": lambda cfg, inp: partial(
        _load("online_causal_attention"), inp.q, inp.k, inp.v
    ),
    "Head": _module("Head", "head_size"),
    "MultiHeadAttention": _module("MultiHeadAttention", "heads"),
    **{f"sdpa-{b}": _sdpa(b) for b in SDPA_KERNELS},
}
assert MAKERS.keys() == INFO.keys(), "every method of the format has a maker, and no other"


# Bytes: the least traffic a call needs, its inputs read once and its output written once.
# FLOPs: 2 per multiply-add of the matrix products; attention counts only the causal
# half of q @ k^T and wei @ v (the half that is not masked), as FlashAttention's papers do.
def nbytes(cfg: Config, name: str, T: int, itemsize: int) -> int:
    B, C, D = cfg.B, cfg.C, cfg.head_size
    base = base_name(name)
    if base == "Head":
        return (B * T * C + 3 * C * D + B * T * D) * itemsize
    if base == "MultiHeadAttention":
        return (2 * B * T * C + 4 * C * C) * itemsize
    if base in ("causal_attention", "online_causal_attention") or base.startswith("sdpa-"):
        return 4 * B * T * C * itemsize  # q, k, v in, the output out
    return 2 * B * T * C * itemsize  # x in, the output out


def flops(cfg: Config, name: str, T: int) -> int | None:
    B, C, D = cfg.B, cfg.C, cfg.head_size
    base = base_name(name)
    attention = 2 * B * T * T * C  # 2 products * 2 FLOPs * B * heads * T^2/2 * head_size
    if base in ("prefix_mean_matmul", "prefix_mean_softmax"):
        return 2 * B * T * T * C  # the (T, T) weights times x
    if base in ("causal_attention", "online_causal_attention") or base.startswith("sdpa-"):
        return attention
    if base == "Head":
        return 2 * B * T * C * 3 * D + 2 * B * T * T * D
    if base == "MultiHeadAttention":
        return 2 * B * T * C * 4 * C + attention
    return None


@cache
def _sdpa_reason(cfg: Config, backend: str, dtype: str) -> str | None:
    """Why this SDPA backend cannot run here (its own words), or None if it can."""
    probe = replace(cfg, B=1, Ts=(8,))  # tiny, with the run's heads and head size
    call = _sdpa(backend)(probe, make_inputs(probe, dtype, 8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
            return None
        except RuntimeError as exc:
            return backend_reason(backend, [str(w.message) for w in caught], str(exc))


_HEADERS = {"flash": "flash attention", "efficient": "memory efficient", "cudnn": "cudnn"}


def backend_reason(backend: str, warned: list[str], error: str) -> str:
    """PyTorch's own reason why `backend` did not run: its part of the warnings, then the error.

    PyTorch warns about every backend it tried ("Flash attention kernel not used
    because:", then the reasons), each with a "(Triggered internally at ...)"
    location; only the requested backend's part is kept, without the locations.
    """
    clean = [
        re.sub(r"\s*\(Triggered internally at [^)]*\)\.?", "", " ".join(m.split())).strip()
        for m in warned
    ]
    groups: dict[str, list[str]] = {}
    current = None
    for m in clean:
        if m.endswith("not used because:"):
            current = m
            groups[current] = []
        elif current is not None and m:
            groups[current].append(m)
    mine = [h for h in groups if _HEADERS.get(backend, "\0") in h.lower()]
    said = [mine[0], *groups[mine[0]]] if mine else [m for m in clean if m]
    return " ".join([*said, " ".join(error.split())])[:600]


def skip_reason(cfg: Config, name: str, dtype: str, T: int) -> str | None:
    base = base_name(name)
    if base == "prefix_mean_loop" and cfg.B * T > LOOP_LIMIT:
        return f"B*T = {cfg.B * T} > {LOOP_LIMIT}: the Python loop runs only on small inputs"
    if base.startswith("sdpa-"):
        return _sdpa_reason(cfg, base.removeprefix("sdpa-"), dtype)
    if base in CUDA_ONLY:
        if cfg.device != "cuda":
            return "a Triton kernel: timed on CUDA GPUs only (a CPU runs it in the interpreter)"
        if importlib.util.find_spec("triton") is None:
            return "a Triton kernel, and triton cannot be imported here"
    return None


def build(cfg: Config, name: str, inp: Inputs) -> Callable[[], torch.Tensor]:
    fn = MAKERS[base_name(name)](cfg, inp)
    if name.endswith("+compile"):
        torch.compiler.reset()  # a fresh graph per point: no recompile limit, no stale guards
        fn = torch.compile(fn, dynamic=False)
    return fn
