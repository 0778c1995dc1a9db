"""The results file of ``python -m bench``: its format and its typed rows.

This module and ``bench.validate`` (its ``load()``) own the format.
The runner builds a `Results` and writes `Results.to_json()` with
`write_atomic`; the report and the site read files only through
``validate.load()``, which refuses anything malformed with one message that
names the file and the JSON path of the bad value (`ResultsError`). Standard
library only.

Derived figures (GB/s, fractions of ``clone`` and of the matmul reference) are
not stored: they are computed here from the measured times, so a file cannot
carry figures that disagree with its own measurements.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSION = 3  # 3: samples interleaved, medians checked, load and busy runs recorded
LEGACY = (2,)  # formats still read; the page says which files use one
STATUSES = ("ok", "skipped", "oom", "over_budget", "error")
DTYPES = ("float32", "bfloat16")
DEVICE_TYPES = ("cpu", "cuda")
KINDS = ("reference", "linear", "quadratic")  # how the memory a method needs grows with T
SDPA_BACKENDS = ("math", "flash", "efficient", "cudnn")


@dataclass(frozen=True)
class MethodInfo:
    kind: str
    code: str | None  # "module:name" of the measured tutorial code; None where it is PyTorch's own
    compilable: bool = True


METHODS: dict[str, MethodInfo] = {
    "clone": MethodInfo("reference", None, compilable=False),
    "prefix_mean_loop": MethodInfo(
        "linear", "snippets.averaging:prefix_mean_loop", compilable=False
    ),
    "prefix_mean_matmul": MethodInfo("quadratic", "snippets.averaging:prefix_mean_matmul"),
    "prefix_mean_softmax": MethodInfo("quadratic", "snippets.averaging:prefix_mean_softmax"),
    "prefix_mean_cumsum": MethodInfo("linear", "snippets.averaging:prefix_mean_cumsum"),
    "prefix_mean_fast": MethodInfo("linear", "snippets.linear:prefix_mean_fast"),
    # chapter 10's Triton kernel: timed on CUDA GPUs only; torch.compile has nothing to add
    "prefix_mean_triton": MethodInfo(
        "linear", "snippets.kernels:prefix_mean_triton", compilable=False
    ),
    "causal_attention": MethodInfo("quadratic", "snippets.attention:causal_attention"),
    # a Python loop over blocks of keys: compiled, it would unroll into T / block copies
    "online_causal_attention": MethodInfo(
        "linear", "snippets.streaming:online_causal_attention", compilable=False
    ),
    "Head": MethodInfo("quadratic", "snippets.attention:Head"),
    "MultiHeadAttention": MethodInfo("quadratic", "snippets.attention:MultiHeadAttention"),
    **{
        f"sdpa-{b}": MethodInfo("quadratic" if b == "math" else "linear", None, compilable=False)
        for b in SDPA_BACKENDS
    },
}
assert all(info.kind in KINDS for info in METHODS.values())
BANDWIDTH_METHODS = (
    "clone",
    "prefix_mean_cumsum",
    "prefix_mean_fast",
    "prefix_mean_triton",
)  # timed again at the bandwidth point
CUDA_ONLY = ("prefix_mean_triton",)  # skipped on a CPU: a file measured before them lacks them
PROFILE_CALLS = 5  # a kernel profile is the mean of this many calls, after a warm-up


def base_name(method: str) -> str:
    """``"prefix_mean_fast+compile"`` -> ``"prefix_mean_fast"``."""
    return method.removesuffix("+compile")


def method_names(compile: bool) -> list[str]:
    names = list(METHODS)
    return names + [f"{n}+compile" for n in names if METHODS[n].compilable] if compile else names


class ResultsError(ValueError):
    """A results file that cannot be used: the message names the file and the JSON path."""


# ----------------------------------------------------------------------------- typed rows


@dataclass
class Point:
    """One method at one (dtype, T): measured, or why not."""

    method: str
    dtype: str
    T: int
    B: int
    C: int
    heads: int
    bytes: int  # least bytes a call reads and writes
    flops: int | None  # FLOPs of its matrix products, None where it has none
    status: str
    reason: str | None = None  # why it was not measured; None when status is "ok"
    ms: float | None = None  # median time of one call
    samples_ms: list[float] = field(default_factory=list)
    calls_per_sample: int | None = None
    compile_s: float | None = None
    peak_bytes: int | None = None
    memory_note: str | None = None  # why peak_bytes is None, if it is
    remeasured: bool = False  # flagged as noisy or non-monotonic, and measured once more


@dataclass
class MatmulReference:
    dtype: str
    N: int
    status: str
    reason: str | None = None
    ms: float | None = None
    samples_ms: list[float] = field(default_factory=list)
    calls_per_sample: int | None = None

    @property
    def tflops(self) -> float | None:
        # ms is set where status is "ok" (validate.py refuses a file where it is not)
        if self.status != "ok":
            return None
        return 2 * self.N**3 / (self.ms * 1e9)  # type: ignore[operator]


@dataclass
class Env:
    device_type: str
    device_name: str
    cpu_model: str
    cpu_count: int | None
    threads: int
    torch: str
    cuda: str | None
    cudnn: int | None
    gpu_memory_bytes: int | None
    l2_cache_bytes: int | None
    python: str
    platform: str
    date: str
    command: str
    git_commit: str | None
    git_dirty: bool | None  # snippets/ had uncommitted changes
    loadavg_start: list[float] | None
    loadavg_end: list[float] | None
    other_processes_cores: float | None
    memory_method: str
    memory_resolution_bytes: int
    allocator: str | None = (
        None  # how the timing process allocates on a CPU, where the command changed it
    )
    steal_cores: float | None = None  # cores' worth of time the hypervisor took, on average
    loadavg_max: float | None = None  # highest 1-minute load average seen between points
    busy_processes: int | None = None  # busy processes of the bandwidth_busy pass (--busy)
    busy: str | None = None  # why the machine was too busy, where --allow-busy wrote it anyway


@dataclass
class Config:
    device: str
    dtypes: list[str]
    Ts: list[int]
    B: int
    C: int
    heads: int
    head_size: int
    repeats: int
    warmup: int
    time_budget: float
    tf32: bool
    compile: bool
    methods: list[str]
    matmul_size: int
    threads: int
    seed: int
    memory: bool
    bandwidth: list[int] | None  # (B, T, C) of the bandwidth point
    loop_limit: int
    busy: bool = False  # --busy: the bandwidth point once more, every core running a busy process


@dataclass
class BenchCheck:
    """One call timed by this harness and by ``triton.testing.do_bench``, in one process."""

    method: str
    dtype: str
    B: int
    T: int
    C: int
    harness_ms: float
    do_bench_ms: float


@dataclass
class KernelProfile:
    """One call under PyTorch's profiler: kernels it launches and how long they keep the GPU busy
    (means)."""

    method: str
    dtype: str
    B: int
    T: int
    C: int
    kernels: float
    kernel_ms: float
    wall_ms: float


@dataclass
class Checks:
    """What ``python3 -m bench.gpu`` adds to the file of the sweep it ran."""

    do_bench: list[BenchCheck]
    profiles: list[KernelProfile]


@dataclass
class Results:
    env: Env
    config: Config
    matmul_reference: list[MatmulReference]
    results: list[Point]
    bandwidth: list[Point]
    fingerprints: dict[
        str, str | None
    ]  # method -> hash of the code it measured (None: PyTorch's own)
    wall_s: float
    checks: Checks | None = None
    schema: int = VERSION
    bandwidth_busy: list[Point] = field(default_factory=list)  # --busy: the bandwidth point again

    def to_json(self) -> str:
        doc = {"schema": self.schema} | {k: v for k, v in asdict(self).items() if k != "schema"}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"

    # Derived figures, computed from the measurements. A row's ms (and a matmul reference's
    # tflops) is set where its status is "ok": validate.py refuses a file where it is not.
    def gbps(self, p: Point) -> float | None:
        return p.bytes / (p.ms * 1e6) if p.status == "ok" else None  # type: ignore[operator]

    def frac_clone(self, p: Point, rows: list[Point] | None = None) -> float | None:
        rows = self.results if rows is None else rows
        clone = next(
            (
                r
                for r in rows
                if (r.method, r.dtype, r.T, r.B, r.C) == ("clone", p.dtype, p.T, p.B, p.C)
                and r.status == "ok"
            ),
            None,
        )
        if clone is None or p.status != "ok":
            return None
        return self.gbps(p) / self.gbps(clone)  # type: ignore[operator]

    def tflops(self, p: Point) -> float | None:
        if p.status != "ok" or not p.flops:
            return None
        return p.flops / (p.ms * 1e9)  # type: ignore[operator]

    def frac_matmul(self, p: Point) -> float | None:
        ref = next(
            (m for m in self.matmul_reference if m.dtype == p.dtype and m.status == "ok"), None
        )
        t = self.tflops(p)
        return None if ref is None or t is None else t / ref.tflops  # type: ignore[operator]


# ----------------------------------------------------------------------------- writing


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a failure at any point leaves the old file, if any, untouched.

    The text goes to a temporary file in the same folder, is flushed to disk, and
    replaces `path` in one rename.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
