"""MkDocs hook: render the committed timing results into the appendix at build time.

Every ``docs/appendix/results/*.json`` written by ``python -m snippets.timing``
becomes tables and SVG plots (``snippets.report``). The plots are added as
generated files, so links to them are checked like any other; the Markdown
replaces the ``<!-- timing:cpu -->`` and ``<!-- timing:gpu -->`` markers of the
appendix page. Nothing here is measured: the page shows only what the files hold.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

from snippets.report import render

PAGE = "appendix/timing.md"
RESULTS = "appendix/results"
_rendered = None


def on_files(files, config):
    global _rendered
    _rendered = render(Path(config.docs_dir) / RESULTS)
    for path, svg in _rendered.plots.items():
        files.append(File.generated(config, path, content=svg))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    for name, text in _rendered.markdown.items():
        marker = f"<!-- timing:{name} -->"
        if marker not in markdown:
            raise RuntimeError(f"{PAGE}: the marker {marker} is missing; the results have nowhere to go")
        markdown = markdown.replace(marker, text)
    return markdown
