"""Figures computed from a results file, and its tables as Markdown: for the page and the terminal.

Only validated values (numbers, method names, dtypes) are written as they are;
strings from the file go through an escaper (`escape.esc` on the page,
`escape.plain` in the terminal).
"""

from __future__ import annotations

import re
from collections.abc import Container

from bench.escape import esc, plain
from bench.missing import not_measured
from bench.noise import flags
from bench.schema import Point, Results

TABLE_STATUS = {
    "skipped": "skipped",
    "oom": "out of memory",
    "over_budget": "over budget",
    "error": "error",
}
QUADRATIC = ("prefix_mean_matmul", "prefix_mean_softmax", "causal_attention", "sdpa-math")
LINEAR = ("prefix_mean_cumsum", "prefix_mean_fast", "sdpa-flash", "online_causal_attention")
VECTORISED = ("prefix_mean_matmul", "prefix_mean_softmax", "prefix_mean_cumsum", "prefix_mean_fast")


def measured(
    rows: list[Point], method: str, dtype: str, T: int | None = None, skip: Container[int] = ()
) -> Point | None:
    """The measured row of `method` (at `T`, or the largest T) among `rows`, leaving out the
    points whose id() is in `skip` (flagged ones)."""
    ok = [
        r
        for r in rows
        if (r.method, r.dtype) == (method, dtype)
        and r.status == "ok"
        and T in (None, r.T)
        and id(r) not in skip
    ]
    return max(ok, key=lambda r: r.T, default=None)


def growth(res: Results, method: str, dtype: str, key: str) -> tuple[int, float] | None:
    """(T, v(T) / v(T/2)) of `key` ("ms" or "peak_bytes") at the largest T where both were measured.

    A peak memory below the file's resolution does not count as measured.
    """
    floor = res.env.memory_resolution_bytes if key == "peak_bytes" else 0
    skip = flags(res) if key == "ms" else {}  # flagged times are left out
    for T in sorted(res.config.Ts, reverse=True):
        a = measured(res.results, method, dtype, T, skip)
        b = measured(res.results, method, dtype, T // 2, skip)
        if a and b and getattr(a, key) and getattr(b, key) and getattr(b, key) >= floor:
            return T, getattr(a, key) / getattr(b, key)
    return None


def _spans(Ts: list[int]) -> str:
    return ", ".join(map(str, Ts))


def versus(res: Results, a: str, b: str, dtype: str, skip: Container[int] = ()) -> str | None:
    """Where `a` is faster than `b` and where slower, over every T where both were measured."""
    both = [
        (T, x.ms < y.ms)  # type: ignore[operator]  # measured: ms is set
        for T in sorted(res.config.Ts)
        if (x := measured(res.results, a, dtype, T, skip))
        and (y := measured(res.results, b, dtype, T, skip))
    ]
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
    """The figures the appendix quotes, as (what, value) pairs, computed from a results file's
    clean points: those flagged as noisy or non-monotonic (`noise.flags`) are left out."""
    out, rows, skip = [], res.results, flags(res)
    loop = measured(rows, "prefix_mean_loop", dtype, 256, skip)
    if loop:
        for m in VECTORISED:
            if r := measured(rows, m, dtype, 256, skip):
                ratio = loop.ms / r.ms  # type: ignore[operator]  # measured: ms is set
                out.append((f"prefix_mean_loop / {m} at {_shape(r)}", f"{ratio:.3g}x"))
    a, b = (
        measured(rows, "prefix_mean_matmul", dtype, None, skip),
        measured(rows, "prefix_mean_fast", dtype, None, skip),
    )
    if a and b and (b := measured(rows, "prefix_mean_fast", dtype, a.T, skip)):
        ratio = a.ms / b.ms  # type: ignore[operator]  # measured: ms is set
        out.append((f"prefix_mean_matmul / prefix_mean_fast at T = {a.T}", f"{ratio:.3g}x"))
    for m in ("prefix_mean_fast", "prefix_mean_cumsum"):  # at the bandwidth point if there is one
        where = res.bandwidth if measured(res.bandwidth, m, dtype, None, skip) else rows
        r = measured(where, m, dtype, None, skip)
        if r and (f := res.frac_clone(r, [x for x in where if id(x) not in skip])):
            clone_gbps = res.gbps(r) / f  # type: ignore[operator]  # measured: gbps is set
            out.append(
                (
                    f"{m} bandwidth as a fraction of clone at {_shape(r)}",
                    f"{100 * f:.3g} % ({res.gbps(r):.3g} of {clone_gbps:.3g} GB/s)",
                )
            )
    for m in LINEAR[:2]:
        if said := versus(res, m, "prefix_mean_matmul", dtype, skip):
            out.append((f"{m} against prefix_mean_matmul", said))
    a, b = (
        measured(rows, "causal_attention", dtype, None, skip),
        measured(rows, "sdpa-flash", dtype, None, skip),
    )
    if a and b and (b := measured(rows, "sdpa-flash", dtype, a.T, skip)):
        ratio = a.ms / b.ms  # type: ignore[operator]  # measured: ms is set
        out.append((f"causal_attention / sdpa-flash at T = {a.T}", f"{ratio:.3g}x"))
    return out


def num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.3g} %"


def markdown_table(header: list[str], rows: list[list[str]], *, left: int = 1) -> str:
    """A Markdown table padded to line up as plain text too: the first `left` columns flush
    left, the others right."""
    widths = [max(3, *map(len, column)) for column in zip(header, *rows, strict=True)]

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(header), rule, *map(line, rows)])


def _cell(r: Point | None, key: str, scale: float = 1.0, floor: float = 0.0, marks=None) -> str:
    if r is None:
        return ""
    if r.status != "ok":
        return TABLE_STATUS[r.status]
    v = getattr(r, key)
    if v is not None and v < floor:
        return f"< {num(floor * scale)}"
    mark = (marks or {}).get(id(r)) if key == "ms" else None  # "noisy: ..." -> " (noisy)"
    return num(None if v is None else v * scale) + (f" ({mark.split(':')[0]})" if mark else "")


def method_cell(method: str, stale: Container[str]) -> str:
    """A table's method cell: the name as code, marked (stale) if its code changed since."""
    return f"`{method}`" + (" (stale)" if method in stale else "")


def grid(
    res: Results,
    dtype: str,
    key: str,
    scale: float = 1.0,
    floor: float = 0.0,
    stale: frozenset[str] = frozenset(),
    marks: dict[int, str] | None = None,
) -> str:
    """Methods down, T across: `key` of every point (times `scale`), or why it was not measured;
    a time flagged in `marks` ({id(point): why}) says so."""
    rows = [r for r in res.results if r.dtype == dtype]
    Ts = sorted({r.T for r in rows})
    at = {(r.method, r.T): r for r in rows}
    names = dict.fromkeys(r.method for r in rows)
    return markdown_table(
        ["method", *(f"T = {T}" for T in Ts)],
        [
            [method_cell(n, stale), *(_cell(at.get((n, T)), key, scale, floor, marks) for T in Ts)]
            for n in names
        ],
    )


def derived(
    res: Results, rows: list[Point], stale: frozenset[str] = frozenset(), marks=None
) -> str:
    """Time, achieved bandwidth and FLOP/s of measured `rows` (FLOP/s columns only where a row
    has FLOPs)."""
    rows = [r for r in rows if r.status == "ok"]
    flops = any(res.tflops(r) for r in rows)
    header = ["method", "ms", "GB/s", "of clone"] + (["TFLOP/s", "of matmul"] if flops else [])
    return markdown_table(
        header,
        [
            [
                method_cell(r.method, stale),
                _cell(r, "ms", marks=marks),
                num(res.gbps(r)),
                pct(res.frac_clone(r, rows)),
            ]
            + ([num(res.tflops(r)), pct(res.frac_matmul(r))] if flops else [])
            for r in rows
        ],
    )


def growth_table(res: Results, dtype: str, stale: Container[str] = ()) -> str | None:
    """Time and peak memory at the largest T over those at T/2, for the quadratic and linear
    versions."""

    def at(g, T):
        return "" if g[0] == T else f" (T = {g[0] // 2} -> {g[0]})"

    rows = []
    for m in (*QUADRATIC, *LINEAR):
        t, mem = growth(res, m, dtype, "ms"), growth(res, m, dtype, "peak_bytes")
        if g := t or mem:
            T = g[0]

            rows.append(
                [
                    method_cell(m, stale),
                    "quadratic" if m in QUADRATIC else "linear",
                    f"{T // 2} -> {T}",
                    f"x{t[1]:.3g}" if t else "n/a",
                    f"x{mem[1]:.3g}{at(mem, T)}" if mem else "n/a",
                ]
            )
    return (
        markdown_table(["method", "memory in T", "T", "time", "peak memory"], rows)
        if rows
        else None
    )


def _stale_mark(what: str, stale: Container[str]) -> str:
    """`what` with " (stale)" after it if it names a stale method."""
    words = set(re.findall(r"[\w+-]+", what))
    return what + (" (stale)" if any(w in stale for w in words) else "")


def summary(res: Results, dtype: str, e=esc, stale: frozenset[str] = frozenset()) -> list[str]:
    """Markdown lines of the figures computed from a file, for one dtype: the page's and the
    command's. Figures and rows of `stale` methods are marked (stale)."""
    marks = flags(res)
    parts = [
        "Each figure in this list comes from points that are not flagged as noisy or "
        "non-monotonic (flagged points are marked in the tables and listed below them):",
        "",
        *(f"- {_stale_mark(what, stale)}: **{value}**" for what, value in headline(res, dtype)),
        "",
    ]
    if table := growth_table(res, dtype, stale):
        parts += [
            "Growth per doubling of T: time and peak memory at the larger T over those at the "
            "smaller, at the largest T where both were measured (for memory: both above the "
            "resolution):",
            "",
            table,
            "",
        ]
    if rows := [r for r in res.bandwidth if r.dtype == dtype]:
        mib = rows[0].bytes / 2 / 2**20  # clone reads and writes x once
        failed = [
            f"{TABLE_STATUS[r.status]}: `{r.method}`, {e(r.reason)}"
            for r in rows
            if r.status != "ok"
        ]
        cache = (
            f" (the GPU's L2 cache is {res.env.l2_cache_bytes / 2**20:.3g} MiB)"
            if res.env.l2_cache_bytes
            else ""
        )
        parts += [
            "Bandwidth point: `clone` and the linear prefix means once more at "
            f"{_shape(rows[0])}, where `x` is {mib:.3g} MiB{cache}, a size meant to exceed the "
            "caches so that `clone` runs at memory speed:",
            "",
            *([derived(res, rows, stale, marks=marks), ""] if len(failed) < len(rows) else []),
            *(["\n".join(failed), ""] if failed else []),
        ]
    if rows := [r for r in res.bandwidth_busy if r.dtype == dtype and r.status == "ok"]:
        fast, cumsum = (
            measured(rows, m, dtype) for m in ("prefix_mean_fast", "prefix_mean_cumsum")
        )
        parts += [
            f"The same bandwidth point once more, while {res.env.busy_processes} busy processes "
            "(one single-threaded PyTorch loop per core, started by `--busy`) ran beside it:",
            "",
            derived(res, rows, stale, marks=marks),
            "",
        ]
        if fast and cumsum:
            ratio = cumsum.ms / fast.ms  # type: ignore[operator]  # measured: ms is set
            what = _stale_mark("`prefix_mean_fast` against `prefix_mean_cumsum`, busy", stale)
            parts += [
                f"- {what}: **{ratio:.3g}x** as fast",
                "",
            ]
    return parts


def text(res: Results) -> str:
    """What ``python -m bench`` prints: the tables and figures of the page, as
    Markdown."""
    env, parts = res.env, []
    parts.append(
        f"{plain(env.device_name)} ({env.device_type}), torch {plain(env.torch)}, "
        f"{env.threads} threads, {plain(env.date)}"
    )
    for ref in res.matmul_reference:
        if ref.status == "ok":
            parts.append(f"matmul reference {ref.dtype} N={ref.N}: {ref.tflops:.3g} TFLOP/s")
    for d in res.config.dtypes:
        parts += [
            "",
            f"## {d}: median ms per call",
            "",
            grid(res, d, "ms", marks=flags(res)),
            "",
            *summary(res, d, plain),
        ]
    if notes := not_measured(res, plain):
        parts += ["Not measured:", "", *notes]
    return "\n".join(parts)
