"""The site's build steps, for any builder that reads Markdown from `docs/` and writes HTML to a folder.

Two passes, each runnable on its own (`python -m sitegen pre`, `python -m sitegen post site/`) and
each called by MkDocs through the one hook in `hooks/mkdocs_adapter.py`:

* `sitegen.pre` makes, from code and data, ordinary files the builder reads: the figures and their
  palette copies, the timing plots and the Markdown that `pymdownx.snippets` includes in the timing
  appendix and the kernel chapter, the link-preview image and the notebooks' `.ipynb` downloads;
  it also refuses a notebook source that would put script or another host's content on a page.
* `sitegen.post` changes the finished HTML in the site folder: both palette copies of each drawing,
  the copy button's text, the interactive figures' numbers, the notebooks' launch links, the notebook
  pages' formulas and output check, focusable scrolling boxes, the "tested with" line, and last a
  Content-Security-Policy on every page, which refuses any inline script that is not on its list.

Nothing here imports MkDocs or patches another package. The TeX-to-MathML step is a
Python-Markdown extension (`sitegen.mathml`), which any Python-Markdown builder runs.
"""

from __future__ import annotations


class BuildError(Exception):
    """A build step refused its input; the message names the file (and the cell or value)."""
