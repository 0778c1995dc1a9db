"""The appendix page's results sections, built from the committed results files.

Used by ``sitegen/timing.py`` before the site is built: every measurement on the
appendix, and every sentence there that says what a file holds, comes from a
committed results file through these functions (the prose typed into the page
describes only the method). Files are read only
through ``validate.load``, and every string that comes from a file is escaped for
the Markdown and HTML it lands in (``escape``). The plots need matplotlib (the
``figures`` extra) and take the site's style from ``snippets.plotting``, so this
module imports torch through the ``snippets`` package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.escape import code, esc
from bench.fingerprint import stale_methods
from bench.noise import flags, page_notes
from bench.plots import plot
from bench.schema import PROFILE_CALLS, Results, ResultsError
from bench.summary import (
    TABLE_STATUS,
    measured,
    num,
    pct,
    derived,
    grid,
    markdown_table,
    method_cell,
    summary,
)
from bench.missing import not_measured
from bench.validate import load, shown

FILE_NAME = re.compile(
    r"(cpu|cuda)-[a-z0-9][a-z0-9-]{0,99}\.json"
)  # results files the site renders


@dataclass
class Rendered:
    markdown: dict[str, str]  # marker name ("cpu", "gpu") -> Markdown to put in its place
    plots: dict[str, str]  # path below docs/ -> SVG text
    stale: list[str]  # one line per stale method: file, method, commit


def scroll(table: str, label: str) -> list[str]:
    """`table` in a box that scrolls sideways when the page is narrow, reachable and named for
    the keyboard."""
    return [
        f'<div class="scroll-table" markdown tabindex="0" role="region" aria-label="{esc(label)}">',
        "",
        table,
        "",
        "</div>",
        "",
    ]


def _meta(res: Results, stem: str) -> str:
    env, cfg = res.env, res.config

    def load_(v):
        return ", ".join(f"{x:g}" for x in v) if v else "n/a"

    refs = "; ".join(
        f"{r.dtype}: {num(r.tflops)} TFLOP/s"
        if r.status == "ok"
        else f"{r.dtype}: {TABLE_STATUS[r.status]}"
        for r in res.matmul_reference
    )
    n = cfg.matmul_size
    rows = [
        ("device", f"{esc(env.device_name)} ({env.device_type})"),
        (
            "CPU",
            f"{esc(env.cpu_model)}, {env.cpu_count or 'n/a'} cores, torch threads: {env.threads}",
        ),
        (
            "libraries",
            f"torch {esc(env.torch)} (built with CUDA {esc(env.cuda or 'n/a')}), "
            f"cuDNN {env.cudnn or 'n/a'}, Python {esc(env.python)}",
        ),
        ("date (UTC)", esc(env.date)),
        ("command", code(env.command)),
        (
            "git commit",
            (code(env.git_commit) if env.git_commit else "n/a")
            + (" (snippets/ had uncommitted changes)" if env.git_dirty else ""),
        ),
        (
            "load average (1, 5, 15 min)",
            f"start {load_(env.loadavg_start)}; end {load_(env.loadavg_end)}",
        ),
        (
            "other processes during the run",
            "n/a"
            if env.other_processes_cores is None
            else f"{env.other_processes_cores:.2g} cores busy on average"
            + (
                f", {env.steal_cores:.2g} of them taken by the hypervisor"
                if env.steal_cores
                else ""
            )
            + (f"; highest 1-minute load {env.loadavg_max:g}" if env.loadavg_max else ""),
        ),
        ("shapes", f"B = {cfg.B}, C = {cfg.C}, heads = {cfg.heads}, head size = {cfg.head_size}"),
        (
            "timing",
            f"median of up to {cfg.repeats} samples after the first call and up to "
            f"{cfg.warmup} more warm-up calls, as the budget of {cfg.time_budget:g} s per point "
            f"allows; TF32 {'on' if cfg.tf32 else 'off'}",
        ),
        *([("CPU allocator", esc(env.allocator))] if env.allocator else []),
        ("peak memory", esc(env.memory_method)),
        (f"matmul reference ({n} x {n})", refs),
        ("whole run", f"{res.wall_s:.0f} s"),
        ("raw file", f"[{stem}.json](results/{stem}.json)"),
    ]
    return markdown_table(["", ""], [list(row) for row in rows], left=2)


def section(
    res: Results, stem: str, stale: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Markdown for one results file and its plots ({path below docs/: SVG})."""
    env, cfg = res.env, res.config
    stale = stale or {}
    flagged = frozenset(stale)
    floor = env.memory_resolution_bytes
    name = esc(env.device_name)
    parts = [f"### {name}", ""]
    if stale:
        commit = env.git_commit[:12] if env.git_commit else "an unrecorded commit"
        parts += [
            '!!! warning "Stale numbers"',
            "",
            f"    These methods were measured at commit {code(commit)}, and the code they "
            "measure has changed since; their numbers, marked (stale) below, describe the old "
            "code until this file is measured again:",
            "",
        ]
        parts += [f"    - `{m}`: {why}" for m, why in sorted(stale.items())] + [""]
    parts += page_notes(res, esc, marks := flags(res))
    parts += scroll(_meta(res, stem), f"How {env.device_name} was measured")
    plots = {}
    for dtype in cfg.dtypes:
        span = f"T = {min(cfg.Ts)} to {max(cfg.Ts)}"
        parts += [
            f"#### {name}, {dtype}",
            "",
            "Computed from this file:",
            "",
            *summary(res, dtype, stale=flagged),
        ]
        for what, alt in (
            ("time", "median time per call in milliseconds"),
            ("memory", "peak memory per call in MiB"),
        ):
            path = f"appendix/plots/{stem}-{dtype}-{what}.svg"
            plots[path] = plot(res, dtype, what)
            parts += [
                f"![Log-log line chart of the {alt} against {span}, one line per method, on "
                f"{name} in {dtype}; the table below holds the same numbers]"
                f"(plots/{stem}-{dtype}-{what}.svg)",
                "",
            ]
        parts += [
            "Solid lines: methods that build a T × T matrix, so their memory grows with T²; "
            "dashed: memory linear in T; dotted grey: `clone`, the bandwidth reference. Points "
            "that were not measured are missing from the lines, and so are peaks below the memory "
            "resolution; the tables say why.",
            "",
        ]
        for caption, table in (
            ("Median milliseconds per call", grid(res, dtype, "ms", stale=flagged, marks=marks)),
            (
                "Peak memory per call, MiB",
                grid(res, dtype, "peak_bytes", 2.0**-20, floor, stale=flagged),
            ),
        ):
            parts += [f"{caption}:", "", *scroll(table, f"{caption}, {env.device_name}, {dtype}")]
        if clone := measured(res.results, "clone", dtype):
            parts += [
                f"Derived figures at T = {clone.T}: achieved bandwidth (least bytes a call must "
                "read and write, over its time) as a fraction of `clone` at the same T, and "
                "achieved FLOP/s as a fraction of the matmul reference:",
                "",
                *scroll(
                    derived(
                        res,
                        [r for r in res.results if (r.dtype, r.T) == (dtype, clone.T)],
                        flagged,
                        marks,
                    ),
                    f"Derived figures at T = {clone.T}, {env.device_name}, {dtype}",
                ),
            ]
    if res.checks:
        parts += checks(res, name, flagged)
    if notes := not_measured(res):
        parts += ['??? note "Points that were not measured, and why"', ""]
        parts += ["    " + line for line in notes] + [""]
    return "\n".join(parts), plots


def checks(res: Results, name: str, stale: frozenset[str] = frozenset()) -> list[str]:
    """Markdown of a file's ``checks``: the do_bench cross-check and the kernel profiles."""
    c, parts = res.checks, [f"#### {name}: the timing method checked", ""]
    assert c is not None, "checks(): called only for a file that has checks"
    if c.do_bench:
        rows = [
            [
                method_cell(b.method, stale),
                b.dtype,
                f"({b.B}, {b.T}, {b.C})",
                num(b.harness_ms),
                num(b.do_bench_ms),
                f"{b.harness_ms / b.do_bench_ms:.3f}",
            ]
            for b in c.do_bench
        ]
        parts += [
            "The same calls timed by this harness and by Triton's `triton.testing.do_bench` "
            "(the median of each), one after the other in one process, by "
            "`python3 -m bench.gpu`:",
            "",
            *scroll(
                markdown_table(
                    ["method", "dtype", "(B, T, C)", "harness ms", "do_bench ms", "ratio"],
                    rows,
                    left=3,
                ),
                f"Harness against do_bench, {res.env.device_name}",
            ),
        ]
    if c.profiles:
        rows = []
        for p in c.profiles:
            timed = next(
                (
                    r
                    for r in res.bandwidth
                    if (r.method, r.dtype, r.B, r.T, r.C) == (p.method, p.dtype, p.B, p.T, p.C)
                    and r.status == "ok"
                ),
                None,
            )
            rows.append(
                [
                    method_cell(p.method, stale),
                    p.dtype,
                    f"({p.B}, {p.T}, {p.C})",
                    f"{p.kernels:.3g}",
                    num(p.kernel_ms),
                    num(timed.ms) if timed else "n/a",
                    pct(p.kernel_ms / timed.ms) if timed else "n/a",  # type: ignore[operator]
                ]
            )
        parts += [
            "What one call does on the GPU, from PyTorch's profiler (the mean of "
            f"{PROFILE_CALLS} calls after a warm-up): how many kernels it launches and how long "
            "they keep the GPU busy, next to the call's median time at the bandwidth point of the "
            "sweep. Where the busy time is close to the timed one, the call is spent in its "
            "kernels, not in launching them:",
            "",
            *scroll(
                markdown_table(
                    [
                        "method",
                        "dtype",
                        "(B, T, C)",
                        "kernels",
                        "GPU busy ms",
                        "timed ms",
                        "busy / timed",
                    ],
                    rows,
                    left=3,
                ),
                f"Kernel profiles, {res.env.device_name}",
            ),
        ]
    return parts


GPU_MISSING = """\
!!! info "No GPU results committed yet"

    No results file from a CUDA device is committed, so this section shows no GPU
    numbers. On a machine with an NVIDIA GPU, from the repository root, run

    ```bash
    python3 -m bench.gpu gpu-results
    ```

    It runs the CUDA tests, measures float32 and bfloat16 on `cuda`, and writes
    `cuda-<gpu name>.json` into `gpu-results/`. Copy that file to
    `docs/appendix/results/` and the next build of the site renders it here."""


def results_files(results_dir: Path) -> list[tuple[Path, Results]]:
    """Every results file in `results_dir` (hidden ones left out), read and validated, with its
    path. Raises ResultsError, naming the file, for one that is malformed or badly named."""
    files = []
    for p in sorted(results_dir.iterdir() if results_dir.is_dir() else []):
        if p.name.startswith("."):
            continue
        if not FILE_NAME.fullmatch(p.name):
            raise ResultsError(
                f"{shown(p)}: a results file's name must be cpu-<name>.json or "
                "cuda-<name>.json, with <name> of lower-case letters, digits and dashes (what "
                "python -m bench writes)"
            )
        res = load(p)
        if not p.name.startswith(res.env.device_type + "-"):
            raise ResultsError(
                f"{shown(p)}: $.env.device_type is {res.env.device_type!r}, "
                "but the name says otherwise"
            )
        files.append((p, res))
    return files


def render(results_dir: Path) -> Rendered:
    """Markdown for the "cpu" and "gpu" markers of the appendix page, every plot, and what is stale.

    Raises:
        ResultsError: a file is malformed or badly named; the message names it.
    """
    files = [(p.stem, res) for p, res in results_files(results_dir)]
    markdown: dict[str, str] = {}
    plots: dict[str, str] = {}
    stale_lines: list[str] = []
    for marker, kind in (("cpu", "cpu"), ("gpu", "cuda")):
        parts = []
        for stem, res in files:
            if res.env.device_type == kind:
                stale = stale_methods(res)
                commit = res.env.git_commit[:12] if res.env.git_commit else "an unrecorded commit"
                stale_lines += [
                    f"{stem}.json: {m} was measured at {commit}; {why}" for m, why in stale.items()
                ]
                md, svgs = section(res, stem, stale)
                parts.append(md)
                plots |= svgs
        markdown[marker] = (
            "\n".join(parts)
            if parts
            else (GPU_MISSING if marker == "gpu" else "No CPU results file is committed.")
        )
    return Rendered(markdown, plots, stale_lines)
