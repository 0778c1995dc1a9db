"""The sweep: every (dtype, T, method) point of a `Config`, measured into a `schema.Results`.

A point that runs out of memory or over its time budget is recorded as such and
the larger T of that method are skipped; an error in a method is recorded too.
No point stops the run.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import asdict, replace
from functools import partial
from collections.abc import Callable
from typing import Any

import torch

from bench import memory
from bench.environment import cpu_seconds, environment, loadavg
from bench.fingerprint import fingerprint
from bench.measure import is_oom, matmul_reference, measure, one_line, peak_cuda, sync
from bench.methods import (
    DTYPES,
    LOOP_LIMIT,
    Config,
    Inputs,
    build,
    flops,
    make_inputs,
    nbytes,
    skip_reason,
)
from bench.schema import BANDWIDTH_METHODS, METHODS, Point, Results, base_name
from bench.schema import Config as ConfigRecord


class Progress:
    """One line per point when stderr is a file; a bar redrawn in place on a terminal."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.tty = self.stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        n = self.total
        if self.tty:
            bar = "#" * (30 * self.done // n)
            self.stream.write(f"\r[{bar:<30}] {self.done}/{n} {label[:60]:<60}")
            if self.done == n:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done:>{len(str(n))}}/{n}] {label}\n")
        self.stream.flush()


class _InputCache:
    """The inputs of the latest point only: a new point frees the old inputs before it makes its
    own."""

    def __init__(self):
        self.key, self.inputs = None, None

    def __call__(self, cfg: Config, dtype: str, T: int, *, attention: bool = True) -> Inputs:
        key = (dtype, T, cfg.B, cfg.C, attention)
        if key != self.key:
            self.clear()
            self.inputs, self.key = make_inputs(cfg, dtype, T, attention=attention), key
        return self.inputs

    def clear(self) -> None:
        self.key = self.inputs = None
        gc.collect()


def _new_point(cfg: Config, name: str, dtype: str, T: int, **status) -> Point:
    return Point(
        method=name,
        dtype=dtype,
        T=T,
        B=cfg.B,
        C=cfg.C,
        heads=cfg.heads,
        bytes=nbytes(cfg, name, T, DTYPES[dtype].itemsize),
        flops=flops(cfg, name, T),
        **status,
    )


def _time_point(
    cfg: Config, name: str, inputs: Callable[[], Inputs], flush: torch.Tensor | None
) -> dict:
    """Status, timings and (on CUDA) peak memory of one method; every failure becomes a status."""
    cuda = cfg.device.startswith("cuda")
    fn = None
    r: dict[str, Any] = {}
    try:
        fn = build(cfg, name, inputs())
        if name.endswith("+compile"):
            t0 = time.perf_counter()
            with torch.inference_mode():
                fn()
            sync(cfg.device)()
            r["compile_s"] = time.perf_counter() - t0
        r |= measure(
            fn,
            device=cfg.device,
            repeats=cfg.repeats,
            warmup=cfg.warmup,
            budget=cfg.time_budget,
            flush=flush,
        )
        if r["status"] == "ok" and cfg.memory and cuda:
            r["peak_bytes"] = peak_cuda(fn, cfg.device)
    except Exception as exc:
        r = {k: v for k, v in r.items() if k == "compile_s"}
        r |= {
            "status": "oom" if is_oom(exc) else "error",
            "reason": f"{type(exc).__name__}: {one_line(exc)}",
        }
    finally:
        fn = None
        if cuda:
            torch.cuda.empty_cache()
    return r


def fingerprints(names) -> dict[str, str | None]:
    """{method: fingerprint of the tutorial code it measures, None for PyTorch's own}."""
    return {n: fingerprint(code) if (code := METHODS[base_name(n)].code) else None for n in names}


def _status(p) -> str:
    return f"{p.ms:.4g} ms" if p.status == "ok" else p.status.replace("_", " ")


def run(cfg: Config, argv: list[str], progress: Progress | None = None) -> Results:
    """Measure every (dtype, T, method) point of `cfg` and return the results.

    The thread count and float32 matmul precision of `cfg` hold during the run;
    the process's own settings are restored afterwards.
    """
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda"):
        torch.set_float32_matmul_precision("high" if cfg.tf32 else "highest")
    try:
        return _run(cfg, argv, progress)
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(precision)


def _run(cfg: Config, argv: list[str], progress: Progress | None) -> Results:
    t_start, cpu_start = time.perf_counter(), cpu_seconds()
    cuda = cfg.device.startswith("cuda")
    env = environment(cfg, argv)
    codes = fingerprints(cfg.methods)  # the code as it is when the run starts
    flush = None
    if cuda:  # twice the L2 cache, written before every timed call
        flush = torch.empty(
            2 * env.l2_cache_bytes,  # type: ignore[operator]  # set on CUDA
            dtype=torch.uint8,
            device=cfg.device,
        )
    points = [(d, T, m) for d in cfg.dtypes for T in cfg.Ts for m in cfg.methods]
    bandwidth_points = [
        (d, m) for d in cfg.dtypes for m in BANDWIDTH_METHODS if m in cfg.methods and cfg.bandwidth
    ]
    progress = progress or Progress(len(points) + len(bandwidth_points) + len(cfg.dtypes))
    refs = []
    for d in cfg.dtypes:
        refs.append(matmul_reference(cfg, d, flush))
        progress.step(f"{d} matmul reference N={cfg.matmul_size}: {_status(refs[-1])}")

    results: list[Point] = []
    stopped: dict[tuple[str, str], str] = {}  # (dtype, method): why larger T are skipped
    inputs = _InputCache()
    for d, T, name in points:
        why = stopped.get((d, name)) or skip_reason(cfg, name, d, T)
        if why:
            p = _new_point(cfg, name, d, T, status="skipped", reason=why)
        else:
            p = _new_point(
                cfg, name, d, T, **_time_point(cfg, name, partial(inputs, cfg, d, T), flush)
            )
            if p.status in ("oom", "over_budget"):
                stopped[(d, name)] = f"stopped after T={T}: {p.status.replace('_', ' ')}"
        results.append(p)
        progress.step(f"{d} T={T} {name}: {_status(p)}")

    bandwidth = []
    for d, name in bandwidth_points:  # the prefix means on x larger than the caches
        B, T, C = cfg.bandwidth  # type: ignore[misc]  # set, or bandwidth_points is empty
        big = replace(cfg, B=B, C=C)
        p = _new_point(
            big,
            name,
            d,
            T,
            **_time_point(big, name, partial(inputs, big, d, T, attention=False), flush),
        )
        bandwidth.append(p)
        progress.step(f"{d} bandwidth (B, T, C) = {cfg.bandwidth} {name}: {_status(p)}")
    inputs.clear()

    if cfg.memory and not cuda:
        reason = memory.unavailable()
        todo = [p for p in results if p.status == "ok"]
        mem = memory.CpuMemory(cfg) if reason is None else None
        step = Progress(len(todo)).step if mem else (lambda label: None)
        try:
            for p in todo:
                p.peak_bytes, p.memory_note = mem(p.method, p.dtype, p.T) if mem else (None, reason)
                step(
                    f"peak memory {p.dtype} T={p.T} {p.method}: "
                    + (f"{p.peak_bytes / 2**20:.3g} MiB" if p.peak_bytes is not None else "n/a")
                )
        finally:
            if mem:
                mem.close()
    env.loadavg_end = loadavg()
    wall, cpu_end = time.perf_counter() - t_start, cpu_seconds()
    if cpu_start and cpu_end:  # cores kept busy by everything else on the machine, on average
        env.other_processes_cores = round(
            max(0.0, (cpu_end[0] - cpu_start[0]) - (cpu_end[1] - cpu_start[1])) / wall, 3
        )
    record = asdict(cfg) | {"head_size": cfg.head_size, "loop_limit": LOOP_LIMIT}
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}
    return Results(
        env=env,
        config=ConfigRecord(**record),
        matmul_reference=refs,
        results=results,
        bandwidth=bandwidth,
        fingerprints=codes,
        wall_s=wall,
    )
