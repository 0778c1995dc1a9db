"""CPU peak memory of one call, measured in a worker process.

A CPU has no counter like ``torch.cuda.max_memory_allocated``, so each point is
called once more in a spawned worker: the worker resets its peak resident set
(``VmHWM``, through ``/proc/self/clear_refs``), makes the call, and reads the
growth. The worker sets glibc's ``M_MMAP_THRESHOLD`` to ``MMAP_THRESHOLD``, which
also turns off glibc's dynamic adjustment of it (by default it starts at 128 KiB
and rises to the size of each larger mmap'd block that is freed, up to 32 MiB on a
64-bit machine; glibc's mallopt(3) manual). An allocation of at least that size
that the free heap memory cannot hold then gets its own ``mmap``, which ``free``
returns to the kernel, so such freed tensors leave the resident set and new ones
enter it; smaller ones, and ones that fit in freed heap memory, come from the heap
(hence a lower bound, ``METHOD``). Timings stay in the main process, whose
allocator is left alone.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from collections.abc import Callable

import torch

from bench.measure import is_oom, one_line
from bench.methods import Config, build, make_inputs

MMAP_THRESHOLD = 64 * 1024  # CPU peak memory sees allocations of at least this size
METHOD = (
    f"peak resident set growth (VmHWM) in a worker process, a lower bound: allocations under "
    f"{MMAP_THRESHOLD // 1024} KiB are seen only where the heap must grow for them, larger ones "
    "only where free heap memory cannot hold them"
)
REUSE = (
    "glibc serves every allocation from its heap and keeps freed memory (M_MMAP_MAX = 0, "
    "M_TRIM_THRESHOLD = 1 GiB): a call reuses what the last one freed, as PyTorch's caching "
    "allocator does on a GPU, instead of taking fresh pages from the kernel"
)
reuse_note: str | None = None  # REUSE once reuse_freed_memory() has run in this process


def reuse_freed_memory() -> str | None:
    """Make this process's large allocations reuse freed memory; the note to record, or None
    where not glibc.

    By default glibc gives an allocation its own ``mmap`` when the free heap memory
    cannot hold it and it is at least ``M_MMAP_THRESHOLD``, and unmaps it on free;
    that threshold starts at 128 KiB and rises to the size of each larger such block
    that is freed, up to 32 MiB on a 64-bit machine (glibc's mallopt(3) manual). So
    a call that makes an output of 64 MiB usually gets fresh pages, which the kernel
    zeroes first. The timing command turns mmap off for its own process (the memory
    worker keeps its own settings).
    """
    global reuse_note
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL("libc.so.6")
    if libc.mallopt(-4, 0) != 1 or libc.mallopt(-1, 2**30) != 1:  # M_MMAP_MAX, M_TRIM_THRESHOLD
        raise OSError("mallopt(M_MMAP_MAX / M_TRIM_THRESHOLD) failed")
    reuse_note = REUSE
    return reuse_note


def _status_bytes(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    # every Linux kernel since 2.6 writes these fields; a missing one raises AttributeError
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) * 1024  # type: ignore[union-attr]


def peak_rss(fn: Callable[[], torch.Tensor]) -> int:
    """Growth of this process's peak resident set during one call (output included)."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current resident set
    base = _status_bytes("VmRSS")
    with torch.inference_mode():
        out = fn()
    peak = _status_bytes("VmHWM") - base
    del out
    return max(peak, 0)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies, by any signal, SIGKILL included
    (Linux prctl PR_SET_PDEATHSIG); the multiprocessing resource tracker then sees its pipe close
    and ends too."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _worker_init(threads: int, parent: int) -> None:
    _die_with(parent)
    libc = ctypes.CDLL("libc.so.6")
    if (
        libc.mallopt(-3, MMAP_THRESHOLD) != 1
    ):  # M_MMAP_THRESHOLD; a fixed value also ends its auto-tuning
        raise OSError("mallopt(M_MMAP_THRESHOLD) failed")
    torch.set_num_threads(threads)


_worker_inputs: dict = {}


def _point(cfg: Config, name: str, dtype: str, T: int) -> int:
    key = (dtype, T)
    if key not in _worker_inputs:
        _worker_inputs.clear()
        _worker_inputs[key] = make_inputs(cfg, dtype, T)
    fn = build(cfg, name, _worker_inputs[key])
    with torch.inference_mode():
        fn()  # lazy initialisation (thread pools, kernel caches) is not the call's memory
    gc.collect()
    return peak_rss(fn)


def unavailable() -> str | None:
    """Why CPU peak memory cannot be measured here, or None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return "needs Linux with glibc"
    if not os.access("/proc/self/clear_refs", os.W_OK):
        return "/proc/self/clear_refs is not writable"
    return None


class CpuMemory:
    """Measures CPU peak memory point by point in one spawned worker; `close()` ends the worker."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.pool: ProcessPoolExecutor | None = None

    def __call__(self, name: str, dtype: str, T: int) -> tuple[int | None, str | None]:
        if name.endswith("+compile"):
            return (
                None,
                "not measured for compiled variants on CPU (the worker would compile again)",
            )
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                1,
                mp_context=get_context("spawn"),
                initializer=_worker_init,
                initargs=(torch.get_num_threads(), os.getpid()),
            )
        try:
            return self.pool.submit(_point, self.cfg, name, dtype, T).result(), None
        except BrokenProcessPool:
            self.close()
            return None, "the memory worker died (killed by the system, most likely out of memory)"
        except Exception as exc:
            if is_oom(exc):
                return None, "out of memory in the memory worker"
            return None, f"{type(exc).__name__}: {one_line(exc)}"

    def close(self) -> None:
        """End the worker now, also in the middle of a point (an interrupt): nothing is left
        running."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for p in processes:
            if p.is_alive():
                p.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for p in processes:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
