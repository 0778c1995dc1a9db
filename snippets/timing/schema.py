"""The results file of ``python -m snippets.timing``: its format, its typed rows, and ``load()``.

This module alone owns the format. The runner builds a `Results` and writes
`Results.to_json()`; the report and the site read files only through `load()`,
which refuses anything malformed with one message that names the file and the
JSON path of the bad value (``ResultsError``). Standard library only.

Derived figures (GB/s, fractions of ``clone`` and of the matmul reference) are
not stored: they are computed here from the measured times, so a file cannot
carry figures that disagree with its own measurements.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

VERSION = 2
STATUSES = ("ok", "skipped", "oom", "over_budget", "error")
DTYPES = {"float32": 4, "bfloat16": 2}  # name -> bytes per element
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
    "prefix_mean_loop": MethodInfo("linear", "snippets.averaging:prefix_mean_loop", compilable=False),
    "prefix_mean_matmul": MethodInfo("quadratic", "snippets.averaging:prefix_mean_matmul"),
    "prefix_mean_softmax": MethodInfo("quadratic", "snippets.averaging:prefix_mean_softmax"),
    "prefix_mean_cumsum": MethodInfo("linear", "snippets.averaging:prefix_mean_cumsum"),
    "prefix_mean_fast": MethodInfo("linear", "snippets.linear:prefix_mean_fast"),
    "causal_attention": MethodInfo("quadratic", "snippets.attention:causal_attention"),
    "Head": MethodInfo("quadratic", "snippets.attention:Head"),
    "MultiHeadAttention": MethodInfo("quadratic", "snippets.attention:MultiHeadAttention"),
    **{f"sdpa-{b}": MethodInfo("quadratic" if b == "math" else "linear", None, compilable=False)
       for b in SDPA_BACKENDS},
}
BANDWIDTH_METHODS = ("clone", "prefix_mean_cumsum", "prefix_mean_fast")  # timed again at the bandwidth point


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
        return 2 * self.N**3 / (self.ms * 1e9) if self.status == "ok" else None


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
    """One call under PyTorch's profiler: kernels it launches and how long they keep the GPU busy (means)."""

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
    """What ``python3 -m snippets.timing.gpu`` adds to the file of the sweep it ran."""

    do_bench: list[BenchCheck]
    profiles: list[KernelProfile]


@dataclass
class Results:
    env: Env
    config: Config
    matmul_reference: list[MatmulReference]
    results: list[Point]
    bandwidth: list[Point]
    fingerprints: dict[str, str | None]  # method -> hash of the code it measured (None: PyTorch's own)
    wall_s: float
    checks: Checks | None = None
    schema: int = VERSION

    def to_json(self) -> str:
        doc = {"schema": self.schema} | {k: v for k, v in asdict(self).items() if k != "schema"}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"

    # Derived figures, computed from the measurements.
    def gbps(self, p: Point) -> float | None:
        return p.bytes / (p.ms * 1e6) if p.status == "ok" else None

    def frac_clone(self, p: Point, rows: list[Point] | None = None) -> float | None:
        rows = self.results if rows is None else rows
        clone = next((r for r in rows if (r.method, r.dtype, r.T, r.B, r.C) == ("clone", p.dtype, p.T, p.B, p.C)
                      and r.status == "ok"), None)
        return None if clone is None or p.status != "ok" else self.gbps(p) / self.gbps(clone)

    def tflops(self, p: Point) -> float | None:
        return p.flops / (p.ms * 1e9) if p.status == "ok" and p.flops else None

    def frac_matmul(self, p: Point) -> float | None:
        ref = next((m for m in self.matmul_reference if m.dtype == p.dtype and m.status == "ok"), None)
        t = self.tflops(p)
        return None if ref is None or t is None else t / ref.tflops


# ----------------------------------------------------------------------------- validation

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")  # and bidi overrides


class _Check:
    """Reads a JSON value field by field, refusing with the file and the JSON path of what is wrong."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise ResultsError(f"{self.source}: {path}: {message}")

    def obj(self, v: Any, path: str, cls) -> dict:
        if not isinstance(v, dict):
            self.fail(path, f"expected an object, got {_kind(v)}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is f.default_factory is MISSING}
        if missing := sorted(required - v.keys()):
            self.fail(path, f"missing key {missing[0]!r}")
        if extra := sorted(v.keys() - names):
            self.fail(f"{path}.{extra[0]}", f"unknown key; expected one of {sorted(names)}")
        return v

    def mapping(self, v: Any, path: str) -> dict:
        if not isinstance(v, dict):
            self.fail(path, f"expected an object, got {_kind(v)}")
        return v

    def int(self, v: Any, path: str, *, low: int = 0, none: bool = False) -> int | None:
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(path, f"expected an integer{' or null' if none else ''}, got {_kind(v)}")
        if v < low:
            self.fail(path, f"expected an integer >= {low}, got {v}")
        return v

    def num(self, v: Any, path: str, *, positive: bool = False, none: bool = False) -> float | None:
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(path, f"expected a number{' or null' if none else ''}, got {_kind(v)}")
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            self.fail(path, f"expected a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
        return float(v)

    def str(self, v: Any, path: str, *, none: bool = False, choices=None, empty: bool = False) -> str | None:
        if v is None and none:
            return None
        if not isinstance(v, str):
            self.fail(path, f"expected a string{' or null' if none else ''}, got {_kind(v)}")
        if choices is not None and v not in choices:
            self.fail(path, f"expected one of {list(choices)}, got {v!r}")
        if not v and not empty:
            self.fail(path, "expected a non-empty string")
        if _CONTROL.search(v) or len(v) > 2000:
            self.fail(path, "expected one line of at most 2000 characters, without control or bidirectional formatting characters")
        return v

    def bool(self, v: Any, path: str, *, none: bool = False) -> bool | None:
        if v is None and none:
            return None
        if not isinstance(v, bool):
            self.fail(path, f"expected true or false, got {_kind(v)}")
        return v

    def list(self, v: Any, path: str, item, *, none: bool = False, length: int | None = None) -> list | None:
        if v is None and none:
            return None
        if not isinstance(v, list):
            self.fail(path, f"expected a list, got {_kind(v)}")
        if length is not None and len(v) != length:
            self.fail(path, f"expected {length} items, got {len(v)}")
        return [item(x, f"{path}[{i}]") for i, x in enumerate(v)]


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(v), f"{type(v).__name__} {v!r}"[:80])


def _method(c: _Check, v: Any, path: str) -> str:
    name = c.str(v, path)
    if base_name(name) not in METHODS or (name.endswith("+compile") and not METHODS[base_name(name)].compilable):
        c.fail(path, f"unknown method {name!r}; expected one of {method_names(True)}")
    return name


def _status_fields(c: _Check, v: dict, path: str) -> None:
    status = c.str(v["status"], f"{path}.status", choices=STATUSES)
    if status == "ok":
        c.num(v.get("ms"), f"{path}.ms", positive=True)
        c.list(v.get("samples_ms", []), f"{path}.samples_ms", lambda x, p: c.num(x, p, positive=True))
        if not v.get("samples_ms"):
            c.fail(f"{path}.samples_ms", "a measured point needs at least one sample")
        c.int(v.get("calls_per_sample"), f"{path}.calls_per_sample", low=1)
        if v.get("reason") is not None:
            c.fail(f"{path}.reason", "a measured point has no reason; expected null")
    else:
        c.str(v.get("reason"), f"{path}.reason")
        for key in ("ms", "calls_per_sample"):
            if v.get(key) is not None:
                c.fail(f"{path}.{key}", f"a point with status {status!r} was not measured; expected null")
        if v.get("samples_ms"):
            c.fail(f"{path}.samples_ms", f"a point with status {status!r} was not measured; expected []")


def _point(c: _Check, v: Any, path: str) -> Point:
    c.obj(v, path, Point)
    _method(c, v["method"], f"{path}.method")
    c.str(v["dtype"], f"{path}.dtype", choices=DTYPES)
    for key in ("T", "B", "C", "heads"):
        c.int(v[key], f"{path}.{key}", low=1)
    c.int(v["bytes"], f"{path}.bytes", low=1)
    c.int(v["flops"], f"{path}.flops", low=1, none=True)
    _status_fields(c, v, path)
    c.num(v.get("compile_s"), f"{path}.compile_s", none=True)
    c.int(v.get("peak_bytes"), f"{path}.peak_bytes", none=True)
    c.str(v.get("memory_note"), f"{path}.memory_note", none=True)
    return Point(**v)


def _matmul(c: _Check, v: Any, path: str) -> MatmulReference:
    c.obj(v, path, MatmulReference)
    c.str(v["dtype"], f"{path}.dtype", choices=DTYPES)
    c.int(v["N"], f"{path}.N", low=1)
    _status_fields(c, v, path)
    return MatmulReference(**v)


def _env(c: _Check, v: Any, path: str) -> Env:
    c.obj(v, path, Env)
    c.str(v["device_type"], f"{path}.device_type", choices=DEVICE_TYPES)
    for key in ("device_name", "cpu_model", "torch", "python", "platform", "date", "command", "memory_method"):
        c.str(v[key], f"{path}.{key}")
    for key in ("cuda", "git_commit"):
        c.str(v[key], f"{path}.{key}", none=True)
    if v["git_commit"] is not None and not re.fullmatch(r"[0-9a-f]{7,40}", v["git_commit"]):
        c.fail(f"{path}.git_commit", f"expected a hexadecimal commit id, got {v['git_commit']!r}")
    c.int(v["threads"], f"{path}.threads", low=1)
    c.int(v["memory_resolution_bytes"], f"{path}.memory_resolution_bytes", low=1)
    for key in ("cpu_count", "cudnn", "gpu_memory_bytes", "l2_cache_bytes"):
        c.int(v[key], f"{path}.{key}", none=True)
    c.bool(v["git_dirty"], f"{path}.git_dirty", none=True)
    for key in ("loadavg_start", "loadavg_end"):
        c.list(v[key], f"{path}.{key}", lambda x, p: c.num(x, p), none=True, length=3)
    c.num(v["other_processes_cores"], f"{path}.other_processes_cores", none=True)
    if v["device_type"] == "cuda":
        c.int(v["l2_cache_bytes"], f"{path}.l2_cache_bytes", low=1)
    return Env(**v)


def _config(c: _Check, v: Any, path: str) -> Config:
    c.obj(v, path, Config)
    c.str(v["device"], f"{path}.device")
    c.list(v["dtypes"], f"{path}.dtypes", lambda x, p: c.str(x, p, choices=DTYPES))
    c.list(v["Ts"], f"{path}.Ts", lambda x, p: c.int(x, p, low=1))
    for key in ("B", "C", "heads", "head_size", "repeats", "matmul_size", "threads", "loop_limit"):
        c.int(v[key], f"{path}.{key}", low=1)
    c.int(v["warmup"], f"{path}.warmup")
    c.int(v["seed"], f"{path}.seed", low=-(2**63))
    c.num(v["time_budget"], f"{path}.time_budget", positive=True)
    for key in ("tf32", "compile", "memory"):
        c.bool(v[key], f"{path}.{key}")
    c.list(v["methods"], f"{path}.methods", lambda x, p: _method(c, x, p))
    c.list(v["bandwidth"], f"{path}.bandwidth", lambda x, p: c.int(x, p, low=1), none=True, length=3)
    if not v["dtypes"] or not v["Ts"]:
        c.fail(f"{path}.{'dtypes' if not v['dtypes'] else 'Ts'}", "expected at least one value")
    return Config(**v)


def _shaped(c: _Check, v: Any, path: str, cls):
    c.obj(v, path, cls)
    _method(c, v["method"], f"{path}.method")
    c.str(v["dtype"], f"{path}.dtype", choices=DTYPES)
    for key in ("B", "T", "C"):
        c.int(v[key], f"{path}.{key}", low=1)
    return v


def _checks(c: _Check, v: Any, path: str) -> Checks:
    c.obj(v, path, Checks)

    def bench(x, p):
        _shaped(c, x, p, BenchCheck)
        for key in ("harness_ms", "do_bench_ms"):
            c.num(x[key], f"{p}.{key}", positive=True)
        return BenchCheck(**x)

    def profile(x, p):
        _shaped(c, x, p, KernelProfile)
        for key in ("kernels", "kernel_ms"):
            c.num(x[key], f"{p}.{key}")
        c.num(x["wall_ms"], f"{p}.wall_ms", positive=True)
        return KernelProfile(**x)

    return Checks(c.list(v["do_bench"], f"{path}.do_bench", bench), c.list(v["profiles"], f"{path}.profiles", profile))


def parse(doc: Any, source: str) -> Results:
    """Validate a decoded results document; `source` names it in error messages."""
    c = _Check(source)
    c.mapping(doc, "$")
    if doc.get("schema") != VERSION:
        c.fail("$.schema", f"expected {VERSION}, got {doc.get('schema')!r} (measure again with this version of "
                           "python -m snippets.timing)")
    c.obj(doc, "$", Results)
    env = _env(c, doc["env"], "$.env")
    config = _config(c, doc["config"], "$.config")
    refs = c.list(doc["matmul_reference"], "$.matmul_reference", lambda x, p: _matmul(c, x, p))
    results = c.list(doc["results"], "$.results", lambda x, p: _point(c, x, p))
    bandwidth = c.list(doc["bandwidth"], "$.bandwidth", lambda x, p: _point(c, x, p))
    fps = c.mapping(doc["fingerprints"], "$.fingerprints")
    for name, fp in fps.items():
        _method(c, name, f"$.fingerprints[{json.dumps(name)}]")
        if fp is not None and not (isinstance(fp, str) and re.fullmatch(r"[0-9a-f]{64}", fp)):
            c.fail(f"$.fingerprints.{name}", f"expected a sha256 hex digest or null, got {_kind(fp)}")
    c.num(doc["wall_s"], "$.wall_s", positive=True)
    checks = None if doc.get("checks") is None else _checks(c, doc["checks"], "$.checks")
    for i, p in enumerate(results):
        if p.dtype not in config.dtypes or p.T not in config.Ts or p.method not in config.methods:
            c.fail(f"$.results[{i}]", f"({p.method}, {p.dtype}, T={p.T}) is outside the run's config")
        if p.status == "ok" and base_name(p.method) in METHODS and fps.get(p.method, "") == "":
            c.fail("$.fingerprints", f"no fingerprint for the measured method {p.method!r}")
    return Results(env, config, refs, results, bandwidth, fps, float(doc["wall_s"]), checks, VERSION)


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def load(path: Path | str) -> Results:
    """Read and validate one results file; `ResultsError` names the file and what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read: {exc}") from None
    try:
        doc = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: $: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:
        raise ResultsError(f"{path}: $: not valid JSON: {exc}") from None
    return parse(doc, str(path))


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
