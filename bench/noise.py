"""Noise in a results file, computed from its samples: quartiles, flagged points, a busy machine.

Nothing here is stored in a file. The runner uses it to measure flagged points once more,
``validate`` to check that a file's medians are those of its samples, and the report to mark
the points that stayed flagged. Standard library only.
"""

from __future__ import annotations

import statistics

NOISY = 0.10  # noisy: the interquartile range of the samples is over this fraction of the median
DROP = 0.10  # non-monotonic: at the next larger T the median is this much lower, quartiles apart
BUSY_OTHERS = 0.25  # busy: other processes kept this share of the cores busy during the timing,
BUSY_LOAD = 0.5  # or the load average at its end, less the run's threads, is this much per core


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    """(lower quartile, median, upper quartile) of the samples."""
    s = sorted(samples)
    if len(s) < 2:
        return s[0], s[0], s[0]
    q1, _, q3 = statistics.quantiles(s, n=4, method="inclusive")
    return q1, statistics.median(s), q3


def sample_problem(samples: list[float] | None, ms: float, legacy: bool) -> str | None:
    """What is wrong with a measured point's samples, or None: there must be some, and `ms` must
    be their median. Files of format 2 stored the median of the samples before they were rounded
    to 6 significant digits, so they get that much slack."""
    if not samples:
        return "a measured point needs at least one sample"
    median = statistics.median(samples)
    if abs(median - ms) > (1e-5 if legacy else 1e-9) * ms:
        return f"their median is {median!r}, but ms is {ms!r}: ms must be the median of the samples"
    return None


def flags(res) -> dict[int, str]:
    """{id(point): why} for every measured point that is noisy or non-monotonic."""
    out: dict[int, str] = {}
    for p in (*res.results, *res.bandwidth, *res.bandwidth_busy):
        if p.status == "ok" and len(p.samples_ms) >= 2:
            q1, m, q3 = quartiles(p.samples_ms)
            if q3 - q1 > NOISY * m:
                out[id(p)] = f"noisy: interquartile range {100 * (q3 - q1) / m:.3g} % of the median"
    groups: dict[tuple, list] = {}
    for p in res.results:
        if p.status == "ok":
            groups.setdefault((p.method, p.dtype), []).append(p)
    for rows in groups.values():
        rows.sort(key=lambda p: p.T)
        for a, b in zip(rows, rows[1:], strict=False):
            qa, qb = quartiles(a.samples_ms), quartiles(b.samples_ms)
            if qb[1] < (1 - DROP) * qa[1] and qb[2] < qa[0]:
                out.setdefault(id(a), f"non-monotonic: slower than at T = {b.T}")
    return out


def busy(env) -> str | None:
    """Why the machine was too busy for a results file, or None: other processes kept more than
    `BUSY_OTHERS` of the cores busy during the timing (from /proc/stat: every process's CPU time
    but this one's, hypervisor steal included), or the 1-minute load average at its end, less
    this run's own threads, was over `BUSY_LOAD` per core."""
    cores = env.cpu_count or 1
    others = env.other_processes_cores or 0.0
    if others > BUSY_OTHERS * cores:
        return (
            f"other processes kept {others:.2g} of {cores} cores busy on average during the "
            f"timing, over {BUSY_OTHERS:g} per core"
        )
    load = env.loadavg_end[0] - env.threads if env.loadavg_end else 0.0
    if load > BUSY_LOAD * cores:
        return (
            f"the 1-minute load average at the end of the timing, less the run's own "
            f"{env.threads} threads, was {load:.3g}, over {BUSY_LOAD:g} per core on {cores} cores"
        )
    return None


def page_notes(res, e, marks: dict[int, str]) -> list[str]:
    """Markdown for the page: an older format, a busy machine, and every flagged point. `e`
    escapes strings from the file; `marks` is `flags(res)`."""
    from bench.schema import VERSION

    out = []
    if res.schema != VERSION:
        out += [
            '!!! note "An older results format"',
            "",
            f"    This file has format {res.schema}, from before the harness interleaved the "
            "samples of the methods at a point, refused to write a file from a busy machine and "
            "measured flagged points again. Its medians match its samples; the flags below are "
            "computed from them.",
            "",
        ]
    why = res.env.busy or (busy(res.env) if res.schema != VERSION else None)
    if why:
        how = "It was written with `--allow-busy`" if res.env.busy else "By today's rule"
        out += [
            '!!! warning "Measured on a busy machine"',
            "",
            f"    {how}: {e(why)}. Other programs slow some methods down far more than others, "
            "so every time in this section may be too slow, and the ratios between them "
            "distorted.",
            "",
        ]
    rows = [p for p in (*res.results, *res.bandwidth, *res.bandwidth_busy) if id(p) in marks]
    if rows:
        out += ['??? note "Flagged points: noisy or non-monotonic"', ""]
        for p in rows:
            where = (
                " at the bandwidth point" + (" (busy)" if p in res.bandwidth_busy else "")
                if p in res.bandwidth or p in res.bandwidth_busy
                else ""
            )
            again = ", still after a second measurement" if p.remeasured else ""
            out.append(f"    - `{p.method}`, {p.dtype}, T = {p.T}{where}: {marks[id(p)]}{again}")
        out.append("")
    return out
