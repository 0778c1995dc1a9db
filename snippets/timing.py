"""Appendix: time every version of the prefix mean and of attention, on any device.

    python -m snippets.timing            # this machine: CUDA if there is a GPU, else CPU
    python -m snippets.timing --help     # every option

For each dtype, each T (a power of two) and each method, the harness records the
median time of one forward call, the peak memory the call adds, and derived
figures: GB/s as a fraction of ``x.clone()`` at the same size and TFLOP/s as a
fraction of a large square matmul measured in the same run. A bandwidth point
times ``clone`` and the linear prefix means once more on an ``x`` larger than
the caches (``--bandwidth``), where ``clone`` runs at memory speed. A table goes to
stdout, progress to stderr, and everything, with the machine, library versions,
date and command line, to a JSON file that the appendix page renders at build
time (``snippets.report``). A point that runs out of memory or over its time
budget is recorded as such; larger T of that method are then skipped.

How it measures:

* CUDA: CUDA events around each call, after a write to a buffer twice the size of
  the L2 cache so no call finds its inputs cached; peak memory from
  ``torch.cuda.max_memory_allocated`` after a reset.
* CPU: ``time.perf_counter`` around a sample of one or more calls (enough for a
  sample to last about a millisecond); peak memory is the growth of the peak
  resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) of a worker
  process in which glibc serves every allocation of at least ``MMAP_THRESHOLD``
  bytes with its own ``mmap``, so freed tensors leave the resident set and new
  ones enter it.
  Timings stay in the main process, whose allocator is left alone.
"""

from __future__ import annotations

import argparse
import ctypes
import fnmatch
import gc
import importlib
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache, partial
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

SCHEMA = 1
LOOP_LIMIT = 4096  # prefix_mean_loop runs only where B * T <= LOOP_LIMIT: it is a Python loop
MMAP_THRESHOLD = 64 * 1024  # CPU peak memory sees allocations of at least this size
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
STATUSES = ("ok", "skipped", "oom", "over_budget", "error")
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path("docs") / "appendix" / "results"


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

    @property
    def head_size(self) -> int:
        return self.C // self.heads


@dataclass
class Inputs:
    T: int
    x: torch.Tensor  # (B, T, C)
    q: torch.Tensor  # (B, heads, T, head_size)
    k: torch.Tensor
    v: torch.Tensor


def make_inputs(cfg: Config, dtype: str, T: int, *, attention: bool = True) -> Inputs:
    """Random inputs of one point; q, k, v only if `attention` (else None)."""
    g = torch.Generator(device=cfg.device).manual_seed(cfg.seed + T)
    kw = dict(generator=g, device=cfg.device, dtype=DTYPES[dtype])
    x = torch.randn(cfg.B, T, cfg.C, **kw)
    qkv = torch.randn(3, cfg.B, cfg.heads, T, cfg.head_size, **kw).unbind(0) if attention else (None,) * 3
    return Inputs(T, x, *qkv)


# ----------------------------------------------------------------------------- methods

_HOMES = {
    "prefix_mean_loop": "snippets.averaging",
    "prefix_mean_matmul": "snippets.averaging",
    "prefix_mean_softmax": "snippets.averaging",
    "prefix_mean_cumsum": "snippets.averaging",
    "prefix_mean_fast": "snippets.linear",
    "causal_attention": "snippets.attention",
    "Head": "snippets.attention",
    "MultiHeadAttention": "snippets.attention",
}


def _load(name: str):
    return getattr(importlib.import_module(_HOMES[name]), name)


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "reference", "linear" or "quadratic": how the memory it needs grows with T
    make: Callable[[Config, Inputs], Callable[[], torch.Tensor]]
    nbytes: Callable[[Config, int, int], int]  # (cfg, T, element size) -> bytes read + written at least
    flops: Callable[[Config, int], int | None]  # (cfg, T) -> FLOPs of its matrix products
    compilable: bool = True


def _prefix(name: str) -> Callable[[Config, Inputs], Callable[[], torch.Tensor]]:
    def make(cfg, inp):
        fn = _load(name)
        return partial(fn, inp.x)
    return make


def _clone(cfg, inp):
    return inp.x.clone


def _causal_attention(cfg, inp):
    return partial(_load("causal_attention"), inp.q, inp.k, inp.v)


def _head(cfg, inp):
    torch.manual_seed(cfg.seed)
    head = _load("Head")(cfg.C, cfg.head_size, inp.T).to(inp.x.device, inp.x.dtype).eval()
    return partial(head, inp.x)


def _mha(cfg, inp):
    torch.manual_seed(cfg.seed)
    mha = _load("MultiHeadAttention")(cfg.C, cfg.heads, inp.T).to(inp.x.device, inp.x.dtype).eval()
    return partial(mha, inp.x)


SDPA_BACKENDS = {"math": "MATH", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "cudnn": "CUDNN_ATTENTION"}


def _sdpa(backend: str):
    def make(cfg, inp):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernel = getattr(SDPBackend, SDPA_BACKENDS[backend])

        def call():
            with sdpa_kernel(kernel):
                return F.scaled_dot_product_attention(inp.q, inp.k, inp.v, is_causal=True)
        return call
    return make


# Bytes: the least traffic a call needs, its inputs read once and its output written once.
# FLOPs: 2 per multiply-add of the matrix products; attention counts only the causal
# half of q @ k^T and wei @ v (the half that is not masked), as FlashAttention's papers do.
def _bytes_btc(cfg, T, es):
    return 2 * cfg.B * T * cfg.C * es


def _bytes_qkv(cfg, T, es):
    return 4 * cfg.B * T * cfg.C * es


def _flops_tril(cfg, T):
    return 2 * cfg.B * T * T * cfg.C


def _flops_attention(cfg, T):
    return 2 * cfg.B * T * T * cfg.C  # 2 products * 2 FLOPs * B * heads * T^2/2 * head_size


def _bytes_head(cfg, T, es):
    return (cfg.B * T * cfg.C + 3 * cfg.C * cfg.head_size + cfg.B * T * cfg.head_size) * es


def _flops_head(cfg, T):
    return 2 * cfg.B * T * cfg.C * 3 * cfg.head_size + 2 * cfg.B * T * T * cfg.head_size


def _bytes_mha(cfg, T, es):
    return (2 * cfg.B * T * cfg.C + 4 * cfg.C * cfg.C) * es


def _flops_mha(cfg, T):
    return 2 * cfg.B * T * cfg.C * 4 * cfg.C + _flops_attention(cfg, T)


def _none(cfg, T):
    return None


METHODS = {m.name: m for m in [
    Method("clone", "reference", _clone, _bytes_btc, _none, compilable=False),
    Method("prefix_mean_loop", "linear", _prefix("prefix_mean_loop"), _bytes_btc, _none, compilable=False),
    Method("prefix_mean_matmul", "quadratic", _prefix("prefix_mean_matmul"), _bytes_btc, _flops_tril),
    Method("prefix_mean_softmax", "quadratic", _prefix("prefix_mean_softmax"), _bytes_btc, _flops_tril),
    Method("prefix_mean_cumsum", "linear", _prefix("prefix_mean_cumsum"), _bytes_btc, _none),
    Method("prefix_mean_fast", "linear", _prefix("prefix_mean_fast"), _bytes_btc, _none),
    Method("causal_attention", "quadratic", _causal_attention, _bytes_qkv, _flops_attention),
    Method("Head", "quadratic", _head, _bytes_head, _flops_head),
    Method("MultiHeadAttention", "quadratic", _mha, _bytes_mha, _flops_mha),
    *(Method(f"sdpa-{b}", "linear" if b != "math" else "quadratic", _sdpa(b), _bytes_qkv, _flops_attention,
             compilable=False) for b in SDPA_BACKENDS),
]}


BANDWIDTH_METHODS = ("clone", "prefix_mean_cumsum", "prefix_mean_fast")  # timed at the bandwidth point


def method_names(compile: bool) -> list[str]:
    names = list(METHODS)
    return names + [f"{n}+compile" for n in names if METHODS[n].compilable] if compile else names


@lru_cache(maxsize=None)
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
            said = [str(w.message) for w in caught] + [str(exc)]
            return " ".join(" ".join(s.split()) for s in said)[:400]


def skip_reason(cfg: Config, name: str, dtype: str, T: int) -> str | None:
    base = name.removesuffix("+compile")
    if base == "prefix_mean_loop" and cfg.B * T > LOOP_LIMIT:
        return f"B*T = {cfg.B * T} > {LOOP_LIMIT}: the Python loop runs only on small inputs"
    if base.startswith("sdpa-"):
        return _sdpa_reason(cfg, base.removeprefix("sdpa-"), dtype)
    return None


def build(cfg: Config, name: str, inp: Inputs) -> Callable[[], torch.Tensor]:
    base = name.removesuffix("+compile")
    fn = METHODS[base].make(cfg, inp)
    if name.endswith("+compile"):
        torch.compiler.reset()  # a fresh graph per point: no recompile limit, no stale guards
        fn = torch.compile(fn, dynamic=False)
    return fn


# ----------------------------------------------------------------------------- timing

def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and bool(re.search(r"can't allocate memory|out of memory", str(exc)))


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def measure(fn: Callable[[], torch.Tensor], *, device: str, repeats: int, warmup: int,
            budget: float, flush: torch.Tensor | None = None) -> dict:
    """Median time of one call of `fn`, within a time budget (seconds) for the whole point.

    The first call is a warm-up that also tests the budget: if it alone takes
    longer than `budget`, the point is over budget. Then up to `warmup` more
    calls and up to `repeats` samples, as many as the budget leaves room for
    (at least one sample).
    """
    sync = _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        fn()
        sync()
        first = time.perf_counter() - start
        if first > budget:
            return {"status": "over_budget", "reason": f"one call took {first:.3g} s, over the budget of {budget:g} s"}
        t_call = first
        for _ in range(warmup):
            if time.perf_counter() - start + 2 * t_call > budget:
                break  # keep room for one sample
            t0 = time.perf_counter()
            fn()
            sync()
            t_call = time.perf_counter() - t0
        left = budget - (time.perf_counter() - start)
        n = max(1, min(repeats, int(left / max(t_call, 1e-9))))
        if device.startswith("cuda"):
            ms, per = _samples_cuda(fn, n, flush), 1
        else:
            per = max(1, min(1000, math.ceil(1e-3 / max(t_call, 1e-9))))  # calls per sample: >= ~1 ms
            n = max(1, min(n, int(left / max(t_call * per, 1e-9))))
            ms = []
            for _ in range(n):
                t0 = time.perf_counter()
                for _ in range(per):
                    fn()
                ms.append((time.perf_counter() - t0) * 1e3 / per)
    return {"status": "ok", "ms": statistics.median(ms), "samples_ms": [float(f"{t:.6g}") for t in ms],
            "calls_per_sample": per}


def _samples_cuda(fn, n: int, flush: torch.Tensor | None) -> list[float]:
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
    for start, end in events:
        if flush is not None:
            flush.zero_()  # evict the inputs from L2: every call reads them from HBM
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in events]


def peak_cuda(fn: Callable[[], torch.Tensor], device: str) -> int:
    """Bytes a call allocates on top of what was allocated before it, at its peak (output included)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        out = fn()
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    del out
    return peak


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def peak_rss(fn: Callable[[], torch.Tensor]) -> int:
    """Growth of this process's peak resident set during one call (output included)."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current resident set
    base = _status_kb("VmRSS")
    with torch.inference_mode():
        out = fn()
    peak = _status_kb("VmHWM") - base
    del out
    return max(peak, 0)


def _memory_worker_init(threads: int) -> None:
    libc = ctypes.CDLL("libc.so.6")
    if libc.mallopt(-3, MMAP_THRESHOLD) != 1:  # M_MMAP_THRESHOLD; a fixed value also ends its auto-tuning
        raise OSError("mallopt(M_MMAP_THRESHOLD) failed")
    torch.set_num_threads(threads)


_worker_inputs: dict = {}


def _memory_point(cfg: Config, name: str, dtype: str, T: int) -> int:
    key = (dtype, T)
    if key not in _worker_inputs:
        _worker_inputs.clear()
        _worker_inputs[key] = make_inputs(cfg, dtype, T)
    fn = build(cfg, name, _worker_inputs[key])
    with torch.inference_mode():
        fn()  # lazy initialisation (thread pools, kernel caches) is not the call's memory
    gc.collect()
    return peak_rss(fn)


def cpu_memory_reason() -> str | None:
    """Why CPU peak memory cannot be measured here, or None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return "needs Linux with glibc"
    if not os.access("/proc/self/clear_refs", os.W_OK):
        return "/proc/self/clear_refs is not writable"
    return None


class CpuMemory:
    """Measures CPU peak memory point by point in a spawned worker process."""

    def __init__(self, cfg: Config):
        self.cfg, self.pool = cfg, None

    def __call__(self, name: str, dtype: str, T: int) -> tuple[int | None, str | None]:
        if name.endswith("+compile"):
            return None, "not measured for compiled variants on CPU (the worker would compile again)"
        if self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_memory_worker_init,
                                            initargs=(torch.get_num_threads(),))
        point = importlib.import_module("snippets.timing")._memory_point  # picklable by its module's name
        try:
            return self.pool.submit(point, self.cfg, name, dtype, T).result(), None
        except BrokenProcessPool:
            self.close()
            return None, "the memory worker died (killed by the system, most likely out of memory)"
        except Exception as exc:
            if is_oom(exc):
                return None, "out of memory in the memory worker"
            return None, f"{type(exc).__name__}: {_one_line(exc)}"

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def matmul_reference(cfg: Config, dtype: str, flush: torch.Tensor | None) -> dict:
    """TFLOP/s of one square (N, N) @ (N, N) product: the machine's practical peak."""
    N = cfg.matmul_size
    try:
        a, b = torch.randn(2, N, N, device=cfg.device, dtype=DTYPES[dtype]).unbind(0)
        r = measure(partial(torch.matmul, a, b), device=cfg.device, repeats=cfg.repeats, warmup=cfg.warmup,
                    budget=max(cfg.time_budget, 1.0), flush=flush)
    except Exception as exc:
        r = {"status": "oom" if is_oom(exc) else "error", "reason": f"{type(exc).__name__}: {_one_line(exc)}"}
    r |= {"dtype": dtype, "N": N}
    if r["status"] == "ok":
        r["tflops"] = 2 * N**3 / (r["ms"] * 1e9)
    return r


# ----------------------------------------------------------------------------- the run

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg() -> list[float] | None:
    try:
        return [float(f) for f in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment(cfg: Config, argv: list[str]) -> dict:
    dev = torch.device(cfg.device)
    cuda = dev.type == "cuda"
    props = torch.cuda.get_device_properties(dev) if cuda else None
    commit = _git("rev-parse", "HEAD") if (ROOT / ".git").exists() else None
    return {
        "device_type": dev.type,
        "device_name": props.name if cuda else _cpu_model(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu_memory_bytes": props.total_memory if cuda else None,
        "l2_cache_bytes": props.L2_cache_size if cuda else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "snippets.timing", *argv]),
        "git_commit": commit,
        "git_dirty": bool(_git("status", "--porcelain", "--", "snippets")) if commit else None,  # measured code
        "loadavg_start": _loadavg(),
        "memory_method": ("torch.cuda.max_memory_allocated after reset_peak_memory_stats" if cuda else
                          f"peak resident set growth (VmHWM) in a worker process; allocations under "
                          f"{MMAP_THRESHOLD // 1024} KiB are not seen"),
        "memory_resolution_bytes": 1 if cuda else MMAP_THRESHOLD,
    }


def _derive(results: list[dict], refs: dict[str, dict]) -> None:
    clone = {(r["dtype"], r["T"]): r for r in results if r["method"] == "clone" and r["status"] == "ok"}
    for r in results:
        if r["status"] != "ok":
            continue
        r["gbps"] = r["bytes"] / (r["ms"] * 1e6)
        c = clone.get((r["dtype"], r["T"]))
        r["frac_clone"] = r["gbps"] / c["gbps"] if c and "gbps" in c else None
        ref = refs.get(r["dtype"], {})
        r["tflops"] = r["flops"] / (r["ms"] * 1e9) if r["flops"] else None
        r["frac_matmul"] = r["tflops"] / ref["tflops"] if r["tflops"] and "tflops" in ref else None


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
    """The inputs of the latest point only: a new point frees the old inputs before it makes its own."""

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


def _new_row(cfg: Config, name: str, dtype: str, T: int) -> dict:
    method = METHODS[name.removesuffix("+compile")]
    return {"method": name, "dtype": dtype, "T": T, "B": cfg.B, "C": cfg.C, "heads": cfg.heads,
            "bytes": method.nbytes(cfg, T, DTYPES[dtype].itemsize), "flops": method.flops(cfg, T),
            "peak_bytes": None, "memory_note": None}


def _time_point(cfg: Config, name: str, inputs: Callable[[], Inputs], flush: torch.Tensor | None) -> dict:
    """Status and timings of one method on the inputs `inputs()` gives; every failure becomes a status."""
    cuda = cfg.device.startswith("cuda")
    fn, r = None, {}
    try:
        fn = build(cfg, name, inputs())
        if name.endswith("+compile"):
            t0 = time.perf_counter()
            with torch.inference_mode():
                fn()
            _sync(cfg.device)()
            r["compile_s"] = time.perf_counter() - t0
        r |= measure(fn, device=cfg.device, repeats=cfg.repeats, warmup=cfg.warmup,
                     budget=cfg.time_budget, flush=flush)
        if r["status"] == "ok" and cfg.memory and cuda:
            r["peak_bytes"] = peak_cuda(fn, cfg.device)
    except Exception as exc:
        r |= {"status": "oom" if is_oom(exc) else "error", "reason": f"{type(exc).__name__}: {_one_line(exc)}"}
    finally:
        fn = None
        if cuda:
            torch.cuda.empty_cache()
    return r


def run(cfg: Config, argv: list[str], progress: Progress | None = None) -> dict:
    """Measure every (dtype, T, method) point of `cfg` and return the results document."""
    t_start, cpu_start = time.perf_counter(), _cpu_seconds()
    torch.set_num_threads(cfg.threads)
    cuda = cfg.device.startswith("cuda")
    if cuda:
        torch.set_float32_matmul_precision("high" if cfg.tf32 else "highest")
    env = environment(cfg, argv)
    flush = None
    if cuda:  # twice the L2 cache, written before every timed call
        flush = torch.empty(2 * env["l2_cache_bytes"], dtype=torch.uint8, device=cfg.device)
    points = [(d, T, m) for d in cfg.dtypes for T in cfg.Ts for m in cfg.methods]
    bandwidth_points = [(d, m) for d in cfg.dtypes for m in BANDWIDTH_METHODS if m in cfg.methods and cfg.bandwidth]
    progress = progress or Progress(len(points) + len(bandwidth_points) + len(cfg.dtypes))
    refs = {}
    for d in cfg.dtypes:
        refs[d] = matmul_reference(cfg, d, flush)
        progress.step(f"{d} matmul reference N={cfg.matmul_size}: {_fmt_status(refs[d])}")

    results, stopped, inputs = [], {}, _InputCache()  # stopped[(dtype, method)] = why larger T are skipped
    for d, T, name in points:
        r = _new_row(cfg, name, d, T)
        why = stopped.get((d, name)) or skip_reason(cfg, name, d, T)
        if why:
            r |= {"status": "skipped", "reason": why}
        else:
            r |= _time_point(cfg, name, lambda: inputs(cfg, d, T), flush)
            if r["status"] in ("oom", "over_budget"):
                stopped[(d, name)] = f"stopped after T={T}: {r['status'].replace('_', ' ')}"
        results.append(r)
        progress.step(f"{d} T={T} {name}: {_fmt_status(r)}")

    bandwidth = []
    for d, name in bandwidth_points:  # the prefix means on x larger than the caches
        B, T, C = cfg.bandwidth
        big = replace(cfg, B=B, C=C)
        r = _new_row(big, name, d, T) | _time_point(big, name, lambda: inputs(big, d, T, attention=False), flush)
        bandwidth.append(r)
        progress.step(f"{d} bandwidth (B, T, C) = {cfg.bandwidth} {name}: {_fmt_status(r)}")
    inputs.clear()

    if cfg.memory and not cuda:
        reason = cpu_memory_reason()
        mem = CpuMemory(cfg) if reason is None else None
        todo = [r for r in results if r["status"] == "ok"]
        step = Progress(len(todo)).step if mem else (lambda label: None)
        try:
            for r in todo:
                r["peak_bytes"], r["memory_note"] = mem(r["method"], r["dtype"], r["T"]) if mem else (None, reason)
                step(f"peak memory {r['dtype']} T={r['T']} {r['method']}: " +
                     (f"{r['peak_bytes'] / 2**20:.3g} MiB" if r["peak_bytes"] is not None else "n/a"))
        finally:
            if mem:
                mem.close()
    _derive(results, refs)
    _derive(bandwidth, refs)
    env["loadavg_end"] = _loadavg()
    wall, cpu_end = time.perf_counter() - t_start, _cpu_seconds()
    if cpu_start and cpu_end:  # cores kept busy by everything else on the machine, on average
        env["other_processes_cores"] = round(max(0.0, (cpu_end[0] - cpu_start[0]) - (cpu_end[1] - cpu_start[1])) / wall, 3)
    config = asdict(cfg) | {"head_size": cfg.head_size, "loop_limit": LOOP_LIMIT}
    return {"schema": SCHEMA, "env": env, "config": config, "matmul_reference": list(refs.values()),
            "results": results, "bandwidth": bandwidth, "wall_s": wall}


def _fmt_status(r: dict) -> str:
    return f"{r['ms']:.4g} ms" if r["status"] == "ok" else r["status"].replace("_", " ")


# ----------------------------------------------------------------------------- command line

def _power_of_two(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a power of two, got {s!r}") from None
    if n < 1 or n & (n - 1):
        raise argparse.ArgumentTypeError(f"expected a power of two (1, 2, 4, ...), got {n}")
    return n


def _positive(kind):
    def parse(s: str):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {s!r}") from None
        if not v > 0 or (kind is float and not math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {s!r}")
        return v
    return parse


def _non_negative_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}")
    return v


CPU_TS = tuple(2**i for i in range(6, 13))  # 64 .. 4096
BANDWIDTH_SHAPE = (16, 2048, 512)  # (B, T, C) of the bandwidth point
CUDA_TS = tuple(2**i for i in range(6, 16))  # 64 .. 32768


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m snippets.timing",
        description="Time every prefix-mean and attention version of the tutorial on this machine and "
                    "write a JSON results file for the appendix page. Forward passes only, under "
                    "torch.inference_mode. Progress goes to stderr, a table to stdout.",
        epilog="Methods: " + ", ".join(method_names(True)) + ". Skipped points, out-of-memory and "
               "over-budget points are recorded in the file, never fatal.",
    )
    p.add_argument("--device", default=None,
                   help="where to run: cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    p.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=None, metavar="DTYPE",
                   help="one or more of float32, bfloat16 (default: float32 on CPU; float32 bfloat16 on CUDA)")
    p.add_argument("--T", nargs="+", type=_power_of_two, default=None, metavar="T",
                   help="sequence lengths, powers of two (default: 64 .. 4096 on CPU, 64 .. 32768 on CUDA)")
    p.add_argument("-B", type=_positive(int), default=4, help="batch size (default: 4)")
    p.add_argument("-C", type=_positive(int), default=64,
                   help="channels of x, which is also n_embd of Head and MultiHeadAttention (default: 64)")
    p.add_argument("--heads", type=_positive(int), default=4,
                   help="attention heads; head size = C / heads, which must divide evenly (default: 4)")
    p.add_argument("--tf32", choices=["on", "off"], default="off",
                   help="CUDA only: let float32 matmuls use TF32 tensor cores (default: off)")
    p.add_argument("--compile", action="store_true",
                   help="also time a torch.compile variant of each method, named METHOD+compile "
                        "(compile time is recorded, not timed)")
    p.add_argument("--methods", nargs="+", default=None, metavar="PATTERN",
                   help="only the methods matching these names or shell patterns, e.g. 'prefix_mean_*' "
                        "'sdpa-*' (default: all)")
    p.add_argument("--repeats", type=_positive(int), default=10, help="timed samples per point; the median is kept (default: 10)")
    p.add_argument("--warmup", type=_non_negative_int, default=2,
                   help="untimed calls after the first one, before timing (default: 2)")
    p.add_argument("--time-budget", type=_positive(float), default=3.0, metavar="SECONDS",
                   help="seconds per point: a first call slower than this makes the point 'over budget' and "
                        "skips larger T of that method; fewer samples are taken if they would not fit (default: 3)")
    p.add_argument("--matmul-size", type=_positive(int), default=None, metavar="N",
                   help="N of the (N, N) @ (N, N) matmul that gives the FLOP/s reference "
                        "(default: 2048 on CPU, 8192 on CUDA)")
    p.add_argument("--threads", type=_positive(int), default=None,
                   help="torch.set_num_threads for the run (default: torch's own choice, recorded)")
    p.add_argument("--no-memory", action="store_true", help="do not measure peak memory")
    p.add_argument("--bandwidth", nargs=3, type=_positive(int), default=list(BANDWIDTH_SHAPE), metavar=("B", "T", "C"),
                   help="shape of the bandwidth point: " + ", ".join(BANDWIDTH_METHODS) + " timed once more on x of "
                        "this shape, larger than the caches, so clone runs at memory speed (default: "
                        f"{' '.join(map(str, BANDWIDTH_SHAPE))}, {math.prod(BANDWIDTH_SHAPE) * 4 / 2**20:g} MiB in float32)")
    p.add_argument("--no-bandwidth", action="store_true", help="leave the bandwidth point out")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights (default: 0)")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help=f"results file (default: {RESULTS_DIR}/<device>-<name>.json, which the appendix "
                        "page renders; run from the repository root)")
    return p


def parse_config(argv: list[str]) -> tuple[Config, Path]:
    p = build_parser()
    a = p.parse_args(argv)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        p.error(f"--device: expected cpu, cuda or cuda:N, got {device!r}")
    if dev.type not in ("cpu", "cuda"):
        p.error(f"--device: expected cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            p.error(f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
                    f"built with CUDA {torch.version.cuda})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            p.error(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    cuda = dev.type == "cuda"
    if a.tf32 == "on" and not cuda:
        p.error("--tf32 on: TF32 is a CUDA setting; this run is on the CPU")
    if a.C % a.heads:
        p.error(f"--heads {a.heads}: must divide -C {a.C} evenly (head size = C / heads)")
    names = method_names(a.compile)
    chosen = names
    if a.methods:
        unknown = [pat for pat in a.methods if not fnmatch.filter(names, pat)]
        if unknown:
            hint = "" if a.compile else " (+compile variants need --compile)"
            p.error(f"--methods: {' '.join(unknown)} matches no method{hint}; choose from {', '.join(names)}")
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in a.methods)]
    cfg = Config(
        device=device,
        dtypes=tuple(dict.fromkeys(a.dtype or (["float32", "bfloat16"] if cuda else ["float32"]))),
        Ts=tuple(sorted(set(a.T or (CUDA_TS if cuda else CPU_TS)))),
        B=a.B, C=a.C, heads=a.heads, repeats=a.repeats, warmup=a.warmup, time_budget=a.time_budget,
        tf32=a.tf32 == "on", compile=a.compile, methods=tuple(chosen),
        matmul_size=a.matmul_size or (8192 if cuda else 2048),
        threads=a.threads or torch.get_num_threads(), seed=a.seed, memory=not a.no_memory,
        bandwidth=None if a.no_bandwidth else tuple(a.bandwidth),
    )
    out = a.out or RESULTS_DIR / f"{default_name(dev)}.json"
    return cfg, out


def default_name(dev: torch.device) -> str:
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_model()
    return f"{dev.type}-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, out = parse_config(argv)
    doc = run(cfg, argv)
    from snippets.report import text  # the report reads this module's METHODS

    print(text(doc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} in {doc['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
