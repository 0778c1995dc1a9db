"""The sweep: every (dtype, T, method) point of a `Config`, measured into a `schema.Results`.

A point that runs out of memory or over its time budget is recorded as such and
the larger T of that method are skipped; an error in a method is recorded too.
No point stops the run.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import asdict, replace
from functools import partial
from collections.abc import Callable

import torch

from bench import memory
from bench.environment import busy_processes, cpu_seconds, environment, loadavg, steal_seconds
from bench.noise import flags
from bench.fingerprint import fingerprint
from bench.measure import interleaved, is_oom, matmul_reference, one_line, peak_cuda, sync
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


def _failed(exc: BaseException) -> dict:
    return {
        "status": "oom" if is_oom(exc) else "error",
        "reason": f"{type(exc).__name__}: {one_line(exc)}",
    }


def _time_group(
    cfg: Config, names: list[str], inputs: Callable[[], Inputs], flush: torch.Tensor | None
) -> dict[str, dict]:
    """Status, timings and (on CUDA) peak memory of several methods at one point, their samples
    interleaved (`measure.interleaved`); every failure becomes a status."""
    cuda = cfg.device.startswith("cuda")
    fns, out = {}, {}
    for name in names:
        try:
            fns[name] = build(cfg, name, inputs())
            if name.endswith("+compile"):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    fns[name]()
                sync(cfg.device)()
                out[name] = {"compile_s": time.perf_counter() - t0}
        except Exception as exc:
            fns.pop(name, None)
            out[name] = _failed(exc)
    timed = interleaved(
        fns,
        device=cfg.device,
        repeats=cfg.repeats,
        warmup=cfg.warmup,
        budget=cfg.time_budget,
        flush=flush,
        on_error=_failed,
    )
    for name, r in timed.items():
        out[name] = out.get(name, {}) | r
        if r["status"] == "ok" and cfg.memory and cuda:
            try:
                out[name]["peak_bytes"] = peak_cuda(fns[name], cfg.device)
            except Exception as exc:
                out[name] = _failed(exc)
    fns.clear()
    if cuda:
        torch.cuda.empty_cache()
    return out


def remeasure(cfg: Config, results: list[Point], bandwidth: list[Point], inputs, flush) -> None:
    """Measure each flagged point (`noise.flags`) once more, with the other flagged methods of its
    point interleaved, and keep the new samples; the page marks those that stay flagged."""
    flagged = flags(Results(None, None, [], results, bandwidth, {}, 0.0))  # type: ignore[arg-type]
    groups: dict[tuple, list[Point]] = {}
    for p in results + bandwidth:
        if id(p) in flagged:
            groups.setdefault((p.dtype, p.B, p.T, p.C), []).append(p)
    for (d, B, T, C), rows in groups.items():
        big = replace(cfg, B=B, C=C)
        get = partial(inputs, big, d, T, attention=not any(r in bandwidth for r in rows))
        timed = _time_group(big, [r.method for r in rows], get, flush)
        for r in rows:
            r.reason, r.ms, r.samples_ms, r.calls_per_sample = None, None, [], None
            for key, v in timed[r.method].items():
                setattr(r, key, v)
            r.remeasured = True


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
    t_start, cpu_start, steal_start = time.perf_counter(), cpu_seconds(), steal_seconds()
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
    load_max = list(env.loadavg_start or [0.0])[:1]
    for d in cfg.dtypes:
        for T in cfg.Ts:  # one point: every method, samples interleaved
            why = {m: stopped.get((d, m)) or skip_reason(cfg, m, d, T) for m in cfg.methods}
            timed = _time_group(
                cfg, [m for m in cfg.methods if not why[m]], partial(inputs, cfg, d, T), flush
            )
            for name in cfg.methods:
                p = _new_point(
                    cfg, name, d, T, **(timed.get(name) or dict(status="skipped", reason=why[name]))
                )
                if p.status in ("oom", "over_budget"):
                    stopped[(d, name)] = f"stopped after T={T}: {p.status.replace('_', ' ')}"
                results.append(p)
                progress.step(f"{d} T={T} {name}: {_status(p)}")
            load_max = max(load_max, (loadavg() or [0.0])[:1])

    def bandwidth_pass(d: str) -> list[Point]:  # the prefix means on x larger than the caches
        B, T, C = cfg.bandwidth  # type: ignore[misc]  # set, or there is no bandwidth point
        big = replace(cfg, B=B, C=C)
        names = [m for m in BANDWIDTH_METHODS if m in cfg.methods]
        why = {m: skip_reason(big, m, d, T) for m in names}
        run = [m for m in names if not why[m]]
        timed = _time_group(big, run, partial(inputs, big, d, T, attention=False), flush)
        return [
            _new_point(big, m, d, T, **(timed.get(m) or dict(status="skipped", reason=why[m])))
            for m in names
        ]

    bandwidth: list[Point] = []
    for d in cfg.dtypes if bandwidth_points else ():
        bandwidth += (done := bandwidth_pass(d))
        for p in done:
            progress.step(f"{d} bandwidth (B, T, C) = {cfg.bandwidth} {p.method}: {_status(p)}")
    remeasure(cfg, results, bandwidth, inputs, flush)
    wall, cpu_end, steal_end = time.perf_counter() - t_start, cpu_seconds(), steal_seconds()
    if cpu_start and cpu_end:  # cores kept busy by everything else on the machine, on average
        env.other_processes_cores = round(
            max(0.0, (cpu_end[0] - cpu_start[0]) - (cpu_end[1] - cpu_start[1])) / wall, 3
        )
    if steal_start is not None and steal_end is not None:
        env.steal_cores = round(max(0.0, steal_end - steal_start) / wall, 3)
    env.loadavg_max = load_max[0] if env.loadavg_start else None
    env.loadavg_end = loadavg()  # before any busy process starts
    busy: list[Point] = []
    if cfg.busy and bandwidth_points:  # once more, with every core also running a busy process
        with busy_processes(os.cpu_count() or 1) as n:
            env.busy_processes = n
            for d in cfg.dtypes:
                busy += bandwidth_pass(d)
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
    wall = time.perf_counter() - t_start
    record = asdict(cfg) | {"head_size": cfg.head_size, "loop_limit": LOOP_LIMIT}
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}
    return Results(
        env=env,
        config=ConfigRecord(**record),
        matmul_reference=refs,
        results=results,
        bandwidth=bandwidth,
        bandwidth_busy=busy,
        fingerprints=codes,
        wall_s=wall,
    )
