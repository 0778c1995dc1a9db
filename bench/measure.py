"""Measuring one call: its median time, and on a GPU its peak memory.

* CUDA: CUDA events around each call, after a write to a buffer twice the size of
  the L2 cache so no call finds its inputs cached; peak memory from
  ``torch.cuda.max_memory_allocated`` after a reset.
* CPU: ``time.perf_counter`` around a sample of one or more calls (enough for a
  sample to last about a millisecond). CPU peak memory is measured in a worker
  process (``bench.memory``).
"""

from __future__ import annotations

import math
import random
import re
import statistics
import time
from functools import partial
from collections.abc import Callable

import torch

from bench.methods import DTYPES, Config
from bench.schema import MatmulReference


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and bool(
        re.search(r"can't allocate memory|out of memory", str(exc))
    )


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


class _Timing:
    """One method's warm-up, then its samples, one at a time (so that several can interleave)."""

    def __init__(self, fn, *, device: str, repeats: int, warmup: int, budget: float, flush):
        self.fn, self.device, self.flush, self.wait = fn, device, flush, sync(device)
        self.ms: list[float] = []
        start = time.perf_counter()
        with torch.inference_mode():
            fn()
            self.wait()
            first = time.perf_counter() - start
            self.over = (
                first > budget and f"one call took {first:.3g} s, over the budget of {budget:g} s"
            )
            t_call = first
            for _ in range(0 if self.over else warmup):
                if time.perf_counter() - start + 2 * t_call > budget:
                    break  # keep room for one sample
                t0 = time.perf_counter()
                fn()
                self.wait()
                t_call = time.perf_counter() - t0
        left = budget - (time.perf_counter() - start)
        self.n = max(1, min(repeats, int(left / max(t_call, 1e-9))))
        self.per = 1
        if not device.startswith("cuda"):  # calls per sample: >= ~1 ms
            self.per = max(1, min(1000, math.ceil(1e-3 / max(t_call, 1e-9))))
            self.n = max(1, min(self.n, int(left / max(t_call * self.per, 1e-9))))

    def sample(self) -> None:
        with torch.inference_mode():
            if self.device.startswith("cuda"):
                self.ms += samples_cuda(self.fn, 1, self.flush)
                return
            t0 = time.perf_counter()
            for _ in range(self.per):
                self.fn()
            self.ms.append((time.perf_counter() - t0) * 1e3 / self.per)

    def result(self) -> dict:
        if self.over:
            return {"status": "over_budget", "reason": self.over}
        # a timer's zero is below its resolution, not a free call; ms is the median of the
        # samples as stored (rounded), so that a file's median can be checked against them
        ms = [float(f"{max(t, 1e-6):.6g}") for t in self.ms]
        return {
            "status": "ok",
            "ms": statistics.median(ms),
            "samples_ms": ms,
            "calls_per_sample": self.per,
        }


def interleaved(
    fns: dict, *, device: str, repeats: int, warmup: int, budget: float, flush=None, on_error=None
) -> dict[str, dict]:
    """Time several methods at one point: each is warmed up, then they take their samples in
    rounds, one sample of each per round, so that a machine getting slower or faster during the
    point affects every method alike. Each round is in a new order (shuffled, from a fixed
    seed), so that no method always runs right after the same other one: on a busy machine a
    method can pay for the one before it. `budget` (seconds) is each method's. Returns the
    fields of a `schema.Point` per name; a method that raises gets what `on_error(exc)` returns."""
    out, timings = {}, {}
    for name, fn in fns.items():
        try:
            timings[name] = _Timing(
                fn, device=device, repeats=repeats, warmup=warmup, budget=budget, flush=flush
            )
        except Exception as exc:
            if on_error is None:
                raise
            out[name] = on_error(exc)
    order = random.Random(0)
    for i in range(max((t.n for t in timings.values() if not t.over), default=0)):
        names = list(timings)
        order.shuffle(names)
        for name in names:
            t = timings[name]
            if t.over or i >= t.n:
                continue
            try:
                t.sample()
            except Exception as exc:
                if on_error is None:
                    raise
                out[name] = on_error(exc)
                del timings[name]
    return out | {name: t.result() for name, t in timings.items()}


def measure(
    fn: Callable[[], torch.Tensor],
    *,
    device: str,
    repeats: int,
    warmup: int,
    budget: float,
    flush: torch.Tensor | None = None,
) -> dict:
    """Median time of one call of `fn`, within a time budget (seconds) for the whole point.

    The first call is a warm-up that also tests the budget: if it alone takes
    longer than `budget`, the point is over budget. Then up to `warmup` more
    calls and up to `repeats` samples, as many as the budget leaves room for
    (at least one sample). Returns the fields of a `schema.Point` it measured.
    """
    one = interleaved(
        {"": fn}, device=device, repeats=repeats, warmup=warmup, budget=budget, flush=flush
    )
    return one[""]


def samples_cuda(fn: Callable[[], torch.Tensor], n: int, flush: torch.Tensor | None) -> list[float]:
    """Milliseconds of `n` calls, each between two CUDA events, each after `flush` is
    overwritten."""
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(n)
    ]
    for start, end in events:
        if flush is not None:
            flush.zero_()  # evict the inputs from L2: every call reads them from HBM
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in events]


def peak_cuda(fn: Callable[[], torch.Tensor], device: str) -> int:
    """Bytes a call allocates on top of what was allocated before it, at its peak (output
    included)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        out = fn()
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    del out
    return peak


def matmul_reference(cfg: Config, dtype: str, flush: torch.Tensor | None) -> MatmulReference:
    """Time of one square (N, N) @ (N, N) product: the machine's practical peak of FLOP/s."""
    N = cfg.matmul_size
    try:
        a, b = torch.randn(2, N, N, device=cfg.device, dtype=DTYPES[dtype]).unbind(0)
        r = measure(
            partial(torch.matmul, a, b),
            device=cfg.device,
            repeats=cfg.repeats,
            warmup=cfg.warmup,
            budget=max(cfg.time_budget, 1.0),
            flush=flush,
        )
    except Exception as exc:
        r = {
            "status": "oom" if is_oom(exc) else "error",
            "reason": f"{type(exc).__name__}: {one_line(exc)}",
        }
    return MatmulReference(dtype=dtype, N=N, **r)
