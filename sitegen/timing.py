"""The committed timing results, rendered before the build into files the pages include.

Every ``docs/appendix/results/*.json`` written by ``python -m bench``
becomes tables and SVG plots (``bench.report``). The plots are written under
``docs/appendix/plots/`` (git-ignored), so links to them are checked like any other; the
Markdown goes to ``build/sitegen/timing/cpu.md`` and ``gpu.md``, which the appendix page
includes with ``pymdownx.snippets`` (``--8<-- "build/sitegen/timing/cpu.md"``). Nothing here
is measured: the page shows only what the files hold.

Chapter 10 includes ``build/sitegen/timing/kernel.md``: what the files say of its kernel: for
each file that timed it, its speed as a fraction of ``clone``'s (``kernel_sentence``), or that
it has not been measured yet. The appendix on ``prefix_mean_fast`` includes ``fast.md``: what
each CPU file measured at its bandwidth point, quiet and busy (``fast_sentence``).

A malformed results file stops the build with a message naming the file and the
bad value. A method whose code changed since its file was measured is flagged on
the page and returned as a warning that does not fail a strict build (a GPU file
cannot be measured again without a GPU).
"""

from __future__ import annotations

from pathlib import Path

from bench.escape import esc
from bench.report import render, results_files
from bench.schema import ResultsError
from bench.noise import flags
from bench.summary import num, pct
from bench.validate import shown
from sitegen import BuildError

PAGE = "appendix/timing.md"
RESULTS = "appendix/results"
INCLUDES = "build/sitegen/timing"  # below the project's root, where pymdownx.snippets looks
UNMEASURED = "How fast the kernel runs has not been measured yet."
NO_CPU_FILE = "No CPU results file is committed, so these times have not been measured yet."


def include_line(name: str) -> str:
    """The line a page holds to show the Markdown `name` ("cpu", "gpu", "kernel", "fast")."""
    return f'--8<-- "{INCLUDES}/{name}.md"'


def generate(docs_dir: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """({name: Markdown}, {path below docs/: SVG}, [stale-method warnings]) for the results in `docs_dir`."""
    try:
        rendered = render(docs_dir / RESULTS)
        kernel = kernel_sentence(docs_dir / RESULTS)
        fast = fast_sentence(docs_dir / RESULTS)
    except ResultsError as exc:
        raise BuildError(f"timing results: {shown(exc)}") from None  # a file name may hold escapes
    page = (docs_dir / PAGE).read_text(encoding="utf-8")
    for name in rendered.markdown:
        if include_line(name) not in page:
            raise BuildError(
                f"{PAGE}: the line {include_line(name)} is missing; the results have nowhere to go"
            )
    return (
        {**rendered.markdown, "kernel": kernel, "fast": fast},
        dict(rendered.plots),
        [f"stale timing results: {shown(line)}" for line in rendered.stale],
    )


def kernel_sentence(results: Path) -> str:
    """What the results files in `results` say of prefix_mean_triton, as a paragraph."""
    said = []
    for path, res in results_files(results):

        def speed(rows, dtypes=res.config.dtypes, marks=flags(res)):
            # clone's time over the kernel's, per dtype, as a percentage; "(noisy)" after it where
            # either time is flagged by bench.noise
            ok = {(r.method, r.dtype): r for r in rows if r.status == "ok"}
            return {
                d: pct(ok[("clone", d)].ms / ok[("prefix_mean_triton", d)].ms)
                + (" (noisy)" if {id(ok[(m, d)]) for m in ("clone", "prefix_mean_triton")} & marks.keys() else "")
                for d in dtypes
                if ("clone", d) in ok and ("prefix_mean_triton", d) in ok
            }

        timed = [r.T for r in res.results if r.method == "prefix_mean_triton" and r.status == "ok"]
        top = max(timed, default=None)
        at_bw, at_top = speed(res.bandwidth), speed([r for r in res.results if r.T == top])
        if not at_bw and not at_top:
            continue
        parts = []
        if at_bw:
            s = res.bandwidth[0]
            parts.append(
                ", ".join(f"{v} of `clone`'s speed in {d}" for d, v in at_bw.items())
                + f" at the bandwidth point (B, T, C) = ({s.B}, {s.T}, {s.C})"
            )
        if at_top:
            parts.append(
                ", ".join(f"{v} in {d}" for d, v in at_top.items())
                + f" at T = {top} of the sweep (B = {res.config.B}, C = {res.config.C})"
            )
        said.append(
            f"On the {esc(res.env.device_name)} (results file {esc(path.name)}), it ran at "
            + "; and at ".join(parts)
            + "."
        )
    return " ".join(said) if said else UNMEASURED


def fast_sentence(results: Path) -> str:
    """What each CPU results file in `results` measured at its bandwidth point in float32:
    clone, prefix_mean_cumsum and prefix_mean_fast, quiet, and beside busy processes where it
    has that pass; as a paragraph."""
    said = []
    for path, res in results_files(results):
        if res.env.device_type != "cpu":
            continue

        def ms(rows):  # {method: median ms} of the float32 rows that were measured
            return {r.method: r.ms for r in rows if r.status == "ok" and r.dtype == "float32"}

        def noisy(rows):  # {method: " (noisy)"} of those flagged by bench.noise
            return {r.method: " (noisy)" for r in rows if id(r) in marks and r.dtype == "float32"}

        marks = flags(res)
        quiet, busy = ms(res.bandwidth), ms(res.bandwidth_busy)
        nq, nb = noisy(res.bandwidth), noisy(res.bandwidth_busy)
        if not {"clone", "prefix_mean_cumsum", "prefix_mean_fast"} <= quiet.keys():
            continue
        s, clone, cumsum, fast = (
            res.bandwidth[0],
            quiet["clone"],
            quiet["prefix_mean_cumsum"],
            quiet["prefix_mean_fast"],
        )
        text = (
            f"On the {esc(res.env.device_name)} (results file {esc(path.name)}), at the "
            f"bandwidth point (B, T, C) = ({s.B}, {s.T}, {s.C}) in float32, `x.clone()` took "
            f"{num(clone)} ms{nq.get('clone', '')}, `prefix_mean_cumsum` {num(cumsum)} ms"
            f"{nq.get('prefix_mean_cumsum', '')} ({num(cumsum / clone)} times as long) and "
            f"`prefix_mean_fast` {num(fast)} ms{nq.get('prefix_mean_fast', '')} "
            f"({num(fast / clone)} times as long: {pct(clone / fast)} of `clone`'s speed)."
        )
        if {"clone", "prefix_mean_cumsum", "prefix_mean_fast"} <= busy.keys():
            times = {  # each method beside busy processes, and how many times its quiet time
                m: f"{num(busy[m])} ms{nb.get(m, '')} ({num(busy[m] / quiet[m])} times its quiet time)"
                for m in ("clone", "prefix_mean_cumsum", "prefix_mean_fast")
            }
            lead = busy["prefix_mean_cumsum"] / busy["prefix_mean_fast"]
            n_busy, cores = res.env.busy_processes, res.env.cpu_count
            per_core = (  # cpu_count may be unknown (None) in a valid file
                "" if cores is None else " (one per core)" if n_busy == cores else f" (on {cores} cores)"
            )
            text += (
                f" With {n_busy} busy processes{per_core} beside it, `x.clone()` took "
                f"{times['clone']}, `prefix_mean_cumsum` {times['prefix_mean_cumsum']} and "
                f"`prefix_mean_fast` {times['prefix_mean_fast']}: `prefix_mean_fast` was "
                f"{num(lead)} times as fast as `prefix_mean_cumsum`, against "
                f"{num(cumsum / fast)} times on the quiet machine."
            )
        if nq or nb:
            text += (
                " A time marked noisy has an interquartile range over a tenth of its median "
                "(bench.noise): read the ratios built on it as rough."
            )
        said.append(text)
    return " ".join(said) if said else NO_CPU_FILE
