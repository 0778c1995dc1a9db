"""MkDocs hook: the notebook page's download and "Open in Colab" links, offline.

`docs/notebook.py` is the notebook's source (jupytext percent format); the
mkdocs-jupyter plugin executes it and renders it as the page `notebook/`. This
hook adds what that plugin does not:

* `notebook.ipynb`, converted from the source with jupytext at every build, as a
  file of the site, and a link to it at the top of the notebook page;
* an "Open in Colab" link. Colab opens notebooks from GitHub, so the deploy
  workflow (`.github/workflows/pages.yml`) pushes that same `notebook.ipynb` to
  the branch `COLAB_BRANCH` of the repository named by `repo_url`, and the link
  points there;
* the removal of every `<script>` in the notebook's HTML that would fetch code
  from another host: an absolute `src` (`http:`, `https:`, `//`) or an absolute
  URL in its code or, HTML-escaped, in one of its attributes (nbconvert's MathJax
  loader and Mermaid import); of one whose `src` is empty, which loads nothing;
  and of the data blocks (a `type` that is
  not JavaScript, such as MathJax's configuration), which only such scripts
  read. Formulas become MathML in `hooks/mathml.py`.
"""

from __future__ import annotations

import re

import jupytext
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

NOTEBOOK = "notebook.py"  # source, relative to docs/
IPYNB = "notebook.ipynb"  # what readers download; same path on the Colab branch
COLAB_BRANCH = "notebook"

_GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)
# A quoted absolute URL (src="https://...", import("//...")) or an empty src; the quotes may be
# HTML entities, as in a URL inside an attribute's JSON (data-config="{&quot;url&quot;: ...}").
_REMOTE = re.compile(
    r"""(?:["']|&quot;|&#34;|&#x22;|&#39;|&#x27;)(?:https?:)?//|\bsrc\s*=\s*(?:""|'')""", re.I
)
# A data block: a type the browser does not run (JavaScript is no type, a JavaScript MIME type, or module).
_DATA = re.compile(
    r"""^<script\b[^>]*(?<![\w-])type\s*=\s*["']?"""
    r"""(?!(?:text/javascript|application/javascript|text/ecmascript|application/ecmascript|module)\b)[^"'\s>]""",
    re.I,
)


def colab_url(repo_url: str) -> str:
    """Where Colab opens the notebook that the deploy workflow pushes to GitHub."""
    m = _GITHUB.match(repo_url or "")
    if not m:
        raise PluginError(f"repo_url must be https://github.com/OWNER/REPO for the Colab link, got {repo_url!r}")
    return f"https://colab.research.google.com/github/{m['owner']}/{m['repo']}/blob/{COLAB_BRANCH}/{IPYNB}"


def to_ipynb(source: str) -> str:
    """The percent-format source as an .ipynb document (no outputs: readers run it)."""
    return jupytext.writes(jupytext.reads(source, fmt="py:percent"), fmt="ipynb")


def strip_remote_scripts(html: str) -> str:
    """`html` without the scripts that would load code from another host, load nothing, or only hold data."""
    return _SCRIPT.sub(lambda m: "" if _REMOTE.search(m.group(0)) or _DATA.match(m.group(0)) else m.group(0), html)


def on_files(files, config):
    source = files.get_file_from_path(NOTEBOOK)
    if source is not None:
        files.append(File.generated(config, IPYNB, content=to_ipynb(source.content_string)))
    return files


def on_page_content(html, page, config, files):
    if page.file.src_uri != NOTEBOOK:
        return html
    html = strip_remote_scripts(html)
    download = files.get_file_from_path(IPYNB).url_relative_to(page.file)
    links = (
        '\n<p class="notebook-links">'
        f'<a class="md-button md-button--primary" href="{download}" download>Download {IPYNB}</a> '
        f'<a class="md-button md-button--primary" href="{colab_url(config.repo_url)}">Open in Colab</a>'
        "</p>\n"
    )
    # After the title (the notebook's first heading), or first if it has none.
    heading = re.search(r"</h1>", html)
    at = heading.end() if heading else 0
    return html[:at] + links + html[at:]
