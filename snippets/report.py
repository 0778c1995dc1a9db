"""Appendix: turn ``python -m snippets.timing`` results files into Markdown and SVG plots.

Used by ``hooks/timing.py`` while the site is built: every number on the
appendix page comes from a committed results file through these functions.
The plots need matplotlib (the ``docs`` extra) and are drawn with the helpers and
the grey of ``snippets.figures``; the tables and ``text``, which
``python -m snippets.timing`` prints, need only the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from snippets.timing import METHODS, SCHEMA, STATUSES

# Mid-lightness colours that keep their contrast on white and on slate; clone is the grey reference.
COLOURS = ["#e8710a", "#3b8ee6", "#2ca02c", "#d62728", "#9467bd", "#e377c2", "#17becf", "#bcbd22"]
STYLE = {"reference": ":", "linear": "--", "quadratic": "-"}
TABLE_STATUS = {"skipped": "skipped", "oom": "out of memory", "over_budget": "over budget", "error": "error"}
PANELS = ("prefix means", "attention")
QUADRATIC = ("prefix_mean_matmul", "prefix_mean_softmax", "causal_attention", "sdpa-math")
LINEAR = ("prefix_mean_cumsum", "prefix_mean_fast", "sdpa-flash")
VECTORISED = ("prefix_mean_matmul", "prefix_mean_softmax", "prefix_mean_cumsum", "prefix_mean_fast")


@dataclass
class Rendered:
    markdown: dict[str, str]  # marker name ("cpu", "gpu") -> Markdown to put in its place
    plots: dict[str, str]  # path below docs/ -> SVG text


def load(path: Path) -> dict:
    """A results file, checked enough that rendering cannot silently show nonsense."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema must be {SCHEMA}, got {doc.get('schema')!r}")
    for key in ("env", "config", "results", "matmul_reference"):
        if key not in doc:
            raise ValueError(f"{path}: no {key!r} section")
    if doc["env"].get("device_type") not in ("cpu", "cuda"):
        raise ValueError(f"{path}: env.device_type must be 'cpu' or 'cuda', got {doc['env'].get('device_type')!r}")
    for r in doc["results"] + doc.get("bandwidth", []):
        if not {"method", "dtype", "T"} <= r.keys() or _base(r["method"]) not in METHODS:
            raise ValueError(f"{path}: each point needs a method of {sorted(METHODS)}, a dtype and T, got {r}")
        if r.get("status") not in STATUSES:
            raise ValueError(f"{path}: status must be one of {STATUSES}, got {r.get('status')!r} in {r}")
        if r["status"] == "ok" and not r.get("ms", 0) > 0:
            raise ValueError(f"{path}: a measured point needs ms > 0, got {r}")
        if r["status"] != "ok" and not r.get("reason"):
            raise ValueError(f"{path}: a point that was not measured needs a reason, got {r}")
    return doc


# ----------------------------------------------------------------------------- summaries

def _ok(rows: list[dict], method: str, dtype: str, T: int | None = None) -> dict | None:
    """The measured row of `method` (at `T`, or the largest T) among `rows`."""
    ok = [r for r in rows if (r["method"], r["dtype"]) == (method, dtype) and r["status"] == "ok"
          and T in (None, r["T"])]
    return max(ok, key=lambda r: r["T"], default=None)


def growth(doc: dict, method: str, dtype: str, key: str) -> tuple[int, float] | None:
    """(T, v(T) / v(T/2)) of `key` ("ms" or "peak_bytes") at the largest T where both were measured.

    A peak memory below the file's resolution does not count as measured.
    """
    floor = doc["env"].get("memory_resolution_bytes", 1) if key == "peak_bytes" else 0
    for T in sorted(doc["config"]["Ts"], reverse=True):
        a, b = _ok(doc["results"], method, dtype, T), _ok(doc["results"], method, dtype, T // 2)
        if a and b and a.get(key) and b.get(key) and b[key] >= floor:
            return T, a[key] / b[key]
    return None


def crossover(doc: dict, fast: str, slow: str, dtype: str) -> int | None:
    """The smallest T from which `fast` beats `slow` at every measured larger T."""
    best = None
    for T in sorted(doc["config"]["Ts"], reverse=True):
        a, b = _ok(doc["results"], fast, dtype, T), _ok(doc["results"], slow, dtype, T)
        if not (a and b):
            continue
        if a["ms"] >= b["ms"]:
            break
        best = T
    return best


def _shape(r: dict) -> str:
    return f"(B, T, C) = ({r['B']}, {r['T']}, {r['C']})"


def headline(doc: dict, dtype: str) -> list[tuple[str, str]]:
    """The figures the appendix quotes, as (what, value) pairs, computed from a results document."""
    out, results = [], doc["results"]
    loop = _ok(results, "prefix_mean_loop", dtype, 256)
    if loop and (loop["B"], loop["C"]) == (4, 64):
        for m in VECTORISED:
            if r := _ok(results, m, dtype, 256):
                out.append((f"prefix_mean_loop / {m} at {_shape(r)}", f"{loop['ms'] / r['ms']:.3g}x"))
    a, b = _ok(results, "prefix_mean_matmul", dtype, 4096), _ok(results, "prefix_mean_fast", dtype, 4096)
    if a and b:
        out.append(("prefix_mean_matmul / prefix_mean_fast at T = 4096", f"{a['ms'] / b['ms']:.3g}x"))
    for m in ("prefix_mean_fast", "prefix_mean_cumsum"):  # at the bandwidth point if there is one
        r = _ok(doc.get("bandwidth", []), m, dtype) or _ok(results, m, dtype)
        if r and r.get("frac_clone"):
            out.append((f"{m} bandwidth as a fraction of clone at {_shape(r)}",
                        f"{100 * r['frac_clone']:.3g} % ({r['gbps']:.3g} of {r['gbps'] / r['frac_clone']:.3g} GB/s)"))
    for m in LINEAR[:2]:
        if T := crossover(doc, m, "prefix_mean_matmul", dtype):
            out.append((f"{m} faster than prefix_mean_matmul", f"from T = {T} on"))
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
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def _cell(r: dict | None, key: str, scale: float = 1.0, floor: float = 0.0) -> str:
    if r is None:
        return ""
    if r["status"] != "ok":
        return TABLE_STATUS[r["status"]]
    v = r.get(key)
    if v is not None and v < floor:
        return f"< {_num(floor * scale)}"
    return _num(None if v is None else v * scale)


def grid(doc: dict, dtype: str, key: str, scale: float = 1.0, floor: float = 0.0) -> str:
    """Methods down, T across: `key` of every point (times `scale`), or why it was not measured."""
    rows = [r for r in doc["results"] if r["dtype"] == dtype]
    Ts = sorted({r["T"] for r in rows})
    at = {(r["method"], r["T"]): r for r in rows}
    names = dict.fromkeys(r["method"] for r in rows)
    return markdown_table(["method", *(f"T = {T}" for T in Ts)],
                          [[f"`{n}`", *(_cell(at.get((n, T)), key, scale, floor) for T in Ts)] for n in names])


def derived(rows: list[dict]) -> str:
    """Time, achieved bandwidth and FLOP/s of measured `rows` (FLOP/s columns only where a row has FLOPs)."""
    rows = [r for r in rows if r["status"] == "ok"]
    flops = any(r.get("tflops") for r in rows)
    header = ["method", "ms", "GB/s", "of clone"] + (["TFLOP/s", "of matmul"] if flops else [])
    return markdown_table(header, [[f"`{r['method']}`", _num(r["ms"]), _num(r.get("gbps")), _pct(r.get("frac_clone"))]
                                   + ([_num(r.get("tflops")), _pct(r.get("frac_matmul"))] if flops else [])
                                   for r in rows])


def growth_table(doc: dict, dtype: str) -> str | None:
    """Time and peak memory at the largest T over those at T/2, for the quadratic and linear versions."""
    rows = []
    for m in (*QUADRATIC, *LINEAR):
        t, mem = growth(doc, m, dtype, "ms"), growth(doc, m, dtype, "peak_bytes")
        if t or mem:
            T = (t or mem)[0]
            at = lambda g: "" if g[0] == T else f" (T = {g[0] // 2} -> {g[0]})"  # noqa: E731
            rows.append([f"`{m}`", "quadratic" if m in QUADRATIC else "linear", f"{T // 2} -> {T}",
                         f"x{t[1]:.3g}" if t else "n/a", f"x{mem[1]:.3g}{at(mem)}" if mem else "n/a"])
    return markdown_table(["method", "memory in T", "T", "time", "peak memory"], rows) if rows else None


def summary(doc: dict, dtype: str) -> list[str]:
    """Markdown lines of the figures computed from a file, for one dtype: the page's and the command's."""
    parts = [f"- {what}: **{value}**" for what, value in headline(doc, dtype)] + [""]
    if table := growth_table(doc, dtype):
        parts += ["Growth per doubling of T: time and peak memory at the larger T over those at the smaller, "
                  "at the largest T where both were measured (for memory: both above the resolution):", "",
                  table, ""]
    if rows := [r for r in doc.get("bandwidth", []) if r["dtype"] == dtype]:
        mib = rows[0]["bytes"] / 2 / 2**20  # clone reads and writes x once
        parts += [f"Bandwidth point: `clone` and the linear prefix means once more at {_shape(rows[0])}, where "
                  f"`x` is {mib:.3g} MiB, a size meant to exceed the caches so that `clone` runs at memory "
                  "speed:", "",
                  "\n".join(f"{TABLE_STATUS[r['status']]}: `{r['method']}`, {r['reason']}" for r in rows
                            if r["status"] != "ok") or derived(rows), ""]
    return parts


def not_measured(doc: dict) -> list[str]:
    """Markdown list items: every point that was not measured, and every peak memory that was not, with why."""
    reasons = sorted({(r["method"], r["reason"]) for r in doc["results"] + doc.get("bandwidth", [])
                      if r["status"] != "ok"})
    notes = sorted({(r["method"], r["memory_note"]) for r in doc["results"] if r.get("memory_note")})
    return [f"- `{m}`: {why}" for m, why in reasons] + [f"- `{m}`, peak memory: {why}" for m, why in notes]


def text(doc: dict) -> str:
    """What ``python -m snippets.timing`` prints: the tables and figures of the page, as Markdown."""
    env, parts = doc["env"], []
    parts.append(f"{env['device_name']} ({env['device_type']}), torch {env['torch']}, "
                 f"{env['threads']} threads, {env['date']}")
    for ref in doc["matmul_reference"]:
        if ref["status"] == "ok":
            parts.append(f"matmul reference {ref['dtype']} N={ref['N']}: {ref['tflops']:.3g} TFLOP/s")
    for d in doc["config"]["dtypes"]:
        parts += ["", f"## {d}: median ms per call", "", grid(doc, d, "ms"), "", *summary(doc, d)]
    if notes := not_measured(doc):
        parts += ["Not measured:", "", *notes]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- plots

def _base(name: str) -> str:
    return name.removesuffix("+compile")


def _panel(name: str) -> set[str]:
    if name == "clone":
        return set(PANELS)  # the bandwidth reference goes in both
    return {PANELS[0] if _base(name).startswith("prefix_mean") else PANELS[1]}


def _style(names: list[str], grey: str) -> dict[str, dict]:
    out = {}
    for panel in PANELS:
        bases = [b for b in dict.fromkeys(_base(n) for n in names) if b != "clone" and panel in _panel(b)]
        for n in names:
            b = _base(n)
            if b in bases:
                i = bases.index(b)
                out[n] = dict(color=COLOURS[i % len(COLOURS)], marker="osD^v<>p"[i % 8])
    for n in names:
        out.setdefault(n, dict(color=grey, marker="."))
        out[n] |= dict(markersize=4, linewidth=1.4,
                       linestyle="-." if n.endswith("+compile") else STYLE[METHODS[_base(n)].kind])
    return out


def plot(doc: dict, dtype: str, what: str) -> str:
    """SVG of median time ("time") or peak memory ("memory") against T, log-log.

    Two panels with a shared y axis, the prefix means and the attention versions,
    one line per method; ``clone`` is the dotted grey reference in both.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from snippets.figures import GREY, new_figure, style, to_svg

    key, label, scale = {"time": ("ms", "median time per call (ms)", 1.0),
                         "memory": ("peak_bytes", "peak memory per call (MiB)", 2.0**-20)}[what]
    floor = doc["env"].get("memory_resolution_bytes", 1) if what == "memory" else 0
    rows = [r for r in doc["results"] if r["dtype"] == dtype]
    names = list(dict.fromkeys(r["method"] for r in rows))
    styles = _style(names, GREY)
    Ts = sorted(doc["config"]["Ts"])
    title = f"{doc['env']['device_name']}, {dtype}: " + {"time": "time per call", "memory": "peak memory per call"}[what]
    with style():
        fig = new_figure(10, 4.6)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, panel in zip(axes, PANELS):
            for n in names:
                pts = [(r["T"], r[key] * scale) for r in rows if r["method"] == n and r["status"] == "ok"
                       and r.get(key) and r[key] >= max(floor, 1e-12)]
                if pts and panel in _panel(n):
                    ax.plot(*zip(*pts), label=n, **styles[n])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(FixedLocator(Ts))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_xlabel("T (sequence length)")
            ax.set_title(panel, fontsize=10)
            ax.tick_params(which="both", labelsize=8)
            ax.grid(True, which="major", color=GREY, alpha=0.25, linewidth=0.6)
            if ax.lines:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
            else:
                ax.text(0.5, 0.5, "nothing measured", transform=ax.transAxes, ha="center")
        axes[0].set_ylabel(label)
        fig.suptitle(title, fontsize=11)
        return to_svg(fig, title, f"Log-log line chart of the {label} against T, one line per method; "
                                  "the tables of the appendix hold the same numbers.")


def _meta(doc: dict, stem: str) -> str:
    env, cfg = doc["env"], doc["config"]
    load = lambda v: ", ".join(f"{x:g}" for x in v) if v else "n/a"  # noqa: E731
    refs = "; ".join(f"{r['dtype']}: {_num(r['tflops'])} TFLOP/s" if r["status"] == "ok" else
                     f"{r['dtype']}: {TABLE_STATUS[r['status']]}" for r in doc["matmul_reference"])
    n = cfg["matmul_size"]
    rows = [
        ("device", f"{env['device_name']} ({env['device_type']})"),
        ("CPU", f"{env['cpu_model']}, {env['cpu_count']} cores, torch threads: {env['threads']}"),
        ("libraries", f"torch {env['torch']}, CUDA {env['cuda'] or 'n/a'}, cuDNN {env['cudnn'] or 'n/a'}, "
                      f"Python {env['python']}"),
        ("date (UTC)", env["date"]),
        ("command", f"`{env['command']}`"),
        ("git commit", f"`{env['git_commit'] or 'n/a'}`" + (" (snippets/ had uncommitted changes)" if env.get("git_dirty") else "")),
        ("load average (1, 5, 15 min)", f"start {load(env.get('loadavg_start'))}; end {load(env.get('loadavg_end'))}"),
        ("other processes during the run", "n/a" if env.get("other_processes_cores") is None else
         f"{env['other_processes_cores']:.2g} cores busy on average"),
        ("shapes", f"B = {cfg['B']}, C = {cfg['C']}, heads = {cfg['heads']}, head size = {cfg['head_size']}"),
        ("timing", f"median of up to {cfg['repeats']} samples after the first call and {cfg['warmup']} more warm-up calls; "
                   f"budget {cfg['time_budget']:g} s per point; TF32 {'on' if cfg['tf32'] else 'off'}"),
        ("peak memory", env["memory_method"]),
        (f"matmul reference ({n} x {n})", refs),
        ("whole run", f"{doc['wall_s']:.0f} s"),
        ("raw file", f"[{stem}.json](results/{stem}.json)"),
    ]
    return markdown_table(["", ""], [list(row) for row in rows], left=2)


def section(doc: dict, stem: str) -> tuple[str, dict[str, str]]:
    """Markdown for one results file and its plots ({path below docs/: SVG})."""
    env = doc["env"]
    floor = env.get("memory_resolution_bytes", 1)
    parts = [f"### {env['device_name']}", "", _meta(doc, stem), ""]
    plots = {}
    for dtype in doc["config"]["dtypes"]:
        Ts = doc["config"]["Ts"]
        span = f"T = {min(Ts)} to {max(Ts)}"
        parts += [f"#### {env['device_name']}, {dtype}", "", "Computed from this file:", "", *summary(doc, dtype)]
        for what, alt in (("time", "median time per call in milliseconds"), ("memory", "peak memory per call in MiB")):
            path = f"appendix/plots/{stem}-{dtype}-{what}.svg"
            plots[path] = plot(doc, dtype, what)
            parts += [f"![Log-log line chart of the {alt} against {span}, one line per method, on "
                      f"{env['device_name']} in {dtype}; the table below holds the same numbers]"
                      f"(plots/{stem}-{dtype}-{what}.svg)", ""]
        parts += ["Solid lines: methods that build a T × T matrix, so their memory grows with T²; dashed: "
                  "memory linear in T; dotted grey: `clone`, the bandwidth reference. Points that were not "
                  "measured are missing from the lines; the tables say why.", ""]
        parts += ["Median milliseconds per call:", "", grid(doc, dtype, "ms"), ""]
        parts += ["Peak memory per call, MiB:", "", grid(doc, dtype, "peak_bytes", 2.0**-20, floor), ""]
        if clone := _ok(doc["results"], "clone", dtype):
            parts += [f"Derived figures at T = {clone['T']}: achieved bandwidth (least bytes a call must read and "
                      "write, over its time) as a fraction of `clone` at the same T, and achieved FLOP/s as a "
                      "fraction of the matmul reference:", "",
                      derived([r for r in doc["results"] if (r["dtype"], r["T"]) == (dtype, clone["T"])]), ""]
    if notes := not_measured(doc):
        parts += ['??? note "Points that were not measured, and why"', ""]
        parts += ["    " + line for line in notes] + [""]
    return "\n".join(parts), plots


GPU_MISSING = """\
!!! info "No GPU results committed yet"

    No results file from a CUDA device is committed, so this section shows no GPU
    numbers. On a machine with an NVIDIA GPU, from the repository root, run

    ```bash
    .venv/bin/python -m snippets.timing
    ```

    It measures float32 and bfloat16 on `cuda`, writes
    `docs/appendix/results/cuda-<gpu name>.json`, and the next build of the site
    renders it here."""


def render(results_dir: Path) -> Rendered:
    """Markdown for the "cpu" and "gpu" markers of the appendix page, and every plot."""
    docs = [(p.stem, load(p)) for p in sorted(results_dir.glob("*.json"))]
    markdown, plots = {}, {}
    for marker, kinds in (("cpu", {"cpu"}), ("gpu", {"cuda"})):
        parts = []
        for stem, doc in docs:
            if doc["env"]["device_type"] in kinds:
                text, svgs = section(doc, stem)
                parts.append(text)
                plots |= svgs
        markdown[marker] = "\n".join(parts) if parts else (
            GPU_MISSING if marker == "gpu" else "No CPU results file is committed.")
    return Rendered(markdown, plots)
