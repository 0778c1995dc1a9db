"""Tables, summaries and plots of results files, for the appendix page and the terminal.

Used by ``hooks/timing.py`` while the site is built: every number on the appendix
comes from a committed results file through these functions. Files are read only
through ``schema.load``, and every string that comes from a file is escaped for
the Markdown and HTML it lands in (`esc`, `code`). Needs no torch; the plots need
matplotlib (the ``docs`` extra).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from snippets.timing.fingerprint import fingerprint
from snippets.timing.schema import METHODS, Point, Results, ResultsError, base_name, load

# Mid-lightness colours that keep their contrast on white and on slate; clone is the grey reference.
COLOURS = ["#e8710a", "#3b8ee6", "#2ca02c", "#d62728", "#9467bd", "#e377c2", "#17becf", "#bcbd22"]
STYLE = {"reference": ":", "linear": "--", "quadratic": "-"}
TABLE_STATUS = {"skipped": "skipped", "oom": "out of memory", "over_budget": "over budget", "error": "error"}
PANELS = ("prefix means", "attention")
QUADRATIC = ("prefix_mean_matmul", "prefix_mean_softmax", "causal_attention", "sdpa-math")
LINEAR = ("prefix_mean_cumsum", "prefix_mean_fast", "sdpa-flash")
VECTORISED = ("prefix_mean_matmul", "prefix_mean_softmax", "prefix_mean_cumsum", "prefix_mean_fast")
FILE_NAME = re.compile(r"(cpu|cuda)-[a-z0-9][a-z0-9-]{0,99}\.json")  # results files the site renders


@dataclass
class Rendered:
    markdown: dict[str, str]  # marker name ("cpu", "gpu") -> Markdown to put in its place
    plots: dict[str, str]  # path below docs/ -> SVG text
    stale: list[str]  # one line per stale method: file, method, commit


# ----------------------------------------------------------------------------- escaping

def esc(s: str) -> str:
    """`s` as literal text anywhere in Markdown, in inline HTML, in a table cell, heading or alt text.

    Everything but letters, digits, spaces and non-ASCII characters becomes a
    numeric character reference, so no Markdown, HTML, attribute list, math or
    include syntax survives, and no ``|`` splits a table cell.
    """
    return "".join(c if c.isalnum() or c == " " or ord(c) > 127 else f"&#{ord(c)};" for c in s)


def code(s: str) -> str:
    """`s` as inline code that stays literal (a Markdown code span could be closed by a backtick in `s`)."""
    return f"<code>{esc(s)}</code>"


def plain(s: str) -> str:
    """`s` for the terminal's Markdown: a ``|`` cannot split a table cell."""
    return s.replace("|", "\\|")


def _mpl(s: str) -> str:
    """`s` as literal matplotlib text: a ``$`` would start mathtext."""
    return s.replace("\\", "\\\\").replace("$", r"\$")


# ----------------------------------------------------------------------------- summaries

def _ok(rows: list[Point], method: str, dtype: str, T: int | None = None) -> Point | None:
    """The measured row of `method` (at `T`, or the largest T) among `rows`."""
    ok = [r for r in rows if (r.method, r.dtype) == (method, dtype) and r.status == "ok" and T in (None, r.T)]
    return max(ok, key=lambda r: r.T, default=None)


def growth(res: Results, method: str, dtype: str, key: str) -> tuple[int, float] | None:
    """(T, v(T) / v(T/2)) of `key` ("ms" or "peak_bytes") at the largest T where both were measured.

    A peak memory below the file's resolution does not count as measured.
    """
    floor = res.env.memory_resolution_bytes if key == "peak_bytes" else 0
    for T in sorted(res.config.Ts, reverse=True):
        a, b = _ok(res.results, method, dtype, T), _ok(res.results, method, dtype, T // 2)
        if a and b and getattr(a, key) and getattr(b, key) and getattr(b, key) >= floor:
            return T, getattr(a, key) / getattr(b, key)
    return None


def crossover(res: Results, fast: str, slow: str, dtype: str) -> int | None:
    """The smallest T from which `fast` beats `slow` at every larger T where both were measured."""
    best = None
    for T in sorted(res.config.Ts, reverse=True):
        a, b = _ok(res.results, fast, dtype, T), _ok(res.results, slow, dtype, T)
        if not (a and b):
            continue
        if a.ms >= b.ms:
            break
        best = T
    return best


def _spans(Ts: list[int]) -> str:
    return ", ".join(map(str, Ts))


def versus(res: Results, a: str, b: str, dtype: str) -> str | None:
    """Where `a` is faster than `b` and where slower, over every T where both were measured."""
    both = [(T, x.ms < y.ms) for T in sorted(res.config.Ts)
            if (x := _ok(res.results, a, dtype, T)) and (y := _ok(res.results, b, dtype, T))]
    if not both:
        return None
    faster, slower = [T for T, f in both if f], [T for T, f in both if not f]
    if not slower:
        return f"faster at every T measured ({_spans(faster)})"
    if not faster:
        return f"slower at every T measured ({_spans(slower)})"
    return f"faster at T = {_spans(faster)}; slower at T = {_spans(slower)}"


def _shape(r: Point) -> str:
    return f"(B, T, C) = ({r.B}, {r.T}, {r.C})"


def headline(res: Results, dtype: str) -> list[tuple[str, str]]:
    """The figures the appendix quotes, as (what, value) pairs, computed from a results file."""
    out, rows = [], res.results
    loop = _ok(rows, "prefix_mean_loop", dtype, 256)
    if loop:
        for m in VECTORISED:
            if r := _ok(rows, m, dtype, 256):
                out.append((f"prefix_mean_loop / {m} at {_shape(r)}", f"{loop.ms / r.ms:.3g}x"))
    a, b = _ok(rows, "prefix_mean_matmul", dtype), _ok(rows, "prefix_mean_fast", dtype)
    if a and b and (b := _ok(rows, "prefix_mean_fast", dtype, a.T)):
        out.append((f"prefix_mean_matmul / prefix_mean_fast at T = {a.T}", f"{a.ms / b.ms:.3g}x"))
    for m in ("prefix_mean_fast", "prefix_mean_cumsum"):  # at the bandwidth point if there is one
        where = res.bandwidth if _ok(res.bandwidth, m, dtype) else rows
        r = _ok(where, m, dtype)
        if r and (f := res.frac_clone(r, where)):
            out.append((f"{m} bandwidth as a fraction of clone at {_shape(r)}",
                        f"{100 * f:.3g} % ({res.gbps(r):.3g} of {res.gbps(r) / f:.3g} GB/s)"))
    for m in LINEAR[:2]:
        if said := versus(res, m, "prefix_mean_matmul", dtype):
            out.append((f"{m} against prefix_mean_matmul", said))
    a, b = _ok(rows, "causal_attention", dtype), _ok(rows, "sdpa-flash", dtype)
    if a and b and (b := _ok(rows, "sdpa-flash", dtype, a.T)):
        out.append((f"causal_attention / sdpa-flash at T = {a.T}", f"{a.ms / b.ms:.3g}x"))
    return out


# ----------------------------------------------------------------------------- tables

def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.3g} %"


def markdown_table(header: list[str], rows: list[list[str]], *, left: int = 1) -> str:
    """A Markdown table padded to line up as plain text too: the first `left` columns flush left, the others right."""
    widths = [max(3, *map(len, column)) for column in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def _cell(r: Point | None, key: str, scale: float = 1.0, floor: float = 0.0) -> str:
    if r is None:
        return ""
    if r.status != "ok":
        return TABLE_STATUS[r.status]
    v = getattr(r, key)
    if v is not None and v < floor:
        return f"< {_num(floor * scale)}"
    return _num(None if v is None else v * scale)


def _name(method: str, stale: set[str]) -> str:
    return f"`{method}`" + (" (stale)" if method in stale else "")


def grid(res: Results, dtype: str, key: str, scale: float = 1.0, floor: float = 0.0,
         stale: frozenset[str] = frozenset()) -> str:
    """Methods down, T across: `key` of every point (times `scale`), or why it was not measured."""
    rows = [r for r in res.results if r.dtype == dtype]
    Ts = sorted({r.T for r in rows})
    at = {(r.method, r.T): r for r in rows}
    names = dict.fromkeys(r.method for r in rows)
    return markdown_table(["method", *(f"T = {T}" for T in Ts)],
                          [[_name(n, stale), *(_cell(at.get((n, T)), key, scale, floor) for T in Ts)] for n in names])


def derived(res: Results, rows: list[Point], stale: frozenset[str] = frozenset()) -> str:
    """Time, achieved bandwidth and FLOP/s of measured `rows` (FLOP/s columns only where a row has FLOPs)."""
    rows = [r for r in rows if r.status == "ok"]
    flops = any(res.tflops(r) for r in rows)
    header = ["method", "ms", "GB/s", "of clone"] + (["TFLOP/s", "of matmul"] if flops else [])
    return markdown_table(header, [[_name(r.method, stale), _num(r.ms), _num(res.gbps(r)), _pct(res.frac_clone(r, rows))]
                                   + ([_num(res.tflops(r)), _pct(res.frac_matmul(r))] if flops else [])
                                   for r in rows])


def growth_table(res: Results, dtype: str) -> str | None:
    """Time and peak memory at the largest T over those at T/2, for the quadratic and linear versions."""
    rows = []
    for m in (*QUADRATIC, *LINEAR):
        t, mem = growth(res, m, dtype, "ms"), growth(res, m, dtype, "peak_bytes")
        if t or mem:
            T = (t or mem)[0]

            def at(g):
                return "" if g[0] == T else f" (T = {g[0] // 2} -> {g[0]})"

            rows.append([f"`{m}`", "quadratic" if m in QUADRATIC else "linear", f"{T // 2} -> {T}",
                         f"x{t[1]:.3g}" if t else "n/a", f"x{mem[1]:.3g}{at(mem)}" if mem else "n/a"])
    return markdown_table(["method", "memory in T", "T", "time", "peak memory"], rows) if rows else None


def summary(res: Results, dtype: str, e=esc) -> list[str]:
    """Markdown lines of the figures computed from a file, for one dtype: the page's and the command's."""
    parts = [f"- {what}: **{value}**" for what, value in headline(res, dtype)] + [""]
    if table := growth_table(res, dtype):
        parts += ["Growth per doubling of T: time and peak memory at the larger T over those at the smaller, "
                  "at the largest T where both were measured (for memory: both above the resolution):", "",
                  table, ""]
    if rows := [r for r in res.bandwidth if r.dtype == dtype]:
        mib = rows[0].bytes / 2 / 2**20  # clone reads and writes x once
        failed = [f"{TABLE_STATUS[r.status]}: `{r.method}`, {e(r.reason)}" for r in rows if r.status != "ok"]
        cache = (f" (the GPU's L2 cache is {res.env.l2_cache_bytes / 2**20:.3g} MiB)"
                 if res.env.l2_cache_bytes else "")
        parts += [f"Bandwidth point: `clone` and the linear prefix means once more at {_shape(rows[0])}, where "
                  f"`x` is {mib:.3g} MiB{cache}, a size meant to exceed the caches so that `clone` runs at "
                  "memory speed:", "", "\n".join(failed) or derived(res, rows), ""]
    return parts


def not_measured(res: Results, e=esc) -> list[str]:
    """Markdown list items: every point that was not measured, and every peak memory that was not, with why."""
    reasons = sorted({(r.method, r.reason) for r in res.results + res.bandwidth if r.status != "ok"})
    notes = sorted({(r.method, r.memory_note) for r in res.results if r.memory_note})
    return [f"- `{m}`: {e(why)}" for m, why in reasons] + [f"- `{m}`, peak memory: {e(why)}" for m, why in notes]


def text(res: Results) -> str:
    """What ``python -m snippets.timing`` prints: the tables and figures of the page, as Markdown."""
    env, parts = res.env, []
    parts.append(f"{plain(env.device_name)} ({env.device_type}), torch {plain(env.torch)}, "
                 f"{env.threads} threads, {plain(env.date)}")
    for ref in res.matmul_reference:
        if ref.status == "ok":
            parts.append(f"matmul reference {ref.dtype} N={ref.N}: {ref.tflops:.3g} TFLOP/s")
    for d in res.config.dtypes:
        parts += ["", f"## {d}: median ms per call", "", grid(res, d, "ms"), "", *summary(res, d, plain)]
    if notes := not_measured(res, plain):
        parts += ["Not measured:", "", *notes]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- staleness

def stale_methods(res: Results) -> dict[str, str]:
    """{method: why} for every measured method whose code has changed since the file was measured."""
    out = {}
    for name, fp in res.fingerprints.items():
        code_ref = METHODS[base_name(name)].code
        if code_ref is None:
            continue
        try:
            now = fingerprint(code_ref)
        except (OSError, SyntaxError, ValueError) as exc:
            now = f"unreadable ({exc})"
        if now != fp:
            out[name] = f"the code of {code_ref.replace(':', '.')} has changed since it was measured"
    return out


# ----------------------------------------------------------------------------- plots

def _panel(name: str) -> set[str]:
    if name == "clone":
        return set(PANELS)  # the bandwidth reference goes in both
    return {PANELS[0] if base_name(name).startswith("prefix_mean") else PANELS[1]}


def _style(names: list[str], grey: str) -> dict[str, dict]:
    out = {}
    for panel in PANELS:
        bases = [b for b in dict.fromkeys(base_name(n) for n in names) if b != "clone" and panel in _panel(b)]
        for n in names:
            b = base_name(n)
            if b in bases:
                i = bases.index(b)
                out[n] = dict(color=COLOURS[i % len(COLOURS)], marker="osD^v<>p"[i % 8])
    for n in names:
        out.setdefault(n, dict(color=grey, marker="."))
        out[n] |= dict(markersize=5, linewidth=1.6,
                       linestyle="-." if n.endswith("+compile") else STYLE[METHODS[base_name(n)].kind])
    return out


PLOT_WIDTH_IN = 6.6  # about the content width of the page at a 1280 px window: drawn at 1:1, text keeps its size
PLOT_FONT_PT = 10.5  # 14 px at 1:1; the page's tables are 12.8 px


def plot(res: Results, dtype: str, what: str) -> str:
    """SVG of median time ("time") or peak memory ("memory") against T, log-log.

    Two panels, one above the other with a shared y axis: the prefix means and
    the attention versions, one line per method; ``clone`` is the dotted grey
    reference in both.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    from snippets.plotting import GREY, new_figure, style, to_svg

    key, label, scale = {"time": ("ms", "median time per call (ms)", 1.0),
                         "memory": ("peak_bytes", "peak memory per call (MiB)", 2.0**-20)}[what]
    floor = res.env.memory_resolution_bytes if what == "memory" else 0
    rows = [r for r in res.results if r.dtype == dtype]
    names = list(dict.fromkeys(r.method for r in rows))
    styles = _style(names, GREY)
    Ts = sorted(res.config.Ts)
    title = f"{res.env.device_name}, {dtype}: " + {"time": "time per call", "memory": "peak memory per call"}[what]
    fs = PLOT_FONT_PT
    with style():
        fig = new_figure(PLOT_WIDTH_IN, 8.4)
        axes = fig.subplots(2, 1, sharey=True)
        for ax, panel in zip(axes, PANELS):
            for n in names:
                pts = [(r.T, getattr(r, key) * scale) for r in rows if r.method == n and r.status == "ok"
                       and getattr(r, key) and getattr(r, key) >= max(floor, 1e-12)]
                if pts and panel in _panel(n):
                    ax.plot(*zip(*pts), label=n, **styles[n])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(FixedLocator(Ts))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # no mathtext: no small exponents
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("T (sequence length)", fontsize=fs)
            ax.set_ylabel(label, fontsize=fs)
            ax.set_title(panel, fontsize=fs + 1)
            ax.tick_params(which="both", labelsize=fs)
            ax.grid(True, which="major", color=GREY, alpha=0.25, linewidth=0.6)
            if ax.lines:
                ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=fs, frameon=False)
            else:
                ax.text(0.5, 0.5, "nothing measured", transform=ax.transAxes, ha="center", fontsize=fs)
        fig.suptitle(_mpl(title), fontsize=fs + 1)
        return to_svg(fig, title, f"Log-log line chart of the {label} against T, one line per method; "
                                  "the tables of the appendix hold the same numbers.")


# ----------------------------------------------------------------------------- the page

def _meta(res: Results, stem: str) -> str:
    env, cfg = res.env, res.config

    def load_(v):
        return ", ".join(f"{x:g}" for x in v) if v else "n/a"

    refs = "; ".join(f"{r.dtype}: {_num(r.tflops)} TFLOP/s" if r.status == "ok" else
                     f"{r.dtype}: {TABLE_STATUS[r.status]}" for r in res.matmul_reference)
    n = cfg.matmul_size
    rows = [
        ("device", f"{esc(env.device_name)} ({env.device_type})"),
        ("CPU", f"{esc(env.cpu_model)}, {env.cpu_count or 'n/a'} cores, torch threads: {env.threads}"),
        ("libraries", f"torch {esc(env.torch)}, CUDA {esc(env.cuda or 'n/a')}, cuDNN {env.cudnn or 'n/a'}, "
                      f"Python {esc(env.python)}"),
        ("date (UTC)", esc(env.date)),
        ("command", code(env.command)),
        ("git commit", (code(env.git_commit) if env.git_commit else "n/a")
         + (" (snippets/ had uncommitted changes)" if env.git_dirty else "")),
        ("load average (1, 5, 15 min)", f"start {load_(env.loadavg_start)}; end {load_(env.loadavg_end)}"),
        ("other processes during the run", "n/a" if env.other_processes_cores is None else
         f"{env.other_processes_cores:.2g} cores busy on average"),
        ("shapes", f"B = {cfg.B}, C = {cfg.C}, heads = {cfg.heads}, head size = {cfg.head_size}"),
        ("timing", f"median of up to {cfg.repeats} samples after the first call and {cfg.warmup} more warm-up "
                   f"calls; budget {cfg.time_budget:g} s per point; TF32 {'on' if cfg.tf32 else 'off'}"),
        ("peak memory", esc(env.memory_method)),
        (f"matmul reference ({n} x {n})", refs),
        ("whole run", f"{res.wall_s:.0f} s"),
        ("raw file", f"[{stem}.json](results/{stem}.json)"),
    ]
    return markdown_table(["", ""], [list(row) for row in rows], left=2)


def section(res: Results, stem: str, stale: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """Markdown for one results file and its plots ({path below docs/: SVG})."""
    env, cfg = res.env, res.config
    stale = stale or {}
    flagged = frozenset(stale)
    floor = env.memory_resolution_bytes
    name = esc(env.device_name)
    parts = [f"### {name}", ""]
    if stale:
        commit = env.git_commit[:12] if env.git_commit else "an unrecorded commit"
        parts += ['!!! warning "Stale numbers"', "",
                  f"    These methods were measured at commit {code(commit)}, and the code they measure has "
                  "changed since; their numbers, marked (stale) below, describe the old code until this file "
                  "is measured again:", ""]
        parts += [f"    - `{m}`: {why}" for m, why in sorted(stale.items())] + [""]
    parts += ['<div class="scroll-table" markdown>', "", _meta(res, stem), "", "</div>", ""]
    plots = {}
    for dtype in cfg.dtypes:
        span = f"T = {min(cfg.Ts)} to {max(cfg.Ts)}"
        parts += [f"#### {name}, {dtype}", "", "Computed from this file:", "", *summary(res, dtype)]
        for what, alt in (("time", "median time per call in milliseconds"), ("memory", "peak memory per call in MiB")):
            path = f"appendix/plots/{stem}-{dtype}-{what}.svg"
            plots[path] = plot(res, dtype, what)
            parts += [f"![Log-log line chart of the {alt} against {span}, one line per method, on "
                      f"{name} in {dtype}; the table below holds the same numbers]"
                      f"(plots/{stem}-{dtype}-{what}.svg)", ""]
        parts += ["Solid lines: methods that build a T × T matrix, so their memory grows with T²; dashed: "
                  "memory linear in T; dotted grey: `clone`, the bandwidth reference. Points that were not "
                  "measured are missing from the lines; the tables say why.", ""]
        for caption, table in (("Median milliseconds per call:", grid(res, dtype, "ms", stale=flagged)),
                               ("Peak memory per call, MiB:",
                                grid(res, dtype, "peak_bytes", 2.0**-20, floor, stale=flagged))):
            parts += [caption, "", '<div class="scroll-table" markdown>', "", table, "", "</div>", ""]
        if clone := _ok(res.results, "clone", dtype):
            parts += [f"Derived figures at T = {clone.T}: achieved bandwidth (least bytes a call must read and "
                      "write, over its time) as a fraction of `clone` at the same T, and achieved FLOP/s as a "
                      "fraction of the matmul reference:", "",
                      '<div class="scroll-table" markdown>', "",
                      derived(res, [r for r in res.results if (r.dtype, r.T) == (dtype, clone.T)], flagged),
                      "", "</div>", ""]
    if res.checks:
        parts += checks(res, name)
    if notes := not_measured(res):
        parts += ['??? note "Points that were not measured, and why"', ""]
        parts += ["    " + line for line in notes] + [""]
    return "\n".join(parts), plots


def checks(res: Results, name: str) -> list[str]:
    """Markdown of a file's ``checks``: the do_bench cross-check and the kernel profiles."""
    c, parts = res.checks, [f"#### {name}: the timing method checked", ""]
    if c.do_bench:
        rows = [[f"`{b.method}`", b.dtype, f"({b.B}, {b.T}, {b.C})", _num(b.harness_ms), _num(b.do_bench_ms),
                 f"{b.harness_ms / b.do_bench_ms:.3f}"] for b in c.do_bench]
        parts += ["The same calls timed by this harness and by Triton's `triton.testing.do_bench` (the median of "
                  "each), one after the other in one process, by `python3 -m snippets.timing.gpu`:", "",
                  '<div class="scroll-table" markdown>', "",
                  markdown_table(["method", "dtype", "(B, T, C)", "harness ms", "do_bench ms", "ratio"], rows, left=3),
                  "", "</div>", ""]
    if c.profiles:
        rows = [[f"`{p.method}`", p.dtype, f"({p.B}, {p.T}, {p.C})", f"{p.kernels:.3g}", _num(p.kernel_ms),
                 _num(p.wall_ms), _pct(p.kernel_ms / p.wall_ms)] for p in c.profiles]
        parts += ["What one call does on the GPU, from PyTorch's profiler (the mean of 5 calls after a warm-up): "
                  "the kernels it launches, how long they keep the GPU busy, and the call's wall time. The "
                  "profiler adds time to every launch, so its wall times are longer than the timed ones:", "",
                  '<div class="scroll-table" markdown>', "",
                  markdown_table(["method", "dtype", "(B, T, C)", "kernels", "GPU busy ms", "wall ms",
                                  "busy share"], rows, left=3), "", "</div>", ""]
    return parts


GPU_MISSING = """\
!!! info "No GPU results committed yet"

    No results file from a CUDA device is committed, so this section shows no GPU
    numbers. On a machine with an NVIDIA GPU, from the repository root, run

    ```bash
    python3 -m snippets.timing.gpu gpu-results
    ```

    It runs the CUDA tests, measures float32 and bfloat16 on `cuda`, and writes
    `cuda-<gpu name>.json` into `gpu-results/`. Copy that file to
    `docs/appendix/results/` and the next build of the site renders it here."""


def render(results_dir: Path) -> Rendered:
    """Markdown for the "cpu" and "gpu" markers of the appendix page, every plot, and what is stale.

    Raises:
        ResultsError: a file is malformed or badly named; the message names it.
    """
    files = []
    for p in sorted(results_dir.iterdir() if results_dir.is_dir() else []):
        if p.name.startswith("."):
            continue
        if not FILE_NAME.fullmatch(p.name):
            raise ResultsError(f"{p}: a results file's name must be cpu-<name>.json or cuda-<name>.json, with "
                               "<name> of lower-case letters, digits and dashes (what python -m snippets.timing "
                               "writes)")
        res = load(p)
        if not p.name.startswith(res.env.device_type + "-"):
            raise ResultsError(f"{p}: $.env.device_type is {res.env.device_type!r}, but the name says otherwise")
        files.append((p.stem, res))
    markdown, plots, stale_lines = {}, {}, []
    for marker, kind in (("cpu", "cpu"), ("gpu", "cuda")):
        parts = []
        for stem, res in files:
            if res.env.device_type == kind:
                stale = stale_methods(res)
                commit = res.env.git_commit[:12] if res.env.git_commit else "an unrecorded commit"
                stale_lines += [f"{stem}.json: {m} was measured at {commit}; {why}" for m, why in stale.items()]
                md, svgs = section(res, stem, stale)
                parts.append(md)
                plots |= svgs
        markdown[marker] = "\n".join(parts) if parts else (
            GPU_MISSING if marker == "gpu" else "No CPU results file is committed.")
    return Rendered(markdown, plots, stale_lines)

