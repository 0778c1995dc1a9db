"""The appendix's plots: time or peak memory against T, log-log, as SVG.

Needs matplotlib, not torch.
"""

from __future__ import annotations

from bench.escape import mpl
from bench.schema import METHODS, Results, base_name

# Mid-lightness colours that keep their contrast on white and on slate; clone is the grey reference.
COLOURS = ["#e8710a", "#3b8ee6", "#2ca02c", "#d62728", "#9467bd", "#e377c2", "#17becf", "#bcbd22"]
STYLE = {"reference": ":", "linear": "--", "quadratic": "-"}
PANELS = ("prefix means", "attention")


def _panel(name: str) -> set[str]:
    if name == "clone":
        return set(PANELS)  # the bandwidth reference goes in both
    return {PANELS[0] if base_name(name).startswith("prefix_mean") else PANELS[1]}


def _style(names: list[str], grey: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for panel in PANELS:
        bases = [
            b
            for b in dict.fromkeys(base_name(n) for n in names)
            if b != "clone" and panel in _panel(b)
        ]
        for n in names:
            b = base_name(n)
            if b in bases:
                i = bases.index(b)
                out[n] = dict(color=COLOURS[i % len(COLOURS)], marker="osD^v<>p"[i % 8])
    for n in names:
        out.setdefault(n, dict(color=grey, marker="."))
        out[n] |= dict(
            markersize=5,
            linewidth=1.6,
            linestyle="-." if n.endswith("+compile") else STYLE[METHODS[base_name(n)].kind],
        )
    return out


# about the content width of the page at a 1280 px window: drawn at 1:1, text keeps its size
PLOT_WIDTH_IN = 6.6
PLOT_FONT_PT = 10.5  # 14 px at 1:1; the page's tables are 12.8 px


def plot(res: Results, dtype: str, what: str) -> str:
    """SVG of median time ("time") or peak memory ("memory") against T, log-log.

    Two panels, one above the other with a shared y axis: the prefix means and
    the attention versions, one line per method; ``clone`` is the dotted grey
    reference in both.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    from snippets.plotting import GREY, new_figure, style, to_svg

    key, label, scale = {
        "time": ("ms", "median time per call (ms)", 1.0),
        "memory": ("peak_bytes", "peak memory per call (MiB)", 2.0**-20),
    }[what]
    floor = res.env.memory_resolution_bytes if what == "memory" else 0
    rows = [r for r in res.results if r.dtype == dtype]
    names = list(dict.fromkeys(r.method for r in rows))
    styles = _style(names, GREY)
    Ts = sorted(res.config.Ts)
    title = (
        f"{res.env.device_name}, {dtype}: "
        + {"time": "time per call", "memory": "peak memory per call"}[what]
    )
    fs = PLOT_FONT_PT
    with style():
        fig = new_figure(PLOT_WIDTH_IN, 10.0)
        axes = fig.subplots(2, 1, sharey=True)
        for ax, panel in zip(axes, PANELS, strict=True):
            for n in names:
                pts = [
                    (r.T, getattr(r, key) * scale)
                    for r in rows
                    if r.method == n
                    and r.status == "ok"
                    and getattr(r, key)
                    and getattr(r, key) >= max(floor, 1e-12)
                ]
                if pts and panel in _panel(n):
                    ax.plot(*zip(*pts, strict=True), label=n, **styles[n])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(FixedLocator(Ts))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_major_formatter(
                FuncFormatter(lambda v, _: f"{v:g}")
            )  # no mathtext: no small exponents
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("T (sequence length)", fontsize=fs)
            ax.set_ylabel(label, fontsize=fs)
            ax.set_title(panel, fontsize=fs + 1)
            ax.tick_params(which="both", labelsize=fs)
            if len(Ts) > 7:  # ten labels side by side would run into each other
                ax.tick_params(axis="x", labelrotation=45)
            ax.grid(True, which="major", color=GREY, alpha=0.25, linewidth=0.6)
            if ax.lines:
                ax.legend(
                    loc="upper center",
                    bbox_to_anchor=(0.5, -0.2 if len(Ts) > 7 else -0.14),
                    ncol=3,
                    fontsize=fs,
                    frameon=False,
                    columnspacing=1.2,
                    handlelength=2.2,
                )
            else:
                ax.text(
                    0.5, 0.5, "nothing measured", transform=ax.transAxes, ha="center", fontsize=fs
                )
        fig.suptitle(mpl(title), fontsize=fs + 1)
        return to_svg(
            fig,
            title,
            f"Log-log line chart of the {label} against T, one line per method; "
            "the tables of the appendix hold the same numbers.",
        )
