"""The contract registry: how to call each public name of `snippets`, for tests/test_contracts.py.

Every name in `snippets.__all__` has an Entry: one or more Cases (one way each to make a call of
it, on small tensors), and for each contract property that does not apply to it, the reason.
tests/test_contracts.py runs each property on every case that has it, and fails when a name of
`snippets.__all__` has no entry, or a property is neither run nor excused.

A case's `make(dtype, device)` returns `(fn, args)`: `fn(*args)` is the call. `fn` is the
function itself, or an `nn.Module` (its parameters are inputs too: gradcheck differentiates
through them, and they must come out unmodified); its weights come from `torch.manual_seed(0)`
and the tensors of `args` from a fixed CPU generator, so two calls of make on two devices or in two
dtypes hold the same numbers (rounded to the dtype).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from snippets import (
    Head,
    KVCache,
    MultiHeadAttention,
    OneHeadModel,
    apply_rotary,
    causal_attention,
    causal_linear_attention,
    causal_linear_attention_quadratic,
    causal_mean_weights,
    linear,
    lookback_batch,
    online_causal_attention,
    prefix_mean_cumsum,
    prefix_mean_fast,
    prefix_mean_loop,
    prefix_mean_matmul,
    prefix_mean_softmax,
    sinusoidal_positions,
)
from snippets.learning import IGNORE
from tests.marks import CUDA

# The contract. Each name below is one property, tested by tests/test_contracts.py.
PROPERTIES = {
    "gradcheck": "float64 gradients (of the inputs and of a module's parameters) match finite differences",
    "unmodified": "the inputs (and a module's parameters) are left as they were; the output is new memory",
    "low_precision": "float16 and bfloat16 run, keep the dtype, and stay within a few eps of float32",
    "non_contiguous": "strided views of the inputs give the result of their contiguous copies",
    "causal": "changing positions j.. of an input changes no output before j (and does change a later one); "
              "a nan or inf at j changes no output before j",
    "cuda": "on a CUDA GPU, the result of the CPU (float32 and bfloat16)",
    "compiles": "torch.compile(fullgraph=True) traces it without a graph break (as a check that read a "
                "value would cause), to the same numbers",
    "meta": "runs on the meta device (shapes without data: nothing reads a value), to the real shapes",
}
B, T, C = 2, 9, 8  # T = 9: blocks of 4 leave a partial one, the decoding chunks are 1, 2, 3, 3


@dataclass(frozen=True)
class Case:
    """One way to call a public name."""

    make: Callable[[torch.dtype, str], tuple[Callable, tuple]]
    names: tuple[str, ...] = ("x",)  # the arguments of fn, in order
    time: dict[str, int] = field(default_factory=lambda: {"x": -2})  # argument -> its time dim
    output: Callable = lambda out: out  # the part of fn's result whose dim -2 is time
    eps: float = 4  # low precision: how many eps of the dtype the result may be from float32's
    id: str = ""  # set by Entry's name, and a suffix where a name has several cases
    skip: frozenset[str] = frozenset()  # properties another case of the same name runs
    marks: tuple = ()  # pytest marks of its tests


@dataclass(frozen=True)
class Entry:
    cases: tuple[Case, ...] = ()
    not_applicable: dict[str, str] = field(default_factory=dict)  # property -> why not


def _tensors(dtype, device, *shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(s, generator=g).to(device, dtype) for s in shapes)


def _function(f, *shapes):
    """A function of float tensors of these shapes."""
    return lambda dtype, device: (f, _tensors(dtype, device, *shapes))


def _module(new, *shapes):
    def make(dtype, device):
        torch.manual_seed(0)
        return new().to(device, dtype), _tensors(dtype, device, *shapes)
    return make


QKV = dict(names=("q", "k", "v"), time={"q": -2, "k": -2, "v": -2})
QKV_SHAPES = ((B, T, 4), (B, T, 4), (B, T, 5))


def _blocked(x):
    """prefix_mean_fast on its blocked path at any size (small inputs take plain cumsum)."""
    saved, linear._SMALL = linear._SMALL, 0
    try:
        return prefix_mean_fast(x)
    finally:
        linear._SMALL = saved


class _Decoder(nn.Module):
    """KVCache in use: a MultiHeadAttention fed x in chunks of 1, 2, 3, 3 through a fresh cache.

    4 channels, not C: gradcheck differentiates through every parameter, and these are a quarter."""

    def __init__(self):
        super().__init__()
        self.mha = MultiHeadAttention(4, 2, 16)

    def forward(self, x):
        cache, bounds = KVCache(), (0, 1, 3, 6, x.shape[1])
        return torch.cat([self.mha(x[:, a:b], cache) for a, b in zip(bounds, bounds[1:])], dim=1)


def _tokens(dtype, device):
    """OneHeadModel(5, 8, 16) on tokens of a vocab of 5, with targets two places back."""
    torch.manual_seed(0)
    model = OneHeadModel(5, C, 16).to(device, dtype)
    idx = torch.randint(5, (B, T), generator=torch.Generator().manual_seed(0))
    targets = idx.roll(2, dims=1)
    targets[:, :2] = IGNORE
    return model, (idx.to(device), targets.to(device))


def _rotary(dtype, device):
    (x,) = _tensors(dtype, device, (B, T, C))
    return (lambda x, positions: apply_rotary(x, positions, base=50.0)), (x, torch.arange(3, 3 + T, device=device))


def _triton(dtype, device):
    """Chapter 10's kernel. Where a GPU is present this process compiles Triton's kernels, so
    they take CUDA tensors whatever device is asked; without one, Triton's interpreter runs
    them on CPU tensors (the root conftest.py sets TRITON_INTERPRET)."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("needs triton, which cannot be imported here")
    from snippets import prefix_mean_triton

    return prefix_mean_triton, _tensors(dtype, "cuda" if CUDA else device, (B, 6, 3))  # few programs


NO_TENSOR_IN = "takes sizes, not tensors: there is no tensor input"
TOKENS_OUT = "makes integer tokens on the CPU from a CPU generator: data, not a computation"

REGISTRY: dict[str, Entry] = {
    **{f.__name__: Entry((Case(_function(f, (B, T, C))),)) for f in
       (prefix_mean_loop, prefix_mean_matmul, prefix_mean_softmax, prefix_mean_cumsum)},
    "prefix_mean_fast": Entry((
        Case(_function(prefix_mean_fast, (B, 37, 3)), eps=1),  # float32 inside, rounded once
        # Compiled, the blocked path is the same code at a size past _SMALL: tests/test_limits.py.
        # It reads whether its sums are finite (to fall back to cumsum), which no meta tensor holds.
        Case(_function(_blocked, (B, 37, 3)), eps=1, id="blocked", skip=frozenset({"compiles", "meta"})),
    )),
    "prefix_mean_triton": Entry(
        # The interpreter truncates half types where a GPU rounds. Slow: tests/tiers.py.
        (Case(_triton, eps=2, marks=(pytest.mark.slow,)),),
        {"cuda": "a process either compiles Triton's kernels (a GPU) or interprets them (none), so it "
                 "has no CPU result to compare; tests/test_kernels.py checks the GPU against float64",
         "compiles": "a Triton kernel launched from an autograd.Function: torch.compile cannot trace "
                     "Triton's interpreter, and compiling adds nothing to a kernel that is already one"},
    ),
    "causal_mean_weights": Entry(
        (Case(lambda dtype, device: (lambda: causal_mean_weights(T, dtype=dtype, device=device), ()),
              names=(), time={}),),
        {p: NO_TENSOR_IN for p in ("gradcheck", "unmodified", "non_contiguous", "causal")},
    ),
    "sinusoidal_positions": Entry(
        (Case(lambda dtype, device: (lambda: sinusoidal_positions(T, C, dtype=dtype, device=device), ()),
              names=(), time={}, eps=1),),  # computed in float64, rounded once
        {p: NO_TENSOR_IN for p in ("gradcheck", "unmodified", "non_contiguous", "causal")},
    ),
    "apply_rotary": Entry((Case(_rotary, names=("x", "positions"), time={"x": -2, "positions": -1}, eps=1),)),
    "causal_attention": Entry((Case(_function(causal_attention, *QKV_SHAPES), **QKV),)),
    "causal_linear_attention": Entry((Case(_function(causal_linear_attention, *QKV_SHAPES), **QKV, eps=2),)),
    "causal_linear_attention_quadratic": Entry(
        (Case(_function(causal_linear_attention_quadratic, *QKV_SHAPES), **QKV, eps=2),)),
    "online_causal_attention": Entry((Case(_function(
        lambda q, k, v: online_causal_attention(q, k, v, block=4), *QKV_SHAPES), **QKV, eps=2),)),
    "Head": Entry((Case(_module(lambda: Head(C, 4, 16), (B, T, C))),)),
    "MultiHeadAttention": Entry((Case(_module(lambda: MultiHeadAttention(C, 2, 16), (B, T, C))),)),
    "KVCache": Entry((Case(_module(_Decoder, (B, T, 4))),)),
    "OneHeadModel": Entry((Case(_tokens, names=("idx", "targets"), time={"idx": 1},
                                output=lambda out: out[0]),)),  # the logits: the loss sees every position
    "lookback_batch": Entry(
        (Case(lambda dtype, device: (lambda: lookback_batch(B, T, 5), ()), names=(), time={}),),
        {p: TOKENS_OUT for p in ("gradcheck", "unmodified", "low_precision", "non_contiguous", "causal",
                                 "cuda", "meta")}),
    "train": Entry(not_applicable={
        p: "a training loop: it changes the model on purpose, and the model's contracts are "
           "OneHeadModel's (chapter 6 says to compile the model, not the loop)" for p in PROPERTIES}),
    "decode_macs": Entry(not_applicable={p: "counts operations from sizes: no tensor in or out"
                                         for p in PROPERTIES}),
}


def cases(prop: str) -> list:
    """pytest params (name, case) of every case that runs `prop`."""
    return [pytest.param(name, case, id=f"{name}-{case.id}" if case.id else name, marks=case.marks)
            for name, entry in REGISTRY.items() if prop not in entry.not_applicable
            for case in entry.cases if prop not in case.skip]


def outputs(result) -> tuple[torch.Tensor, ...]:
    """The tensors of a result: a tensor, or a tuple such as OneHeadModel's (logits, loss)."""
    return tuple(r for r in (result if isinstance(result, tuple) else (result,)) if r is not None)
