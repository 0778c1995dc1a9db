"""MkDocs hook: draw the figures of `snippets.figures` and add them to the site.

Each figure becomes a virtual file `figures/<name>.svg` in the docs directory, so
a page links it like any image (`![alt](figures/masks.svg)`) and the strict build
checks that link. Nothing is written to `docs/` and no image is committed: every
build draws the figures from the code as it is.
"""

from __future__ import annotations

from mkdocs.structure.files import File

from snippets.figures import FIGURES


def on_files(files, config):
    for name, draw in FIGURES.items():
        files.append(File.generated(config, f"figures/{name}.svg", content=draw()))
    return files
