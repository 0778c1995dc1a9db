"""MkDocs hook: render the committed timing results into the appendix at build time.

Every ``docs/appendix/results/*.json`` written by ``python -m bench``
becomes tables and SVG plots (``bench.report``). The plots are added as
generated files, so links to them are checked like any other; the Markdown
replaces the ``<!-- timing:cpu -->`` and ``<!-- timing:gpu -->`` markers of the
appendix page. Nothing here is measured: the page shows only what the files hold.

Chapter 10's ``<!-- timing:kernel -->`` marker becomes what the files say of its kernel: for
each file that timed it, its speed as a fraction of ``clone``'s (``kernel_sentence``), or that
it has not been measured yet.

A malformed results file stops the build with a message naming the file and the
bad value. A method whose code changed since its file was measured is flagged on
the page and reported as a warning that does not fail a strict build (a GPU file
cannot be measured again without a GPU).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

from bench.escape import esc
from bench.report import render
from bench.schema import ResultsError
from bench.summary import pct
from bench.validate import load
from bench.validate import shown

PAGE = "appendix/timing.md"
KERNEL_PAGE, KERNEL_MARKER = "10-kernel.md", "<!-- timing:kernel -->"
UNMEASURED = "How fast the kernel runs has not been measured yet."
RESULTS = "appendix/results"
# Outside the "mkdocs" logger tree on purpose: a stale file is a warning, not a strict-mode failure.
log = logging.getLogger("attention_trick.timing")
_rendered = None


def on_files(files, config):
    global _rendered
    try:
        _rendered = render(Path(config.docs_dir) / RESULTS)
    except ResultsError as exc:
        raise PluginError(f"timing results: {shown(exc)}") from None  # a file name may hold escapes
    for line in _rendered.stale:
        log.warning("stale timing results: %s", shown(line))
    for path, svg in _rendered.plots.items():
        files.append(File.generated(config, path, content=svg))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == KERNEL_PAGE:  # (tests/test_timing.py checks the marker is there)
        return markdown.replace(KERNEL_MARKER, kernel_sentence(Path(config.docs_dir) / RESULTS))
    if page.file.src_uri != PAGE:
        return markdown
    for name, text in _rendered.markdown.items():
        marker = f"<!-- timing:{name} -->"
        if marker not in markdown:
            raise PluginError(f"{PAGE}: the marker {marker} is missing; the results have nowhere to go")
        markdown = markdown.replace(marker, text)
    return markdown


def kernel_sentence(results: Path) -> str:
    """What the results files in `results` say of prefix_mean_triton, as a paragraph."""
    said = []
    for path in sorted(results.glob("*.json")):
        res = load(path)

        def speed(rows, dtypes=res.config.dtypes):  # clone's time over the kernel's, per dtype
            ms = {(r.method, r.dtype): r.ms for r in rows if r.status == "ok"}
            return {
                d: ms[("clone", d)] / ms[("prefix_mean_triton", d)]
                for d in dtypes
                if ("clone", d) in ms and ("prefix_mean_triton", d) in ms
            }

        timed = [r.T for r in res.results if r.method == "prefix_mean_triton" and r.status == "ok"]
        top = max(timed, default=None)
        at_bw, at_top = speed(res.bandwidth), speed([r for r in res.results if r.T == top])
        if not at_bw and not at_top:
            continue
        parts = []
        if at_bw:
            s = res.bandwidth[0]
            parts.append(", ".join(f"{pct(v)} of `clone`'s speed in {d}" for d, v in at_bw.items())
                         + f" at the bandwidth point (B, T, C) = ({s.B}, {s.T}, {s.C})")
        if at_top:
            parts.append(", ".join(f"{pct(v)} in {d}" for d, v in at_top.items())
                         + f" at T = {top} of the sweep (B = {res.config.B}, C = {res.config.C})")
        said.append(f"On the {esc(res.env.device_name)} (results file {esc(path.name)}), it ran at "
                    + "; and at ".join(parts) + ".")
    return " ".join(said) if said else UNMEASURED
