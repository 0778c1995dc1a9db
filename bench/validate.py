"""``load()``: a results file read and checked against ``bench.schema``, or refused.

Every malformed file is refused with one `ResultsError` that names the file and
the JSON path of the bad value: syntax errors, duplicate keys, ``NaN`` and
``Infinity``, wrong types, missing or unknown keys, unknown methods, statuses,
dtypes or devices, negative or zero times, byte counts below zero, ``T`` that is
not a positive integer, strings with control or format characters (Unicode Cc, Cf)
or lone surrogates, points outside the run's own configuration, anything listed twice,
and values past the limits of bench.safe_read. Standard library only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.noise import sample_problem
from bench.reader import Reader, kind
from bench.safe_read import (
    MAX_SAMPLES,
    MAX_TS,
    duplicate,
    read_json,
    short,
    shown,
)
from bench.schema import (
    DEVICE_TYPES,
    DTYPES,
    METHODS,
    LEGACY,
    STATUSES,
    VERSION,
    BenchCheck,
    Checks,
    Config,
    Env,
    KernelProfile,
    MatmulReference,
    Point,
    Results,
    base_name,
    method_names,
)


def _method(c: Reader, v: Any, path: str) -> str:
    name: str = c.str(v, path)  # type: ignore[assignment]  # None only where none=True
    if base_name(name) not in METHODS or (
        name.endswith("+compile") and not METHODS[base_name(name)].compilable
    ):
        c.fail(path, f"unknown method {name!r}; expected one of {method_names(True)}")
    return name


def _status_fields(c: Reader, v: dict, path: str) -> None:
    status = c.str(v["status"], f"{path}.status", choices=STATUSES)
    if status == "ok":
        c.num(v.get("ms"), f"{path}.ms", positive=True)
        c.list(
            v.get("samples_ms", []),
            f"{path}.samples_ms",
            lambda x, p: c.num(x, p, positive=True),
            most=MAX_SAMPLES,
        )
        if why := sample_problem(v.get("samples_ms"), v["ms"], c.legacy):
            c.fail(f"{path}.samples_ms", why)
        c.int(v.get("calls_per_sample"), f"{path}.calls_per_sample", low=1)
        if v.get("reason") is not None:
            c.fail(f"{path}.reason", "a measured point has no reason; expected null")
    else:
        c.str(v.get("reason"), f"{path}.reason")
        for key in ("ms", "calls_per_sample"):
            if v.get(key) is not None:
                c.fail(
                    f"{path}.{key}",
                    f"a point with status {status!r} was not measured; expected null",
                )
        if v.get("samples_ms"):
            c.fail(
                f"{path}.samples_ms",
                f"a point with status {status!r} was not measured; expected []",
            )


def _point(c: Reader, v: Any, path: str) -> Point:
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
    c.bool(v.get("remeasured", False), f"{path}.remeasured")
    return Point(**v)


def _matmul(c: Reader, v: Any, path: str) -> MatmulReference:
    c.obj(v, path, MatmulReference)
    c.str(v["dtype"], f"{path}.dtype", choices=DTYPES)
    c.int(v["N"], f"{path}.N", low=1)
    _status_fields(c, v, path)
    return MatmulReference(**v)


def _env(c: Reader, v: Any, path: str) -> Env:
    c.obj(v, path, Env)
    c.str(v["device_type"], f"{path}.device_type", choices=DEVICE_TYPES)
    for key in (
        "device_name",
        "cpu_model",
        "torch",
        "python",
        "platform",
        "date",
        "command",
        "memory_method",
    ):
        c.str(v[key], f"{path}.{key}")
    for key in ("cuda", "git_commit", "busy"):
        c.str(v.get(key), f"{path}.{key}", none=True)
    if v["git_commit"] is not None and not re.fullmatch(r"[0-9a-f]{7,40}", v["git_commit"]):
        c.fail(f"{path}.git_commit", f"expected a hexadecimal commit id, got {v['git_commit']!r}")
    c.int(v["threads"], f"{path}.threads", low=1)
    c.int(v["memory_resolution_bytes"], f"{path}.memory_resolution_bytes", low=1)
    for key in ("cpu_count", "cudnn", "gpu_memory_bytes", "l2_cache_bytes", "busy_processes"):
        c.int(v.get(key), f"{path}.{key}", none=True)
    c.bool(v["git_dirty"], f"{path}.git_dirty", none=True)
    c.str(v.get("allocator"), f"{path}.allocator", none=True)
    for key in ("loadavg_start", "loadavg_end"):
        c.list(v[key], f"{path}.{key}", lambda x, p: c.num(x, p), none=True, length=3)
    for key in ("other_processes_cores", "steal_cores", "loadavg_max"):
        c.num(v.get(key), f"{path}.{key}", none=True)
    if v["device_type"] == "cuda":
        c.int(v["l2_cache_bytes"], f"{path}.l2_cache_bytes", low=1)
    return Env(**v)


def _config(c: Reader, v: Any, path: str) -> Config:
    c.obj(v, path, Config)
    c.str(v["device"], f"{path}.device")
    c.list(v["dtypes"], f"{path}.dtypes", lambda x, p: c.str(x, p, choices=DTYPES))
    c.list(v["Ts"], f"{path}.Ts", lambda x, p: c.int(x, p, low=1), most=MAX_TS)
    for key in ("B", "C", "heads", "head_size", "repeats", "matmul_size", "threads", "loop_limit"):
        c.int(v[key], f"{path}.{key}", low=1)
    c.int(v["warmup"], f"{path}.warmup")
    c.int(v["seed"], f"{path}.seed", low=-(2**63), high=2**64)  # torch.manual_seed's range
    c.num(v["time_budget"], f"{path}.time_budget", positive=True)
    for key in ("tf32", "compile", "memory", "busy"):
        c.bool(v.get(key, False), f"{path}.{key}")
    c.list(v["methods"], f"{path}.methods", lambda x, p: _method(c, x, p))
    c.list(
        v["bandwidth"], f"{path}.bandwidth", lambda x, p: c.int(x, p, low=1), none=True, length=3
    )
    if v["head_size"] != v["C"] // v["heads"] or v["C"] % v["heads"]:
        c.fail(
            f"{path}.head_size",
            f"expected C / heads = {v['C']} / {v['heads']}, got {v['head_size']}",
        )
    if not v["dtypes"] or not v["Ts"]:
        c.fail(f"{path}.{'dtypes' if not v['dtypes'] else 'Ts'}", "expected at least one value")
    return Config(**v)


def _shaped(c: Reader, v: Any, path: str, cls):
    c.obj(v, path, cls)
    _method(c, v["method"], f"{path}.method")
    c.str(v["dtype"], f"{path}.dtype", choices=DTYPES)
    for key in ("B", "T", "C"):
        c.int(v[key], f"{path}.{key}", low=1)
    return v


def _checks(c: Reader, v: Any, path: str) -> Checks:
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

    return Checks(
        c.list(v["do_bench"], f"{path}.do_bench", bench),  # type: ignore[arg-type]
        c.list(v["profiles"], f"{path}.profiles", profile),  # type: ignore[arg-type]
    )


def parse(doc: Any, source: str) -> Results:
    """Validate a decoded results document; `source` names it in error messages."""
    c = Reader(source)
    c.mapping(doc, "$")
    version = doc.get("schema")
    # exactly an int: 3.0 == 3 and True == 1 in Python, but neither is a version this code wrote
    exact = type(version) is int
    c.legacy = exact and version in LEGACY  # read, and flagged on the page
    if not exact or (version != VERSION and not c.legacy):
        got = short(version) if exact else repr(version)[:80]
        c.fail(
            "$.schema",
            f"expected the integer {VERSION}, got {got} (measure again with this version of "
            "python -m bench)",
        )
    c.obj(doc, "$", Results)
    env = _env(c, doc["env"], "$.env")
    config = _config(c, doc["config"], "$.config")
    refs = c.list(doc["matmul_reference"], "$.matmul_reference", lambda x, p: _matmul(c, x, p))
    results = c.list(doc["results"], "$.results", lambda x, p: _point(c, x, p))
    bandwidth = c.list(doc["bandwidth"], "$.bandwidth", lambda x, p: _point(c, x, p))
    busy = c.list(doc.get("bandwidth_busy", []), "$.bandwidth_busy", lambda x, p: _point(c, x, p))
    assert refs is not None and results is not None and bandwidth is not None and busy is not None
    fps = c.mapping(doc["fingerprints"], "$.fingerprints")
    for name, fp in fps.items():
        _method(c, name, f"$.fingerprints[{json.dumps(name)}]")
        if fp is not None and not (isinstance(fp, str) and re.fullmatch(r"[0-9a-f]{64}", fp)):
            c.fail(
                f"$.fingerprints.{name}", f"expected a sha256 hex digest or null, got {kind(fp)}"
            )
    c.num(doc["wall_s"], "$.wall_s", positive=True)
    checks = None if doc.get("checks") is None else _checks(c, doc["checks"], "$.checks")
    lists = {
        "results": results,
        "bandwidth": bandwidth,
        "bandwidth_busy": busy,
        "matmul_reference": refs,
    }
    lists |= {f"config.{k}": getattr(config, k) for k in ("Ts", "dtypes", "methods")}
    for name, items in lists.items():
        if twice := duplicate(items):
            c.fail(f"$.{name}[{twice[1]}]", f"the same as $.{name}[{twice[0]}]; one entry each")
    for i, p in enumerate(results):
        if p.dtype not in config.dtypes or p.T not in config.Ts or p.method not in config.methods:
            c.fail(
                f"$.results[{i}]", f"({p.method}, {p.dtype}, T={p.T}) is outside the run's config"
            )
        if p.status == "ok" and base_name(p.method) in METHODS and fps.get(p.method, "") == "":
            c.fail("$.fingerprints", f"no fingerprint for the measured method {p.method!r}")
    for name, points in (("bandwidth", bandwidth), ("bandwidth_busy", busy)):
        for i, p in enumerate(points):
            if p.dtype not in config.dtypes or p.method not in config.methods:
                c.fail(f"$.{name}[{i}]", f"({p.method}, {p.dtype}) is outside the run's config")
    if busy and env.busy_processes is None:
        c.fail(
            "$.env.busy_processes", "expected the number of busy processes, given $.bandwidth_busy"
        )
    wall = float(doc["wall_s"])
    return Results(env, config, refs, results, bandwidth, fps, wall, checks, doc["schema"], busy)


def load(path: Path | str) -> Results:
    """Read and validate one results file; `ResultsError` names the file and what is wrong."""
    return parse(read_json(Path(path)), shown(path))
