"""Appendix: turn ``python -m snippets.timing`` results files into Markdown and SVG plots.

Used by ``hooks/timing.py`` while the site is built: every number on the
appendix page comes from a committed results file through these functions.
Needs matplotlib (the ``docs`` extra).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from snippets.timing import METHODS, SCHEMA, STATUSES, headline

GREY = "#808080"  # axes and text: readable on Material's light and dark backgrounds
# Mid-lightness colours that keep their contrast on white and on slate; clone is the grey reference.
COLOURS = ["#e8710a", "#3b8ee6", "#2ca02c", "#d62728", "#9467bd", "#e377c2", "#17becf", "#bcbd22"]
STYLE = {"reference": ":", "linear": "--", "quadratic": "-"}
TABLE_STATUS = {"skipped": "skipped", "oom": "out of memory", "over_budget": "over budget", "error": "error"}
PANELS = ("prefix means", "attention")


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
    for r in doc["results"]:
        if r.get("status") not in STATUSES:
            raise ValueError(f"{path}: status must be one of {STATUSES}, got {r.get('status')!r} in {r}")
        if r["status"] == "ok" and not r.get("ms", 0) > 0:
            raise ValueError(f"{path}: a measured point needs ms > 0, got {r}")
        if r["status"] != "ok" and not r.get("reason"):
            raise ValueError(f"{path}: a point that was not measured needs a reason, got {r}")
    return doc


def _base(name: str) -> str:
    return name.removesuffix("+compile")


def _panel(name: str) -> set[str]:
    if name == "clone":
        return set(PANELS)  # the bandwidth reference goes in both
    return {PANELS[0] if _base(name).startswith("prefix_mean") else PANELS[1]}


def _style(names: list[str]) -> dict[str, dict]:
    out = {}
    for panel in PANELS:
        bases = [b for b in dict.fromkeys(_base(n) for n in names) if b != "clone" and panel in _panel(b)]
        for n in names:
            b = _base(n)
            if b in bases:
                i = bases.index(b)
                out[n] = dict(color=COLOURS[i % len(COLOURS)], marker="osD^v<>p"[i % 8])
    for n in names:
        out.setdefault(n, dict(color=GREY, marker="."))
        out[n] |= dict(markersize=4, linewidth=1.4,
                       linestyle="-." if n.endswith("+compile") else STYLE[METHODS[_base(n)].kind])
    return out


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "timing"}):
        fig.savefig(buf, format="svg", transparent=True, bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


def plot(doc: dict, dtype: str, what: str) -> str:
    """SVG of median time ("time") or peak memory ("memory") against T, log-log.

    Two panels with a shared y axis, the prefix means and the attention versions,
    one line per method; ``clone`` is the dotted grey reference in both.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    key, label, scale = {"time": ("ms", "median time per call (ms)", 1.0),
                         "memory": ("peak_bytes", "peak memory per call (MiB)", 2.0**-20)}[what]
    floor = doc["env"].get("memory_resolution_bytes", 1) if what == "memory" else 0
    rows = [r for r in doc["results"] if r["dtype"] == dtype]
    names = list(dict.fromkeys(r["method"] for r in rows))
    style = _style(names)
    Ts = sorted(doc["config"]["Ts"])
    fig = Figure(figsize=(10, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, panel in zip(axes, PANELS):
        for n in names:
            pts = [(r["T"], r[key] * scale) for r in rows if r["method"] == n and r["status"] == "ok"
                   and r.get(key) and r[key] >= max(floor, 1e-12)]
            if pts and panel in _panel(n):
                ax.plot(*zip(*pts), label=n, **style[n])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(Ts))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("T (sequence length)", color=GREY)
        ax.set_title(panel, color=GREY, fontsize=10)
        ax.tick_params(colors=GREY, which="both", labelsize=8)
        for side in ax.spines.values():
            side.set_color(GREY)
        ax.grid(True, which="major", color=GREY, alpha=0.25, linewidth=0.6)
        if ax.lines:
            legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
            for text in legend.get_texts():
                text.set_color(GREY)
        else:
            ax.text(0.5, 0.5, "nothing measured", transform=ax.transAxes, ha="center", color=GREY)
    axes[0].set_ylabel(label, color=GREY)
    title = {"time": "time per call", "memory": "peak memory per call"}[what]
    fig.suptitle(f"{doc['env']['device_name']}, {dtype}: {title}", color=GREY, fontsize=11)
    return _svg(fig)


def _num(v: float) -> str:
    return f"{v:.3g}"


def _cell(r: dict | None, key: str, scale: float = 1.0, floor: float = 0.0) -> str:
    if r is None:
        return ""
    if r["status"] != "ok":
        return TABLE_STATUS[r["status"]]
    v = r.get(key)
    if v is None:
        return "n/a"
    if v < floor:
        return f"< {_num(floor * scale)}"
    return _num(v * scale)


def _grid(doc: dict, dtype: str, key: str, scale: float = 1.0, floor: float = 0.0) -> str:
    rows = [r for r in doc["results"] if r["dtype"] == dtype]
    Ts = sorted({r["T"] for r in rows})
    names = list(dict.fromkeys(r["method"] for r in rows))
    at = {(r["method"], r["T"]): r for r in rows}
    lines = ["| method | " + " | ".join(f"T = {T}" for T in Ts) + " |", "|---|" + "---:|" * len(Ts)]
    lines += [f"| `{n}` | " + " | ".join(_cell(at.get((n, T)), key, scale, floor) for T in Ts) + " |" for n in names]
    return "\n".join(lines)


def _derived(doc: dict, dtype: str) -> tuple[int, str] | None:
    rows = [r for r in doc["results"] if r["dtype"] == dtype]
    ok_T = [r["T"] for r in rows if r["method"] == "clone" and r["status"] == "ok"]
    if not ok_T:
        return None
    T = max(ok_T)
    pct = lambda v: "n/a" if v is None else f"{100 * v:.3g} %"  # noqa: E731
    num = lambda v: "n/a" if v is None else _num(v)  # noqa: E731
    lines = ["| method | ms | GB/s | of clone | TFLOP/s | of matmul |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["T"] == T and r["status"] == "ok":
            lines.append(f"| `{r['method']}` | {_num(r['ms'])} | {num(r.get('gbps'))} | {pct(r.get('frac_clone'))} "
                         f"| {num(r.get('tflops'))} | {pct(r.get('frac_matmul'))} |")
    return T, "\n".join(lines)


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
        ("timing", f"median of up to {cfg['repeats']} samples after {cfg['warmup']} warm-up calls; "
                   f"budget {cfg['time_budget']:g} s per point; TF32 {'on' if cfg['tf32'] else 'off'}"),
        ("peak memory", env["memory_method"]),
        (f"matmul reference ({n} x {n})", refs),
        ("whole run", f"{doc['wall_s']:.0f} s"),
        ("raw file", f"[{stem}.json](results/{stem}.json)"),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def section(doc: dict, stem: str) -> tuple[str, dict[str, str]]:
    """Markdown for one results file and its plots ({path below docs/: SVG})."""
    env = doc["env"]
    floor = env.get("memory_resolution_bytes", 1)
    parts = [f"### {env['device_name']}", "", _meta(doc, stem), ""]
    plots = {}
    for dtype in doc["config"]["dtypes"]:
        Ts = doc["config"]["Ts"]
        span = f"T = {min(Ts)} to {max(Ts)}"
        parts += [f"#### {env['device_name']}, {dtype}", ""]
        if figures := headline(doc, dtype):
            parts += ["Computed from this file:", ""] + [f"- {what}: **{value}**" for what, value in figures] + [""]
        for what, alt in (("time", "median time per call in milliseconds"), ("memory", "peak memory per call in MiB")):
            path = f"appendix/plots/{stem}-{dtype}-{what}.svg"
            plots[path] = plot(doc, dtype, what)
            parts += [f"![Log-log line chart of the {alt} against {span}, one line per method, on "
                      f"{env['device_name']} in {dtype}; the table below holds the same numbers]"
                      f"(plots/{stem}-{dtype}-{what}.svg)", ""]
        parts += ["Solid lines: methods that build a T × T matrix, so their memory grows with T²; dashed: "
                  "memory linear in T; dotted grey: `clone`, the bandwidth reference. Points that were not "
                  "measured are missing from the lines; the tables say why.", ""]
        parts += ["Median milliseconds per call:", "", _grid(doc, dtype, "ms"), ""]
        parts += ["Peak memory per call, MiB:", "", _grid(doc, dtype, "peak_bytes", 2.0**-20, floor), ""]
        if d := _derived(doc, dtype):
            parts += [f"Derived figures at T = {d[0]}: achieved bandwidth (least bytes a call must read and write, "
                      "over its time) as a fraction of `clone` at the same T, and achieved FLOP/s as a fraction "
                      "of the matmul reference:", "", d[1], ""]
    reasons = sorted({(r["method"], r["reason"]) for r in doc["results"] if r["status"] != "ok"})
    notes = sorted({(r["method"], r["memory_note"]) for r in doc["results"] if r.get("memory_note")})
    if reasons or notes:
        parts += ['??? note "Points that were not measured, and why"', ""]
        parts += [f"    - `{m}`: {why}" for m, why in reasons]
        parts += [f"    - `{m}`, peak memory: {why}" for m, why in notes]
        parts += [""]
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
