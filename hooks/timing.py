"""MkDocs hook: render the committed timing results into the appendix at build time.

Every ``docs/appendix/results/*.json`` written by ``python -m bench``
becomes tables and SVG plots (``bench.report``). The plots are added as
generated files, so links to them are checked like any other; the Markdown
replaces the ``<!-- timing:cpu -->`` and ``<!-- timing:gpu -->`` markers of the
appendix page. Nothing here is measured: the page shows only what the files hold.

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

from bench.report import render
from bench.schema import ResultsError
from bench.validate import shown

PAGE = "appendix/timing.md"
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
    if page.file.src_uri != PAGE:
        return markdown
    for name, text in _rendered.markdown.items():
        marker = f"<!-- timing:{name} -->"
        if marker not in markdown:
            raise PluginError(f"{PAGE}: the marker {marker} is missing; the results have nowhere to go")
        markdown = markdown.replace(marker, text)
    return markdown
