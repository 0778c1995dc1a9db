"""One command for a GPU machine: every CUDA test, the default timing sweep, and a cross-check.

    python3 -m bench.gpu OUT_DIR

Run it from the repository root (or with the root on ``PYTHONPATH``). It needs
python3 with torch, pytest and hypothesis; matplotlib, Sybil, MkDocs and a
network are not needed. Into ``OUT_DIR`` (created if missing) it writes:

* ``cuda-tests.log`` and ``cuda-tests.xml``: pytest on every test marked ``cuda``,
  and, where Sybil is installed, the pages' examples (a page's CUDA blocks run
  only there); without Sybil the log says the pages were not run;
* ``cuda-<gpu name>.json``: ``python -m bench`` with its defaults, the
  file to commit under ``docs/appendix/results/``; ``timing.md`` (its table) and
  ``timing.log`` (its progress);
* ``do_bench.json``: a few points timed by this harness and by
  ``triton.testing.do_bench`` in one process (skipped where triton is missing),
  and the kernels that ``clone`` and the linear prefix means launch at the
  bandwidth point, from PyTorch's profiler; both also go into the results file's
  ``checks`` section, which the appendix renders;
* ``summary.txt``: what passed, failed and was skipped, and the wall times.

Exits 0 only if every step passed; a missing GPU is refused at once (exit 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, replace
from pathlib import Path

from bench.environment import ROOT

# (method, dtype, T or None for the bandwidth point) for the do_bench cross-check.
CROSS_CHECK = (
    ("clone", "bfloat16", None),
    ("prefix_mean_fast", "bfloat16", None),
    ("prefix_mean_triton", "bfloat16", None),
    ("prefix_mean_matmul", "float32", 4096),
    ("causal_attention", "float32", 2048),
    ("sdpa-flash", "bfloat16", 8192),
)


def _pytest(args: list[str], log, env: dict | None = None) -> int:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-rA", *args]
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def _counts(xml: Path) -> dict[str, int]:
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError):
        return {}
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {
        k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")
    }
    total["passed"] = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return total


def _has(module: str, env: dict | None) -> bool:
    """Whether `module` imports in the interpreter (and environment) that runs the tests."""
    return (
        subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=ROOT, env=env, capture_output=True
        ).returncode
        == 0
    )


def run_tests(out: Path, env: dict | None = None) -> tuple[bool, str]:
    with open(out / "cuda-tests.log", "w", encoding="utf-8") as log:
        # Selected by the marker; the conftests and the test modules import without Sybil,
        # MkDocs and the browser (those that need them skip at collection).
        code = _pytest(
            ["-m", "cuda", "--junitxml", str(out / "cuda-tests.xml"), "tests"],
            log,
            env,
        )
        c = _counts(out / "cuda-tests.xml")
        lines = [
            f"CUDA tests: {c.get('passed', '?')} passed, {c.get('failures', '?')} failed, "
            f"{c.get('errors', '?')} errors, {c.get('skipped', '?')} skipped (pytest exit {code})"
        ]
        ok = code == 0 and c.get("tests", 0) > 0
        if not _has("sybil", env):
            log.write(
                "\nPages not run: Sybil is not installed (pip install sybil to run them too).\n"
            )
            lines.append("pages: not run (Sybil is not installed)")
        else:
            log.write("\n")
            pages = _pytest(["docs"], log, env)
            lines.append(f"pages (Sybil, every example of docs/*.md): pytest exit {pages}")
            ok = ok and pages == 0
    return ok, "\n".join(lines)


def run_sweep(out: Path) -> tuple[bool, str, Path | None]:
    import torch

    from bench.cli import default_name

    path = out / f"{default_name(torch.device('cuda'))}.json"
    t0 = time.perf_counter()
    with (
        open(out / "timing.md", "w", encoding="utf-8") as md,
        open(out / "timing.log", "w", encoding="utf-8") as log,
    ):
        code = subprocess.run(
            # --allow-busy: the GPU is what is timed; a busy host CPU is recorded and shown
            [sys.executable, "-m", "bench", "--allow-busy", "--out", str(path)],
            cwd=ROOT,
            stdout=md,
            stderr=log,
        ).returncode
    wall = time.perf_counter() - t0
    return (
        code == 0,
        f"timing sweep: exit {code}, {wall:.0f} s wall, wrote {path.name}",
        path if code == 0 else None,
    )


def cross_check(out: Path, results_path: Path | None) -> tuple[bool, str]:
    """This harness's median against ``triton.testing.do_bench``'s at a few points, and kernel
    profiles.

    Both go into the results file of the sweep (its ``checks`` section), so the
    appendix shows them beside the numbers they vouch for; also to ``do_bench.json``.
    """
    import torch

    from bench.cli import BANDWIDTH_SHAPES, parse_config
    from bench.measure import measure
    from bench.methods import build, make_inputs
    from bench.schema import BenchCheck, Checks, KernelProfile, write_atomic
    from bench.validate import load

    cfg, _ = parse_config(["--device", "cuda", "--out", str(out / "unused.json")])
    lines, benches, ok = [], [], True
    if importlib.util.find_spec("triton") is None:
        lines.append("do_bench cross-check: skipped, triton is not installed")
    else:
        from triton.testing import do_bench

        flush = torch.empty(
            2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda"
        )
        for name, dtype, T in CROSS_CHECK:
            B, T_bw, C = BANDWIDTH_SHAPES["cuda"]
            c = cfg if T is not None else replace(cfg, B=B, C=C)
            T = T or T_bw
            fn = build(
                c,
                name,
                make_inputs(c, dtype, T, attention=not name.startswith(("clone", "prefix"))),
            )
            ours = measure(fn, device="cuda", repeats=50, warmup=5, budget=10.0, flush=flush)
            with torch.inference_mode():
                theirs = do_bench(fn, warmup=25, rep=100, return_mode="median")
            if ours["status"] != "ok":
                ok = False
                lines.append(f"do_bench cross-check: {name} {dtype} T={T}: {ours['status']}")
                continue
            benches.append(BenchCheck(name, dtype, c.B, T, c.C, ours["ms"], float(theirs)))
            del fn
            torch.cuda.empty_cache()
        ratios = [b.harness_ms / b.do_bench_ms for b in benches]
        lines.append(
            f"do_bench cross-check (harness median / do_bench median; within 10 %: "
            f"{sum(0.9 <= r <= 1.1 for r in ratios)} of {len(ratios)}, median ratio "
            f"{statistics.median(ratios) if ratios else float('nan'):.3f}):"
        )
        lines += [
            f"  {b.method} {b.dtype} (B, T, C) = ({b.B}, {b.T}, {b.C}): {b.harness_ms:.4g} ms vs "
            f"{b.do_bench_ms:.4g} ms, ratio {b.harness_ms / b.do_bench_ms:.3f}"
            for b in benches
        ]
    profiles = []
    for name in (
        "clone",
        "prefix_mean_cumsum",
        "prefix_mean_fast",
        "prefix_mean_triton",
    ):  # what limits the scans at the bandwidth point
        for dtype in ("float32", "bfloat16"):
            try:
                profiles.append(KernelProfile(**_profile(cfg, name, dtype)))
            except Exception as exc:  # the profiler informs; it must not hide the rest
                lines.append(f"profile of {name} {dtype} failed: {type(exc).__name__}: {exc}"[:300])
    lines.append(
        "profiles at the bandwidth point (mean of several calls): "
        + "; ".join(
            f"{p.method} {p.dtype}: {p.kernels:.3g} kernels, "
            f"{p.kernel_ms:.3g} ms of kernels in {p.wall_ms:.3g} ms"
            for p in profiles
        )
    )
    checks = Checks(benches, profiles)
    (out / "do_bench.json").write_text(json.dumps(asdict(checks), indent=1) + "\n")
    if results_path is not None:
        res = load(results_path)
        res.checks = checks
        write_atomic(results_path, res.to_json())
        load(results_path)  # what was written reads back
    return ok, "\n".join(lines)


def _profile(cfg, name: str, dtype: str) -> dict:
    """Kernels per call, their GPU time, and the call's wall time, at the bandwidth point (after a
    warm-up)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench.cli import BANDWIDTH_SHAPES
    from bench.methods import build, make_inputs
    from bench.schema import PROFILE_CALLS

    B, T, C = BANDWIDTH_SHAPES["cuda"]
    c = replace(cfg, B=B, C=C)
    fn = build(c, name, make_inputs(c, dtype, T, attention=False))
    n = PROFILE_CALLS
    with torch.inference_mode():
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            torch.cuda.synchronize()
            wall = time.perf_counter() - t0
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return {
        "method": name,
        "dtype": dtype,
        "B": B,
        "T": T,
        "C": C,
        "kernels": len(kernels) / n,
        "kernel_ms": sum(e.device_time for e in kernels) / 1e3 / n,
        "wall_ms": wall * 1e3 / n,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m bench.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "out", type=Path, metavar="OUT_DIR", help="folder for the results, logs and summary"
    )
    p.add_argument("--skip-sweep", action="store_true", help="only the tests and the cross-check")
    a = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        p.error(
            f"no CUDA GPU here (torch {torch.__version__}, built with CUDA {torch.version.cuda})"
        )
    out = a.out.absolute()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        p.error(f"OUT_DIR {out}: cannot be created ({exc.strerror or exc})")
    t0 = time.perf_counter()
    lines = [
        f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    ]
    ok_tests, text = run_tests(out)
    lines.append(text)
    ok_sweep, path = True, None
    if not a.skip_sweep:
        ok_sweep, text, path = run_sweep(out)
        lines.append(text)
    try:
        ok_check, text = cross_check(out, path)
    except Exception as exc:  # the cross-check informs; it must not hide the other results
        ok_check, text = False, f"do_bench cross-check failed: {type(exc).__name__}: {exc}"
    lines.append(text)
    lines.append(
        f"total: {time.perf_counter() - t0:.0f} s; "
        f"{'all passed' if ok_tests and ok_sweep and ok_check else 'FAILED'}"
    )
    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary, encoding="utf-8")
    print(summary, end="")
    return 0 if ok_tests and ok_sweep and ok_check else 1


if __name__ == "__main__":
    sys.exit(main())
